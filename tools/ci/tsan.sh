#!/usr/bin/env bash
# ThreadSanitizer over the thread tests and the many-threads stress test
# (tests/test_threads.py, tests/test_freethreading.py), on a build of the kernels, the
# pool and the binding with gcc's -fsanitize=thread, run by the free-threaded CPython
# that tools/ci/freethreaded.sh builds and caches (Python threads then really run in
# parallel; with the GIL build on 3.11 when that interpreter is not cached).
#
#   * The interpreter and numpy are not instrumented: TSan sees their locks and atomics
#     through its interceptors but not their plain memory accesses, so what it can
#     report is a race in which our code takes part.  Zero reports are required.
#     tools/ci/tsan.supp may name interpreter or numpy frames only, never ours (the
#     script fails if a suppression mentions prm_/pyrmsprop/_core).
#   * libtsan is preloaded; setarch -R turns address randomization off (gcc 12's TSan
#     refuses some high-entropy layouts).
#   * The instrumented venv is cached in $PYRMSPROP_CI_CACHE/tsan, keyed by csrc/, src/,
#     setup.py, pyproject.toml and the interpreter.
#
# Time: see the budget in .ci/run (about 1.5x the cold time measured on this machine).
. "$(dirname "$0")/_common.sh"
supp="$root/tools/ci/tsan.supp"
if grep -v '^#' "$supp" | grep -qE 'prm_|pyrmsprop|_core'; then
    echo "tsan.sh: $supp must not suppress the project's own frames" >&2
    exit 1
fi
py=$(ls -d "$cache"/freethreaded/cpython-*/.complete 2>/dev/null | sort -V | tail -n 1 || true)
if [ -n "$py" ]; then
    py=$(ls -d "${py%/.complete}"/bin/python3.1?t | head -n 1)
else
    py=$(command -v python3)
    echo "tsan.sh: no cached free-threaded interpreter (tools/ci/freethreaded.sh builds it); using $py"
fi
key=$( (git -C "$root" ls-tree -r HEAD -- csrc src setup.py pyproject.toml; echo "$py") |
    sha256sum | cut -c1-16)
venv="$cache/tsan/venv-$key"
export_head tsan
start=$SECONDS
if [ ! -x "$venv/bin/python" ]; then
    rm -rf "$cache/tsan"
    mkdir -p "$cache/tsan"
    "$py" -m venv "$venv.tmp"
    "$venv.tmp/bin/python" -m pip install -q --upgrade pip 2>&1 | quiet
    "$venv.tmp/bin/python" -m pip install -q --only-binary :all: "numpy>=2.3" "pytest>=8" \
        "hypothesis>=6" 2>&1 | quiet
    PYRMSPROP_EXTRA_CFLAGS="-fsanitize=thread -fno-omit-frame-pointer -g" \
        "$venv.tmp/bin/python" -m pip install -q "$work/src" 2>&1 | quiet
    mv "$venv.tmp" "$venv"
fi
echo "tsan.sh: instrumented build for $("$venv/bin/python" -c 'import sys; print(sys.version.split()[0], "free-threaded" if not getattr(sys, "_is_gil_enabled", lambda: True)() else "GIL")') in $((SECONDS - start)) s"

log="$work/tsan.log"
status=0
cd "$work/src"
PYTHON_GIL=0 LD_PRELOAD="$(gcc -print-file-name=libtsan.so)" \
    TSAN_OPTIONS="suppressions=$supp halt_on_error=0 report_signal_unsafe=0 history_size=4" \
    setarch "$(uname -m)" -R "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    tests/test_threads.py tests/test_freethreading.py > "$log" 2>&1 || status=1
tail -n 3 "$log"
reports=$(grep -c '^WARNING: ThreadSanitizer' "$log" || true)
if [ "$reports" -ne 0 ] || [ "$status" -ne 0 ]; then
    grep -A 30 '^WARNING: ThreadSanitizer' "$log" | head -n 150 || true
    [ "$status" -eq 0 ] || tail -n 40 "$log"
    mkdir -p "$cache/tsan" && cp "$log" "$cache/tsan/last.log"
    echo "tsan.sh: the whole log: $cache/tsan/last.log"
    status=1
fi
echo "tsan.sh: $reports ThreadSanitizer report(s); $((SECONDS - start)) s in all"
exit "$status"
