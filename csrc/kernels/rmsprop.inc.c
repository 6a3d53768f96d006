/* RMSprop (torch.optim.RMSprop order of operations)          f32: 20 B/elem
 *   g <- -g                          maximize
 *   g <- g + wd*p                    weight_decay
 *   s <- alpha*s + (1-alpha)*g*g
 *   m <- lerp(m, g, 1-alpha)         centered      (+8 B/elem)
 *   d <- sqrt(s [- m*m]) + eps       or sqrt(s [- m*m] + eps) with eps_in_sqrt
 *   buf <- mu*buf + g/d ; p <- p - lr*buf        momentum  (+8 B/elem)
 *   p <- p - lr*(g/d)                            otherwise               */
PRM_LOOP void PRM_LOCAL(rmsprop_loop)(PT *PRM_RESTRICT p, const PT *PRM_RESTRICT g,
                                      ST *PRM_RESTRICT s, ST *PRM_RESTRICT m,
                                      ST *PRM_RESTRICT buf, QT *PRM_RESTRICT q, ptrdiff_t n,
                                        const prm_rmsprop_params *hp, const prm_pos *pos,
                                        const int maximize, const int decay, const int centered,
                                        const int momentum, const int eps_in_sqrt)
{
    const CT alpha = (CT)hp->alpha, c = (CT)hp->one_minus_alpha;
    const CT lr = (CT)hp->lr, eps = (CT)hp->eps;
    const CT wd = (CT)hp->weight_decay, mu = (CT)hp->momentum;
    (void)pos;
    (void)q;
    PRM_BLOCKS(i0, len, n, BT) {
        PRM_PREFETCH(p + i0); PRM_PREFETCH(g + i0); PRM_PREFETCH(s + i0);
        if (centered) PRM_PREFETCH(m + i0);
        if (momentum) PRM_PREFETCH(buf + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i += VW) {
            const VT g0 = LDP(g, i);
            const VT p0 = LDPARAM(p, q, i);
            const VT g1 = SEL(maximize, -g0, g0);
            const VT gi = SEL(decay, g1 + wd * p0, g1);
            const VT si = alpha * LDS(s, i) + c * gi * gi;
            STS(2, s, i, si);
            VT var = si;
            if (centered) {
                const VT m0 = LDS(m, i);
                const VT mi = m0 + c * (gi - m0);
                STS(3, m, i, mi);
                var = si - mi * mi;
            }
            const VT d = SEL(eps_in_sqrt, SQRT(var + eps), SQRT(var) + eps);
            if (momentum) {
                const VT bi = mu * LDS(buf, i) + gi / d;
                STS(4, buf, i, bi);
                STPARAM(p, q, i, p0 - lr * bi);
            } else {
                STPARAM(p, q, i, p0 - lr * (gi / d));
            }
        }
    }
}

PRM_KERNEL(rmsprop)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)
{
    PT *p = (PT *)a[0];
    const PT *g = (const PT *)a[1];
    ST *s = (ST *)a[2], *m = (ST *)a[3], *buf = (ST *)a[4];
    QT *q = (QT *)a[5];
    const prm_rmsprop_params *h = (const prm_rmsprop_params *)hp;
#define PRM_CALL(a_, b_, c_, d_, e_) \
    PRM_LOCAL(rmsprop_loop)(p, g, s, m, buf, q, n, h, pos, a_, b_, c_, d_, e_)
    PRM_SWITCH32(h->flags, PRM_CALL)
#undef PRM_CALL
}
