#!/usr/bin/env python3
"""Prove that every hot loop is vectorized, at full width, on every SIMD target.

Compiles each ``csrc/targets/<target>.c`` with the flags ``setup.py`` uses
(``src/pyrmsprop/_targets.py``) plus GCC's ``-fopt-info-vec-optimized-missed``, and
fails unless every ``for (`` loop of ``csrc/kernels/*.inc.c`` is reported
vectorized with the target's vector width (baseline/NEON 16 bytes, AVX2 32,
AVX-512 64) on every target, and no copy (option sets x storage combinations) is
reported "couldn't vectorize".  A loop marked ``/* novec: <why> */`` on its line is
left out (stage.inc.c's loop over stages, and its loops written with intrinsics).
Prints a table:
loop, target, vector bytes, copies at that width.

GCC only (clang's report differs); without GCC it prints why and exits 0.
Usage: python tools/check_vectorized.py [--cc gcc]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import runpy
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTH = {"baseline": 16, "avx2": 32, "avx512": 64}
REPORT = re.compile(r"^(?P<file>[^:\s]+\.c):(?P<line>\d+):\d+: (?P<kind>optimized|missed): (?P<msg>.*)$")
VECTORIZED = re.compile(r"loop vectorized using (\d+) byte vectors")


def hot_loops() -> list[tuple[str, int]]:
    """(file relative to ROOT, line) of every ``for (`` in the kernel sources."""
    loops = []
    for path in sorted((ROOT / "csrc" / "kernels").glob("*.inc.c")):
        for lineno, text in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"\s*for \(", text) and "/* novec:" not in text:
                loops.append((path.relative_to(ROOT).as_posix(), lineno))
    return loops


def is_gcc(cc: str) -> bool:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    return "Free Software Foundation" in out and "clang" not in out.lower()


def report(cc: str, target: str, flags: list[str]) -> list[tuple[str, int, str, str]]:
    """GCC's vectorizer report for one target file: (file, line, kind, message)."""
    src = ROOT / "csrc" / "targets" / f"{target}.c"
    cmd = [cc, *flags, "-DPRM_VEC=0", f"-I{ROOT / 'csrc'}", "-fopt-info-vec-optimized-missed",
           "-c", str(src), "-o", os.devnull]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        sys.exit(f"check_vectorized: compiling {target} failed:\n{' '.join(cmd)}\n{proc.stderr}")
    rows = []
    for text in proc.stderr.splitlines():
        m = REPORT.match(text.strip())
        if m:
            file = Path(os.path.normpath(ROOT / m["file"])).relative_to(ROOT).as_posix()
            rows.append((file, int(m["line"]), m["kind"], m["msg"]))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cc", default=os.environ.get("CC", "gcc"), help="GCC to use (default: $CC or gcc)")
    args = ap.parse_args(argv)
    cc = shutil.which(args.cc)
    if cc is None or not is_gcc(cc):
        print(f"check_vectorized: skipped, no GCC found as {args.cc!r} (the report is GCC's)")
        return 0

    table = runpy.run_path(str(ROOT / "src" / "pyrmsprop" / "_targets.py"))
    targets = table["targets_for"](sysconfig.get_platform())
    loops = hot_loops()
    if not loops:
        print("check_vectorized: no `for (` loop found in csrc/kernels/*.inc.c")
        return 1

    failures = []
    counts: dict[tuple[str, int], dict[str, int]] = collections.defaultdict(dict)
    rows = []
    for target, (gcc_flags, _msvc, _macro) in targets.items():
        want = WIDTH[target]
        widths: dict[tuple[str, int], collections.Counter[int]] = collections.defaultdict(collections.Counter)
        missed: collections.Counter[tuple[str, int]] = collections.Counter()
        for file, line, kind, msg in report(cc, target, table["KERNEL_FLAGS_GCC"] + gcc_flags):
            m = VECTORIZED.search(msg)
            if kind == "optimized" and m:
                widths[file, line][int(m[1])] += 1
            elif kind == "missed" and msg.startswith("couldn't vectorize loop"):
                missed[file, line] += 1
        for loop in loops:
            seen = widths.get(loop, collections.Counter())
            best = max(seen, default=0)
            copies = seen[want]
            counts[loop][target] = copies
            rows.append((f"{loop[0]}:{loop[1]}", target, best, copies, missed[loop]))
            where = f"{loop[0]}:{loop[1]} [{target}]"
            if best != want:
                failures.append(f"{where}: widest vectors {best} bytes, expected {want}")
            if missed[loop]:
                failures.append(f"{where}: {missed[loop]} specialised copies not vectorized")
    # The copies need not number alike on every target: gcc merges identical
    # functions before it vectorizes (EMA, say, is the same code under several master
    # modes), differently per target; a copy that is not vectorized is still reported
    # ("couldn't vectorize", counted above), so none can hide.
    for loop, per_target in counts.items():
        if min(per_target.values(), default=0) == 0:
            failures.append(f"{loop[0]}:{loop[1]}: no full-width copy on some target {per_target}")

    name_w = max(len(r[0]) for r in rows)
    print(f"{'loop':<{name_w}}  {'target':<8}  {'vector bytes':>12}  {'copies':>6}  {'not vectorized':>14}")
    for name, target, best, copies, miss in rows:
        print(f"{name:<{name_w}}  {target:<8}  {best:>12}  {copies:>6}  {miss:>14}")
    if failures:
        print("\ncheck_vectorized: FAILED")
        for f in failures:
            print(f"  {f}")
        return 1
    print(f"\ncheck_vectorized: OK, {len(loops)} loops x {len(targets)} targets vectorized at full width")
    return 0


if __name__ == "__main__":
    sys.exit(main())
