#!/usr/bin/env bash
# ThreadSanitizer over the thread tests and the many-threads stress test
# (tests/test_threads.py, tests/test_freethreading.py), on a build of the kernels, the
# pool and the binding with gcc's -fsanitize=thread, run by the free-threaded CPython
# that tools/ci/freethreaded.sh builds and caches (Python threads then really run in
# parallel; with the GIL build on 3.11 when that interpreter is not cached).
#
#   * The interpreter and numpy are not instrumented: TSan sees their locks and atomics
#     through its interceptors but not their plain memory accesses, except through
#     intercepted calls such as memcpy.  Those give reports inside CPython alone
#     (list_resize, dictresize on memory its allocator reuses, whose synchronization TSan
#     cannot see).  So every report is read: one with a frame of ours in either stack
#     (prm_*, the Cython binding's __pyx_*, csrc/, the extension module) fails the run;
#     the others are counted and listed by their summary line.  No suppressions file:
#     nothing is hidden.
#   * die_after_fork=0: test_threads forks a process that starts the pool again (TSan
#     does not follow threads across a fork, so that child is only run, not checked).
#   * exitcode=0: the reports are judged below, not by the exit status.
#   * libtsan is preloaded; setarch -R turns address randomization off (gcc 12's TSan
#     refuses some high-entropy layouts).
#   * The instrumented venv is cached in $PYRMSPROP_CI_CACHE/tsan, keyed by csrc/, src/,
#     setup.py, pyproject.toml and the interpreter.
#
# Time: see the budget in .ci/run (about 1.5x the cold time measured on this machine).
. "$(dirname "$0")/_common.sh"
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
    TSAN_OPTIONS="exitcode=0 halt_on_error=0 report_signal_unsafe=0 history_size=4 die_after_fork=0 log_path=$work/report" \
    setarch "$(uname -m)" -R "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    tests/test_threads.py tests/test_freethreading.py > "$log" 2>&1 || status=1
tail -n 3 "$log"
# reports go to report.<pid> files (pytest captures stderr, and would hide the reports
# of tests that pass)
cat "$work"/report.* > "$work/reports.txt" 2>/dev/null || true
cat > "$work/classify.py" <<'PY'
import collections, re, sys
text = open(sys.argv[1], errors="replace").read()
blocks = [b for b in text.split("==================") if "WARNING: ThreadSanitizer" in b]
ours = [b for b in blocks if re.search(r"\bprm_|__pyx_|csrc/|pyrmsprop/_core", b)]
theirs = collections.Counter(
    (re.search(r"SUMMARY: ThreadSanitizer: (.*)", b) or re.search(r"WARNING: (.*)", b)).group(1)
    for b in blocks if b not in ours)
print(f"tsan.sh: {sys.argv[3]}: {len(blocks)} report(s): {len(ours)} with a frame of pyrmsprop's, "
      f"{len(blocks) - len(ours)} in the interpreter alone")
for line, n in sorted(theirs.items()):
    print(f"    {n} x {line}")
for b in ours[:5] if sys.argv[2] == "none" else []:
    print(b)
sys.exit(1 if ours else 0) if sys.argv[2] == "none" else sys.exit(0 if ours else 1)
PY
"$venv/bin/python" "$work/classify.py" "$work/reports.txt" none "the thread tests" || status=1

# The canary: two threads updating the same arrays at once (a race the caller makes)
# must be reported with our frames, or the check above could not have failed.
PYTHON_GIL=0 LD_PRELOAD="$(gcc -print-file-name=libtsan.so)" \
    TSAN_OPTIONS="exitcode=0 report_signal_unsafe=0 log_path=$work/canary" \
    setarch "$(uname -m)" -R "$venv/bin/python" -c '
import threading, numpy as np, pyrmsprop
pyrmsprop.set_num_threads(1)
p, g, m, v = (np.ones(1 << 14, np.float32) for _ in range(4))
go = threading.Barrier(2)
def run():
    go.wait()
    for t in range(1, 11):
        pyrmsprop.adam_update(p, g, m, v, step=t)
ts = [threading.Thread(target=run) for _ in range(2)]
[t.start() for t in ts]; [t.join() for t in ts]'
cat "$work"/canary.* > "$work/canary.txt" 2>/dev/null || true
"$venv/bin/python" "$work/classify.py" "$work/canary.txt" some "the canary (a race on purpose)" ||
    { echo "tsan.sh: the canary's race was not reported in pyrmsprop's frames"; status=1; }
if [ "$status" -ne 0 ]; then
    [ ! -s "$log" ] || tail -n 40 "$log"
    mkdir -p "$cache/tsan" && cat "$log" "$work/reports.txt" > "$cache/tsan/last.log"
    echo "tsan.sh: FAILED; the whole log: $cache/tsan/last.log"
    exit 1
fi
echo "tsan.sh: ok in $((SECONDS - start)) s"
