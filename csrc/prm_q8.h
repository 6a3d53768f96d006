/* prm_q8.h -- 8-bit block-wise state (bitsandbytes' encoding), one value and one
 * block at a time; stage.inc.c runs these on the kernels' stages, dispatch.c on the
 * public quantize/dequantize calls.  Integer code around one division, so every
 * target gives the same bits.
 *
 * A state array of n elements is n uint8 codes and one float32 absmax per block of
 * PRM_Q8_BLOCK consecutive elements (the last block may be shorter).  A value is
 * map[code] * absmax (a float32 product); a block is written as
 *   absmax = max |x| over the block (a NaN in it makes absmax NaN: the integer order
 *            of |x|'s bits puts NaN above Inf above every number)
 *   code   = the map entry nearest to x / absmax (the distances in float32, a tie to
 *            the lower code), found in the cells of prm_qmap.h; a block of zeros has
 *            absmax 0 and the code of 0; so has every element of a block whose absmax
 *            is NaN or Inf (it reads back as NaN: 0 * NaN, 0 * Inf), whatever the
 *            platform's NaN propagation.
 * First moments and momentum use the signed map, second moments the unsigned one
 * (prm_q8_unsigned_slots). */
#ifndef PRM_Q8_H
#define PRM_Q8_H

#include <stddef.h>
#include <stdint.h>

#include "prm_qmap.h"
#include "prm_storage.h"

#define PRM_Q8_BLOCK 256

/* The code of x (a value divided by its block's absmax) in a map's cells. */
PRM_INLINE uint32_t prm_q8_code(const uint32_t *cells, int base, int ncell, float x)
{
    const uint32_t u = prm_u32(x), a = u & 0x7fffffffu;
    int h = (int)(a >> 16) - base;
    h = h < 0 ? 0 : h;
    h = h > ncell - 1 ? ncell - 1 : h;   /* 1.0's cell, also for NaN */
    const uint32_t e = cells[h + (int)(u >> 31) * ncell];
    return (a & 0xffffu) >= (e >> 16) ? (e >> 8) & 0xffu : e & 0xffu;
}

/* max |x[i]|, i < n, as described above */
PRM_INLINE float prm_q8_absmax(const float *PRM_RESTRICT x, ptrdiff_t n)
{
    uint32_t m = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        const uint32_t a = prm_u32(x[i]) & 0x7fffffffu;
        m = a > m ? a : m;
    }
    return prm_f32(m);
}

/* One block (n <= PRM_Q8_BLOCK values) into its codes and absmax. */
PRM_INLINE void prm_q8_put_block(uint8_t *PRM_RESTRICT codes, float *PRM_RESTRICT absmax,
                                 const float *PRM_RESTRICT x, ptrdiff_t n, int is_unsigned)
{
    const float am = prm_q8_absmax(x, n);
    const float d = am == 0.0f ? 1.0f : am;
    *absmax = am;
    if (!(prm_u32(am) < 0x7f800000u)) {   /* NaN or Inf: the block reads back as NaN */
        for (ptrdiff_t i = 0; i < n; i++)
            codes[i] = is_unsigned ? PRM_Q8_UNSIGNED_ZERO : PRM_Q8_SIGNED_ZERO;
        return;
    }
    if (is_unsigned) {
        for (ptrdiff_t i = 0; i < n; i++)
            codes[i] = (uint8_t)prm_q8_code(prm_q8_cells_unsigned, PRM_Q8_UNSIGNED_BASE,
                                            PRM_Q8_UNSIGNED_NCELL, x[i] / d);
    } else {
        for (ptrdiff_t i = 0; i < n; i++)
            codes[i] = (uint8_t)prm_q8_code(prm_q8_cells_signed, PRM_Q8_SIGNED_BASE,
                                            PRM_Q8_SIGNED_NCELL, x[i] / d);
    }
}

/* One block's values: map[code] * absmax. */
PRM_INLINE void prm_q8_get_block(float *PRM_RESTRICT x, const uint8_t *PRM_RESTRICT codes,
                                 float absmax, ptrdiff_t n, int is_unsigned)
{
    const uint32_t *map = is_unsigned ? prm_q8_map_unsigned : prm_q8_map_signed;
    for (ptrdiff_t i = 0; i < n; i++) x[i] = prm_f32(map[codes[i]]) * absmax;
}

/* n values from element 0 of a block on: blocks of PRM_Q8_BLOCK, the last shorter */
PRM_INLINE void prm_q8_put(uint8_t *PRM_RESTRICT codes, float *PRM_RESTRICT absmax,
                           const float *PRM_RESTRICT x, ptrdiff_t n, int is_unsigned)
{
    for (ptrdiff_t i = 0; i < n; i += PRM_Q8_BLOCK) /* novec: the blocks */
        prm_q8_put_block(codes + i, absmax + i / PRM_Q8_BLOCK, x + i,
                         n - i < PRM_Q8_BLOCK ? n - i : PRM_Q8_BLOCK, is_unsigned);
}

PRM_INLINE void prm_q8_get(float *PRM_RESTRICT x, const uint8_t *PRM_RESTRICT codes,
                           const float *PRM_RESTRICT absmax, ptrdiff_t n, int is_unsigned)
{
    for (ptrdiff_t i = 0; i < n; i += PRM_Q8_BLOCK) /* novec: the blocks */
        prm_q8_get_block(x + i, codes + i, absmax[i / PRM_Q8_BLOCK],
                         n - i < PRM_Q8_BLOCK ? n - i : PRM_Q8_BLOCK, is_unsigned);
}

#endif /* PRM_Q8_H */
