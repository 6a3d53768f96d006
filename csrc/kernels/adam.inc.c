/* Adam / AdamW (torch.optim.Adam order of operations)        f32: 28 B/elem
 *   g <- -g                                   maximize
 *   g <- g + wd*p                             weight_decay, L2 (Adam)
 *   p <- p*(1 - lr*wd)                        weight_decay, decoupled (AdamW)
 *   m <- lerp(m, g, 1-beta1)
 *   v <- beta2*v + (1-beta2)*g*g
 *   vmax <- max(vmax, v), used below for v    amsgrad (+8 B/elem)
 *   d <- sqrt(v)/sqrt(bc2) + eps
 *   p <- p - (lr/bc1)*(m/d)                                               */
PRM_LOOP void PRM_LOCAL(adam_loop)(PT *PRM_RESTRICT p, const PT *PRM_RESTRICT g,
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
    (void)pos;
    (void)q;
    PRM_BLOCKS(i0, len, n, BT) {
        PRM_PREFETCH(p + i0); PRM_PREFETCH(g + i0); PRM_PREFETCH(m + i0); PRM_PREFETCH(v + i0);
        if (amsgrad) PRM_PREFETCH(vmax + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i += VW) {
            const VT g0 = LDP(g, i);
            const VT p0 = LDPARAM(p, q, i);
            const VT pi = SEL(shrink_p, p0 * shrink, p0);
            const VT g1 = SEL(maximize, -g0, g0);
            const VT gi = SEL(l2, g1 + wd * pi, g1);
            const VT m0 = LDS(m, i);
            const VT mi = m0 + b1 * (gi - m0);
            STS(2, m, i, mi);
            VT vi = beta2 * LDS(v, i) + c2 * gi * gi;
            STS(3, v, i, vi);
            if (amsgrad) {
                const VT vm = LDS(vmax, i);
                vi = MAXGT(vm, vi);
                STS(4, vmax, i, vi);
            }
            const VT d = DIVC(SQRT(vi), bc2_sqrt, bc2_inv) + eps;
            STPARAM(p, q, i, pi - step_size * (mi / d));
        }
    }
}

PRM_KERNEL(adam)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)
{
    PT *p = (PT *)a[0];
    const PT *g = (const PT *)a[1];
    ST *m = (ST *)a[2], *v = (ST *)a[3], *vmax = (ST *)a[4];
    QT *q = (QT *)a[5];
    const prm_adam_params *h = (const prm_adam_params *)hp;
#define PRM_CALL(a_, b_, c_, d_, e_) \
    PRM_LOCAL(adam_loop)(p, g, m, v, vmax, q, n, h, pos, a_, b_, c_, d_)
    PRM_SWITCH16(h->flags, PRM_CALL)
#undef PRM_CALL
}
