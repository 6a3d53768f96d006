/* Adam / AdamW (torch.optim.Adam order of operations)        f32: 28 B/elem
 *   g <- -g                                   maximize
 *   g <- g + wd*p                             weight_decay, L2 (Adam)
 *   p <- p*(1 - lr*wd)                        weight_decay, decoupled (AdamW)
 *   m <- lerp(m, g, 1-beta1)
 *   v <- beta2*v + (1-beta2)*g*g
 *   vmax <- max(vmax, v), used below for v    amsgrad (+8 B/elem)
 *   d <- sqrt(v)/sqrt(bc2) + eps
 *   p <- p - (lr/bc1)*(m/d)                                               */
PRM_INLINE void PRM_LOCAL(adam_loop)(T *PRM_RESTRICT p, const T *PRM_RESTRICT g,
                                     T *PRM_RESTRICT m, T *PRM_RESTRICT v,
                                     T *PRM_RESTRICT vmax, ptrdiff_t n,
                                     const prm_adam_params *hp, const int maximize,
                                     const int decay, const int decoupled, const int amsgrad)
{
    const T b1 = (T)hp->one_minus_beta1;
    const T beta2 = (T)hp->beta2, c2 = (T)hp->one_minus_beta2;
    const T eps = (T)hp->eps, wd = (T)hp->weight_decay, shrink = (T)hp->decay;
    const T step_size = (T)hp->step_size, bc2_sqrt = (T)hp->bc2_sqrt;
    PRM_BLOCKS(i0, len, n, T) {
        PRM_PREFETCH(p + i0); PRM_PREFETCH(g + i0); PRM_PREFETCH(m + i0); PRM_PREFETCH(v + i0);
        if (amsgrad) PRM_PREFETCH(vmax + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            T gi = maximize ? -g[i] : g[i];
            T pi = p[i];
            if (decay && decoupled) pi = pi * shrink;
            if (decay && !decoupled) gi = gi + wd * pi;
            const T mi = m[i] + b1 * (gi - m[i]);
            m[i] = mi;
            T vi = beta2 * v[i] + c2 * gi * gi;
            v[i] = vi;
            if (amsgrad) {
                vi = vmax[i] > vi ? vmax[i] : vi;
                vmax[i] = vi;
            }
            const T d = SQRT(vi) / bc2_sqrt + eps;
            p[i] = pi - step_size * (mi / d);
        }
    }
}

void PRM_FN(adam)(T *p, const T *g, T *m, T *v, T *vmax, ptrdiff_t n, const prm_adam_params *hp)
{
#define PRM_CALL(a, b, c, d, e) PRM_LOCAL(adam_loop)(p, g, m, v, vmax, n, hp, a, b, c, d)
    PRM_SWITCH16(hp->flags, PRM_CALL)
#undef PRM_CALL
}
