/* SGD with momentum (torch.optim.SGD order of operations)   f32: 20 B/elem
 *   g <- -g                                         maximize
 *   g <- g + wd*p                                   weight_decay
 *   buf <- g                                        momentum, first step
 *   buf <- mu*buf + (1-dampening)*g                 momentum, later steps
 *   g <- g + mu*buf  (nesterov)   or   g <- buf      momentum
 *   p <- p - lr*g                                   (12 B/elem without momentum) */
PRM_INLINE void PRM_LOCAL(sgd_loop)(T *PRM_RESTRICT p, const T *PRM_RESTRICT g,
                                    T *PRM_RESTRICT buf, ptrdiff_t n, const prm_sgd_params *hp,
                                    const int maximize, const int decay, const int nesterov,
                                    const int momentum, const int first)
{
    const T lr = (T)hp->lr, mu = (T)hp->momentum;
    const T c = (T)hp->one_minus_dampening, wd = (T)hp->weight_decay;
    PRM_BLOCKS(i0, len, n, T) {
        PRM_PREFETCH(p + i0); PRM_PREFETCH(g + i0);
        if (momentum && !first) PRM_PREFETCH(buf + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            T gi = maximize ? -g[i] : g[i];
            if (decay) gi = gi + wd * p[i];
            if (momentum) {
                const T bi = first ? gi : mu * buf[i] + c * gi;
                buf[i] = bi;
                gi = nesterov ? gi + mu * bi : bi;
            }
            p[i] = p[i] - lr * gi;
        }
    }
}

void PRM_FN(sgd)(T *p, const T *g, T *buf, ptrdiff_t n, const prm_sgd_params *hp)
{
#define PRM_CALL(a, b, c, d, e) PRM_LOCAL(sgd_loop)(p, g, buf, n, hp, a, b, c, d, e)
    PRM_SWITCH32(hp->flags, PRM_CALL)
#undef PRM_CALL
}
