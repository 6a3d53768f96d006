/* RMSprop (torch.optim.RMSprop order of operations)          f32: 20 B/elem
 *   g <- -g                          maximize
 *   g <- g + wd*p                    weight_decay
 *   s <- alpha*s + (1-alpha)*g*g
 *   m <- lerp(m, g, 1-alpha)         centered      (+8 B/elem)
 *   d <- sqrt(s [- m*m]) + eps       or sqrt(s [- m*m] + eps) with eps_in_sqrt
 *   buf <- mu*buf + g/d ; p <- p - lr*buf        momentum  (+8 B/elem)
 *   p <- p - lr*(g/d)                            otherwise               */
PRM_INLINE void PRM_LOCAL(rmsprop_loop)(CT *PRM_RESTRICT p, const CT *PRM_RESTRICT g,
                                        CT *PRM_RESTRICT s, CT *PRM_RESTRICT m,
                                        CT *PRM_RESTRICT buf, ptrdiff_t n,
                                        const prm_rmsprop_params *hp, const prm_pos *pos,
                                        const int maximize, const int decay, const int centered,
                                        const int momentum, const int eps_in_sqrt)
{
    const CT alpha = (CT)hp->alpha, c = (CT)hp->one_minus_alpha;
    const CT lr = (CT)hp->lr, eps = (CT)hp->eps;
    const CT wd = (CT)hp->weight_decay, mu = (CT)hp->momentum;
    (void)pos;
    PRM_BLOCKS(i0, len, n, CT) {
        PRM_PREFETCH(p + i0); PRM_PREFETCH(g + i0); PRM_PREFETCH(s + i0);
        if (centered) PRM_PREFETCH(m + i0);
        if (momentum) PRM_PREFETCH(buf + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            const CT g0 = g[i];
            const CT p0 = p[i];
            const CT g1 = SEL(maximize, -g0, g0);
            const CT gi = SEL(decay, g1 + wd * p0, g1);
            const CT si = alpha * s[i] + c * gi * gi;
            s[i] = si;
            CT var = si;
            if (centered) {
                const CT m0 = m[i];
                const CT mi = m0 + c * (gi - m0);
                m[i] = mi;
                var = si - mi * mi;
            }
            const CT d = eps_in_sqrt ? SQRT(var + eps) : SQRT(var) + eps;
            if (momentum) {
                const CT bi = mu * buf[i] + gi / d;
                buf[i] = bi;
                p[i] = p0 - lr * bi;
            } else {
                p[i] = p0 - lr * (gi / d);
            }
        }
    }
}

void PRM_FN(rmsprop)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)
{
    CT *p = (CT *)a[0];
    const CT *g = (const CT *)a[1];
    CT *s = (CT *)a[2], *m = (CT *)a[3], *buf = (CT *)a[4];
    const prm_rmsprop_params *h = (const prm_rmsprop_params *)hp;
#define PRM_CALL(a_, b_, c_, d_, e_) \
    PRM_LOCAL(rmsprop_loop)(p, g, s, m, buf, n, h, pos, a_, b_, c_, d_, e_)
    PRM_SWITCH32(h->flags, PRM_CALL)
#undef PRM_CALL
}
