/* stage.inc.c -- the rules for a storage combination with 16-bit arrays or 8-bit state,
 * included by combo.inc.c (PRM_P, PRM_S, PRM_M as there).  Each rule runs the float32 rule's own
 * loop on stages of PRM_STAGE elements: the stage's 16-bit arrays are converted to
 * float32 buffers (exactly), the float32 kernel of this target updates the buffers
 * and the call's float32 arrays in place, and each buffer a rule writes is stored
 * back rounded once, as the master mode says:
 *   none    the param and the state rounded to nearest even
 *   fp32    the float32 master (slot 5) is the float32 kernel's param; the param is
 *           the master rounded
 *   split   bfloat16: the param (upper halves) and slot 5 (lower halves) joined into
 *           the float32 master, split again after the update
 *   kahan   the param's new value v against its old one: u = k + (v - old); the
 *           param = round(old + u); k = round(u - (param - old))
 *   sr      every 16-bit value written rounded stochastically, with element i's bits
 *           for array slot k: prm_bits(key[k], first + i)
 * So a rule is one loop, written once for float32/float64, and a storage type is a
 * pair of block conversions here and in prm_storage.h.  Slot 1 (the gradient, or
 * EMA's x) is only read; slot 0 is the param (EMA: its average, a state array);
 * slots 2-4 are state arrays, read and written.  A stage is 512 elements: 1 KiB of a
 * 16-bit array, 2 KiB of each float32 buffer (10 KiB in all, in the L1 cache). */

#ifndef PRM_STAGE_ONCE
#define PRM_STAGE_ONCE
#define PRM_STAGE 512
#if PRM_STAGE % PRM_Q8_BLOCK != 0
#error "a stage must hold whole blocks of 8-bit state (PRM_Q8_AM below)"
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#define PRM_ALIGN64 __declspec(align(64))
#else
#define PRM_ALIGN64 __attribute__((aligned(64)))
#endif

/* ---- block conversions (one copy per target file) ---------------------------------
 * Each named with the target's suffix (prm_in_bf16 is prm_in_bf16_avx2 in the AVX2
 * file): tools/check_wheel.sh finds AVX code by the function names. */
#define PRM_TSFX_(a, t) a##_##t
#define PRM_TSFX__(a, t) PRM_TSFX_(a, t)   /* its own paste: used inside PRM_CAT's */
#define PRM_TSFX(name) PRM_TSFX__(name, PRM_TARGET)
#define prm_in_bf16 PRM_TSFX(prm_in_bf16)
#define prm_in_f16 PRM_TSFX(prm_in_f16)
#define prm_out_bf16 PRM_TSFX(prm_out_bf16)
#define prm_out_f16 PRM_TSFX(prm_out_f16)
#define prm_sout_bf16 PRM_TSFX(prm_sout_bf16)
#define prm_sout_f16 PRM_TSFX(prm_sout_f16)
#define prm_split_in PRM_TSFX(prm_split_in)
#define prm_split_out PRM_TSFX(prm_split_out)
#define prm_kahan_out_bf16 PRM_TSFX(prm_kahan_out_bf16)
#define prm_kahan_out_f16 PRM_TSFX(prm_kahan_out_f16)
#define prm_out_bf16_hw PRM_TSFX(prm_out_bf16_hw)
#define prm_out_f16_hw PRM_TSFX(prm_out_f16_hw)
#define prm_in_f16_hw PRM_TSFX(prm_in_f16_hw)
#define prm_q8_in PRM_TSFX(prm_q8_in)
#define prm_q8_out PRM_TSFX(prm_q8_out)
static void prm_in_bf16(float *PRM_RESTRICT d, const uint16_t *PRM_RESTRICT s, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) d[i] = prm_load_bf16(s[i]);
}

static void prm_in_f16(float *PRM_RESTRICT d, const uint16_t *PRM_RESTRICT s, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) d[i] = prm_load_f16(s[i]);
}

static void prm_out_bf16(uint16_t *PRM_RESTRICT d, const float *PRM_RESTRICT s, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) d[i] = prm_round_bf16(s[i]);
}

