/* Memory-only loop: a rule's loads and stores with one add per store, the
 * bandwidth limit the benchmark compares against (EMA: a0,a1; RMSprop/SGD:
 * a0,a1,a2; Adam: a0..a3; slot 5 when the param keeps one; 8-bit state: the codes,
 * not the absmax arrays, 4 bytes per 256 elements).  Float arrays: a0 += a1;
 * a2, a3 += a1 when they share its storage, else += 1; float32 slot 5 += 1.  16-bit
 * arrays (added as integers: only bytes move) keep their values: they get a1 & z
 * or z added, z a zero the compiler cannot see (the sign bit of n >= 0), so that the
 * benchmark, which interleaves this loop with updates of the same arrays, never
 * hands an update the NaN and subnormal patterns integer sums would make. */
#if PRM_CAT(PRM_IS16_, PRM_P)
#define PRM_TOUCH_P(x) ((PT)((x) & z))
#else
#define PRM_TOUCH_P(x) (x)
#endif
#if PRM_CAT(PRM_IS16_, PRM_S) && PRM_CAT(PRM_IS16_, PRM_P)
#define PRM_TOUCH_S(x) ((ST)((x) & z))
#elif PRM_CAT(PRM_IS16_, PRM_S) || PRM_CAT(PRM_ISQ8_, PRM_S)
#define PRM_TOUCH_S(x) ((ST)z)
#else
#define PRM_TOUCH_S(x) (sizeof(ST) == sizeof(PT) ? (ST)(x) : (ST)1)
#endif
#define PRM_TOUCH_Q (sizeof(QT) == 2 ? (QT)z : (QT)1)

PRM_INLINE void PRM_LOCAL(touch_loop)(PT *PRM_RESTRICT a0, const PT *PRM_RESTRICT a1,
                                      ST *PRM_RESTRICT a2, ST *PRM_RESTRICT a3,
                                      QT *PRM_RESTRICT q, ptrdiff_t n, const unsigned z,
                                      const int has2, const int has3, const int pf)
{
    (void)z;
    PRM_BLOCKS(i0, len, n, CT) {
        if (pf) {
            PRM_PREFETCH(a0 + i0); PRM_PREFETCH(a1 + i0);
            if (has2) PRM_PREFETCH(a2 + i0);
            if (has3) PRM_PREFETCH(a3 + i0);
            if (PRM_HAS_Q) PRM_PREFETCH(q + i0);
        }
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            const PT x = a1[i];
            a0[i] = (PT)(a0[i] + PRM_TOUCH_P(x));
            if (has2) a2[i] = (ST)(a2[i] + PRM_TOUCH_S(x));
            if (has3) a3[i] = (ST)(a3[i] + PRM_TOUCH_S(x));
            if (PRM_HAS_Q) q[i] = (QT)(q[i] + PRM_TOUCH_Q);
        }
    }
}

#if defined(PRM_VEC) && PRM_VEC && defined(__AVX512F__) && !PRM_CAT(PRM_ISQ8_, PRM_S) && \
    (PRM_CAT(PRM_IS16_, PRM_P) || PRM_CAT(PRM_IS16_, PRM_S))
/* AVX-512, a combination with 16-bit arrays: the loads and stores of the vector
 * kernels (vec.inc.c: whole vectors, 16 elements), the same adds as above.  The
 * compiler's loop over arrays of two widths packs and unpacks, and on a Zen 5-class
 * EPYC was slower than the float32-params-bfloat16-state Adam it stood for. */
