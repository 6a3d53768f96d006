/* RMSprop (torch.optim.RMSprop order of operations)          f32: 20 B/elem
 *   g <- -g                          maximize
 *   g <- g + wd*p                    weight_decay
 *   s <- alpha*s + (1-alpha)*g*g
 *   m <- lerp(m, g, 1-alpha)         centered      (+8 B/elem)
 *   d <- sqrt(s [- m*m]) + eps       or sqrt(s [- m*m] + eps) with eps_in_sqrt
 *   buf <- mu*buf + g/d ; p <- p - lr*buf        momentum  (+8 B/elem)
 *   p <- p - lr*(g/d)                            otherwise               */
PRM_INLINE void PRM_LOCAL(rmsprop_loop)(T *PRM_RESTRICT p, const T *PRM_RESTRICT g,
                                        T *PRM_RESTRICT s, T *PRM_RESTRICT m,
                                        T *PRM_RESTRICT buf, ptrdiff_t n,
                                        const prm_rmsprop_params *hp, const int maximize,
                                        const int decay, const int centered,
                                        const int momentum, const int eps_in_sqrt)
{
    const T alpha = (T)hp->alpha, c = (T)hp->one_minus_alpha;
    const T lr = (T)hp->lr, eps = (T)hp->eps;
    const T wd = (T)hp->weight_decay, mu = (T)hp->momentum;
    PRM_BLOCKS(i0, len, n, T) {
        PRM_PREFETCH(p + i0); PRM_PREFETCH(g + i0); PRM_PREFETCH(s + i0);
        if (centered) PRM_PREFETCH(m + i0);
        if (momentum) PRM_PREFETCH(buf + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            T gi = maximize ? -g[i] : g[i];
            if (decay) gi = gi + wd * p[i];
            const T si = alpha * s[i] + c * gi * gi;
            s[i] = si;
            T var = si;
            if (centered) {
                const T mi = m[i] + c * (gi - m[i]);
                m[i] = mi;
                var = si - mi * mi;
            }
            const T d = eps_in_sqrt ? SQRT(var + eps) : SQRT(var) + eps;
            if (momentum) {
                const T bi = mu * buf[i] + gi / d;
                buf[i] = bi;
                p[i] = p[i] - lr * bi;
            } else {
                p[i] = p[i] - lr * (gi / d);
            }
        }
    }
}

void PRM_FN(rmsprop)(T *p, const T *g, T *s, T *m, T *buf, ptrdiff_t n,
                     const prm_rmsprop_params *hp)
{
#define PRM_CALL(a, b, c, d, e) PRM_LOCAL(rmsprop_loop)(p, g, s, m, buf, n, hp, a, b, c, d, e)
    PRM_SWITCH32(hp->flags, PRM_CALL)
#undef PRM_CALL
}
