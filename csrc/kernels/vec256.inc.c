/* vec256.inc.c -- vec.inc.c's vectors for AVX2 with F16C: 8 float32 lanes (included
 * once per target file, by vec.inc.c).
 *
 * bfloat16 both ways by prm_storage.h's integer code in vector form (AVX2 has no
 * bfloat16 instruction): loads are a shift, stores round to nearest even with NaN
 * as sign | 0x7fc0, prm_round_bf16's bits for every input.  float16 by F16C's
 * vcvtph2ps / vcvtps2ph, with the integer code (stage.inc.c's block conversions) for
 * a vector holding a NaN (F16C
 * quiets a signalling one; stage.inc.c's hardware-conversion notes). */

/* every function of these kernels: F16C's instructions are used by name */
#define PRM_VATTR __attribute__((target("f16c")))
#define PRM_VINLINE static inline __attribute__((always_inline, target("f16c")))

#define PRM_V32(c) _mm256_set1_epi32((int)(c))

/* 32-bit lanes -> their low 16 bits, in order */
PRM_VINLINE __m128i prm_vnarrow(__m256i x)
{
    const __m256i pick = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                          0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    /* each 128-bit half's 8 bytes, then quadwords 0 and 2 side by side */
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_shuffle_epi8(x, pick), 0x08));
}

/* a float32's bfloat16 NaN: its sign | 0x7fc0, in 32-bit lanes, and where to use it */
PRM_VINLINE __m256i prm_vbf16_nan(__m256i u)
{
    return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u, 16), PRM_V32(0x8000u)), PRM_V32(0x7fc0u));
}

PRM_VINLINE __m256i prm_vis_nan(__m256i u)   /* |u| > Inf (both non-negative as signed) */
{
    return _mm256_cmpgt_epi32(_mm256_and_si256(u, PRM_V32(0x7fffffffu)), PRM_V32(0x7f800000u));
}

/* 16-bit codes -> float32, exactly (kind 1: bfloat16, 2: float16) */
PRM_VINLINE __m256 prm_vwiden(const int kind, __m128i h)
{
    if (kind == 1) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    if (_mm_movemask_epi8(_mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7fff)),
                                          _mm_set1_epi16(0x7c00)))) {
        PRM_ALIGN64 uint16_t t[8];
        PRM_ALIGN64 float d[8];
        _mm_store_si128((__m128i *)t, h);
        prm_in_f16(d, t, 8);
        return _mm256_load_ps(d);
    }
    return _mm256_cvtph_ps(h);
}

/* float32 -> 16-bit codes, rounded to nearest even */
PRM_VINLINE __m128i prm_vround(const int kind, __m256 x)
{
    if (kind == 1) {
        const __m256i u = _mm256_castps_si256(x);
        const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), PRM_V32(1));
        const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, PRM_V32(0x7fffu)), odd), 16);
        return prm_vnarrow(_mm256_blendv_epi8(r, prm_vbf16_nan(u), prm_vis_nan(u)));
    }
    if (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q))) {
        PRM_ALIGN64 float t[8];
        PRM_ALIGN64 uint16_t d[8];
        _mm256_store_ps(t, x);
        prm_out_f16(d, t, 8);
        return _mm_load_si128((const __m128i *)d);
    }
    return _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* elements a[i .. i+7], kind 0: float32 */
PRM_VINLINE __m128i prm_vld16(const uint16_t *a, ptrdiff_t i)
{
    return _mm_loadu_si128((const __m128i *)(a + i));
}

PRM_VINLINE void prm_vst16(uint16_t *a, ptrdiff_t i, __m128i h)
{
    _mm_storeu_si128((__m128i *)(a + i), h);
}

PRM_VINLINE __m256 prm_vldf(const float *a) { return _mm256_loadu_ps(a); }

PRM_VINLINE void prm_vstf(float *a, __m256 x) { _mm256_storeu_ps(a, x); }

/* split (prm_split_get/hi/lo): the master is hi:lo, hi rounded to nearest, ties away */
PRM_VINLINE __m256 prm_vld_split(const uint16_t *hi, const uint16_t *lo, ptrdiff_t i)
{
    const __m256i h = _mm256_slli_epi32(_mm256_cvtepu16_epi32(prm_vld16(hi, i)), 16);
    const __m256i l = _mm256_cvtepi16_epi32(prm_vld16(lo, i));
    return _mm256_castsi256_ps(_mm256_add_epi32(h, l));
}

PRM_VINLINE void prm_vst_split(uint16_t *hi, uint16_t *lo, ptrdiff_t i, __m256 x)
{
    const __m256i u = _mm256_castps_si256(x);
    const __m256i h = _mm256_blendv_epi8(_mm256_srli_epi32(_mm256_add_epi32(u, PRM_V32(0x8000u)), 16),
                                         prm_vbf16_nan(u), prm_vis_nan(u));
    prm_vst16(hi, i, prm_vnarrow(h));
    prm_vst16(lo, i, prm_vnarrow(_mm256_sub_epi32(u, _mm256_slli_epi32(h, 16))));
}

