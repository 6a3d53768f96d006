/* EMA:  avg <- beta*avg + (1-beta)*x                          f32: 12 B/elem */
void PRM_FN(ema)(T *PRM_RESTRICT avg, const T *PRM_RESTRICT x, ptrdiff_t n,
                 const prm_ema_params *hp)
{
    const T beta = (T)hp->beta, c = (T)hp->one_minus_beta;
    PRM_BLOCKS(i0, len, n, T) {
        PRM_PREFETCH(avg + i0); PRM_PREFETCH(x + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            avg[i] = beta * avg[i] + c * x[i];
        }
    }
}

/* Memory-only loop: a rule's loads and stores with one add per store, the
 * bandwidth limit the benchmark compares against (EMA: a0,a1; RMSprop/SGD:
 * a0,a1,a2; Adam: a0..a3).                                                     */
PRM_INLINE void PRM_LOCAL(touch_loop)(T *PRM_RESTRICT a0, const T *PRM_RESTRICT a1,
                                      T *PRM_RESTRICT a2, T *PRM_RESTRICT a3, ptrdiff_t n,
                                      const int has2, const int has3)
{
    PRM_BLOCKS(i0, len, n, T) {
        PRM_PREFETCH(a0 + i0); PRM_PREFETCH(a1 + i0);
        if (has2) PRM_PREFETCH(a2 + i0);
        if (has3) PRM_PREFETCH(a3 + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            const T x = a1[i];
            a0[i] = a0[i] + x;
            if (has2) a2[i] = a2[i] + x;
            if (has3) a3[i] = a3[i] + x;
        }
    }
}

void PRM_FN(touch)(T *a0, const T *a1, T *a2, T *a3, ptrdiff_t n)
{
    if (a2 && a3)
        PRM_LOCAL(touch_loop)(a0, a1, a2, a3, n, 1, 1);
    else if (a2)
        PRM_LOCAL(touch_loop)(a0, a1, a2, a3, n, 1, 0);
    else
        PRM_LOCAL(touch_loop)(a0, a1, a2, a3, n, 0, 0);
}

/* 1 if any element is NaN or +-Inf (all exponent bits set), else 0: the
 * optimizers' skip-nonfinite check.  Integer test, no FP exceptions. f32: 4 B/elem */
int PRM_FN(nonfinite)(const T *PRM_RESTRICT x, ptrdiff_t n)
{
    UT acc = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        UT u;
        memcpy(&u, &x[i], sizeof u);   /* the bits, without breaking aliasing rules */
        /* exponent all ones (Inf/NaN) <=> adding one exponent LSB carries into the
           sign bit; an OR of those sums vectorizes on every target (a compare does not
           for 64-bit lanes on SSE2) */
        acc |= (u & EXP_MASK) + EXP_LSB;
    }
    return (int)(acc >> (sizeof(UT) * 8 - 1));
}
