/* EMA:  avg <- beta*avg + (1-beta)*x                          f32: 12 B/elem
 * avg is a state array (storage ST), x has the param's storage (PT).          */
void PRM_FN(ema)(char *const *a, ptrdiff_t n, const void *hp_, const prm_pos *pos)
{
    ST *PRM_RESTRICT avg = (ST *)a[0];
    const PT *PRM_RESTRICT x = (const PT *)a[1];
    const prm_ema_params *hp = (const prm_ema_params *)hp_;
    const CT beta = (CT)hp->beta, c = (CT)hp->one_minus_beta;
    PRM_POS_KEYS;
    PRM_BLOCKS(i0, len, n, CT) {
        PRM_PREFETCH(avg + i0); PRM_PREFETCH(x + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            S_PUT(avg, 0, i, beta * LOAD_S(avg[i]) + c * LOAD_P(x[i]));
        }
    }
}