static void prm_out_f16(uint16_t *PRM_RESTRICT d, const float *PRM_RESTRICT s, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) d[i] = prm_round_f16(s[i]);
}

static void prm_sout_bf16(uint16_t *PRM_RESTRICT d, const float *PRM_RESTRICT s, ptrdiff_t n,
                          uint32_t key, uint32_t first)
{
    for (ptrdiff_t i = 0; i < n; i++) d[i] = prm_sround_bf16(s[i], prm_bits(key, first + (uint32_t)i));
}

static void prm_sout_f16(uint16_t *PRM_RESTRICT d, const float *PRM_RESTRICT s, ptrdiff_t n,
                         uint32_t key, uint32_t first)
{
    for (ptrdiff_t i = 0; i < n; i++) d[i] = prm_sround_f16(s[i], prm_bits(key, first + (uint32_t)i));
}

static void prm_split_in(float *PRM_RESTRICT d, const uint16_t *PRM_RESTRICT hi,
                         const uint16_t *PRM_RESTRICT lo, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) d[i] = prm_split_get(hi[i], lo[i]);
}

static void prm_split_out(uint16_t *PRM_RESTRICT hi, uint16_t *PRM_RESTRICT lo,
                          const float *PRM_RESTRICT s, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const uint16_t h = prm_split_hi(s[i]);
        hi[i] = h;
        lo[i] = prm_split_lo(s[i], h);
    }
}

/* 8-bit state (prm_q8.h): n values from a block's start; am: that block's absmax.
 * One copy per target (never inlined: the staged kernels of every rule and 8-bit
 * combination call them, and copies would multiply the build time). */
#if defined(_MSC_VER) && !defined(__clang__)
#define PRM_NOINLINE __declspec(noinline)
#else
#define PRM_NOINLINE __attribute__((noinline))
#endif
PRM_NOINLINE static void prm_q8_in(float *PRM_RESTRICT d, const uint8_t *PRM_RESTRICT codes,
                                   const float *PRM_RESTRICT am, ptrdiff_t n, int is_unsigned)
{
    prm_q8_get(d, codes, am, n, is_unsigned);
}

PRM_NOINLINE static void prm_q8_out(uint8_t *PRM_RESTRICT codes, float *PRM_RESTRICT am,
                                    const float *PRM_RESTRICT s, ptrdiff_t n, int is_unsigned)
{
    prm_q8_put(codes, am, s, n, is_unsigned);
}

/* Kahan for a 16-bit type (bf16 = 1: bfloat16, 0: float16; a literal, so it folds) */
PRM_INLINE void prm_kahan_out(const int bf16, uint16_t *PRM_RESTRICT p, uint16_t *PRM_RESTRICT k,
                              const float *PRM_RESTRICT v, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const float old = bf16 ? prm_load_bf16(p[i]) : prm_load_f16(p[i]);
        const float u = (bf16 ? prm_load_bf16(k[i]) : prm_load_f16(k[i])) + (v[i] - old);
        const float sum = old + u;
        const uint16_t r = bf16 ? prm_round_bf16(sum) : prm_round_f16(sum);
        const float back = (bf16 ? prm_load_bf16(r) : prm_load_f16(r)) - old;
        p[i] = r;
        k[i] = bf16 ? prm_round_bf16(u - back) : prm_round_f16(u - back);
    }
}

static void prm_kahan_out_bf16(uint16_t *PRM_RESTRICT p, uint16_t *PRM_RESTRICT k,
                               const float *PRM_RESTRICT v, ptrdiff_t n)
{
    prm_kahan_out(1, p, k, v, n);
}

static void prm_kahan_out_f16(uint16_t *PRM_RESTRICT p, uint16_t *PRM_RESTRICT k,
                              const float *PRM_RESTRICT v, ptrdiff_t n)
{
    prm_kahan_out(0, p, k, v, n);
}

