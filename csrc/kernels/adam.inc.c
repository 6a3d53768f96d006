/* Adam / AdamW (torch.optim.Adam order of operations)        f32: 28 B/elem
 *   g <- -g                                   maximize
 *   g <- g + wd*p                             weight_decay, L2 (Adam)
 *   p <- p*(1 - lr*wd)                        weight_decay, decoupled (AdamW)
 *   m <- lerp(m, g, 1-beta1)
 *   v <- beta2*v + (1-beta2)*g*g
 *   vmax <- max(vmax, v), used below for v    amsgrad (+8 B/elem)
 *   d <- sqrt(v)/sqrt(bc2) + eps
 *   p <- p - (lr/bc1)*(m/d)                                               */
PRM_INLINE void PRM_LOCAL(adam_loop)(PT *PRM_RESTRICT p, const PT *PRM_RESTRICT g,
                                     ST *PRM_RESTRICT m, ST *PRM_RESTRICT v,
                                     ST *PRM_RESTRICT vmax, QT *PRM_RESTRICT q, ptrdiff_t n,
                                     const prm_adam_params *hp, const prm_pos *pos,
                                     const int maximize, const int decay, const int decoupled,
                                     const int amsgrad)
{
    const CT b1 = (CT)hp->one_minus_beta1;
    const CT beta2 = (CT)hp->beta2, c2 = (CT)hp->one_minus_beta2;
    const CT eps = (CT)hp->eps, wd = (CT)hp->weight_decay, shrink = (CT)hp->decay;
    const CT step_size = (CT)hp->step_size, bc2_sqrt = (CT)hp->bc2_sqrt;
    const CT bc2_inv = (CT)1 / bc2_sqrt;   /* for DIVC: sqrt(v)/bc2_sqrt, a division's bits */
    const int shrink_p = decay && decoupled, l2 = decay && !decoupled;
    PRM_POS_KEYS;
    (void)q;
    PRM_BLOCKS(i0, len, n, CT) {
        PRM_PREFETCH(p + i0); PRM_PREFETCH(g + i0); PRM_PREFETCH(m + i0); PRM_PREFETCH(v + i0);
        if (amsgrad) PRM_PREFETCH(vmax + i0);
        if (PRM_HAS_Q) PRM_PREFETCH(q + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            const CT g0 = LOAD_P(g[i]);
            const CT p0 = P_GET(i);
            const CT pi = SEL(shrink_p, p0 * shrink, p0);
            const CT g1 = SEL(maximize, -g0, g0);
            const CT gi = SEL(l2, g1 + wd * pi, g1);
            const CT m0 = LOAD_S(m[i]);
            const CT mi = m0 + b1 * (gi - m0);
            S_PUT(m, 2, i, mi);
            CT vi = beta2 * LOAD_S(v[i]) + c2 * gi * gi;
            S_PUT(v, 3, i, vi);
            if (amsgrad) {
                const CT vm = LOAD_S(vmax[i]);
                vi = SEL(vm > vi, vm, vi);
                S_PUT(vmax, 4, i, vi);
            }
            const CT d = DIVC(SQRT(vi), bc2_sqrt, bc2_inv) + eps;
            P_PUT(i, pi - step_size * (mi / d), p0);
        }
    }
}

void PRM_FN(adam)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)
{
    PT *p = (PT *)a[0];
    const PT *g = (const PT *)a[1];
    ST *m = (ST *)a[2], *v = (ST *)a[3], *vmax = (ST *)a[4];
    QT *q = (QT *)a[5];
    const prm_adam_params *h = (const prm_adam_params *)hp;
#define PRM_CALL(a_, b_, c_, d_, e_) PRM_LOCAL(adam_loop)(p, g, m, v, vmax, q, n, h, pos, a_, b_, c_, d_)
#if PRM_FULL
    PRM_SWITCH16(h->flags, PRM_CALL)
#else
    const int f = h->flags;   /* amsgrad decides the arrays */
    if (f & PRM_AMSGRAD) PRM_CALL(PRM_BIT(f, 0), PRM_BIT(f, 1), PRM_BIT(f, 2), 1, 0);
    else PRM_CALL(PRM_BIT(f, 0), PRM_BIT(f, 1), PRM_BIT(f, 2), 0, 0);
#endif
#undef PRM_CALL
}
