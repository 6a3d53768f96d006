"""Run-time SIMD dispatch and thread controls: defaults, set_simd / PYRMSPROP_SIMD,
set_num_threads / PYRMSPROP_NUM_THREADS / OMP_NUM_THREADS, show_config; the SIMD
target per rule: set_simd('auto'), its measurement, the saved choice,
_core.set_rule_target / time_on, cpu_name."""

import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import pyrmsprop
from pyrmsprop import _core, _simd

KNOWN = {"baseline", "avx2", "avx512", "neon"}


def run_python(code, **env):
    """Run `code` in a fresh interpreter with the given environment variables set
    (and the dispatch/thread variables of this process removed)."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("PYRMSPROP_SIMD", "PYRMSPROP_NUM_THREADS", "OMP_NUM_THREADS")}
    # cwd: the tests' folder, never the checkout's root, whose pyrmsprop/ (no compiled
    # _core there) would shadow the installed package for `python -c`
    return subprocess.run([sys.executable, "-c", code], env={**base, **env}, check=False,
                          capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.abspath(__file__)))


def test_target_lists():
    compiled = _core.compiled_targets()
    supported = pyrmsprop.simd_targets()
    assert set(compiled) <= KNOWN and compiled
    assert supported and set(supported) <= set(compiled)
    assert supported[0] == compiled[0]  # the baseline always runs
    assert _core.best_simd_target() == supported[-1]


def test_default_is_best_supported():
    code = "import pyrmsprop as p; print(p.simd_target(), p._core.best_simd_target())"
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    used, best = out.stdout.split()
    assert used == best == pyrmsprop.simd_targets()[-1]


def test_set_simd_each_supported_target(simd):
    assert pyrmsprop.simd_target() == simd
    a, x = np.zeros(100, np.float32), np.ones(100, np.float32)
    pyrmsprop.ema_update(a, x, beta=0.75)
    assert np.all(a == 0.25)


def test_set_simd_is_case_and_space_insensitive():
    name = pyrmsprop.simd_targets()[-1]
    pyrmsprop.set_simd(f" {name.upper()} ")
    assert pyrmsprop.simd_target() == name


@pytest.mark.parametrize("name", ["sse9", "", "avx-512", "AVX2X"])
def test_set_simd_unknown_name(name):
    before = pyrmsprop.simd_target()
    with pytest.raises(ValueError, match="unknown SIMD target") as info:
        pyrmsprop.set_simd(name)
    for target in _core.compiled_targets():
        assert repr(target) in str(info.value)
    assert pyrmsprop.simd_target() == before


_BASELINE = _core.compiled_targets()[0]          # 'baseline' on x86-64, 'neon' on ARM64
_FOREIGN = ["neon"] if _BASELINE == "baseline" else ["avx2", "avx512"]


@pytest.mark.parametrize("name", _FOREIGN)
def test_set_simd_refuses_another_architectures_target(name):
    """A target of another architecture is an unknown name, never a silent alias."""
    pyrmsprop.set_simd(pyrmsprop.simd_targets()[-1])
    before = pyrmsprop.simd_target()
    with pytest.raises(ValueError, match="unknown SIMD target") as info:
        pyrmsprop.set_simd(name)
    assert repr(name) in str(info.value)
    assert pyrmsprop.simd_target() == before


@pytest.mark.parametrize("name", _FOREIGN)
def test_env_simd_refuses_another_architectures_target(name):
    out = run_python("import pyrmsprop", PYRMSPROP_SIMD=name)
    assert out.returncode != 0
    assert "ValueError" in out.stderr and f"PYRMSPROP_SIMD={name!r}" in out.stderr


def test_baseline_is_an_alias_of_the_architectures_baseline():
    pyrmsprop.set_simd("baseline")
    assert pyrmsprop.simd_target() == _BASELINE
    pyrmsprop.set_simd(_BASELINE)
    assert pyrmsprop.simd_target() == _BASELINE
    pyrmsprop.set_simd(pyrmsprop.simd_targets()[-1])


def test_set_simd_not_a_string():
    with pytest.raises(TypeError, match="name"):
        pyrmsprop.set_simd(2)


def test_set_simd_unsupported_target():
    unsupported = [t for t in _core.compiled_targets() if t not in pyrmsprop.simd_targets()]
    missing = [t for t in ("avx2", "avx512") if t not in _core.compiled_targets()]
    if not unsupported and not missing:
        pytest.skip(f"this CPU supports every compiled target {_core.compiled_targets()}")
    before = pyrmsprop.simd_target()
    for name in unsupported + missing:
        with pytest.raises(ValueError) as info:
            pyrmsprop.set_simd(name)
        assert repr(name) in str(info.value)
        for target in pyrmsprop.simd_targets():
            assert repr(target) in str(info.value)
    assert pyrmsprop.simd_target() == before


@pytest.mark.parametrize("target", _core.compiled_targets())
def test_env_simd_at_import(target):
    code = "import pyrmsprop; print(pyrmsprop.simd_target())"
    out = run_python(code, PYRMSPROP_SIMD=target)
    if target not in pyrmsprop.simd_targets():
        assert out.returncode != 0 and "PYRMSPROP_SIMD" in out.stderr
        return
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == target


def test_env_simd_baseline_runs_updates():
    code = """if True:
        import numpy as np, pyrmsprop
        p, s = np.ones(1000, np.float32), np.zeros(1000, np.float32)
        g = np.full(1000, 0.5, np.float32)
        pyrmsprop.rmsprop_update(p, g, s, lr=0.1, alpha=0.0, eps=0.0)
        print(pyrmsprop.simd_target(), p[0], p[-1], s[0])
    """
    out = run_python(code, PYRMSPROP_SIMD="baseline")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [_core.compiled_targets()[0], "0.9", "0.9", "0.25"]


@pytest.mark.parametrize("value", ["bogus", "avx1024"])
def test_env_simd_bogus_fails_import(value):
    out = run_python("import pyrmsprop", PYRMSPROP_SIMD=value)
    assert out.returncode != 0
    assert "PYRMSPROP_SIMD" in out.stderr and value in out.stderr
    assert "ValueError" in out.stderr


@pytest.mark.parametrize("env, expected", [
    ({"PYRMSPROP_NUM_THREADS": "3"}, 3),
    ({"OMP_NUM_THREADS": "5"}, 5),
    ({"OMP_NUM_THREADS": "4,2"}, 4),  # OpenMP's nested list: the outer level
    ({"PYRMSPROP_NUM_THREADS": "2", "OMP_NUM_THREADS": "7"}, 2),  # ours wins
    ({"PYRMSPROP_NUM_THREADS": "1"}, 1),
])
def test_env_num_threads(env, expected):
    out = run_python("import pyrmsprop; print(pyrmsprop.get_num_threads())", **env)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == expected


def test_default_num_threads_is_cpu_count():
    out = run_python("import pyrmsprop; print(pyrmsprop.get_num_threads())")
    assert out.returncode == 0, out.stderr
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    assert int(out.stdout) == min(cpus, 256)


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_env_num_threads_invalid(value):
    out = run_python("import pyrmsprop", PYRMSPROP_NUM_THREADS=value)
    assert out.returncode != 0
    assert "PYRMSPROP_NUM_THREADS" in out.stderr


def test_set_num_threads():
    for n in (1, 3, 2):
        pyrmsprop.set_num_threads(n)
        assert pyrmsprop.get_num_threads() == n
    pyrmsprop.set_num_threads(np.int64(4))
    assert pyrmsprop.get_num_threads() == 4


@pytest.mark.parametrize("n, exc", [(0, ValueError), (-1, ValueError), (257, ValueError),
                                    (2.0, TypeError), ("2", TypeError), (None, TypeError),
                                    (True, TypeError)])
def test_set_num_threads_invalid(n, exc):
    pyrmsprop.set_num_threads(2)
    with pytest.raises(exc, match="n "):
        pyrmsprop.set_num_threads(n)
    assert pyrmsprop.get_num_threads() == 2


def test_thread_threshold():
    default = _core.get_thread_threshold()
    assert default > 0
    _core.set_thread_threshold(0)
    assert _core.get_thread_threshold() == 0
    with pytest.raises(ValueError):
        _core.set_thread_threshold(-1)
    assert _core.get_thread_threshold() == 0
    chunk = _core.chunk_elements()
    assert chunk > 0 and chunk * 4 % 64 == 0  # chunk edges on cache lines


def test_split_elements_weigh_the_cost_per_element():
    """The threshold is in float32-EMA elements; costlier rules/dtypes split earlier."""
    t = _core.get_thread_threshold()
    f32 = {r: _core.split_elements(r, np.float32) for r in ("ema", "sgd", "rmsprop", "adam")}
    f64 = {r: _core.split_elements(r, "float64") for r in f32}
    assert f32["ema"] == t
    assert f32["ema"] > f32["sgd"] > f32["rmsprop"] > f32["adam"] > 0
    assert all(f64[r] < f32[r] for r in f32)
    assert _core.split_elements("memory_only", np.float32) <= min(f32.values())
    assert _core.split_elements("adam", np.dtype("float32")) == f32["adam"]
    _core.set_thread_threshold(0)
    assert {_core.split_elements(r, np.float64) for r in f32} == {0}
    with pytest.raises(ValueError, match="rule must be one of"):
        _core.split_elements("adagrad", np.float32)
    # 16-bit storage computes in float32: float32's weight
    _core.set_thread_threshold(t)
    assert _core.split_elements("adam", "bfloat16") == f32["adam"]
    assert _core.split_elements("adam", np.float16) == f32["adam"]
    with pytest.raises(TypeError, match="dtype must be float32, float64, bfloat16 or float16"):
        _core.split_elements("adam", np.int16)


def test_show_config_dicts():
    cfg = pyrmsprop.show_config(mode="dicts")
    assert set(cfg) == {"pyrmsprop", "build", "machine", "simd", "threads"}
    assert cfg["pyrmsprop"]["version"] == pyrmsprop.__version__
    assert cfg["build"]["compiler"]
    assert cfg["build"]["targets compiled"] == _core.compiled_targets()
    assert set(cfg["build"]["kernel flags"]) == set(_core.compiled_targets())
    for flags in cfg["build"]["kernel flags"].values():
        assert "fast-math" not in flags and "march=native" not in flags
    assert cfg["simd"]["supported here"] == pyrmsprop.simd_targets()
    assert cfg["simd"]["in use"] == pyrmsprop.simd_target()
    assert cfg["simd"]["best"] == _core.best_simd_target()
    threads = cfg["threads"]
    assert threads["threads"] == pyrmsprop.get_num_threads()
    assert threads["mode"] == _core.thread_mode()
    assert "OpenMP" in threads
    assert threads["serial below (float32-EMA elements)"] == _core.get_thread_threshold()
    assert threads["split from (elements, float32/float64)"]["adam"] == [
        _core.split_elements("adam", np.float32), _core.split_elements("adam", np.float64)]
    assert threads["chunk (elements)"] == _core.chunk_elements()


def test_show_config_follows_changes():
    pyrmsprop.set_simd(pyrmsprop.simd_targets()[0])
    pyrmsprop.set_num_threads(3)
    cfg = pyrmsprop.show_config(mode="dicts")
    assert cfg["simd"]["in use"] == pyrmsprop.simd_targets()[0]
    assert cfg["threads"]["threads"] == 3


def test_show_config_stdout(capsys):
    assert pyrmsprop.show_config() is None
    out = capsys.readouterr().out
    cfg = pyrmsprop.show_config(mode="dicts")
    for section in cfg:
        assert f"{section}:" in out
    assert pyrmsprop.__version__ in out
    assert f"in use: {pyrmsprop.simd_target()}" in out
    assert f"threads: {pyrmsprop.get_num_threads()}" in out


def test_show_config_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        pyrmsprop.show_config(mode="json")


def test_show_config_prints_no_empty_line(capsys):
    pyrmsprop.show_config()
    lines = capsys.readouterr().out.splitlines()
    assert lines
    # a key without a value only heads a nested block: the next line is indented deeper
    for line, nxt in zip(lines, lines[1:] + [""]):
        if line.rstrip().endswith(":"):
            indent = len(line) - len(line.lstrip())
            assert len(nxt) - len(nxt.lstrip()) > indent, f"empty entry: {line!r}"
    assert ("note" in pyrmsprop.show_config(mode="dicts")["simd"]) == bool(_core.target_note())


def test_split_elements_huge_threshold():
    """split_elements is ceil(threshold / cost) without overflow up to the largest
    threshold (it once computed threshold + cost - 1 in a signed integer, so that
    2**63 - 1 gave a negative number and every call would have been split)."""
    rules = ("ema", "sgd", "rmsprop", "adam", "memory_only")
    base = 420 * 10**9  # a multiple of every cost, so split = base / cost exactly
    _core.set_thread_threshold(base)
    cost = {}
    for r in rules:
        for d in ("float32", "float64"):
            s = _core.split_elements(r, d)
            assert base % s == 0
            cost[r, d] = base // s
    for big in (2**63 - 1, 2**63 - 2, 2**62 + 1, 2**53 + 3):
        _core.set_thread_threshold(big)
        assert _core.get_thread_threshold() == big
        for (r, d), w in cost.items():
            assert _core.split_elements(r, d) == -(-big // w), (big, r, d)
    _core.set_thread_threshold(2**63 - 1)
    pyrmsprop.set_num_threads(2)
    p, g = np.ones(100, np.float32), np.full(100, 0.5, np.float32)
    pyrmsprop.ema_update(p, g, beta=0.5)
    assert (p == 0.75).all()


# ---- the SIMD target per rule ------------------------------------------------------

RULE_ARRAYS = {"ema": 2, "rmsprop": 3, "adam": 4, "sgd": 3}


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
    others = {(r, d) for r in RULE_ARRAYS for d in ("float32", "float64", "bfloat16", "float16")} - {("adam", "float64")}
    assert all(_core.rule_target(r, d) == best for r, d in others)
    pyrmsprop.set_simd(low)
    assert {t for per in pyrmsprop.simd_by_rule().values() for t in per.values()} == {low}
    assert pyrmsprop.simd_target() == low


@pytest.mark.parametrize("rule, dtype, name, exc, match", [
    ("lion", "float32", "avx2", ValueError, "rule must be one of"),
    ("adam", "int8", "avx2", ValueError, "dtype must be"),
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
    assert set(times) == {f"{r}/{d}" for r in RULE_ARRAYS for d in _simd.DTYPES}
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
    assert by_rule["adam"] == {"float32": best, "float64": low, "bfloat16": best, "float16": best}
    assert by_rule["sgd"] == dict.fromkeys(_simd.DTYPES, best)
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
                         and platform.machine() in ("x86_64", "i686", "i386")),
                    reason="cpu_name() reads CPUID: x86 only; compared with Linux's /proc/cpuinfo")
def test_cpu_name_is_the_kernels_view_of_the_cpu():
    info = {}
    for line in open("/proc/cpuinfo").read().split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    want = (f"{' '.join(info['model name'].split())} (family {info['cpu family']} "
            f"model {info['model']} stepping {info['stepping']})")
    assert " ".join(_core.cpu_name().split()) == want
