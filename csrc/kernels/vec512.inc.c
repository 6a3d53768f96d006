/* vec512.inc.c -- vec.inc.c's vectors for AVX-512: 16 float32 lanes (included once
 * per target file, by vec.inc.c).
 *
 * The conversions are those of prm_storage.h, bit for bit: bfloat16 loads are exact
 * (a shift), stores use AVX-512 BF16's vcvtneps2bf16, float16 both ways F16C's
 * instructions in their AVX-512 form, and a vector holding a lane they convert
 * otherwise (stage.inc.c's hardware-conversion notes: NaN, or a float32 subnormal
 * for bfloat16) goes through the integer code (stage.inc.c's block conversions).  So these kernels run
 * only when the call may use the hardware conversions (pos->hw, PRM_VNEED in
 * combo.inc.c); otherwise the staged kernels, integer conversions throughout, run:
 * the tests compare both with the numpy emulation. */

/* every function of these kernels: AVX-512 BF16's instruction is used by name */
#define PRM_VATTR __attribute__((target("avx512bf16")))
#define PRM_VINLINE static inline __attribute__((always_inline, target("avx512bf16")))

/* 16-bit codes -> float32, exactly (kind 1: bfloat16, 2: float16) */
PRM_VINLINE __m512 prm_vwiden(const int kind, __m256i h)
{
    if (kind == 1) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    /* float16 NaN (|h| > 0x7c00): vcvtph2ps would quiet a signalling one */
    if (_mm256_cmpgt_epi16_mask(_mm256_and_si256(h, _mm256_set1_epi16(0x7fff)),
                                _mm256_set1_epi16(0x7c00))) {
        PRM_ALIGN64 uint16_t t[16];
        PRM_ALIGN64 float d[16];
        _mm256_store_si256((__m256i *)t, h);
        prm_in_f16(d, t, 16);
        return _mm512_load_ps(d);
    }
    return _mm512_cvtph_ps(h);
}

/* float32 -> 16-bit codes, rounded to nearest even */
PRM_VINLINE __m256i prm_vround(const int kind, __m512 x)
{
    /* fpclass: 0x01 quiet NaN, 0x80 signalling NaN, 0x20 subnormal */
    const __mmask16 odd = kind == 1 ? _mm512_fpclass_ps_mask(x, 0xa1) : _mm512_fpclass_ps_mask(x, 0x81);
    if (odd) {
        PRM_ALIGN64 float t[16];
        PRM_ALIGN64 uint16_t d[16];
        _mm512_store_ps(t, x);
        if (kind == 1) prm_out_bf16(d, t, 16);
        else prm_out_f16(d, t, 16);
        return _mm256_load_si256((const __m256i *)d);
    }
    if (kind == 1) return (__m256i)_mm512_cvtneps_pbh(x);
    return _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* elements a[i .. i+15], kind 0: float32 */
PRM_VINLINE __m256i prm_vld16(const uint16_t *a, ptrdiff_t i)
{
    return _mm256_loadu_si256((const __m256i *)(a + i));
}

PRM_VINLINE void prm_vst16(uint16_t *a, ptrdiff_t i, __m256i h)
{
    _mm256_storeu_si256((__m256i *)(a + i), h);
}

PRM_VINLINE __m512 prm_vldf(const float *a) { return _mm512_loadu_ps(a); }

PRM_VINLINE void prm_vstf(float *a, __m512 x) { _mm512_storeu_ps(a, x); }

/* split (prm_split_get/hi/lo): the master is hi:lo, hi rounded to nearest, ties away */
PRM_VINLINE __m512 prm_vld_split(const uint16_t *hi, const uint16_t *lo, ptrdiff_t i)
{
    const __m512i h = _mm512_slli_epi32(_mm512_cvtepu16_epi32(prm_vld16(hi, i)), 16);
    const __m512i l = _mm512_cvtepi16_epi32(prm_vld16(lo, i));
    return _mm512_castsi512_ps(_mm512_add_epi32(h, l));
}

PRM_VINLINE void prm_vst_split(uint16_t *hi, uint16_t *lo, ptrdiff_t i, __m512 x)
{
    const __m512i u = _mm512_castps_si512(x);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                  _mm512_set1_epi32(0x7f800000));
    const __m512i qnan = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x8000)),
                                         _mm512_set1_epi32(0x7fc0));
    const __m512i h = _mm512_mask_blend_epi32(nan, _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x8000)), 16), qnan);
    const __m512i l = _mm512_sub_epi32(u, _mm512_slli_epi32(h, 16));
    prm_vst16(hi, i, _mm512_cvtepi32_epi16(h));
    prm_vst16(lo, i, _mm512_cvtepi32_epi16(l));
}

