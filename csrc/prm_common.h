/* prm_common.h -- macros shared by the kernel sources (no code of its own). */
#ifndef PRM_COMMON_H
#define PRM_COMMON_H

#include <math.h>
#include <stddef.h>

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

#define PRM_CAT_(a, b) a##b
#define PRM_CAT(a, b) PRM_CAT_(a, b)
#define PRM_CAT3(a, b, c) PRM_CAT(PRM_CAT(a, b), c)

/* Exported kernel name: prm_<rule>_<dtype>_<target>, e.g. prm_adam_f32_avx2. */
#define PRM_FN(rule) PRM_CAT3(PRM_CAT3(prm_, rule, _), PRM_CAT3(PRM_SFX, _, PRM_TARGET), )
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
