#!/usr/bin/env bash
# valgrind memcheck over tools/ci/memcheck_smoke.py (every rule, both dtypes, single and
# list forms, every SIMD target valgrind's virtual CPU offers -- it has no AVX-512, so
# baseline and AVX2 -- with 1 and 2 threads): no memcheck error, and identical bytes on
# every configuration.  Errors whose stack is the interpreter's or the dynamic loader's
# alone are counted and listed, not failed on (CPython 3.11 reads some uninitialised bytes
# on purpose; those are reported however pyrmsprop behaves).  A plain build of HEAD in a fresh venv (debug info from the interpreter's own
# CFLAGS, which hold -g: so the build is the README's, and ccache's); the interpreter
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
"$work/venv/bin/python" -m pip install -q "$work/src" 2>&1 | quiet
echo "memcheck.sh: built in $((SECONDS - start)) s"
cd "$work"
status=0
PYTHONMALLOC=malloc valgrind --tool=memcheck --leak-check=no --show-leak-kinds=none --num-callers=50 \
    --xml=yes --xml-file="$work/valgrind.xml" --log-file="$work/valgrind.log" \
    "$work/venv/bin/python" "$work/src/tools/ci/memcheck_smoke.py" > "$work/smoke.txt" 2>&1 || status=$?
tail -n 17 "$work/smoke.txt"
# Every error context, ours or not: ours has a frame in the extension (prm_* kernels,
# the pool and dispatch in csrc/, the Cython binding); the rest is the interpreter's
# and the loader's own (uninitialised bytes CPython reads on purpose, ld.so).
"$work/venv/bin/python" - "$work/valgrind.xml" <<'PY' || status=1
import re, sys, xml.etree.ElementTree as ET
errors = [e for e in ET.parse(sys.argv[1]).getroot().findall("error")
          if not (e.findtext("kind") or "").startswith("Leak_")]     # leaks: not checked
ours, theirs = [], {}
for e in errors:
    frames = e.findall("./stack/frame")
    def mine(f):
        fn, obj, d = (f.findtext(k) or "" for k in ("fn", "obj", "dir"))
        return bool(re.match(r"(prm_|__pyx_)", fn)) or "pyrmsprop" in obj or "csrc" in d
    top = next((f.findtext("fn") or f.findtext("obj") or "?" for f in frames), "?")
    if any(mine(f) for f in frames):
        ours.append(e)
    else:
        theirs[top] = theirs.get(top, 0) + 1
print(f"memcheck.sh: {len(errors)} error context(s): {len(ours)} with a frame of pyrmsprop's, "
      f"{len(errors) - len(ours)} in the interpreter/loader only "
      f"({', '.join(f'{k} x{v}' for k, v in sorted(theirs.items()))})")
for e in ours:
    print(e.findtext("kind"), e.findtext("./what") or e.findtext("./xwhat/text"))
    for f in e.findall("./stack/frame")[:12]:
        print("   ", f.findtext("fn"), f.findtext("file"), f.findtext("line"), f.findtext("obj"))
sys.exit(1 if ours else 0)
PY
if [ "$status" -ne 0 ]; then
    echo "memcheck.sh: FAILED (smoke exit $status or an error in pyrmsprop's code)"
    exit 1
fi
echo "memcheck.sh: ok in $((SECONDS - start)) s"
