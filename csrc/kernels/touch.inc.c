/* Memory-only loop: a rule's loads and stores with one add per store, the
 * bandwidth limit the benchmark compares against (EMA: a0,a1; RMSprop/SGD:
 * a0,a1,a2; Adam: a0..a3; slot 5 when the param keeps one).  Float arrays: a0 += a1;
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
#elif PRM_CAT(PRM_IS16_, PRM_S)
#define PRM_TOUCH_S(x) ((ST)z)
#else
#define PRM_TOUCH_S(x) (sizeof(ST) == sizeof(PT) ? (ST)(x) : (ST)1)
#endif
#define PRM_TOUCH_Q (sizeof(QT) == 2 ? (QT)z : (QT)1)

PRM_INLINE void PRM_LOCAL(touch_loop)(PT *PRM_RESTRICT a0, const PT *PRM_RESTRICT a1,
                                      ST *PRM_RESTRICT a2, ST *PRM_RESTRICT a3,
                                      QT *PRM_RESTRICT q, ptrdiff_t n, const unsigned z,
                                      const int has2, const int has3)
{
    (void)z;
    PRM_BLOCKS(i0, len, n, CT) {
        PRM_PREFETCH(a0 + i0); PRM_PREFETCH(a1 + i0);
        if (has2) PRM_PREFETCH(a2 + i0);
        if (has3) PRM_PREFETCH(a3 + i0);
        if (PRM_HAS_Q) PRM_PREFETCH(q + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            const PT x = a1[i];
            a0[i] = (PT)(a0[i] + PRM_TOUCH_P(x));
            if (has2) a2[i] = (ST)(a2[i] + PRM_TOUCH_S(x));
            if (has3) a3[i] = (ST)(a3[i] + PRM_TOUCH_S(x));
            if (PRM_HAS_Q) q[i] = (QT)(q[i] + PRM_TOUCH_Q);
        }
    }
}

void PRM_FN(touch)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)
{
    PT *a0 = (PT *)a[0];
    const PT *a1 = (const PT *)a[1];
    ST *a2 = (ST *)a[2], *a3 = (ST *)a[3];
    QT *q = (QT *)a[5];
    const unsigned z = (unsigned)((uint64_t)n >> 63);
    (void)hp; (void)pos;
    if (a2 && a3)
        PRM_LOCAL(touch_loop)(a0, a1, a2, a3, q, n, z, 1, 1);
    else if (a2)
        PRM_LOCAL(touch_loop)(a0, a1, a2, a3, q, n, z, 1, 0);
    else
        PRM_LOCAL(touch_loop)(a0, a1, a2, a3, q, n, z, 0, 0);
}

#undef PRM_TOUCH_P
#undef PRM_TOUCH_S
#undef PRM_TOUCH_Q
