"""Compile the C core for every platform pyrmsprop claims, with warnings as errors.

Run by tools/ci/cross_compile.sh (which installs the compilers first); see that file for
what is and is not proved.  Each (platform, file) pair is one compilation: dispatch.c and
threads.c with the macros setup.py defines for that platform, and each kernel target wrapper
csrc/targets/<name>.c with exactly the flags src/pyrmsprop/_targets.py gives that platform
(read from the table, never copied).  Each object is then inspected, so that a check cannot
pass by compiling the wrong preprocessor branch:

  - dispatch: x86 objects contain the cpuid and xgetbv instructions, arm64 ones neither;
    only the x86-64 macOS object holds the "not dispatched on macOS" note, only the arm64
    objects name the baseline "neon";
  - threads: Windows objects call CreateThread and name "Win32 threads" and never pthreads;
    the others call pthread_create;
  - x86 kernel objects built with -DPRM_DIVC_FMA=0 (no FMA where the source asks for
    one: prm_divc_* in csrc/prm_storage.h) contain no FMA instruction (no contraction,
    whatever the compiler);
  - the kernel files are compiled once per compiler, mode and architecture (KERNELS_AS
    names the two platforms that reuse another's: their files test no platform macro);
  - every object's undefined symbols are kernels of the table or on a short list of C
    library / pthread / kernel32 functions (a macOS object that needed a glibc-only symbol
    would fail here).

Then the Windows x86-64 objects are linked into tools/ci/xc_smoke.c's program (once all
built by MinGW-w64 gcc, once with dispatch.c and threads.c built by clang in MSVC mode, so
that the __cpuidex/_xgetbv intrinsics path runs), run under Wine, and their output compared
with the same program built for Linux: same targets detected, same bits for every case.  A
fourth build, for Linux with dispatch.c compiled with __APPLE__ defined, must leave AVX-512
undispatched with its note, and give the same bits.

Not proved here: anything about Apple's SDK headers or linker, MSVC itself (cl.exe) or the
Windows SDK's headers, Windows ARM64 or macOS at run time, and the Cython module (no Python
headers for those platforms).  Seen, not failed on: clang in MSVC mode with the table's MSVC
flags (no -fno-math-errno equivalent) calls the C library's sqrt/sqrtf per element in the
RMSprop and Adam kernels instead of vectorizing them; how cl.exe compiles them is unknown here.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
TABLE = runpy.run_path(str(ROOT / "src" / "pyrmsprop" / "_targets.py"))

# setup.py compiles dispatch.c/threads.c with Python's CFLAGS (-O3 -Wall -Wsign-compare on
# Linux) and the kernels with their own flags and no warning flags; here everything also
# gets -Wextra and -Werror (MSVC mode: /W4 /WX, stricter than setuptools' /W3).
WARN = ["-Wall", "-Wextra", "-Wsign-compare", "-Werror"]
CORE_GCC = ["-O3"]
MSVC_WARN = ["/W4", "/WX"]
# /Zl: no default-library directives, /GS-: no stack cookie, so that the objects link with
# MinGW's runtime for the Wine run; neither changes what is compiled.
CORE_MSVC = ["/O2", "/Zl", "/GS-"]

MINGW_INC = "/usr/share/mingw-w64/include"   # Debian's mingw-w64-common (arch-independent)
WINE = "/usr/lib/wine/wine64"


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


RES_INC = sh("clang", "-print-resource-dir").strip() + "/include"
NOSTD = ["-nostdinc", "-isystem", RES_INC]           # clang's own headers only, then:
GLIBC_X86 = ["-isystem", "/usr/include/x86_64-linux-gnu", "-isystem", "/usr/include"]
GLIBC_ARM = ["-isystem", "/usr/aarch64-linux-gnu/include"]
# clang in MSVC mode with MinGW's headers: the headers drop every __attribute__ unless
# __GNUC__ is defined, which breaks clang's own intrinsics headers, so __GNUC__ is set;
# the project's code tests _MSC_VER (or __clang__) before __GNUC__ everywhere, so this
# selects no other branch of ours.
MSVC_MINGW = ["/X", f"/imsvc{RES_INC}", f"/imsvc{MINGW_INC}", "/clang:-fgnuc-version=4.2.1"]
# MinGW's headers with __GNUC__ also redefine MSVC's __forceinline keyword, so dispatch.c
# (<stddef.h>, <stdint.h>, <intrin.h>) and the kernel files are built freestanding against
# clang's own headers (the ones clang-cl uses on Windows) plus, for the kernels, a <math.h>
# and a <string.h> written here with the ISO C prototypes of the three functions they call.
STANDIN = {
    "math.h": "double sqrt(double);\nfloat sqrtf(float);\n",
    "string.h": "#include <stddef.h>\nvoid *memcpy(void *, const void *, size_t);\n",
}
MSVC_FREE = ["/X", "/clang:-ffreestanding"]  # + f"/imsvc{standin dir}", added in plan()
# clang predefines __nonnull for Apple targets, which glibc's headers then misread.
DARWIN_FIX = ["-U__nonnull"]

# name, sysconfig platform (what setup.py sees), compiler mode, argv, extra flags for
# (dispatch.c, other files), x86?, windows?, darwin?
PLATFORMS = [
    ("x86_64-linux-gnu gcc", "linux-x86_64", "gcc", ["gcc"], ([], []), True, False, False),
    ("x86_64-linux-gnu clang", "linux-x86_64", "gcc", ["clang"], ([], []), True, False, False),
    ("aarch64-linux-gnu gcc", "linux-aarch64", "gcc", ["aarch64-linux-gnu-gcc"], ([], []),
     False, False, False),
    ("x86_64-w64-mingw32 gcc", "win-amd64", "gcc", ["x86_64-w64-mingw32-gcc"], ([], []),
     True, True, False),
    ("x86_64-w64-windows-gnu clang", "win-amd64", "gcc",
     ["clang", "--target=x86_64-w64-windows-gnu"], (NOSTD + ["-isystem", MINGW_INC],) * 2,
     True, True, False),
    ("x86_64-pc-windows-msvc clang-cl", "win-amd64", "msvc",
     ["clang", "--driver-mode=cl", "--target=x86_64-pc-windows-msvc"], (MSVC_FREE, MSVC_MINGW),
     True, True, False),
    ("aarch64-w64-windows-gnu clang", "win-arm64", "gcc",
     ["clang", "--target=aarch64-w64-windows-gnu"], (NOSTD + ["-isystem", MINGW_INC],) * 2,
     False, True, False),
    ("aarch64-pc-windows-msvc clang-cl", "win-arm64", "msvc",
     ["clang", "--driver-mode=cl", "--target=aarch64-pc-windows-msvc"], (MSVC_FREE, MSVC_MINGW),
     False, True, False),
    ("x86_64-apple-macosx10.15 clang", "macosx-10.15-x86_64", "gcc",
     ["clang", "--target=x86_64-apple-macosx10.15"], (NOSTD + DARWIN_FIX + GLIBC_X86,) * 2,
     True, False, True),
    ("arm64-apple-macosx11.0 clang", "macosx-11.0-arm64", "gcc",
     ["clang", "--target=arm64-apple-macosx11.0"], (NOSTD + DARWIN_FIX + GLIBC_ARM,) * 2,
     False, False, True),
]

LIBC = {"malloc", "free", "memcpy", "memset", "memmove", "sqrt", "sqrtf", "pthread_atfork",
        "pthread_attr_init", "pthread_attr_destroy", "pthread_attr_setdetachstate",
        "pthread_create", "pthread_mutex_init", "pthread_mutex_lock", "pthread_mutex_unlock",
        "pthread_cond_init", "pthread_cond_wait", "pthread_cond_broadcast", "sched_yield",
        "sched_getcpu"}
KERNEL32 = {"CreateThread", "CloseHandle", "AcquireSRWLockExclusive", "ReleaseSRWLockExclusive",
            "SleepConditionVariableSRW", "WakeAllConditionVariable", "SwitchToThread",
            "GetCurrentProcessorNumber"}
MSVC_RT = {"_fltused", "__chkstk"}
# the stack probes of Windows toolchains (stage.inc.c's buffers take more than a page),
# in libgcc / compiler-rt
WIN_GNU_RT = {"__chkstk", "___chkstk_ms", "__chkstk_ms"}
# dispatch.c's, used by threads.c
CORE = {"prm_table", "prm_table_for", "prm_table_of", "prm_apply", "prm_split_elems",
        "prm_slot_size",
        # the 8-bit maps and quantizer cells (csrc/prm_qmap.h), defined in dispatch.c
        "prm_q8_map_signed", "prm_q8_map_unsigned", "prm_q8_cells_signed",
        "prm_q8_cells_unsigned",
        # the linker's own: gcc -fPIC reaches those extern tables through the GOT
        "_GLOBAL_OFFSET_TABLE_"}
GNU_RT = re.compile(r"__stack_chk_(guard|fail)$|__aarch64_(cas|swp|ld[a-z]+)\d+_[a-z_]+$")
WIN_CRT = {"memcpy", "memset", "memmove", "sqrt", "sqrtf", "malloc", "free"}
# each target file's kernel table (csrc/kernels/all.inc.c), named by dispatch.c
KERNEL_RE = re.compile(r"prm_table_(baseline|avx2|avx512)$")


class Failure(Exception):
    pass


def compile_one(job):
    name, argv, out, text_checks = job
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0 or r.stderr.strip():
        return name, False, f"$ {' '.join(argv)}\n{r.stdout}{r.stderr}"
    try:
        for check in text_checks:
            check(out)
    except Failure as e:
        return name, False, str(e)
    return name, True, ""


def undefined(obj: Path) -> set[str]:
    out = sh("llvm-nm", "--undefined-only", "--format=just-symbols", str(obj))
    return {s.strip() for s in out.split() if s.strip()}


def objcheck(kind: str, x86: bool, win: bool, darwin: bool, msvc: bool, targets):
    """The checks on one object: that the platform's branch is the one compiled."""

    def check(obj: Path) -> None:
        data = obj.read_bytes()
        und = undefined(obj)
        allowed_kernels = set(targets)
        for sym in und:
            s = sym
            if darwin and s.startswith("_"):
                s = s[1:]
            if s.startswith("__imp_"):
                s = s[len("__imp_"):]
            m = KERNEL_RE.match(s)
            if m and m.group(1) in allowed_kernels:
                continue
            if s in LIBC and not win:
                continue
            if s in KERNEL32 and win:
                continue
            if s in WIN_CRT and win:
                continue
            if s in CORE or (GNU_RT.match(s) and not msvc):
                continue
            if s in MSVC_RT and msvc:
                continue
            if s in WIN_GNU_RT and win and not msvc:
                continue
            raise Failure(f"{obj.name}: unexpected undefined symbol {sym!r}")
        if kind == "kernel_nofma" and x86:
            # no FMA contraction on any compiler (every target must round alike)
            fma = re.search(r"\bvf(n?)m(add|sub)\w*", sh("llvm-objdump", "-d", str(obj)))
            if fma:
                raise Failure(f"{obj.name}: FMA instruction {fma.group(0)} (contraction)")
        if kind == "dispatch":
            dis = sh("llvm-objdump", "-d", str(obj))
            has_cpuid = re.search(r"\bcpuid\b", dis) is not None
            has_xgetbv = re.search(r"\bxgetbv\b", dis) is not None
            if x86 and not (has_cpuid and has_xgetbv):
                raise Failure(f"{obj.name}: no cpuid/xgetbv instruction in an x86 dispatch object")
            if not x86 and (has_cpuid or has_xgetbv):
                raise Failure(f"{obj.name}: cpuid/xgetbv in a non-x86 object")
            apple_note = b"AVX-512 is not dispatched on macOS" in data
            if apple_note != (darwin and x86):
                raise Failure(f"{obj.name}: the macOS AVX-512 note is {'' if apple_note else 'not '}"
                              "in the object")
            if (b"neon\0" in data) == x86:
                raise Failure(f"{obj.name}: the baseline is {'not ' if x86 else ''}named neon")
        if kind == "threads":
            names = {s.lstrip("_").replace("imp_", "") for s in und}
            if win:
                if b"Win32 threads" not in data or "CreateThread" not in names:
                    raise Failure(f"{obj.name}: not the Win32 threads branch")
                if any("pthread" in s for s in und):
                    raise Failure(f"{obj.name}: a Windows object calls pthreads")
            elif b"(pthreads)" not in data or "pthread_create" not in names:
                raise Failure(f"{obj.name}: not the pthreads branch")

    return check