/* stochastic rounding (prm_storage.h's prm_bits, prm_sround_*): lane j of the vector
 * at element i of a call is element pos->first + i + j of its tensor */
PRM_VINLINE __m256i prm_vmix32(__m256i h)
{
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
    h = _mm256_mullo_epi32(h, PRM_V32(0x85ebca6bu));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
    h = _mm256_mullo_epi32(h, PRM_V32(0xc2b2ae35u));
    return _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
}

PRM_VINLINE __m256i prm_vbits(uint32_t key, uint32_t first)
{
    const __m256i k = PRM_V32(key);
    const __m256i index = _mm256_add_epi32(PRM_V32(first), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return prm_vmix32(_mm256_add_epi32(prm_vmix32(_mm256_xor_si256(index, k)), k));
}

PRM_VINLINE __m128i prm_vsround(const int kind, __m256 x, __m256i bits)
{
    const __m256i u = _mm256_castps_si256(x);
    const __m256i nan = prm_vis_nan(u);
    if (kind == 1) {
        const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_and_si256(bits, PRM_V32(0xffffu))), 16);
        return prm_vnarrow(_mm256_blendv_epi8(r, prm_vbf16_nan(u), nan));
    } else {
        /* as prm_sround_f16; a is non-negative as a signed lane, so signed compares */
        const __m256i a = _mm256_and_si256(u, PRM_V32(0x7fffffffu));
        const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(u, 16), PRM_V32(0x8000u));
        const __m256i low = _mm256_and_si256(bits, PRM_V32(0x1fffu));
        const __m256i normal = _mm256_srli_epi32(_mm256_add_epi32(_mm256_sub_epi32(a, PRM_V32(0x38000000u)), low), 13);
        const __m256i small = _mm256_cmpgt_epi32(PRM_V32(0x38800000u), a);
        const __m256 xs = _mm256_castsi256_ps(_mm256_blendv_epi8(PRM_V32(0x38800000u), a, small));
        const __m256i fixed = _mm256_cvttps_epi32(_mm256_mul_ps(xs, _mm256_set1_ps(137438953472.0f)));
        const __m256i sub = _mm256_srli_epi32(_mm256_add_epi32(fixed, low), 13);
        const __m256i top = _mm256_and_si256(_mm256_srli_epi32(a, 13), PRM_V32(0x3ffu));
        const __m256i nanv = _mm256_or_si256(_mm256_or_si256(PRM_V32(0x7c00u), top),
                                             _mm256_and_si256(_mm256_cmpeq_epi32(top, _mm256_setzero_si256()), PRM_V32(1)));
        __m256i r = _mm256_blendv_epi8(normal, sub, small);
        r = _mm256_blendv_epi8(r, PRM_V32(0x7c00u), _mm256_cmpgt_epi32(a, PRM_V32(0x477fffffu)));
        r = _mm256_blendv_epi8(r, nanv, nan);
        return prm_vnarrow(_mm256_or_si256(sign, r));
    }
}

PRM_VINLINE __m256 prm_vdivc(__m256 x, float cs, float ys)   /* prm_divc_f32 */
{
    const __m256 c = _mm256_set1_ps(cs), y = _mm256_set1_ps(ys);
#if !PRM_DIVC_FMA
    (void)y;
    return _mm256_div_ps(x, c);
#else
    const __m256 q0 = _mm256_mul_ps(x, y);
    const __m256 q1 = _mm256_fmadd_ps(_mm256_fnmadd_ps(q0, c, x), y, q0);
    const __m256 q2 = _mm256_fmadd_ps(_mm256_fnmadd_ps(q1, c, x), y, q1);
    /* x's bits below Inf's, unsigned: a signed compare with both sign bits flipped */
    const __m256i biased = _mm256_xor_si256(_mm256_castps_si256(x), PRM_V32(0x80000000u));
    const __m256i finite = _mm256_cmpgt_epi32(PRM_V32(0x7f800000u ^ 0x80000000u), biased);
    return _mm256_blendv_ps(q0, q2, _mm256_castsi256_ps(finite));
#endif
}
#undef PRM_V32

PRM_VINLINE __m256 prm_vsqrt(__m256 x) { return _mm256_sqrt_ps(x); }

PRM_VINLINE __m256 prm_vmaxgt(__m256 a, __m256 b)   /* a > b ? a : b */
{
    return _mm256_blendv_ps(b, a, _mm256_cmp_ps(a, b, _CMP_GT_OQ));
}

#define PRM_VT __m256    /* float32 lanes */
#define PRM_VH __m128i   /* their 16-bit codes */
#define PRM_VW 8
#define PRM_VNEED_BF16 0   /* integer code */
#define PRM_VNEED_F16 PRM_HW_F16