/* ---- hardware conversions (gcc >= 10, clang >= 9, not in MSVC mode: its headers
 * declare the intrinsics of the /arch flags only; bits PRM_HW_* of pos->hw) --------
 * Used where they give the integer code's bits: for every finite normal float32 they
 * round to nearest even as it does; the lanes they treat otherwise go to the integer
 * code, a vector at a time: AVX-512 BF16 flushes float32 subnormals to zero and keeps
 * a NaN's payload (pyrmsprop: sign | 0x7fc0), F16C quiets a signalling NaN (numpy's
 * cast keeps its top payload bits as they are).  Measured on a Sapphire Rapids-class
 * Xeon: MXCSR's flush-to-zero and denormals-are-zero bits change none of the results
 * (F16C converts float16 subnormals both ways, BF16 flushes in either mode).
 * tests/test_storage.py compares both ways on every 16-bit pattern and on float32s
 * around every rounding boundary. */
#if ((defined(__clang__) && __clang_major__ >= 9) ||                                  \
     (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 10)) &&                    \
    defined(__AVX2__) && (defined(__x86_64__) || defined(__i386__)) && !defined(_MSC_VER)
#include <immintrin.h>
#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512BW__)
#define PRM_HW_BF16_BUILT 1
__attribute__((target("avx512bf16"))) static void prm_out_bf16_hw(uint16_t *PRM_RESTRICT d,
                                                                  const float *PRM_RESTRICT s,
                                                                  ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + 32 <= n; i += 32) {   /* novec: intrinsics */
        const __m512 lo = _mm512_loadu_ps(s + i), hi = _mm512_loadu_ps(s + i + 16);
        /* NaN (classes 0x01 quiet, 0x80 signalling) or subnormal (0x20) */
        if (_mm512_fpclass_ps_mask(lo, 0xa1) | _mm512_fpclass_ps_mask(hi, 0xa1)) {
            prm_out_bf16(d + i, s + i, 32);
        } else {
            const __m512bh r = _mm512_cvtne2ps_pbh(hi, lo);
            _mm512_storeu_si512((void *)(d + i), (__m512i)r);
        }
    }
    prm_out_bf16(d + i, s + i, n - i);
}
#endif
#if defined(__AVX2__)
#define PRM_HW_F16_BUILT 1
#define PRM_F16_ROUND (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
__attribute__((target("f16c"))) static void prm_out_f16_hw(uint16_t *PRM_RESTRICT d,
                                                           const float *PRM_RESTRICT s,
                                                           ptrdiff_t n)
{
    ptrdiff_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
    for (; i + 16 <= n; i += 16) {   /* novec: intrinsics */
        const __m512 x = _mm512_loadu_ps(s + i);
        if (_mm512_fpclass_ps_mask(x, 0x81)) prm_out_f16(d + i, s + i, 16);   /* NaN */
        else _mm256_storeu_si256((__m256i *)(d + i), _mm512_cvtps_ph(x, PRM_F16_ROUND));
    }
#else
    for (; i + 8 <= n; i += 8) {   /* novec: intrinsics */
        const __m256 x = _mm256_loadu_ps(s + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q))) prm_out_f16(d + i, s + i, 8);
        else _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(x, PRM_F16_ROUND));
    }
#endif
    prm_out_f16(d + i, s + i, n - i);
}

__attribute__((target("f16c"))) static void prm_in_f16_hw(float *PRM_RESTRICT d,
                                                          const uint16_t *PRM_RESTRICT s,
                                                          ptrdiff_t n)
{
    ptrdiff_t i = 0;
    const __m128i abs = _mm_set1_epi16(0x7fff), inf = _mm_set1_epi16(0x7c00);
    for (; i + 8 <= n; i += 8) {   /* novec: intrinsics */
        const __m128i h = _mm_loadu_si128((const __m128i *)(s + i));
        /* a NaN, |h| > 0x7c00 (as signed 16-bit: both positive) */
        if (_mm_movemask_epi8(_mm_cmpgt_epi16(_mm_and_si128(h, abs), inf)))
            prm_in_f16(d + i, s + i, 8);
        else
            _mm256_storeu_ps(d + i, _mm256_cvtph_ps(h));
    }
    prm_in_f16(d + i, s + i, n - i);
}
#undef PRM_F16_ROUND
#endif
#endif

#ifdef PRM_HW_BF16_BUILT
#define PRM_OUT_BF16(hw, d, s, n) \
    ((hw) & PRM_HW_BF16 ? prm_out_bf16_hw(d, s, n) : prm_out_bf16(d, s, n))
