#!/usr/bin/env bash
# valgrind memcheck over tools/ci/memcheck_smoke.py (every rule, both dtypes, single and
# list forms, every SIMD target valgrind's virtual CPU offers -- it has no AVX-512, so
# baseline and AVX2 -- with 1 and 2 threads): no memcheck error, and identical bytes on
# every configuration.  A plain build of HEAD (with -g) in a fresh venv; the interpreter
# uses the system allocator (PYTHONMALLOC=malloc) so that memcheck sees every block.
# Leak checking is off: CPython and numpy keep memory until exit on purpose.
#
# Time: see the budget in .ci/run (about 1.5x the cold time measured on this machine).
. "$(dirname "$0")/_common.sh"
export_head memcheck
start=$SECONDS
if ! command -v valgrind >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends valgrind \
        >"$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log"; exit 1; }
fi
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip 2>&1 | quiet
PYRMSPROP_EXTRA_CFLAGS="-g" "$work/venv/bin/python" -m pip install -q "$work/src" 2>&1 | quiet
echo "memcheck.sh: built in $((SECONDS - start)) s"
cd "$work"
status=0
PYTHONMALLOC=malloc valgrind --tool=memcheck --error-exitcode=99 --leak-check=no \
    --errors-for-leak-kinds=none --log-file="$work/valgrind.log" \
    "$work/venv/bin/python" "$work/src/tools/ci/memcheck_smoke.py" > "$work/smoke.txt" 2>&1 || status=$?
cat "$work/smoke.txt" | tail -n 34
errors=$(grep -E 'ERROR SUMMARY' "$work/valgrind.log" | tail -n 1)
echo "memcheck.sh: $errors"
if [ "$status" -ne 0 ]; then
    grep -B 2 -A 25 -E 'Invalid (read|write)|uninitialised|Mismatched|Invalid free' \
        "$work/valgrind.log" | head -n 150 || true
    echo "memcheck.sh: FAILED (exit $status)"
    exit 1
fi
echo "memcheck.sh: ok in $((SECONDS - start)) s"
