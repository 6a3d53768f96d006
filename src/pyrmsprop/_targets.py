"""The SIMD target table: which kernel builds exist for a platform, and their flags.

One table, read by ``setup.py`` (to compile ``csrc/targets/<name>.c`` once per
target) and by :func:`pyrmsprop.show_config` (to report the flags).  Targets are
chosen from the platform being built for, never from the build machine's CPU.
"""

from __future__ import annotations

# Flags every kernel file gets: optimise, let sqrt vectorize (no errno), and no
# FMA contraction, so that every target rounds exactly alike.  Never -ffast-math.
KERNEL_FLAGS_GCC = ["-std=c99", "-O3", "-fno-math-errno", "-ffp-contract=off"]
KERNEL_FLAGS_MSVC = ["/O2", "/fp:precise"]

# name -> (gcc/clang flags, msvc flags, macro telling dispatch.c it was built)
X86_TARGETS = {
    "baseline": ([], [], None),
    "avx2": (["-mavx2", "-mfma"], ["/arch:AVX2"], "PRM_HAVE_AVX2"),
    "avx512": (
        ["-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq", "-mavx2", "-mfma"],
        ["/arch:AVX512"],
        "PRM_HAVE_AVX512",
    ),
}
OTHER_TARGETS = {"baseline": ([], [], None)}


def is_x86_64(platform: str) -> bool:
    """True for a ``sysconfig.get_platform()`` string of an x86-64 target."""
    p = platform.lower()
    return p.endswith(("x86_64", "amd64")) or p == "win-amd64"


def targets_for(platform: str) -> dict[str, tuple[list[str], list[str], str | None]]:
    """The targets built for ``platform`` (e.g. ``linux-x86_64``, ``macosx-11.0-arm64``)."""
    return X86_TARGETS if is_x86_64(platform) else OTHER_TARGETS
