/* EMA:  avg <- beta*avg + (1-beta)*x                          f32: 12 B/elem
 * avg is a state array (storage CT), x has the param's storage (CT).          */
void PRM_FN(ema)(char *const *a, ptrdiff_t n, const void *hp_, const prm_pos *pos)
{
    CT *PRM_RESTRICT avg = (CT *)a[0];
    const CT *PRM_RESTRICT x = (const CT *)a[1];
    const prm_ema_params *hp = (const prm_ema_params *)hp_;
    const CT beta = (CT)hp->beta, c = (CT)hp->one_minus_beta;
    (void)pos;
    PRM_BLOCKS(i0, len, n, CT) {
        PRM_PREFETCH(avg + i0); PRM_PREFETCH(x + i0);
        for (ptrdiff_t i = i0; i < i0 + len; i++) {
            avg[i] = beta * avg[i] + c * x[i];
        }
    }
}