/* stochastic rounding (prm_storage.h's prm_bits, prm_sround_*): lane j of the vector
 * at element i of a call is element pos->first + i + j of its tensor */
PRM_VINLINE __m512i prm_vmix32(__m512i h)
{
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0x85ebca6bu));
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 13));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0xc2b2ae35u));
    return _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
}

PRM_VINLINE __m512i prm_vbits(uint32_t key, uint32_t first)
{
    const __m512i k = _mm512_set1_epi32((int)key);
    const __m512i index = _mm512_add_epi32(_mm512_set1_epi32((int)first),
                                           _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                                             10, 11, 12, 13, 14, 15));
    return prm_vmix32(_mm512_add_epi32(prm_vmix32(_mm512_xor_si512(index, k)), k));
}

#define PRM_V32(c) _mm512_set1_epi32((int)(c))
PRM_VINLINE __m256i prm_vsround(const int kind, __m512 x, __m512i bits)
{
    const __m512i u = _mm512_castps_si512(x);
    const __m512i a = _mm512_and_si512(u, PRM_V32(0x7fffffffu));
    const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(u, 16), PRM_V32(0x8000u));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(a, PRM_V32(0x7f800000u));
    if (kind == 1) {
        const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_and_si512(bits, PRM_V32(0xffffu))), 16);
        return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, r, _mm512_or_si512(sign, PRM_V32(0x7fc0u))));
    } else {
        const __m512i low = _mm512_and_si512(bits, PRM_V32(0x1fffu));
        const __m512i normal = _mm512_srli_epi32(_mm512_add_epi32(_mm512_sub_epi32(a, PRM_V32(0x38000000u)), low), 13);
        const __mmask16 small = _mm512_cmplt_epu32_mask(a, PRM_V32(0x38800000u));
        const __m512 xs = _mm512_castsi512_ps(_mm512_mask_blend_epi32(small, PRM_V32(0x38800000u), a));
        const __m512i fixed = _mm512_cvttps_epi32(_mm512_mul_ps(xs, _mm512_set1_ps(137438953472.0f)));
        const __m512i sub = _mm512_srli_epi32(_mm512_add_epi32(fixed, low), 13);
        const __m512i top = _mm512_and_si512(_mm512_srli_epi32(a, 13), PRM_V32(0x3ffu));
        const __m512i nanv = _mm512_or_si512(_mm512_or_si512(PRM_V32(0x7c00u), top),
                                             _mm512_maskz_mov_epi32(_mm512_cmpeq_epi32_mask(top, _mm512_setzero_si512()), PRM_V32(1)));
        __m512i r = _mm512_mask_blend_epi32(small, normal, sub);
        r = _mm512_mask_blend_epi32(_mm512_cmpge_epu32_mask(a, PRM_V32(0x47800000u)), r, PRM_V32(0x7c00u));
        r = _mm512_mask_blend_epi32(nan, r, nanv);
        return _mm512_cvtepi32_epi16(_mm512_or_si512(sign, r));
    }
}
#undef PRM_V32

PRM_VINLINE __m512 prm_vdivc(__m512 x, float cs, float ys)   /* prm_divc_f32 */
{
    const __m512 c = _mm512_set1_ps(cs), y = _mm512_set1_ps(ys);
#if !PRM_DIVC_FMA
    (void)y;
    return _mm512_div_ps(x, c);
#else
    const __m512 q0 = _mm512_mul_ps(x, y);
    const __m512 q1 = _mm512_fmadd_ps(_mm512_fnmadd_ps(q0, c, x), y, q0);
    const __m512 q2 = _mm512_fmadd_ps(_mm512_fnmadd_ps(q1, c, x), y, q1);
    const __mmask16 finite = _mm512_cmplt_epu32_mask(_mm512_castps_si512(x), _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_blend_ps(finite, q0, q2);
#endif
}
PRM_VINLINE __m512 prm_vsqrt(__m512 x) { return _mm512_sqrt_ps(x); }

PRM_VINLINE __m512 prm_vmaxgt(__m512 a, __m512 b)   /* a > b ? a : b */
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), b, a);
}

#define PRM_VT __m512    /* float32 lanes */
#define PRM_VH __m256i   /* their 16-bit codes */
#define PRM_VW 16
#define PRM_VNEED_BF16 PRM_HW_BF16   /* vcvtneps2bf16 */
#define PRM_VNEED_F16 PRM_HW_F16

