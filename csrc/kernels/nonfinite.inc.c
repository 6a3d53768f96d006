/* 1 if any element is NaN or +-Inf (all exponent bits set), else 0: the
 * optimizers' skip-nonfinite check.  Integer test, no FP exceptions. f32: 4 B/elem
 * Included by all.inc.c per storage type with UT (its bits' type), EXP_MASK,
 * EXP_LSB and PRM_SFX. */
int PRM_FN(nonfinite)(const void *x_, ptrdiff_t n)
{
    const UT *PRM_RESTRICT x = (const UT *)x_;
    UT acc = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        /* exponent all ones (Inf/NaN) <=> adding one exponent LSB carries into the
           sign bit; an OR of those sums vectorizes on every target (a compare does not
           for 64-bit lanes on SSE2) */
        acc |= (UT)((x[i] & EXP_MASK) + EXP_LSB);
    }
    return (int)(acc >> (sizeof(UT) * 8 - 1));
}