#else
#define PRM_OUT_BF16(hw, d, s, n) prm_out_bf16(d, s, n)
#endif
#ifdef PRM_HW_F16_BUILT
#define PRM_OUT_F16(hw, d, s, n) \
    ((hw) & PRM_HW_F16 ? prm_out_f16_hw(d, s, n) : prm_out_f16(d, s, n))
#define PRM_IN_F16(hw, d, s, n) ((hw) & PRM_HW_F16 ? prm_in_f16_hw(d, s, n) : prm_in_f16(d, s, n))
#else
#define PRM_OUT_F16(hw, d, s, n) prm_out_f16(d, s, n)
#define PRM_IN_F16(hw, d, s, n) prm_in_f16(d, s, n)
#endif

/* the real arrays' next blocks, as the float32 loops ask for theirs (prm_common.h) */
PRM_INLINE void prm_stage_prefetch(const char *a, ptrdiff_t bytes)
{
#ifdef PRM_PF_BLOCK
    for (ptrdiff_t b = 0; b < bytes; b += PRM_PF_BLOCK) /* novec: prefetches */
        PRM_PREFETCH(a + b);
#else
    (void)a;
    (void)bytes;
#endif
}
#endif /* PRM_STAGE_ONCE */

/* ---- this combination ----------------------------------------------------------------
 * ESZ(T): an element's bytes; STAGED(T): its stages are converted (16-bit, 8-bit);
 * IN_/OUT_/SOUT_: the block conversions of slot k, of type T (8-bit state: the
 * slot's absmax is slot PRM_Q8_ABSMAX_SLOT(k), from the stage's first block; it is
 * never rounded stochastically) */
#define PRM_ESZ_f32 4
#define PRM_ESZ_bf16 2
#define PRM_ESZ_f16 2
#define PRM_ESZ_q8 1
#define PRM_STAGED_f32 0
#define PRM_STAGED_bf16 1
#define PRM_STAGED_f16 1
#define PRM_STAGED_q8 1
#define PRM_STAGE_IN(T, k, d, s, n) PRM_CAT(PRM_SIN_, T)(k, d, s, n)
#define PRM_STAGE_OUT(T, k, d, s, n) PRM_CAT(PRM_SOUT_, T)(k, d, s, n)
#define PRM_STAGE_SOUT(T, k, d, s, n, key, first) PRM_CAT(PRM_SSOUT_, T)(k, d, s, n, key, first)
#define PRM_SIN_bf16(k, d, s, n) prm_in_bf16(d, (const uint16_t *)(s), n)
#define PRM_SIN_f16(k, d, s, n) PRM_IN_F16(pos->hw, d, (const uint16_t *)(s), n)
#define PRM_SIN_f32(k, d, s, n) ((void)0)
#define PRM_Q8_AM(k) ((float *)a[PRM_Q8_ABSMAX_SLOT(k)] + i0 / PRM_Q8_BLOCK)
#define PRM_Q8_UNS(k) ((int)(pos->q8_unsigned >> (k)) & 1)
#define PRM_SIN_q8(k, d, s, n) prm_q8_in(d, (const uint8_t *)(s), PRM_Q8_AM(k), n, PRM_Q8_UNS(k))
#define PRM_SOUT_bf16(k, d, s, n) PRM_OUT_BF16(pos->hw, (uint16_t *)(d), s, n)
#define PRM_SOUT_f16(k, d, s, n) PRM_OUT_F16(pos->hw, (uint16_t *)(d), s, n)
#define PRM_SOUT_f32(k, d, s, n) ((void)0)
#define PRM_SOUT_q8(k, d, s, n) prm_q8_out((uint8_t *)(d), PRM_Q8_AM(k), s, n, PRM_Q8_UNS(k))
#define PRM_SSOUT_bf16(k, d, s, n, key, first) prm_sout_bf16((uint16_t *)(d), s, n, key, first)
#define PRM_SSOUT_f16(k, d, s, n, key, first) prm_sout_f16((uint16_t *)(d), s, n, key, first)
#define PRM_SSOUT_f32(k, d, s, n, key, first) ((void)0)
#define PRM_SSOUT_q8(k, d, s, n, key, first) PRM_SOUT_q8(k, d, s, n)
#define PRM_IS_SR PRM_CAT(PRM_ISSR_, PRM_M)
#define PRM_ISSR_none 0
#define PRM_ISSR_fp32 0
#define PRM_ISSR_split 0
#define PRM_ISSR_kahan 0
#define PRM_ISSR_sr 1

