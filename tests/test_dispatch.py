"""Run-time SIMD dispatch and thread controls: defaults, set_simd / PYRMSPROP_SIMD,
set_num_threads / PYRMSPROP_NUM_THREADS / OMP_NUM_THREADS, show_config."""

import os
import subprocess
import sys

import numpy as np
import pytest

import pyrmsprop
from pyrmsprop import _core

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
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        _core.split_elements("adam", np.float16)


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
