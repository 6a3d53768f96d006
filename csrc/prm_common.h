/* prm_common.h -- macros shared by the kernel sources (no code of its own). */
#ifndef PRM_COMMON_H
#define PRM_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_MSC_VER)
#define PRM_RESTRICT __restrict
#define PRM_INLINE static __forceinline
#elif defined(__GNUC__) || defined(__clang__)
#define PRM_RESTRICT __restrict__
#define PRM_INLINE static inline __attribute__((always_inline))
#else
#define PRM_RESTRICT
#define PRM_INLINE static inline
#endif

/* No FMA contraction in any kernel, whatever the compiler's default, so that every
 * target rounds exactly alike.  GCC gets -ffp-contract=off (it ignores these pragmas);
 * clang in MSVC mode (clang-cl) maps /fp:precise to contraction within expressions, and
 * MSVC's /fp:precise contracts too before Visual Studio 2022 17.0. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(_MSC_VER)
#pragma fp_contract(off)
#endif

/* ---- blocks and software prefetch -------------------------------------------------
 * Every loop runs in blocks of PRM_PF_BLOCK bytes of its arrays, and before each
 * block, in the AVX2 and AVX-512 builds, asks for the block PRM_PF_AHEAD bytes
 * further on in each array it streams.  Large arrays come from memory, and the
 * hardware prefetcher alone keeps too few lines in flight for one core.  On a
 * Sapphire Rapids-class Xeon, `python -m pyrmsprop.bench`, float32 Adam over 6.4e7
 * elements went from 1.01 to 0.94 ns/elem with one thread and from 0.545 to 0.513
 * with two, unchanged in cache (a C loop outside the package tried distances of
 * 1-8 KiB and blocks of 256 B-4 KiB: 4 KiB ahead in 512 B blocks was best).  On a
 * Zen 5-class EPYC the same builds with and without prefetches (and 2 or 8 KiB
 * ahead), interleaved in one process, differed by less than that machine's noise
 * (+-5%, 30 repetitions).  Not in the SSE2 build: with 16-byte vectors the
 * prefetches are a larger share of the work, and in cache they made float32 EMA and
 * the float64 memory-only loop 40-65% slower there.  Prefetches never change a
 * result.  Without them (SSE2, ARM: not measured) a block is the whole call and
 * PRM_PREFETCH does nothing.  To measure other choices, build with
 * PYRMSPROP_EXTRA_CFLAGS="-DPRM_PF_OFF" (no prefetch), "-DPRM_PF_AHEAD=2048",
 * "-DPRM_PF_BLOCK=1024" or (gcc, clang) "-DPRM_PF_LOCALITY=2" (prefetcht1).
 *
 *     PRM_BLOCKS(i0, len, n, T) {           (i0 = 0, block, 2*block, ...; len <= block)
 *         PRM_PREFETCH(p + i0); ...
 *         for (ptrdiff_t i = i0; i < i0 + len; i++) ...
 *     }                                                                          */
#if (defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)) && \
    defined(__AVX2__) && !defined(PRM_PF_OFF)
#ifndef PRM_PF_AHEAD
#define PRM_PF_AHEAD 4096
#endif
#ifndef PRM_PF_BLOCK
#define PRM_PF_BLOCK 512
#endif
#if defined(_MSC_VER) && !defined(__clang__)
#include <xmmintrin.h>
#define PRM_PREFETCH_LINE(addr) _mm_prefetch((const char *)(addr), _MM_HINT_T0)
#else
#ifndef PRM_PF_LOCALITY
#define PRM_PF_LOCALITY 3
#endif
#define PRM_PREFETCH_LINE(addr) __builtin_prefetch((const void *)(addr), 1, PRM_PF_LOCALITY)
#endif
/* The block PRM_PF_AHEAD bytes past a, line by line; integer arithmetic, since that
 * address may lie past the array's end (a prefetch never faults). */
#define PRM_PREFETCH(a) prm_prefetch_block((const void *)(a))
PRM_INLINE void prm_prefetch_block(const void *a)
{
    const uintptr_t at = (uintptr_t)a + PRM_PF_AHEAD;
    for (int k = 0; k < PRM_PF_BLOCK; k += 64) PRM_PREFETCH_LINE((const void *)(at + (uintptr_t)k));
}
#define PRM_BLOCK_ELEMS(T) ((ptrdiff_t)(PRM_PF_BLOCK / sizeof(T)))
#else
#define PRM_PREFETCH(a) ((void)0)
#define PRM_BLOCK_ELEMS(T) PTRDIFF_MAX
#endif
#define PRM_BLOCKS(i0, len, n, T)                                                         \
    for (ptrdiff_t i0 = 0, len = 0;                                                       \
         (len = (n) - i0 < PRM_BLOCK_ELEMS(T) ? (n) - i0 : PRM_BLOCK_ELEMS(T)) > 0; i0 += len)

#define PRM_CAT_(a, b) a##b
#define PRM_CAT(a, b) PRM_CAT_(a, b)
#define PRM_CAT3(a, b, c) PRM_CAT(PRM_CAT(a, b), c)

/* Exported kernel name: prm_<rule>_<dtype>_<target>, e.g. prm_adam_f32_avx2. */
#define PRM_FN(rule) PRM_CAT3(PRM_CAT3(prm_, rule, _), PRM_CAT3(PRM_SFX, _, PRM_TARGET), )
/* A kernel's other forms (prm_<rule>_<how>_<dtype>_<target>: staged, vec). */
#define PRM_FN_AS(rule, how) \
    PRM_CAT3(PRM_CAT3(prm_, rule, PRM_CAT3(_, how, _)), PRM_CAT3(PRM_SFX, _, PRM_TARGET), )
/* File-local helper name, distinct per dtype inside one target file. */
#define PRM_LOCAL(name) PRM_CAT3(name, _, PRM_SFX)

/* Option sets: an exported kernel switches on its flags once and calls the
 * always-inlined loop with each flag as a literal 0/1, so the compiler emits one
 * specialised, vectorised loop per option set and no test runs inside a loop. */
#define PRM_BIT(k, b) (((k) >> (b)) & 1)
#define PRM_CASE(k, CALL) \
    case k: CALL(PRM_BIT(k, 0), PRM_BIT(k, 1), PRM_BIT(k, 2), PRM_BIT(k, 3), PRM_BIT(k, 4)); break;
#define PRM_CASES8(k, CALL) \
    PRM_CASE(k + 0, CALL) PRM_CASE(k + 1, CALL) PRM_CASE(k + 2, CALL) PRM_CASE(k + 3, CALL) \
    PRM_CASE(k + 4, CALL) PRM_CASE(k + 5, CALL) PRM_CASE(k + 6, CALL) PRM_CASE(k + 7, CALL)
#define PRM_SWITCH16(flags, CALL) \
    switch ((flags) & 15) { PRM_CASES8(0, CALL) PRM_CASES8(8, CALL) }
#define PRM_SWITCH32(flags, CALL) \
    switch ((flags) & 31) { PRM_CASES8(0, CALL) PRM_CASES8(8, CALL) PRM_CASES8(16, CALL) PRM_CASES8(24, CALL) }

#endif /* PRM_COMMON_H */