NOFMA_ON = ("x86_64-linux-gnu gcc", "x86_64-linux-gnu clang", "x86_64-pc-windows-msvc clang-cl")
# Platforms whose kernel files are not compiled again: the x86-64 kernel files test no
# platform macro (only _MSC_VER, for MSVC mode), so clang's Windows-GNU and macOS x86-64
# builds of them are x86_64-linux-gnu clang's build with another object format: the same
# compiler front end, flags and code generator.  dispatch.c and threads.c, which do
# test the platform, are still compiled and checked for them.  (Three compilations of
# the largest files each: about a third of this script's time on the 2-vCPU Zen 3.)
KERNELS_AS = {"x86_64-w64-windows-gnu clang": "x86_64-linux-gnu clang",
              "x86_64-apple-macosx10.15 clang": "x86_64-linux-gnu clang"}


def plan(outdir: Path):
    """(platform, file) compilations, and the objects of each platform."""
    jobs, objs = [], {}
    for name, plat, mode, argv, (extra_d, extra), x86, win, darwin in PLATFORMS:
        targets = TABLE["targets_for"](plat)
        if TABLE["is_x86_64"](plat) != x86:
            raise SystemExit(f"cross_compile: {plat}: _targets.py and this script disagree on x86")
        msvc = mode == "msvc"
        d = outdir / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        d.mkdir(parents=True)
        if msvc:
            (d / "include").mkdir()
            for h, text in STANDIN.items():
                (d / "include" / h).write_text(text)
            extra_d = [*extra_d, f"/imsvc{d / 'include'}"]
            extra_k = extra_d
        else:
            extra_k = extra
        macros = [m for (_g, _m, m) in targets.values() if m]
        objs[name] = {}
        ext = ".obj" if msvc else ".o"
        for src in ("dispatch", "threads"):
            out = d / (src + ext)
            if msvc:
                args = [*argv, *(extra_d if src == "dispatch" else extra), *CORE_MSVC, *MSVC_WARN,
                        f"/I{CSRC}", *[f"/D{m}=1" for m in macros], "/c", f"/Fo{out}",
                        "--", str(CSRC / f"{src}.c")]
            else:
                args = [*argv, *(extra_d if src == "dispatch" else extra), *CORE_GCC, *WARN,
                        f"-I{CSRC}", *[f"-D{m}=1" for m in macros], "-c",
                        str(CSRC / f"{src}.c"), "-o", str(out)]
            jobs.append((f"{name}: {src}.c", args, out,
                         [objcheck(src, x86, win, darwin, msvc, targets)]))
            objs[name][src] = out
        for tgt, (gcc_flags, msvc_flags, _macro) in targets.items():
            if name in KERNELS_AS:
                continue
            out = d / (tgt + ext)
            src = CSRC / "targets" / f"{tgt}.c"
            if msvc:
                args = [*argv, *extra_k, *TABLE["KERNEL_FLAGS_MSVC"], *msvc_flags, "/Zl", "/GS-",
                        *MSVC_WARN, "/c", f"/Fo{out}", "--", str(src)]
            else:
                # setup.py's build_clib: KERNEL_FLAGS_GCC + the target's flags + -fPIC
                args = [*argv, *extra, *TABLE["KERNEL_FLAGS_GCC"], *gcc_flags, "-fPIC", *WARN,
                        "-c", str(src), "-o", str(out)]
            jobs.append((f"{name}: targets/{tgt}.c", args, out,
                         [objcheck("kernel", x86, win, darwin, msvc, targets)]))
            objs[name][tgt] = out
            # the no-FMA builds once per compiler (gcc, clang, clang in MSVC mode):
            # contraction is the compiler's, not the platform's, and each is a whole
            # extra compile of the largest files
            if x86 and tgt != "baseline" and name in NOFMA_ON:
                nofma = d / (tgt + "_nofma" + ext)
                extra_args = ["/DPRM_DIVC_FMA=0"] if msvc else ["-DPRM_DIVC_FMA=0"]
                args_n = [str(nofma) if a == str(out) else f"/Fo{nofma}" if a == f"/Fo{out}" else a
                          for a in args]
                jobs.append((f"{name}: targets/{tgt}.c -DPRM_DIVC_FMA=0",
                             [*args_n[:len(argv)], *extra_args, *args_n[len(argv):]], nofma,
                             [objcheck("kernel_nofma", x86, win, darwin, msvc, targets)]))
    return jobs, objs


