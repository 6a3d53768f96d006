/* prm_storage.h -- the storage types of the kernels' arrays: loading an element as
 * the compute type (float32, or float64 for float64 arrays) and storing a computed
 * value rounded once.  Integer code, branch-free (selects), so that every loop
 * vectorizes and every SIMD target, compiler and thread count gives the same bits.
 * It is the definition of the conversions: where a CPU instruction is faster
 * (AVX-512 BF16's vcvtne2ps2bf16, F16C), stage.inc.c uses it only for the values it
 * converts exactly as this code does, and this code for the others (BF16 treats
 * float32 subnormal inputs as zero).  float16's subnormal range uses a
 * few float operations whose results are normal numbers (so flush-to-zero and
 * denormals-are-zero cannot change them; the one that rounds, in prm_round_f16,
 * rounds as the kernels' arithmetic does, to nearest even).
 *
 *   bfloat16  the top half of a float32; to nearest even: add 0x7fff plus the kept
 *             half's lowest bit, keep the top half (subnormals round the same way,
 *             overflow carries into Inf).  NaN becomes sign | 0x7fc0, as ml_dtypes.
 *   float16   IEEE binary16; to nearest even in the normal and the subnormal range,
 *             from 65520 (the tie above 65504, the largest half) on to Inf; NaN keeps
 *             its sign and top 10 payload bits (0x7c01 when those are zero), as
 *             numpy's float32 -> float16 cast.
 *   stochastic rounding (32 random bits r): add the low bits of r to the bits that
 *             are dropped, then truncate; a value rounds away from zero with
 *             probability (dropped bits) / 2^(their number), so the mean is exact.
 *
 * prm_bits() gives an element's random bits: a counter-based generator, the key of
 * (seed, step, tensor, array) mixed with the element's index in its tensor, so the
 * bits never depend on how a call is cut into chunks or threads. */
#ifndef PRM_STORAGE_H
#define PRM_STORAGE_H

#include <stdint.h>
#include <string.h>

PRM_INLINE uint32_t prm_u32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

PRM_INLINE float prm_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- bfloat16 ------------------------------------------------------------------ */
PRM_INLINE float prm_load_bf16(uint16_t h) { return prm_f32((uint32_t)h << 16); }

/* The NaN of a float32's sign, and the select of it, in 32-bit lanes: the one
 * narrowing to 16 bits comes last (a select of 16-bit values made gcc narrow the
 * compare masks too: twice the packing work). */
PRM_INLINE uint32_t prm_bf16_nan(uint32_t u) { return ((u >> 16) & 0x8000u) | 0x7fc0u; }

PRM_INLINE uint16_t prm_bf16_or_nan(uint32_t u, uint32_t r)
{
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? prm_bf16_nan(u) : r);
}

