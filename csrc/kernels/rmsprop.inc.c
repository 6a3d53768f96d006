/* RMSprop (torch.optim.RMSprop order of operations)          f32: 20 B/elem
 *   g <- -g                          maximize
 *   g <- g + wd*p                    weight_decay
 *   s <- alpha*s + (1-alpha)*g*g
 *   m <- lerp(m, g, 1-alpha)         centered      (+8 B/elem)
 *   d <- sqrt(s [- m*m]) + eps       or sqrt(s [- m*m] + eps) with eps_in_sqrt
 *   buf <- mu*buf + g/d ; p <- p - lr*buf        momentum  (+8 B/elem)
 *   p <- p - lr*(g/d)                            otherwise               */
PRM_INLINE void PRM_LOCAL(rmsprop_loop)(PT *PRM_RESTRICT p, const PT *PRM_RESTRICT g,
                                        ST *PRM_RESTRICT s, ST *PRM_RESTRICT m,
                                        ST *PRM_RESTRICT buf, QT *PRM_RESTRICT q, ptrdiff_t n,
                                        const prm_rmsprop_params *hp, const prm_pos *pos,
                                        const int maximize, const int decay, const int centered,
                                        const int momentum, const int eps_in_sqrt)
{
    const CT alpha = (CT)hp->alpha, c = (CT)hp->one_minus_alpha;
    const CT lr = (CT)hp->lr, eps = (CT)hp->eps;
    const CT wd = (CT)hp->weight_decay, mu = (CT)hp->momentum;
    PRM_POS_KEYS;
    (void)q;
    PRM_BLOCKS(i0, len, n, CT) {
        PRM_PREFETCH(p + i0); PRM_PREFETCH(g + i0); PRM_PREFETCH(s + i0);
        if (centered) PRM_PREFETCH(m + i0);
        if (momentum) PRM_PREFETCH(buf + i0);
        if (PRM_HAS_Q) PRM_PREFETCH(q + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            const CT g0 = LOAD_P(g[i]);
            const CT p0 = P_GET(i);
            const CT g1 = SEL(maximize, -g0, g0);
            const CT gi = SEL(decay, g1 + wd * p0, g1);
            const CT si = alpha * LOAD_S(s[i]) + c * gi * gi;
            S_PUT(s, 2, i, si);
            CT var = si;
            if (centered) {
                const CT m0 = LOAD_S(m[i]);
                const CT mi = m0 + c * (gi - m0);
                S_PUT(m, 3, i, mi);
                var = si - mi * mi;
            }
            const CT d = eps_in_sqrt ? SQRT(var + eps) : SQRT(var) + eps;
            if (momentum) {
                const CT bi = mu * LOAD_S(buf[i]) + gi / d;
                S_PUT(buf, 4, i, bi);
                P_PUT(i, p0 - lr * bi, p0);
            } else {
                P_PUT(i, p0 - lr * (gi / d), p0);
            }
        }
    }
}

void PRM_FN(rmsprop)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)
{
    PT *p = (PT *)a[0];
    const PT *g = (const PT *)a[1];
    ST *s = (ST *)a[2], *m = (ST *)a[3], *buf = (ST *)a[4];
    QT *q = (QT *)a[5];
    const prm_rmsprop_params *h = (const prm_rmsprop_params *)hp;
#define PRM_CALL(a_, b_, c_, d_, e_) \
    PRM_LOCAL(rmsprop_loop)(p, g, s, m, buf, q, n, h, pos, a_, b_, c_, d_, e_)
#if PRM_FULL
    PRM_SWITCH32(h->flags, PRM_CALL)
#else
    /* centered and momentum decide the arrays, eps_in_sqrt the square roots */
    const int f = h->flags, a0 = PRM_BIT(f, 0), a1 = PRM_BIT(f, 1);
#define PRM_RMS_CASE(k) \
    case k: PRM_CALL(a0, a1, PRM_BIT(k, 0), PRM_BIT(k, 1), PRM_BIT(k, 2)); break;
    switch ((f >> 2) & 7) {
        PRM_RMS_CASE(0) PRM_RMS_CASE(1) PRM_RMS_CASE(2) PRM_RMS_CASE(3)
        PRM_RMS_CASE(4) PRM_RMS_CASE(5) PRM_RMS_CASE(6) PRM_RMS_CASE(7)
    }
#undef PRM_RMS_CASE
#endif
#undef PRM_CALL
}
