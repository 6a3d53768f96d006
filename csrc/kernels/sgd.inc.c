/* SGD with momentum (torch.optim.SGD order of operations)   f32: 20 B/elem
 *   g <- -g                                         maximize
 *   g <- g + wd*p                                   weight_decay
 *   buf <- g                                        momentum, first step
 *   buf <- mu*buf + (1-dampening)*g                 momentum, later steps
 *   g <- g + mu*buf  (nesterov)   or   g <- buf      momentum
 *   p <- p - lr*g                                   (12 B/elem without momentum) */
PRM_LOOP void PRM_LOCAL(sgd_loop)(PT *PRM_RESTRICT p, const PT *PRM_RESTRICT g,
                                  ST *PRM_RESTRICT buf, QT *PRM_RESTRICT q, ptrdiff_t n,
                                    const prm_sgd_params *hp, const prm_pos *pos,
                                    const int maximize, const int decay, const int nesterov,
                                    const int momentum, const int first_step)
{
    const CT lr = (CT)hp->lr, mu = (CT)hp->momentum;
    const CT c = (CT)hp->one_minus_dampening, wd = (CT)hp->weight_decay;
    (void)pos;
    (void)q;
    PRM_BLOCKS(i0, len, n, BT) {
        PRM_PREFETCH(p + i0); PRM_PREFETCH(g + i0);
        if (momentum && !first_step) PRM_PREFETCH(buf + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i += VW) {
            const VT g0 = LDP(g, i);
            const VT p0 = LDPARAM(p, q, i);
            const VT g1 = SEL(maximize, -g0, g0);
            VT gi = SEL(decay, g1 + wd * p0, g1);
            if (momentum) {
                const VT bi = SEL(first_step, gi, mu * LDS(buf, i) + c * gi);
                STS(2, buf, i, bi);
                gi = SEL(nesterov, gi + mu * bi, bi);
            }
            STPARAM(p, q, i, p0 - lr * gi);
        }
    }
}

PRM_KERNEL(sgd)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)
{
    PT *p = (PT *)a[0];
    const PT *g = (const PT *)a[1];
    ST *buf = (ST *)a[2];
    QT *q = (QT *)a[5];
    const prm_sgd_params *h = (const prm_sgd_params *)hp;
#define PRM_CALL(a_, b_, c_, d_, e_) \
    PRM_LOCAL(sgd_loop)(p, g, buf, q, n, h, pos, a_, b_, c_, d_, e_)
    PRM_SWITCH32(h->flags, PRM_CALL)
#undef PRM_CALL
}
