"""The SIMD target per rule: set_simd('auto'), its measurement, the saved choice,
_core.set_rule_target / time_on."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pyrmsprop
from pyrmsprop import _core, _simd

RULE_ARRAYS = {"ema": 2, "rmsprop": 3, "adam": 4, "sgd": 3}


def run_python(code, **env):
    base = {k: v for k, v in os.environ.items() if k != "PYRMSPROP_SIMD"}
    return subprocess.run([sys.executable, "-c", code], env={**base, **env}, check=False,
                          capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty PYRMSPROP_CACHE_DIR for this test (and the interpreters it starts)."""
    monkeypatch.setenv("PYRMSPROP_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def three_targets(monkeypatch):
    monkeypatch.setattr(_simd._core, "simd_targets", lambda: ["baseline", "avx2", "avx512"])


# ---- choose(): the rule ---------------------------------------------------------

@pytest.mark.parametrize("times, want", [
    ({"baseline": 1.00, "avx2": 0.60, "avx512": 0.50}, "avx512"),   # widest fastest
    ({"baseline": 1.00, "avx2": 0.50, "avx512": 0.53}, "avx2"),     # 6% faster: lower
    ({"baseline": 1.00, "avx2": 0.50, "avx512": 0.51}, "avx512"),   # 2%: within MARGIN
    ({"baseline": 0.50, "avx2": 0.505, "avx512": 0.60}, "avx2"),    # two alike: the wider
    ({"baseline": 0.40, "avx2": 0.50, "avx512": 0.60}, "baseline"),
])
def test_choose_takes_the_widest_target_within_the_margin(three_targets, times, want):
    assert _simd.MARGIN == 0.03
    assert _simd.choose({"adam/float32": times}) == {"adam/float32": want}


# ---- the C entry points -----------------------------------------------------------

def test_set_rule_target_sets_one_entry_and_set_simd_all():
    low, best = pyrmsprop.simd_targets()[0], _core.best_simd_target()
    pyrmsprop.set_simd(best)
    _core.set_rule_target("adam", "float64", low)
    assert _core.rule_target("adam", "float64") == low
    others = {(r, d) for r in RULE_ARRAYS for d in ("float32", "float64")} - {("adam", "float64")}
    assert all(_core.rule_target(r, d) == best for r, d in others)
    pyrmsprop.set_simd(low)
    assert {t for per in pyrmsprop.simd_by_rule().values() for t in per.values()} == {low}
    assert pyrmsprop.simd_target() == low


@pytest.mark.parametrize("rule, dtype, name, exc, match", [
    ("lion", "float32", "avx2", ValueError, "rule must be one of"),
    ("adam", "float16", "avx2", ValueError, "dtype must be"),
    ("adam", "float32", "sse9", ValueError, "sse9"),
    ("adam", "float32", 2, TypeError, "name must be a str"),
])
def test_set_rule_target_bad_input_changes_nothing(rule, dtype, name, exc, match):
    before = pyrmsprop.simd_by_rule()
    with pytest.raises(exc, match=match):
        _core.set_rule_target(rule, dtype, name)
    assert pyrmsprop.simd_by_rule() == before


def _state(rule, dtype, rng, n=3001):
    arrays = [rng.standard_normal(n).astype(dtype) for _ in range(RULE_ARRAYS[rule])]
    for s in arrays[2:]:
        np.abs(s, out=s)      # RMSprop's and Adam's second moments are >= 0
    return arrays


def _update(rule, a):
    if rule == "ema":
        pyrmsprop.ema_update(a[0], a[1], beta=0.9)
    elif rule == "rmsprop":
        pyrmsprop.rmsprop_update(a[0], a[1], a[2], lr=1e-2)
    elif rule == "adam":
        pyrmsprop.adam_update(a[0], a[1], a[2], a[3], step=10)
    else:
        pyrmsprop.sgd_update(a[0], a[1], lr=1e-2, momentum=0.9, momentum_buffer=a[2])


@pytest.mark.parametrize("rule", list(RULE_ARRAYS))
def test_time_on_runs_the_update_on_the_given_target(rule, dtype, rng):
    """time_on(target, ...) makes the same update as the public function with the
    defaults it names (and so every target the same bits)."""
    start = _state(rule, dtype, rng)
    want = [x.copy() for x in start]
    _update(rule, want)
    for target in pyrmsprop.simd_targets():
        got = [x.copy() for x in start]
        seconds = _core.time_on(target, rule, got, 1)
        assert seconds > 0
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("args, exc, match", [
    (("sse9", "adam", 4, 1), ValueError, "sse9"),
    ((None, "adam", 4, 1), TypeError, "name must be a str"),
    (("T", "lion", 4, 1), ValueError, "rule must be one of"),
    (("T", "adam", 3, 1), ValueError, "adam takes 4 arrays, got 3"),
    (("T", "adam", 4, 0), ValueError, "calls must be >= 1"),
])
def test_time_on_bad_input(args, exc, match, rng):
    name, rule, count, calls = args
    name = _core.best_simd_target() if name == "T" else name
    arrays = [rng.random(64) for _ in range(count)]
    before = [a.copy() for a in arrays]
    with pytest.raises(exc, match=match):
        _core.time_on(name, rule, arrays, calls)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)


# ---- set_simd('auto') -------------------------------------------------------------