PRM_INLINE uint16_t prm_round_bf16(float f)
{
    const uint32_t u = prm_u32(f);
    return prm_bf16_or_nan(u, (u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

PRM_INLINE uint16_t prm_sround_bf16(float f, uint32_t bits)
{
    const uint32_t u = prm_u32(f);
    return prm_bf16_or_nan(u, (u + (bits & 0xffffu)) >> 16);
}

/* ---- selects on bits -------------------------------------------------------------
 * Written with masks rather than ?: : gcc does not if-convert chains of selects, nor
 * (without AVX-512's masks) selects between float expressions it would have to
 * compute speculatively, and the loop then does not vectorize. */
PRM_INLINE uint32_t prm_mask(int c) { return (uint32_t)0 - (uint32_t)(c != 0); }
PRM_INLINE uint32_t prm_pick(uint32_t mask, uint32_t a, uint32_t b) { return (a & mask) | (b & ~mask); }
/* c ? a : b for floats, both computed */
PRM_INLINE float prm_sel(int c, float a, float b)
{
    return prm_f32(prm_pick(prm_mask(c), prm_u32(a), prm_u32(b)));
}

/* ---- division by a loop constant --------------------------------------------------
 * prm_divc_*(x, c, y): x / c rounded to nearest, for a divisor c the same for the
 * whole loop and y = 1/c (rounded to nearest, computed once).  With an FMA
 * instruction it takes a multiply and four FMAs instead of a divide (on a Sapphire
 * Rapids-class Xeon, 16 float32 divides occupy the divider for about 10 cycles): q0 =
 * x*y is within 2 units in the last place of x/c; one correction q1 = q0 + (x - q0*c)*y
 * (the remainder exact in an FMA) is within one; by Markstein's theorem (P. Markstein,
 * IBM J. Res. Dev. 34(1), 1990: if y is 1/c rounded to nearest and q is within one
 * unit of x/c, q + (x - q*c)*y rounded to nearest is x/c rounded to nearest) the
 * second correction q2 is the correctly rounded quotient, the bits of a division.
 * The domain: c in [2^-27, 1] (Adam's sqrt(1 - beta2^t) for beta2 in [0, 1)) and x
 * +0, +Inf, NaN or a positive normal number from 2^-75 up to 2^64 (every square root
 * of a float32; wider for float64), so that no intermediate underflows or
 * overflows; outside the finite ones q0 itself is the quotient (Inf*y = Inf, the NaN
 * of x).  tests/test_kernels.py checks every significand of x in four binades
 * against a division, for divisors of several beta2 and steps, on every target.
 * Without an FMA instruction (the SSE2 build, MSVC) it divides: the same bits. */
#ifndef PRM_DIVC_FMA   /* -DPRM_DIVC_FMA=0: divide (tools/ci/cross_compile.py) */
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define PRM_DIVC_FMA 1
#else
#define PRM_DIVC_FMA 0
#endif
#endif

PRM_INLINE float prm_divc_f32(float x, float c, float y)
{
#if PRM_DIVC_FMA
    const float q0 = x * y;
    const float q1 = __builtin_fmaf(__builtin_fmaf(-q0, c, x), y, q0);
    const float q2 = __builtin_fmaf(__builtin_fmaf(-q1, c, x), y, q1);
    return prm_sel(prm_u32(x) < 0x7f800000u, q2, q0);
#else
    (void)y;
    return x / c;
#endif
}

PRM_INLINE double prm_divc_f64(double x, double c, double y)
{
#if PRM_DIVC_FMA
    uint64_t u, a, b, m;
    double r;
    const double q0 = x * y;
    const double q1 = __builtin_fma(__builtin_fma(-q0, c, x), y, q0);
    const double q2 = __builtin_fma(__builtin_fma(-q1, c, x), y, q1);
    memcpy(&u, &x, sizeof u);
    memcpy(&a, &q2, sizeof a);
    memcpy(&b, &q0, sizeof b);
    m = (uint64_t)0 - (uint64_t)(u < 0x7ff0000000000000u);
    a = (a & m) | (b & ~m);
    memcpy(&r, &a, sizeof r);
    return r;
#else
    (void)y;
    return x / c;
#endif
}

/* ---- float16 ------------------------------------------------------------------- */

PRM_INLINE float prm_load_f16(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (uint32_t)(h >> 10) & 0x1fu, m = (uint32_t)h & 0x3ffu;
    const uint32_t normal = ((e + 112u) << 23) | (m << 13);
    const uint32_t special = 0x7f800000u | (m << 13);
    /* subnormal: m * 2^-24 = (2^-14 + m * 2^-24) - 2^-14, exact in float32: the
     * difference of two floats, no int-to-float conversion (which gcc does not
     * if-convert) */
    const uint32_t sub = prm_u32(prm_f32(0x38800000u | (m << 13)) - 6.103515625e-05f);
    return prm_f32(sign | prm_pick(prm_mask(e == 31u), special,
                                   prm_pick(prm_mask(e == 0u), sub, normal)));
}

/* float16 bits of |f|: the float32 bits a (sign cleared) of the normal-range result
 * `normal` and the subnormal-range one `sub`, with Inf and NaN: shared by both
 * roundings.  NaN keeps its top 10 payload bits (0x7c01 when those are zero). */
PRM_INLINE uint16_t prm_f16_finish(uint32_t u, uint32_t a, uint32_t normal, uint32_t sub)
{
    const uint32_t top = (a >> 13) & 0x3ffu;
    const uint32_t nan = 0x7c00u | top | (prm_mask(top == 0u) & 1u);
    uint32_t r = prm_pick(prm_mask(a >= 0x38800000u), normal, sub);
    r = prm_pick(prm_mask(a >= 0x47800000u), 0x7c00u, r);
    r = prm_pick(prm_mask(a > 0x7f800000u), nan, r);
    return (uint16_t)(((u >> 16) & 0x8000u) | r);
}

PRM_INLINE uint16_t prm_round_f16(float f)
{
    const uint32_t u = prm_u32(f), a = u & 0x7fffffffu;
    const uint32_t rb = a - 0x38000000u;            /* exponent rebiased 127 -> 15 */
    const uint32_t normal = (rb + 0x0fffu + ((rb >> 13) & 1u)) >> 13;
    /* subnormal (|f| < 2^-14): |f| + 0.5 rounds at 2^-24, the float16 subnormals'
     * step, to nearest even; its bits minus those of 0.5 are the float16 bits.  A
     * float32 subnormal |f| rounds to 0 either way, so flush-to-zero or
     * denormals-are-zero cannot change the result. */
    const uint32_t sub = prm_u32(prm_f32(a) + 0.5f) - 0x3f000000u;
    return prm_f16_finish(u, a, normal, sub);
}

/* Stochastic: the subnormal range as a fixed-point number of 2^-37 units (|f| *
 * 2^37, exact but for the bits below 2^-37, which are dropped: a bias under 2^-13
 * of the step 2^-24), plus 13 random bits, over 2^13. */
PRM_INLINE uint16_t prm_sround_f16(float f, uint32_t bits)
{
    const uint32_t u = prm_u32(f), a = u & 0x7fffffffu;
    const uint32_t rb = a - 0x38000000u;
    const uint32_t normal = (rb + (bits & 0x1fffu)) >> 13;
    /* at most 2^-14 (NaN too), compared as integers: a float compare may trap and
     * gcc then does not if-convert it */
    const float x = prm_f32(prm_pick(prm_mask(a < 0x38800000u), a, 0x38800000u));
    const uint32_t fixed = (uint32_t)(int32_t)(x * 137438953472.0f);   /* 2^37 */
    const uint32_t sub = (fixed + (bits & 0x1fffu)) >> 13;
    return prm_f16_finish(u, a, normal, sub);
}

/* ---- bfloat16 split master: a float32 held as two 16-bit halves ------------------
 * hi is the float32 rounded to nearest bfloat16 with ties away from zero (the value
 * the model sees), lo the difference of the bit patterns, which fits 16 bits signed
 * exactly: [-0x8000, 0x7fff].  Ties to even would need 17 (a tie can be stored either
 * way round, and both halves round back to the same hi).  NaN: hi is bfloat16's NaN
 * and hi:lo a NaN. */
PRM_INLINE float prm_split_get(uint16_t hi, uint16_t lo)
{
    return prm_f32(((uint32_t)hi << 16) + (uint32_t)(int32_t)(int16_t)lo);
}

PRM_INLINE uint16_t prm_split_hi(float f)
{
    const uint32_t u = prm_u32(f);
    return prm_bf16_or_nan(u, (u + 0x8000u) >> 16);
}

PRM_INLINE uint16_t prm_split_lo(float f, uint16_t hi)
{
    return (uint16_t)(prm_u32(f) - ((uint32_t)hi << 16));
}

/* ---- random bits: murmur3's 32-bit finalizer (a bijection) of key + index, twice --- */
PRM_INLINE uint32_t prm_mix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

PRM_INLINE uint32_t prm_bits(uint32_t key, uint32_t index)
{
    return prm_mix32(prm_mix32(index ^ key) + key);
}

#endif /* PRM_STORAGE_H */