def run_smoke(objs, outdir: Path, cache: Path) -> list[str]:
    """Link xc_smoke.c with the Linux and the two Windows x86-64 builds; run; compare."""
    smoke = ROOT / "tools" / "ci" / "xc_smoke.c"
    flags = ["-std=c99", "-O2", "-ffp-contract=off", *WARN, f"-I{CSRC}"]
    linux = objs["x86_64-linux-gnu gcc"]
    exe_l = outdir / "smoke-linux"
    subprocess.run(["gcc", *flags, str(smoke), *map(str, linux.values()), "-lm", "-pthread",
                    "-o", str(exe_l)], check=True)
    runs = {"linux (gcc, pthreads)": [str(exe_l)]}
    # macOS's AVX-512 rule, run: dispatch.c built with __APPLE__ defined (it includes only
    # <stddef.h> and <stdint.h>, which ignore it), linked with the Linux objects.
    apple_d = outdir / "dispatch-apple.o"
    macros = [f"-D{m}=1" for (_g, _m, m) in TABLE["targets_for"]("linux-x86_64").values() if m]
    subprocess.run(["gcc", *CORE_GCC, *WARN, "-D__APPLE__=1", *macros, f"-I{CSRC}", "-c",
                    str(CSRC / "dispatch.c"), "-o", str(apple_d)], check=True)
    exe_a = outdir / "smoke-apple-rule"
    subprocess.run(["gcc", *flags, str(smoke), str(apple_d),
                    *[str(v) for k, v in linux.items() if k != "dispatch"], "-lm", "-pthread",
                    "-o", str(exe_a)], check=True)
    runs["linux, dispatch.c with __APPLE__"] = [str(exe_a)]
    # The MSVC-mode run takes dispatch and threads from clang-cl (the __cpuidex/_xgetbv and
    # Win32 branches as an MSVC-compatible compiler builds them) and the kernels from MinGW:
    # clang-cl's kernel objects call the C library's sqrt per element (no -fno-math-errno
    # among the MSVC flags), and MinGW's sqrt is x87 code whose rounding follows each
    # thread's x87 precision, which Wine sets differently for the main and the new threads:
    # an artefact of linking with MinGW's runtime, not something a real MSVC build has.
    mingw, msvc = objs["x86_64-w64-mingw32 gcc"], objs["x86_64-pc-windows-msvc clang-cl"]
    mixed = {k: (msvc[k] if k in ("dispatch", "threads") else v) for k, v in mingw.items()}
    for label, group in (("windows (mingw-w64 gcc)", mingw),
                         ("windows (clang MSVC mode: dispatch, threads)", mixed)):
        exe = outdir / f"smoke-{len(runs)}.exe"
        subprocess.run(["x86_64-w64-mingw32-gcc", *flags, str(smoke), *map(str, group.values()),
                        "-o", str(exe)], check=True)
        runs[label] = [WINE, str(exe)]
    wine_version = sh(WINE, "--version").strip()
    env = dict(os.environ, WINEDEBUG="-all",
               WINEPREFIX=str(cache / f"wineprefix-{re.sub(r'[^A-Za-z0-9.-]', '_', wine_version)}"))
    outputs = {}
    for label, argv in runs.items():
        t0 = time.monotonic()
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        lines = r.stdout.splitlines()
        shown = [x for x in lines if x.startswith(("targets:", "note:", "threads:", "compiler:", "smoke:"))]
        print(f"  smoke {label}: exit {r.returncode}, {time.monotonic() - t0:.1f} s; " + "; ".join(shown))
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            raise Failure(f"smoke program failed: {label}")
        outputs[label] = lines
    # wait for the Wine server (which lingers a few seconds) to end before returning
    subprocess.run([WINE.replace("wine64", "wineserver64"), "-w"], env=env, timeout=60)
    ref_label = "linux (gcc, pthreads)"
    def keyed(lines):  # the targets line and each case's hash (runs= counts the targets run)
        return [re.sub(r" runs=\d+", "", x) for x in lines if x.startswith(("targets:", "case "))]

    ref = keyed(outputs[ref_label])
    ncase = sum(x.startswith("case ") for x in ref)
    if ncase != 20:
        raise Failure(f"smoke: {ncase} cases, expected 20")
    apple = "linux, dispatch.c with __APPLE__"
    targets = {label: next(x for x in lines if x.startswith("targets:")) for label, lines in outputs.items()}
    if ("avx512=compiled" not in targets[apple] or "avx512=supported" in targets[apple]
            or "note: AVX-512 is not dispatched on macOS" not in outputs[apple]):
        raise Failure(f"smoke: the macOS rule: {targets[apple]!r}, {outputs[apple][1]!r}")
    if "avx2=supported" in targets[ref_label] and "best=avx2" not in targets[apple]:
        raise Failure(f"smoke: the macOS rule: {targets[apple]!r}")
    if "avx512=supported" not in targets[ref_label]:
        print("  note: this CPU has no AVX-512, so the macOS rule changes nothing here")
    for label, lines in outputs.items():
        mine = keyed(lines)
        if label == apple:
            mine, ref_cmp = mine[1:], ref[1:]     # the targets line differs, as it must
        else:
            ref_cmp = ref
        if mine != ref_cmp:
            diff = [f"  {a!r} != {b!r}" for a, b in zip(mine, ref_cmp) if a != b]
            raise Failure(f"smoke: {label} differs from {ref_label}:\n" + "\n".join(diff[:10]))
        want = "Win32 threads" if label.startswith("windows") else "(pthreads)"
        if not any(x.startswith("threads:") and want in x for x in lines):
            raise Failure(f"smoke: {label} does not use {want}")
    return list(outputs)