#define PRM_T16_LD(a, i) _mm256_loadu_si256((const __m256i *)((a) + (i)))
#define PRM_T16_ST(a, i, x) _mm256_storeu_si256((__m256i *)((a) + (i)), x)
#define PRM_T16_ADD(a, i, x) PRM_T16_ST(a, i, _mm256_add_epi16(PRM_T16_LD(a, i), x))
#define PRM_T32_ADD(a, i, x) _mm512_storeu_ps((a) + (i), _mm512_add_ps(_mm512_loadu_ps((a) + (i)), x))
PRM_INLINE void PRM_LOCAL(touch_vec)(PT *PRM_RESTRICT a0, const PT *PRM_RESTRICT a1,
                                     ST *PRM_RESTRICT a2, ST *PRM_RESTRICT a3,
                                     QT *PRM_RESTRICT q, ptrdiff_t n, const unsigned z,
                                     const int has2, const int has3, const int pf)
{
    const __m256i zv = _mm256_set1_epi16((short)z);
    const __m512 one = _mm512_set1_ps(1.0f);
    (void)zv; (void)one;
    /* blocks as vec.inc.c's (BT): of the float32 arrays when there are any */
#if PRM_ALL16
    PRM_BLOCKS(i0, len, n, uint16_t) {
#else
    PRM_BLOCKS(i0, len, n, float) {
#endif
        if (pf) {
            PRM_PREFETCH(a0 + i0); PRM_PREFETCH(a1 + i0);
            if (has2) PRM_PREFETCH(a2 + i0);
            if (has3) PRM_PREFETCH(a3 + i0);
            if (PRM_HAS_Q) PRM_PREFETCH(q + i0);
        }
        for (ptrdiff_t i = i0; i < i0 + len; i += 16) {   /* novec: intrinsics */
#if PRM_CAT(PRM_IS16_, PRM_P)
            const __m256i x = _mm256_and_si256(PRM_T16_LD(a1, i), zv);
            PRM_T16_ADD(a0, i, x);
#else
            const __m512 x = _mm512_loadu_ps(a1 + i);
            PRM_T32_ADD(a0, i, x);
#endif
#if PRM_CAT(PRM_IS16_, PRM_S) && PRM_CAT(PRM_IS16_, PRM_P)
            if (has2) PRM_T16_ADD(a2, i, x);
            if (has3) PRM_T16_ADD(a3, i, x);
#elif PRM_CAT(PRM_IS16_, PRM_S)
            if (has2) PRM_T16_ADD(a2, i, zv);
            if (has3) PRM_T16_ADD(a3, i, zv);
#else
            if (has2) PRM_T32_ADD(a2, i, one);
            if (has3) PRM_T32_ADD(a3, i, one);
#endif
#if PRM_HAS_Q && PRM_CAT(PRM_ISQ16_, PRM_M)
            PRM_T16_ADD((uint16_t *)q, i, zv);
#elif PRM_HAS_Q
            PRM_T32_ADD((float *)q, i, one);
#endif
        }
    }
}
#undef PRM_T16_LD
#undef PRM_T16_ST
#undef PRM_T16_ADD
#undef PRM_T32_ADD
#define PRM_TOUCH_VEC 1
#else
#define PRM_TOUCH_VEC 0
#endif

/* the loop for the arrays given (has2, has3) and the prefetch choice, as literals */
#define PRM_TOUCH_CALL(loop, n_)                                                         \
    do {                                                                                 \
        if (a2 && a3 && pf) PRM_LOCAL(loop)(a0, a1, a2, a3, q, n_, z, 1, 1, 1);          \
        else if (a2 && a3) PRM_LOCAL(loop)(a0, a1, a2, a3, q, n_, z, 1, 1, 0);           \
        else if (a2 && pf) PRM_LOCAL(loop)(a0, a1, a2, a3, q, n_, z, 1, 0, 1);           \
        else if (a2) PRM_LOCAL(loop)(a0, a1, a2, a3, q, n_, z, 1, 0, 0);                 \
        else if (pf) PRM_LOCAL(loop)(a0, a1, a2, a3, q, n_, z, 0, 0, 1);                 \
        else PRM_LOCAL(loop)(a0, a1, a2, a3, q, n_, z, 0, 0, 0);                         \
    } while (0)

void PRM_FN(touch)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)
{
    PT *a0 = (PT *)a[0];
    const PT *a1 = (const PT *)a[1];
    ST *a2 = (ST *)a[2], *a3 = (ST *)a[3];
    QT *q = (QT *)a[5];
    const unsigned z = (unsigned)((uint64_t)n >> 63);
    const int pf = hp == NULL || !(((const prm_touch_params *)hp)->flags & PRM_NO_PREFETCH);
    (void)pos;
#if PRM_TOUCH_VEC
    {
        const ptrdiff_t nv = n - n % 16;
        PRM_TOUCH_CALL(touch_vec, nv);
        a0 += nv;
        a1 += nv;
        a2 = a2 ? a2 + nv : NULL;
        a3 = a3 ? a3 + nv : NULL;
        q = q ? q + nv : NULL;
        n -= nv;
    }
#endif
    PRM_TOUCH_CALL(touch_loop, n);
}
#undef PRM_TOUCH_CALL

#undef PRM_TOUCH_P
#undef PRM_TOUCH_S
#undef PRM_TOUCH_Q
#undef PRM_TOUCH_VEC