/* A state-like slot k of storage T (16-bit or float32): in before the rule, out after */
#define PRM_SLOT_AT(T, k) (a[k] + PRM_CAT(PRM_ESZ_, T) * i0)
#define PRM_SLOT_IN(T, k)                                                                \
    do {                                                                                 \
        if (a[k] == NULL) break;                                                         \
        if (PRM_CAT(PRM_STAGED_, T)) {                                                   \
            PRM_STAGE_IN(T, k, buf[k], PRM_SLOT_AT(T, k), len);                          \
            s[k] = (char *)buf[k];                                                       \
        } else {                                                                         \
            s[k] = PRM_SLOT_AT(T, k);                                                    \
        }                                                                                \
    } while (0)
#define PRM_SLOT_OUT(T, k)                                                               \
    do {                                                                                 \
        if (a[k] == NULL || !PRM_CAT(PRM_STAGED_, T)) break;                             \
        if (PRM_IS_SR)                                                                   \
            PRM_STAGE_SOUT(T, k, PRM_SLOT_AT(T, k), buf[k], len, pos->key[k], first);    \
        else PRM_STAGE_OUT(T, k, PRM_SLOT_AT(T, k), buf[k], len);                        \
    } while (0)
#define PRM_SLOT_PREFETCH(T, k)                                                          \
    do {                                                                                 \
        if (a[k] != NULL && PRM_CAT(PRM_STAGED_, T))                                     \
            prm_stage_prefetch(PRM_SLOT_AT(T, k), PRM_CAT(PRM_ESZ_, T) * PRM_STAGE);     \
    } while (0)

/* the param (slot 0, and slot 5 for fp32, split, kahan); PRM_SCAT picks the mode's
 * (its own paste macro: the modes' macros use PRM_CAT) */
#define PRM_SCAT_(a, b) a##b
#define PRM_SCAT(a, b) PRM_SCAT_(a, b)
#define PRM_PARAM_IN_none PRM_SLOT_IN(PRM_P, 0)
#define PRM_PARAM_IN_sr PRM_PARAM_IN_none
#define PRM_PARAM_IN_kahan PRM_PARAM_IN_none
#define PRM_PARAM_IN_fp32 s[0] = a[5] + 4 * i0
#define PRM_PARAM_IN_split                                                               \
    prm_split_in(buf[0], (const uint16_t *)a[0] + i0, (const uint16_t *)a[5] + i0, len); \
    s[0] = (char *)buf[0]
#define PRM_PARAM_OUT_none PRM_SLOT_OUT(PRM_P, 0)
#define PRM_PARAM_OUT_sr PRM_SLOT_OUT(PRM_P, 0)
#define PRM_PARAM_OUT_fp32 PRM_STAGE_OUT(PRM_P, 0, a[0] + 2 * i0, (const float *)a[5] + i0, len)
#define PRM_PARAM_OUT_split                                                              \
    prm_split_out((uint16_t *)a[0] + i0, (uint16_t *)a[5] + i0, buf[0], len)
#define PRM_PARAM_OUT_kahan                                                              \
    PRM_CAT(prm_kahan_out_, PRM_P)((uint16_t *)a[0] + i0, (uint16_t *)a[5] + i0, buf[0], len)

/* One rule: f32 is the float32 kernel of this target (defined before, by the f32
 * combination); ema = 1 when slot 0 is a state array rather than the param. */