def main() -> int:
    cache = Path(os.environ.get("PYRMSPROP_CI_CACHE", "/var/cache/pyrmsprop-ci")) / "xcompile"
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pyrmsprop-xc-") as tmp:
        outdir = Path(tmp)
        jobs, objs = plan(outdir)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
            results = list(ex.map(compile_one, jobs))
        passed = failed = 0
        for name, ok, msg in results:
            print(f"  {'ok  ' if ok else 'FAIL'} {name}")
            if ok:
                passed += 1
            else:
                failed += 1
                print("\n".join("       " + x for x in msg.splitlines()))
        print(f"cross_compile: compiled in {time.monotonic() - t0:.0f} s")
        smoke_ok = smoke_fail = 0
        if failed == 0:
            try:
                labels = run_smoke(objs, outdir, cache)
                smoke_ok = len(labels)
            except (Failure, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                print(f"FAIL {e}")
                smoke_fail = 1
        else:
            print("cross_compile: smoke runs skipped: compilations failed")
    print(f"cross_compile: {passed} passed, {failed} failed (platform, file) compilations on "
          f"{len(PLATFORMS)} platforms; smoke runs: {smoke_ok} passed, {smoke_fail} failed "
          f"({time.monotonic() - t0:.0f} s)")
    print(f"cross_compile: {passed + smoke_ok} passed, {failed + smoke_fail} failed")
    return 0 if failed == 0 and smoke_fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
