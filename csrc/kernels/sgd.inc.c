/* SGD with momentum (torch.optim.SGD order of operations)   f32: 20 B/elem
 *   g <- -g                                         maximize
 *   g <- g + wd*p                                   weight_decay
 *   buf <- g                                        momentum, first step
 *   buf <- mu*buf + (1-dampening)*g                 momentum, later steps
 *   g <- g + mu*buf  (nesterov)   or   g <- buf      momentum
 *   p <- p - lr*g                                   (12 B/elem without momentum) */
PRM_INLINE void PRM_LOCAL(sgd_loop)(PT *PRM_RESTRICT p, const PT *PRM_RESTRICT g,
                                    ST *PRM_RESTRICT buf, QT *PRM_RESTRICT q, ptrdiff_t n,
                                    const prm_sgd_params *hp, const prm_pos *pos,
                                    const int maximize, const int decay, const int nesterov,
                                    const int momentum, const int first_step)
{
    const CT lr = (CT)hp->lr, mu = (CT)hp->momentum;
    const CT c = (CT)hp->one_minus_dampening, wd = (CT)hp->weight_decay;
    PRM_POS_KEYS;
    (void)q;
    PRM_BLOCKS(i0, len, n, CT) {
        PRM_PREFETCH(p + i0); PRM_PREFETCH(g + i0);
        if (momentum && !first_step) PRM_PREFETCH(buf + i0);
        if (PRM_HAS_Q) PRM_PREFETCH(q + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            const CT g0 = LOAD_P(g[i]);
            const CT p0 = P_GET(i);
            const CT g1 = SEL(maximize, -g0, g0);
            CT gi = SEL(decay, g1 + wd * p0, g1);
            if (momentum) {
                const CT bi = first_step ? gi : mu * LOAD_S(buf[i]) + c * gi;
                S_PUT(buf, 2, i, bi);
                gi = SEL(nesterov, gi + mu * bi, bi);
            }
            P_PUT(i, p0 - lr * gi, p0);
        }
    }
}

void PRM_FN(sgd)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)
{
    PT *p = (PT *)a[0];
    const PT *g = (const PT *)a[1];
    ST *buf = (ST *)a[2];
    QT *q = (QT *)a[5];
    const prm_sgd_params *h = (const prm_sgd_params *)hp;
#define PRM_CALL(a_, b_, c_, d_, e_) PRM_LOCAL(sgd_loop)(p, g, buf, q, n, h, pos, a_, b_, c_, d_, e_)
#if PRM_FULL
    PRM_SWITCH32(h->flags, PRM_CALL)
#else
    /* momentum and the first step decide the arrays */
    const int f = h->flags, a0 = PRM_BIT(f, 0), a1 = PRM_BIT(f, 1), a2 = PRM_BIT(f, 2);
    if (!(f & PRM_MOMENTUM)) PRM_CALL(a0, a1, a2, 0, 0);
    else if (f & PRM_FIRST_STEP) PRM_CALL(a0, a1, a2, 1, 1);
    else PRM_CALL(a0, a1, a2, 1, 0);
#endif
#undef PRM_CALL
}
