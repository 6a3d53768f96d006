#!/usr/bin/env bash
# The C kernels, the thread pool and the Cython binding built with gcc's AddressSanitizer
# and UndefinedBehaviorSanitizer, then the whole test suite (torch==2.13.0 included) and
# the fuzz harness (tools/ci/fuzz.sh, PYRMSPROP_FUZZ_EXAMPLES examples per property,
# default 500) run on that build.  Zero reports are required: the run fails on a failing
# test and also on any sanitizer report in the output, even one a test swallowed.
#
#   * -fsanitize=address,undefined -fno-sanitize-recover=undefined: every UB report is
#     fatal; -fno-omit-frame-pointer -g for readable stacks.
#   * The interpreter is not instrumented, so ASan's runtime is preloaded
#     (LD_PRELOAD=$(gcc -print-file-name=libasan.so)); leak detection is off because
#     CPython and torch keep allocations alive until exit on purpose.  libstdc++ is
#     preloaded with it (see below).
#   * The suite runs in two pytest-xdist workers (the machine's two cores; the aarch64
#     lane has ended by then), and the fuzz harness as one more process after it.  xdist
#     keeps its workers' stderr to itself, so the reports go to files (log_path:
#     asan.<pid>, ubsan.<pid>), which are read after the run; a report also kills its
#     worker (halt_on_error), which fails the test it ran.
#   * The instrumented venv is cached in $PYRMSPROP_CI_CACHE/asan, keyed by a hash of
#     csrc/, src/, setup.py and pyproject.toml (rebuilt when they change); pip's
#     downloads in $PYRMSPROP_CI_CACHE/pip.  On failure the log is kept there.
#
# Time: see the budget in .ci/run (about 1.5x the cold time measured on this machine).
. "$(dirname "$0")/_common.sh"

# The instrumented venv is cached, keyed by the sources it was built from.
key=$(git -C "$root" ls-tree -r HEAD -- csrc src setup.py pyproject.toml | sha256sum | cut -c1-16)
venv="$cache/asan/venv-$key"
export_head asan

start=$SECONDS
py="$venv/bin/python"
if [ ! -x "$py" ]; then
    rm -rf "$cache/asan"
    mkdir -p "$cache/asan"
    python3 -m venv "$venv.tmp"
    "$venv.tmp/bin/python" -m pip install -q --upgrade pip 2>&1 | quiet
    "$venv.tmp/bin/python" -m pip install -q "torch==2.13.0" "pytest-xdist>=3" 2>&1 | quiet
    PYRMSPROP_EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g" \
        "$venv.tmp/bin/python" -m pip install -q "$work/src[test]" 2>&1 | quiet
    mv "$venv.tmp" "$venv"     # complete: an interrupted build is never reused (used via python -m only)
fi
echo "asan.sh: instrumented build installed in $((SECONDS - start)) s"

# libstdc++ is preloaded too: ASan finds the real __cxa_throw when it starts, and the
# interpreter does not link libstdc++, so the first C++ exception (matplotlib's ft2font
# throws one at import) would otherwise abort in ASan's interceptor.
export LD_PRELOAD
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
mkdir "$work/reports"
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1:log_path=$work/reports/asan
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$work/reports/ubsan
export PYRMSPROP_REQUIRE_TORCH=1

status=0
log="$work/asan.log"
cd "$work/src"
step=$SECONDS
set +e
"$py" -m pytest -q -p no:cacheprovider -n 2 tests 2>&1 | tee "$log" | tail -n 15
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
set -e
suite=$(grep -E '[0-9]+ passed' "$log" | tail -n 1 || true)
echo "asan.sh: test suite under ASan+UBSan in $((SECONDS - step)) s: $suite"

step=$SECONDS
set +e
PYTHON="$py" PYRMSPROP_FUZZ_EXAMPLES=${PYRMSPROP_FUZZ_EXAMPLES:-500} \
    bash tools/ci/fuzz.sh 2>&1 | tee -a "$log" | tail -n 5
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
set -e
echo "asan.sh: fuzz harness under ASan+UBSan in $((SECONDS - step)) s"

# the report files, then the output (a report the interpreter wrote before log_path)
cat "$work"/reports/* >> "$log" 2>/dev/null || true
reports=$(grep -cE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$log" || true)
if [ "$reports" -ne 0 ] || [ "$status" -ne 0 ]; then
    grep -E -B 5 -A 40 'ERROR: AddressSanitizer|runtime error:|Fatal Python error|^FAILED' "$log" \
        | grep -v '^  File ".*site-packages/\(_pytest\|pluggy\)/' | head -n 200 || true
    cp "$log" "$cache/asan/last.log"
    echo "asan.sh: the whole log: $cache/asan/last.log"
    status=1
fi
echo "asan.sh: $reports sanitizer report(s); $((SECONDS - start)) s in all"
exit "$status"
