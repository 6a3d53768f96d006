"""Packaging: the type stubs, the SIMD targets a build ships, the baseline
import, and the wheel workflow's configuration (actionlint, cibuildwheel).

The workflow checks need `actionlint` and `cibuildwheel`, which the test extra
does not install; they skip without them, and ``tools/check_wheel.sh`` runs
them with both installed (``pytest --noconftest tests/test_packaging.py -k
workflow``), so this module imports neither numpy nor pyrmsprop at module level.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WHEEL_TEST = os.environ.get("PYRMSPROP_WHEEL_TEST") == "1"  # set by cibuildwheel / check_wheel.sh
X86_64 = platform.machine().lower() in ("x86_64", "amd64")
ACTIONLINT = shutil.which("actionlint", path=os.pathsep.join(
    [str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def _core_module():
    pytest.importorskip("numpy")
    from pyrmsprop import _core

    return _core


def _public_runtime_names(mod) -> set[str]:
    return {n for n in dir(mod) if not n.startswith("_")
            and getattr(getattr(mod, n), "__module__", mod.__name__) == mod.__name__
            and not isinstance(getattr(mod, n), type(os))}


def _stub_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


# ---------------------------------------------------------------------------
# type stubs
# ---------------------------------------------------------------------------

def test_stubs_ship_and_match_the_compiled_module():
    core = _core_module()
    pkg = Path(core.__file__).parent
    assert (pkg / "py.typed").is_file(), "py.typed is missing next to the compiled module"
    stub = pkg / "_core.pyi"
    assert stub.is_file(), "_core.pyi is missing next to the compiled module"
    runtime, stubbed = _public_runtime_names(core), _stub_names(stub)
    assert runtime - stubbed == set(), "compiled but not in _core.pyi"
    assert stubbed - runtime == set(), "in _core.pyi but not compiled"


def _mypy_env_and_cwd(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Where mypy finds pyrmsprop: installed (site-packages, py.typed) or the source tree."""
    core = _core_module()
    parent = Path(core.__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    if parent in site:
        return env, tmp_path
    return env | {"MYPYPATH": str(parent)}, tmp_path


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mypy_cache")


def _run_mypy(args: list[str], tmp_path: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy", reason="mypy is not installed (it is in the test extra)")
    env, cwd = _mypy_env_and_cwd(tmp_path)
    # Errors only from the stub and the snippet: the rest of the package is mypy's to
    # read, not to judge here.
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\ncache_dir = {cache}\n"
                      "[mypy-pyrmsprop.*]\nignore_errors = True\n"
                      "[mypy-pyrmsprop._core]\nignore_errors = False\n")
    opt = "--mypy-config-file" if args[0] == "mypy.stubtest" else "--config-file"
    cmd = [sys.executable, "-m", *args, opt, str(config)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, check=False)


USAGE = textwrap.dedent("""\
    import numpy as np
    from typing_extensions import assert_type

    import pyrmsprop
    from pyrmsprop import _core

    p = np.zeros(100, dtype=np.float32)
    g = np.ones_like(p)
    s, m, v = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    d = np.zeros(100)

    assert_type(pyrmsprop.rmsprop_update(p, g, s, lr=1e-3, centered=True, grad_avg=m), None)
    pyrmsprop.adam_update(p, g, m, v, step=np.int64(3), amsgrad=True, max_exp_avg_sq=s)
    pyrmsprop.sgd_update(d, d.copy(), lr=0.1, momentum=0.9, momentum_buffer=np.zeros_like(d))
    pyrmsprop.ema_update(d, d.copy(), beta=0.9)
    _core.adam_update_multi([p], [g], [m], [v], step=1)
    _core.rmsprop_update_multi((p,), (g,), (s,), momentum=0.5, momentum_buffers=(m,))
    _core.sgd_update_multi([d], [d], lr=0.1, first_step=True)
    _core.ema_update_multi([p, g], [s, m], beta=0.99)
    assert_type(_core.all_finite([p, d]), bool)
    _core.memory_only_update(p, g, s, m)
    assert_type(pyrmsprop.simd_targets(), list[str])
    assert_type(_core.compiled_targets(), list[str])
    assert_type(pyrmsprop.simd_target(), str)
    pyrmsprop.set_simd(_core.best_simd_target())
    pyrmsprop.set_num_threads(2)
    assert_type(pyrmsprop.get_num_threads(), int)
    assert_type(_core.get_thread_threshold() + _core.chunk_elements(), int)
    assert_type(_core.thread_mode() + _core.compiler() + _core.target_note(), str)

    # The stubs must reject what the module rejects (--warn-unused-ignores fails
    # the run if one of these stops being an error).
    pyrmsprop.adam_update(p, g, m, v, step=1.0)  # type: ignore[arg-type]
    pyrmsprop.sgd_update(p, g, 0.1)  # type: ignore[call-arg]
    pyrmsprop.set_simd(2)  # type: ignore[arg-type]
    _core.all_finite(3)  # type: ignore[arg-type]
""")


def test_mypy_accepts_the_api_and_rejects_misuse(tmp_path, mypy_cache):
    snippet = tmp_path / "usage.py"
    snippet.write_text(USAGE)
    # The stub itself, strictly: a copy, as a file of its own (naming a file inside
    # site-packages would make mypy treat all of site-packages as sources).
    stub = tmp_path / "stub" / "_core.pyi"
    stub.parent.mkdir()
    shutil.copy(Path(_core_module().__file__).with_name("_core.pyi"), stub)
    r = _run_mypy(["mypy", "--strict", "--warn-unused-ignores", str(snippet), str(stub)], tmp_path,
                  mypy_cache)
    assert r.returncode == 0, r.stdout + r.stderr


def test_stubtest_signatures_match_runtime(tmp_path, mypy_cache):
    allow = tmp_path / "allowlist.txt"
    # Cython's pickling helpers (of the module and its classes) and doctest dict, not API.
    allow.write_text("pyrmsprop\\._core\\.(\\w+\\.)?__(reduce|setstate)_cython__\n"
                     "pyrmsprop\\._core\\.__test__\n")
    r = _run_mypy(["mypy.stubtest", "pyrmsprop._core", "--allowlist", str(allow)], tmp_path,
                  mypy_cache)
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------------------
# what a build ships
# ---------------------------------------------------------------------------

def test_build_has_every_simd_target_of_its_platform():
    core = _core_module()
    if X86_64:
        assert core.compiled_targets() == ["baseline", "avx2", "avx512"]
    else:
        assert len(core.compiled_targets()) == 1
    assert core.simd_target() in core.simd_targets()
    assert set(core.simd_targets()) <= set(core.compiled_targets())


BASELINE_RUN = textwrap.dedent("""\
    import numpy as np, pyrmsprop
    assert pyrmsprop.simd_target() == pyrmsprop._core.compiled_targets()[0], pyrmsprop.simd_target()
    rng = np.random.default_rng(5)
    avg, x = rng.standard_normal(100_003), rng.standard_normal(100_003)
    want = 0.875 * avg + 0.125 * x          # float64, same operations, no FMA: exact
    pyrmsprop.ema_update(avg, x, beta=0.875)
    assert np.array_equal(avg, want)
    print(pyrmsprop.simd_target())
""")


def test_baseline_target_imports_and_updates():
    """PYRMSPROP_SIMD=baseline: the import and an update need no CPU feature beyond it."""
    _core_module()
    env = os.environ | {"PYRMSPROP_SIMD": "baseline"}
    r = subprocess.run([sys.executable, "-c", BASELINE_RUN], capture_output=True, text=True,
                       env=env, cwd=Path(__file__).parent, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in ("baseline", "neon")


@pytest.mark.skipif(not WHEEL_TEST, reason="only when testing an installed wheel")
def test_tests_run_against_the_installed_wheel():
    core = _core_module()
    assert ROOT not in Path(core.__file__).resolve().parents, core.__file__


# ---------------------------------------------------------------------------
# the wheel workflow (needs actionlint / cibuildwheel; tools/check_wheel.sh has both)
# ---------------------------------------------------------------------------

PYTHONS = ["cp310", "cp311", "cp312", "cp313", "cp314", "cp314t"]
EXPECTED_BUILDS = {
    ("linux", "x86_64"): [f"{py}-{libc}_x86_64" for libc in ("manylinux", "musllinux") for py in PYTHONS],
    ("linux", "aarch64"): [f"{py}-{libc}_aarch64" for libc in ("manylinux", "musllinux") for py in PYTHONS],
    ("macos", "x86_64"): [f"{py}-macosx_x86_64" for py in PYTHONS],
    ("macos", "arm64"): [f"{py}-macosx_arm64" for py in PYTHONS],
    ("windows", "AMD64"): [f"{py}-win_amd64" for py in PYTHONS],
    # numpy has no cp310 Windows ARM64 wheel, so that wheel could not be tested
    ("windows", "ARM64"): [f"{py}-win_arm64" for py in PYTHONS if py != "cp310"],
}


@pytest.mark.skipif(not (ROOT / ".github").is_dir(), reason="no .github/ (not a git checkout)")
@pytest.mark.skipif(ACTIONLINT is None,
                    reason="actionlint is not installed (tools/check_wheel.sh installs it)")
def test_workflows_pass_actionlint():
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert workflows
    r = subprocess.run([ACTIONLINT, "-no-color", *workflows], capture_output=True, text=True,
                       cwd=ROOT, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(importlib.util.find_spec("cibuildwheel") is None,
                    reason="cibuildwheel is not installed (tools/check_wheel.sh installs it)")
@pytest.mark.parametrize(("plat", "arch"), list(EXPECTED_BUILDS))
def test_workflow_build_identifiers(plat, arch):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    r = subprocess.run([sys.executable, "-m", "cibuildwheel", "--print-build-identifiers",
                        "--platform", plat, "--archs", arch], capture_output=True, text=True,
                       cwd=ROOT, env=env, check=False)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == sorted(EXPECTED_BUILDS[plat, arch])


def test_workflow_runs_the_benchmark_when_it_exists():
    tomllib = pytest.importorskip("tomllib")
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
    commands = " && ".join(cfg["test-command"])
    assert "pytest {project}/tests" in commands
    if (ROOT / "src" / "pyrmsprop" / "bench.py").is_file():
        assert "python -m pyrmsprop.bench --quick" in commands
    else:
        assert "show_config()" in commands


# ---------------------------------------------------------------------------
# the README's two commands (tools/ci/readme_commands.sh runs them in a fresh clone)
# ---------------------------------------------------------------------------

@pytest.mark.skipif(not (ROOT / "tools" / "ci" / "readme_commands.sh").is_file(),
                    reason="no tools/ci/ next to the tests")
def test_readme_states_the_two_commands_that_ci_runs():
    r = subprocess.run(["bash", str(ROOT / "tools" / "ci" / "readme_commands.sh"), "--print"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    main, tests = r.stdout.splitlines()
    # each does its own set-up, from a fresh clone's root
    assert main.startswith("pip install . && python -m pyrmsprop.bench --quick"), main
    assert tests.startswith('pip install ".[test]" "torch==2.13.0" && pytest'), tests
    assert "tools/ci/readme_commands.sh" in (ROOT / ".ci" / "run").read_text()
