/* SGD with momentum (torch.optim.SGD order of operations)   f32: 20 B/elem
 *   g <- -g                                         maximize
 *   g <- g + wd*p                                   weight_decay
 *   buf <- g                                        momentum, first step
 *   buf <- mu*buf + (1-dampening)*g                 momentum, later steps
 *   g <- g + mu*buf  (nesterov)   or   g <- buf      momentum
 *   p <- p - lr*g                                   (12 B/elem without momentum) */
PRM_INLINE void PRM_LOCAL(sgd_loop)(CT *PRM_RESTRICT p, const CT *PRM_RESTRICT g,
                                    CT *PRM_RESTRICT buf, ptrdiff_t n,
                                    const prm_sgd_params *hp, const prm_pos *pos,
                                    const int maximize, const int decay, const int nesterov,
                                    const int momentum, const int first_step)
{
    const CT lr = (CT)hp->lr, mu = (CT)hp->momentum;
    const CT c = (CT)hp->one_minus_dampening, wd = (CT)hp->weight_decay;
    (void)pos;
    PRM_BLOCKS(i0, len, n, CT) {
        PRM_PREFETCH(p + i0); PRM_PREFETCH(g + i0);
        if (momentum && !first_step) PRM_PREFETCH(buf + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            const CT g0 = g[i];
            const CT p0 = p[i];
            const CT g1 = SEL(maximize, -g0, g0);
            CT gi = SEL(decay, g1 + wd * p0, g1);
            if (momentum) {
                const CT bi = first_step ? gi : mu * buf[i] + c * gi;
                buf[i] = bi;
                gi = SEL(nesterov, gi + mu * bi, bi);
            }
            p[i] = p0 - lr * gi;
        }
    }
}

void PRM_FN(sgd)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)
{
    CT *p = (CT *)a[0];
    const CT *g = (const CT *)a[1];
    CT *buf = (CT *)a[2];
    const prm_sgd_params *h = (const prm_sgd_params *)hp;
#define PRM_CALL(a_, b_, c_, d_, e_) PRM_LOCAL(sgd_loop)(p, g, buf, n, h, pos, a_, b_, c_, d_, e_)
    PRM_SWITCH32(h->flags, PRM_CALL)
#undef PRM_CALL
}
