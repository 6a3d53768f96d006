/* EMA:  avg <- beta*avg + (1-beta)*x                          f32: 12 B/elem
 * avg (slot 0) is a state array (storage ST), x (slot 1) has the param's (PT). */
PRM_LOOP void PRM_LOCAL(ema_loop)(ST *PRM_RESTRICT avg, const PT *PRM_RESTRICT x, ptrdiff_t n,
                                  const prm_ema_params *hp, const prm_pos *pos)
{
    const CT beta = (CT)hp->beta, c = (CT)hp->one_minus_beta;
    (void)pos;
    PRM_BLOCKS(i0, len, n, BT) {
        PRM_PREFETCH(avg + i0); PRM_PREFETCH(x + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i += VW) {
            STS(0, avg, i, beta * LDS(avg, i) + c * LDP(x, i));
        }
    }
}

PRM_KERNEL(ema)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)
{
    PRM_LOCAL(ema_loop)((ST *)a[0], (const PT *)a[1], n, (const prm_ema_params *)hp, pos);
}