PRM_INLINE void PRM_LOCAL(staged)(prm_kernel_fn f32, const int ema, char *const *a,
                                  ptrdiff_t n, const void *hp, const prm_pos *pos)
{
    /* one cache line apart beyond 2 KiB: no two buffers at the same address mod 4 KiB,
     * where a store to one would seem to alias the next loads from another */
    PRM_ALIGN64 float buf[5][PRM_STAGE + 16];
    for (ptrdiff_t i0 = 0; i0 < n; i0 += PRM_STAGE) {   /* novec: the stages */
        const ptrdiff_t len = n - i0 < PRM_STAGE ? n - i0 : PRM_STAGE;
        const uint32_t first = pos->first + (uint32_t)i0;   /* sr: element i0's index */
        (void)first;
        char *s[PRM_MAX_ARRAYS] = {NULL};
        if (ema) {
            PRM_SLOT_PREFETCH(PRM_S, 0);
        } else {
            PRM_SLOT_PREFETCH(PRM_P, 0);
            if (PRM_HAS_Q) prm_stage_prefetch(a[5] + sizeof(QT) * i0, sizeof(QT) * PRM_STAGE);
        }
        PRM_SLOT_PREFETCH(PRM_P, 1);
        PRM_SLOT_PREFETCH(PRM_S, 2);
        PRM_SLOT_PREFETCH(PRM_S, 3);
        PRM_SLOT_PREFETCH(PRM_S, 4);
        if (ema) {
            PRM_SLOT_IN(PRM_S, 0);
        } else {
            PRM_SCAT(PRM_PARAM_IN_, PRM_M);
        }
        PRM_SLOT_IN(PRM_P, 1);
        PRM_SLOT_IN(PRM_S, 2);
        PRM_SLOT_IN(PRM_S, 3);
        PRM_SLOT_IN(PRM_S, 4);
        f32(s, len, hp, pos);
        if (ema) {
            PRM_SLOT_OUT(PRM_S, 0);
        } else {
            PRM_SCAT(PRM_PARAM_OUT_, PRM_M);
        }
        PRM_SLOT_OUT(PRM_S, 2);
        PRM_SLOT_OUT(PRM_S, 3);
        PRM_SLOT_OUT(PRM_S, 4);
    }
}

#define PRM_STAGED_RULE(rule, ema)                                                       \
    static void PRM_FN_AS(rule, staged)(char *const *a, ptrdiff_t n, const void *hp,     \
                                        const prm_pos *pos)                              \
    {                                                                                    \
        PRM_LOCAL(staged)(PRM_CAT(prm_##rule##_f32_f32_none_, PRM_TARGET), ema, a, n, hp, pos); \
    }
PRM_STAGED_RULE(ema, 1)
PRM_STAGED_RULE(rmsprop, 0)
PRM_STAGED_RULE(adam, 0)
PRM_STAGED_RULE(sgd, 0)
#undef PRM_STAGED_RULE

#undef PRM_ESZ_f32
#undef PRM_ESZ_bf16
#undef PRM_ESZ_f16
#undef PRM_ESZ_q8
#undef PRM_STAGED_f32
#undef PRM_STAGED_bf16
#undef PRM_STAGED_f16
#undef PRM_STAGED_q8
#undef PRM_Q8_AM
#undef PRM_Q8_UNS
#undef PRM_SIN_q8
#undef PRM_SOUT_q8
#undef PRM_SSOUT_q8
#undef PRM_SLOT_AT
#undef PRM_STAGE_IN
#undef PRM_STAGE_OUT
#undef PRM_STAGE_SOUT
#undef PRM_SIN_bf16
#undef PRM_SIN_f16
#undef PRM_SIN_f32
#undef PRM_SOUT_bf16
#undef PRM_SOUT_f16
#undef PRM_SOUT_f32
#undef PRM_SSOUT_bf16
#undef PRM_SSOUT_f16
#undef PRM_SSOUT_f32
#undef PRM_SLOT_IN
#undef PRM_SLOT_OUT
#undef PRM_SLOT_PREFETCH
#undef PRM_SCAT_
#undef PRM_SCAT
#undef PRM_PARAM_IN_none
#undef PRM_PARAM_IN_sr
#undef PRM_PARAM_IN_kahan
#undef PRM_PARAM_IN_fp32
#undef PRM_PARAM_IN_split
#undef PRM_PARAM_OUT_none
#undef PRM_PARAM_OUT_sr
#undef PRM_PARAM_OUT_fp32
#undef PRM_PARAM_OUT_split
#undef PRM_PARAM_OUT_kahan
