/* vec.inc.c -- the rule files' element access for a storage combination with 16-bit
 * arrays, in vectors of float32 lanes converted in registers (included by
 * combo.inc.c, after stage.inc.c, with PRM_P, PRM_S, PRM_M as there).
 *
 * The staged kernels (stage.inc.c) convert 512 elements of every array into float32
 * buffers, run the float32 loop over them and convert back: three passes over the
 * L1 cache, and while the float32 loop runs, no load waits on memory, so memory time
 * and compute time add up.  Here the same rule loop (ema, rmsprop, adam, sgd .inc.c),
 * with VT a vector of floats, converts as it loads and stores: one pass.  On a Zen
 * 5-class EPYC, bfloat16 Adam (bfloat16 state) over 6.4e7 elements went from 0.59 to
 * about 0.32 ns/elem with AVX-512 (docs/benchmarks.md).
 *
 * The vectors and their conversions are the target's: vec512.inc.c (AVX-512, 16
 * lanes) or vec256.inc.c (AVX2 with F16C, 8 lanes), each giving prm_storage.h's bits
 * exactly.  The kernels run when the call may use the conversion instructions they
 * need (PRM_VNEED in combo.inc.c, of pos->hw); otherwise the staged kernels run:
 * the tests compare both with the numpy emulation.  They take whole vectors: the
 * last n % VW elements of a call go to the staged kernel (combo.inc.c), which gives
 * the same bits (on a Zen 5-class EPYC, AVX-512's masked stores made the loop 8%
 * slower).  Every master mode: none, fp32, split, kahan, and stochastic rounding
 * (its random bits made a vector at a time, from the same counter as prm_bits). */

#ifndef PRM_VEC_ONCE
#define PRM_VEC_ONCE
#if defined(__AVX512F__)
#include "vec512.inc.c"
#else
#include "vec256.inc.c"
#endif
/* Each of those gives PRM_VT, PRM_VH (float32 lanes, their 16-bit codes), PRM_VW;
 * float32 loads and stores (prm_vldf, prm_vstf) and 16-bit ones (prm_vld16,
 * prm_vst16); the conversions prm_vwiden, prm_vround, prm_vsround (stochastic, with
 * prm_vbits' random bits); the split master's prm_vld_split, prm_vst_split; and
 * prm_vdivc, prm_vsqrt, prm_vmaxgt.  Built on them, for any width: */

/* a[i ..] as float32 (kind 0: float32, 1: bfloat16, 2: float16), and back */
PRM_VINLINE PRM_VT prm_vld(const int kind, const void *a, ptrdiff_t i)
{
    if (kind == 0) return prm_vldf((const float *)a + i);
    return prm_vwiden(kind, prm_vld16((const uint16_t *)a, i));
}

PRM_VINLINE void prm_vst(const int kind, void *a, ptrdiff_t i, PRM_VT x)
{
    if (kind == 0) prm_vstf((float *)a + i, x);
    else prm_vst16((uint16_t *)a, i, prm_vround(kind, x));
}

/* kahan (stage.inc.c's prm_kahan_out): the param's new value v against its old one */
PRM_VINLINE void prm_vst_kahan(const int kind, uint16_t *p, uint16_t *k, ptrdiff_t i, PRM_VT v)
{
    const PRM_VT old = prm_vld(kind, p, i);
    const PRM_VT u = prm_vld(kind, k, i) + (v - old);
    const PRM_VH r = prm_vround(kind, old + u);
    const PRM_VT back = prm_vwiden(kind, r) - old;
    prm_vst16(p, i, r);
    prm_vst16(k, i, prm_vround(kind, u - back));
}

/* stochastic rounding: lane j of the vector at element i of a call is element
 * pos->first + i + j of its tensor (first = pos->first) */
PRM_VINLINE void prm_vst_sr(const int kind, void *a, ptrdiff_t i, PRM_VT x, uint32_t key,
                            uint32_t first)
{
    if (kind == 0) prm_vstf((float *)a + i, x);
    else prm_vst16((uint16_t *)a, i, prm_vsround(kind, x, prm_vbits(key, first + (uint32_t)i)));
}
#endif

/* ---- this combination's element access (combo.inc.c documents the names) -------- */
#define PRM_MODE PRM_CAT(PRM_MODE_, PRM_M)
#define PRM_MODE_none 0
#define PRM_MODE_fp32 1
#define PRM_MODE_split 2
#define PRM_MODE_kahan 3
#define PRM_MODE_sr 4
#define VT PRM_VT
#define VW PRM_VW
/* prefetch blocks of PRM_PF_BLOCK bytes of the narrowest arrays when every array
 * is 16-bit (a float32 array's block would then be half prefetched: keep float) */
#if PRM_ALL16
#define BT uint16_t
#else
#define BT float
#endif
#define LDP(a, i) prm_vld(PRM_KP, a, i)
#define LDS(a, i) prm_vld(PRM_KS, a, i)
#if PRM_MODE == 4
#define STS(k, a, i, x) prm_vst_sr(PRM_KS, a, i, x, pos->key[k], pos->first)
#else
#define STS(k, a, i, x) prm_vst(PRM_KS, a, i, x)
#endif
#if PRM_MODE == 0
#define LDPARAM(p, q, i) LDP(p, i)
#define STPARAM(p, q, i, x) prm_vst(PRM_KP, p, i, x)
#elif PRM_MODE == 1
#define LDPARAM(p, q, i) prm_vld(0, q, i)
#define STPARAM(p, q, i, x)                                                              \
    do {                                                                                 \
        const VT xp_ = (x);                                                              \
        prm_vst(0, q, i, xp_);                                                           \
        prm_vst(PRM_KP, p, i, xp_);                                                      \
    } while (0)
#elif PRM_MODE == 2
#define LDPARAM(p, q, i) prm_vld_split(p, q, i)
#define STPARAM(p, q, i, x) prm_vst_split(p, q, i, x)
#elif PRM_MODE == 3
#define LDPARAM(p, q, i) LDP(p, i)
#define STPARAM(p, q, i, x) prm_vst_kahan(PRM_KP, p, q, i, x)
#else
#define LDPARAM(p, q, i) LDP(p, i)
#define STPARAM(p, q, i, x) prm_vst_sr(PRM_KP, p, i, x, pos->key[0], pos->first)
#endif
#define SQRT(x) prm_vsqrt(x)
#define DIVC(x, c, y) prm_vdivc(x, c, y)
#define SEL(c, a, b) ((c) ? (VT)(a) : (VT)(b))
#define MAXGT(a, b) prm_vmaxgt(a, b)
#define PRM_LOOP PRM_VINLINE
#define PRM_KERNEL(rule) static PRM_VATTR void PRM_FN_AS(rule, vec)
#include "rules.inc.c"
#undef PRM_MODE
#undef PRM_MODE_none
#undef PRM_MODE_fp32
#undef PRM_MODE_split
#undef PRM_MODE_kahan
#undef PRM_MODE_sr
