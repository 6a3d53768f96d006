/* Memory-only loop: a rule's loads and stores with one add per store, the
 * bandwidth limit the benchmark compares against (EMA: a0,a1; RMSprop/SGD:
 * a0,a1,a2; Adam: a0..a3; slot 5 when the param keeps one).  a0 += a1 in the
 * param's storage (16-bit storage as integers: only bytes move); a2, a3 += a1 when
 * they share its storage, else += 1; slot 5 += 1.                               */
PRM_INLINE void PRM_LOCAL(touch_loop)(PT *PRM_RESTRICT a0, const PT *PRM_RESTRICT a1,
                                      ST *PRM_RESTRICT a2, ST *PRM_RESTRICT a3,
                                      QT *PRM_RESTRICT q, ptrdiff_t n,
                                      const int has2, const int has3)
{
    PRM_BLOCKS(i0, len, n, CT) {
        PRM_PREFETCH(a0 + i0); PRM_PREFETCH(a1 + i0);
        if (has2) PRM_PREFETCH(a2 + i0);
        if (has3) PRM_PREFETCH(a3 + i0);
        if (PRM_HAS_Q) PRM_PREFETCH(q + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            const PT x = a1[i];
            a0[i] = (PT)(a0[i] + x);
            if (has2) a2[i] = (ST)(a2[i] + (sizeof(ST) == sizeof(PT) ? (ST)x : (ST)1));
            if (has3) a3[i] = (ST)(a3[i] + (sizeof(ST) == sizeof(PT) ? (ST)x : (ST)1));
            if (PRM_HAS_Q) q[i] = (QT)(q[i] + (QT)1);
        }
    }
}

void PRM_FN(touch)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)
{
    PT *a0 = (PT *)a[0];
    const PT *a1 = (const PT *)a[1];
    ST *a2 = (ST *)a[2], *a3 = (ST *)a[3];
    QT *q = (QT *)a[5];
    (void)hp; (void)pos;
    if (a2 && a3)
        PRM_LOCAL(touch_loop)(a0, a1, a2, a3, q, n, 1, 1);
    else if (a2)
        PRM_LOCAL(touch_loop)(a0, a1, a2, a3, q, n, 1, 0);
    else
        PRM_LOCAL(touch_loop)(a0, a1, a2, a3, q, n, 0, 0);
}
