#!/usr/bin/env bash
# Compile checks of the C core for the platforms that cannot run here (Windows x86-64 and
# ARM64, macOS x86-64 and arm64) and for aarch64 Linux, with warnings as errors; then a
# small C program (tools/ci/xc_smoke.c) linked with the Windows x86-64 objects runs under
# Wine and must give the Linux build's bits; built on Linux with dispatch.c compiled with
# __APPLE__ defined, it must apply macOS's AVX-512 rule.
#
# Measured on the shared 2-core machine, with other helpers' builds running:
#   cold: apt-get install of clang, lld, gcc-mingw-w64-x86-64, mingw-w64-x86-64-dev,
#         gcc-aarch64-linux-gnu, libc6-dev-arm64-cross 22 s, of wine64 18 s (measured by hand
#         before this script existed; lld is no longer asked for); then the checks with an
#         empty cache (making the Wine prefix adds ~18 s) 153 s  =>  about 3.5 min
#   warm (everything installed, Wine prefix in the cache): 117-165 s, of which the 42
#         compilations (2 at a time) take 100-147 s and the 4 smoke runs ~10 s
#   On the AMD EPYC (Zen 4 class, CPUID family 25 model 17) of 2026-12-06 the checks took
#   more than 600 s (timed out, alone on the machine: 19.5 CPU-minutes in 10 minutes),
#   with the no-FMA builds on every x86-64 platform; they now run once per compiler.
# Budget: TIMEOUT_INSTALL=900 s for apt, TIMEOUT_CHECKS=1500 s for the checks.
#
# What each platform proves (tools/ci/cross_compile.py has the details):
#   x86_64-linux-gnu gcc, clang        compiled (native reference; its objects run the smoke program)
#   aarch64-linux-gnu gcc              compiled against Debian's arm64 glibc (NEON baseline only)
#   x86_64-w64-mingw32 gcc             compiled, linked, run under Wine (Win32 threads, CPUID asm)
#   x86_64-w64-windows-gnu clang       compiled against MinGW-w64's headers
#   x86_64-pc-windows-msvc clang-cl    compiled in MSVC mode (_MSC_VER: __cpuidex/_xgetbv,
#                                      __forceinline, __restrict) with the table's MSVC flags;
#                                      dispatch/threads objects also run under Wine
#   aarch64-w64-windows-gnu clang,     compiled (Windows ARM64: Win32 threads, no cpuid)
#   aarch64-pc-windows-msvc clang-cl
#   x86_64-apple-macosx10.15 clang,    compiled to Mach-O with clang's Apple targets, so __APPLE__
#   arm64-apple-macosx11.0 clang       branches are the ones built; there is no macOS SDK here,
#                                      so the C library declarations are glibc's (x86-64, arm64):
#                                      this proves our code, not the SDK's headers; not linked.
# No Python headers for other platforms exist here: the Cython module is not cross-compiled.
#
# Env: PYRMSPROP_CI_CACHE (default /var/cache/pyrmsprop-ci): the Wine prefix lives in
# $PYRMSPROP_CI_CACHE/xcompile/, keyed by Wine's version.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TIMEOUT_INSTALL=${TIMEOUT_INSTALL:-900}
TIMEOUT_CHECKS=${TIMEOUT_CHECKS:-1500}

need=()
command -v clang >/dev/null || need+=(clang)
{ command -v llvm-nm && command -v llvm-objdump; } >/dev/null || need+=(llvm)
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64 mingw-w64-x86-64-dev)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
[ -x /usr/lib/wine/wine64 ] || need+=(wine64)
if [ ${#need[@]} -gt 0 ]; then
    echo "cross_compile: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout "$TIMEOUT_INSTALL" bash -c '
        apt-get -o DPkg::Lock::Timeout=600 update -qq &&
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@"' \
        apt "${need[@]}" >/tmp/pyrmsprop-xc-apt.log 2>&1 || {
        tail -20 /tmp/pyrmsprop-xc-apt.log
        echo "cross_compile: apt-get install failed"
        exit 1
    }
fi

timeout "$TIMEOUT_CHECKS" python3 "$here/cross_compile.py"