def test_auto_measures_every_rule_and_runs_each_on_its_choice(rng):
    pyrmsprop.set_simd("auto")
    m = _simd.simd_measurement()
    assert m["mode"] == "auto"
    times = m["ns_per_elem"]
    assert set(times) == {f"{r}/{d}" for r in RULE_ARRAYS for d in ("float32", "float64")}
    for per in times.values():
        assert set(per) == set(pyrmsprop.simd_targets())
        assert all(0 < v < 1e3 for v in per.values())
    chosen = _simd.choose(times)
    by_rule = pyrmsprop.simd_by_rule()
    assert {f"{r}/{d}": t for r, per in by_rule.items() for d, t in per.items()} == chosen
    assert pyrmsprop.simd_target() == "auto"
    # and the updates are those of the best target, bit for bit
    for rule in RULE_ARRAYS:
        start = _state(rule, np.float32, rng, n=70001)
        auto = [x.copy() for x in start]
        _update(rule, auto)
        pyrmsprop.set_simd(_core.best_simd_target())
        best = [x.copy() for x in start]
        _update(rule, best)
        for a, b in zip(auto, best):
            np.testing.assert_array_equal(a, b)
        _simd.use_measured()
    # one rule moved by hand: no longer "auto"
    other = [t for t in pyrmsprop.simd_targets() if t != by_rule["ema"]["float32"]]
    if other:
        _core.set_rule_target("ema", "float32", other[0])
        assert pyrmsprop.simd_target() == _core.simd_target() != "auto"


def test_set_simd_save_is_for_auto_only(cache):
    with pytest.raises(ValueError, match="save=True goes with set_simd\\('auto'\\)"):
        pyrmsprop.set_simd(_core.best_simd_target(), save=True)
    with pytest.raises(TypeError, match="save must be a bool"):
        pyrmsprop.set_simd("auto", save="yes")
    assert not (cache / "simd.json").exists()


_REPORT = ("import json, pyrmsprop, pyrmsprop._simd as s; print(json.dumps("
           "[pyrmsprop.simd_target(), pyrmsprop.simd_by_rule(), s.simd_measurement()['mode']]))")


@pytest.mark.skipif(len(pyrmsprop.simd_targets()) < 2,
                    reason="one SIMD target here: nothing to choose, no file read")
def test_a_saved_choice_is_used_at_import(cache):
    pyrmsprop.set_simd("auto", save=True)
    path = _simd.saved_path()
    assert path == cache / "simd.json"
    doc = json.loads(path.read_text())
    assert doc["schema"] == "pyrmsprop.simd/1"
    assert list(doc["machines"]) == [_simd._machine_key()]
    # a doctored measurement: a choice import can only take from the file
    times = {k: {t: 1.0 for t in pyrmsprop.simd_targets()}
             for k in doc["machines"][_simd._machine_key()]["ns_per_elem"]}
    low = pyrmsprop.simd_targets()[0]
    times["adam/float64"][low] = 0.5
    doc["machines"][_simd._machine_key()]["ns_per_elem"] = times
    doc["machines"]["another cpu | Linux | baseline | gcc | 0"] = {"ns_per_elem": {}}
    path.write_text(json.dumps(doc))
    out = run_python(_REPORT)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    target, by_rule, mode = json.loads(out.stdout)
    best = _core.best_simd_target()
    assert mode == "saved" and target == "auto"
    assert by_rule["adam"] == {"float32": best, "float64": low}
    assert by_rule["sgd"] == {"float32": best, "float64": best}
    # PYRMSPROP_SIMD wins over the file
    out = run_python(_REPORT, PYRMSPROP_SIMD=low)
    assert json.loads(out.stdout)[:1] == [low]
    # a second save keeps the other machine's entry
    pyrmsprop.set_simd("auto", save=True)
    assert len(json.loads(path.read_text())["machines"]) == 2


@pytest.mark.parametrize("text, why", [
    ("{not json", "Expecting property name"),
    ('{"schema": "pyrmsprop.simd/0", "machines": {}}', "schema is not"),
    ("[1, 2]", "'list' object has no attribute"),
    ("KEY_INCOMPLETE", "incomplete"),
])
def test_a_bad_saved_file_warns_and_the_best_target_is_used(cache, text, why):
    if text == "KEY_INCOMPLETE":
        text = json.dumps({"schema": _simd.SCHEMA, "machines": {
            _simd._machine_key(): {"ns_per_elem": {"adam/float32": {"avx2": -1}}}}})
    (cache / "simd.json").write_text(text)
    out = run_python(_REPORT)
    assert out.returncode == 0, out.stderr
    if len(pyrmsprop.simd_targets()) > 1:
        assert "RuntimeWarning: pyrmsprop: ignoring the saved SIMD measurement" in out.stderr
        assert why in out.stderr and "--tune-simd" in out.stderr
    target, _, mode = json.loads(out.stdout)
    assert (target, mode) == (_core.best_simd_target(), "best")


def test_env_auto_measures_at_import(cache):
    out = run_python(_REPORT, PYRMSPROP_SIMD=" AUTO ")
    assert out.returncode == 0, out.stderr
    target, by_rule, mode = json.loads(out.stdout)
    assert (target, mode) == ("auto", "auto")
    assert all(t in pyrmsprop.simd_targets() for per in by_rule.values() for t in per.values())
    assert not (cache / "simd.json").exists()      # measured, not saved


@pytest.mark.skipif(not (sys.platform.startswith("linux") and os.path.exists("/proc/cpuinfo")
                         and _core.compiled_targets()[0] == "baseline"),
                    reason="compares with Linux's /proc/cpuinfo on x86")
def test_cpu_name_is_the_kernels_view_of_the_cpu():
    info = {}
    for line in open("/proc/cpuinfo").read().split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    want = (f"{' '.join(info['model name'].split())} (family {info['cpu family']} "
            f"model {info['model']} stepping {info['stepping']})")
    assert " ".join(_core.cpu_name().split()) == want
