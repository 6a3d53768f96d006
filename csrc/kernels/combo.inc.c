/* combo.inc.c -- every rule for one storage combination, included by all.inc.c with
 *   PRM_P  the param's (and grad's) storage: f32, f64, bf16, f16
 *   PRM_S  the state arrays' storage (q8: 8-bit block-wise state, prm_q8.h; staged
 *          only)
 *   PRM_M  how the param is kept: none (the param alone, rounded to nearest), fp32
 *          (a float32 master in slot 5), split (bf16: the low halves in slot 5),
 *          kahan (a compensation array in the param's storage in slot 5), sr
 *          (every 16-bit value written rounded stochastically)
 * Each rule file (ema, rmsprop, adam, sgd .inc.c, listed in rules.inc.c) is one loop
 * over the element access names listed below, one copy per option set.  float32
 * and float64: plain loops over arrays of CT (float or double), vectorized by the
 * compiler.  A combination with 16-bit arrays runs the float32 loops on converted
 * stages (stage.inc.c) and, in the AVX2 and AVX-512 builds when the call may use the
 * conversion instructions, the same rule loops on vectors converted in registers
 * (vec.inc.c).  So a new rule is one loop written once, and a new storage type is
 * its conversions in prm_storage.h, stage.inc.c and vec512/vec256.inc.c.  The
 * memory-only loop (touch.inc.c) is the one rule written per combination: it must
 * move exactly the combination's bytes. */

/* ---- per storage type -------------------------------------------------------------- */
#define PRM_TYPE_f32 float
#define PRM_TYPE_f64 double
#define PRM_TYPE_bf16 uint16_t
#define PRM_TYPE_f16 uint16_t
#define PRM_TYPE_q8 uint8_t
#define PRM_CT_f32 float
#define PRM_CT_f64 double
#define PRM_CT_bf16 float
#define PRM_CT_f16 float
#define PRM_SQRT_f32 sqrtf
#define PRM_SQRT_f64 sqrt
#define PRM_DIVC_f32 prm_divc_f32
#define PRM_DIVC_f64 prm_divc_f64
#define PRM_IS16_f32 0
#define PRM_IS16_f64 0
#define PRM_IS16_bf16 1
#define PRM_IS16_f16 1
#define PRM_IS16_q8 0
#define PRM_ISQ8_f32 0   /* 8-bit block-wise state (prm_q8.h): staged, never vec */
#define PRM_ISQ8_f64 0
#define PRM_ISQ8_bf16 0
#define PRM_ISQ8_f16 0
#define PRM_ISQ8_q8 1
#define PRM_KIND_f32 0   /* the vector kernels' kind of an array (vec.inc.c) */
#define PRM_KIND_bf16 1
#define PRM_KIND_f16 2
#define PRM_KIND_f64 3

#define CT PRM_CAT(PRM_CT_, PRM_P)
#define PT PRM_CAT(PRM_TYPE_, PRM_P)
#define ST PRM_CAT(PRM_TYPE_, PRM_S)

/* slot 5 (the param's second array) of a master mode */
#define PRM_QT_none char
#define PRM_QT_sr char
#define PRM_QT_fp32 float
#define PRM_QT_split uint16_t
#define PRM_QT_kahan PRM_KCAT(PRM_TYPE_, PRM_P)   /* PT, by a second paste macro */
#define PRM_KCAT_(a, b) a##b
#define PRM_KCAT(a, b) PRM_KCAT_(a, b)
#define PRM_HASQ_none 0
#define PRM_HASQ_sr 0
#define PRM_HASQ_fp32 1
#define PRM_HASQ_split 1
#define PRM_HASQ_kahan 1
#define PRM_ISQ16_none 0
#define PRM_ISQ16_sr 0
#define PRM_ISQ16_fp32 0
#define PRM_ISQ16_split 1
#define PRM_ISQ16_kahan 1
#define QT PRM_CAT(PRM_QT_, PRM_M)
#define PRM_HAS_Q PRM_CAT(PRM_HASQ_, PRM_M)
#define PRM_KP PRM_CAT(PRM_KIND_, PRM_P)
#define PRM_KS PRM_CAT(PRM_KIND_, PRM_S)
/* every array of the combination 16-bit (prefetch blocks count in uint16_t then) */
#define PRM_ALL16 \
    (PRM_CAT(PRM_IS16_, PRM_P) && PRM_CAT(PRM_IS16_, PRM_S) && (!PRM_HAS_Q || PRM_CAT(PRM_ISQ16_, PRM_M)))

#define PRM_SFX PRM_CAT3(PRM_P, PRM_CAT(_, PRM_S), PRM_CAT(_, PRM_M))

#if PRM_CAT(PRM_IS16_, PRM_P) || PRM_CAT(PRM_IS16_, PRM_S) || PRM_CAT(PRM_ISQ8_, PRM_S)
#include "stage.inc.c"
/* the vector kernels (vec.inc.c): AVX-512 with BF16's intrinsics declared (as for
 * stage.inc.c's hardware conversions) and AVX512VL's 16-bit moves, or AVX2 with
 * F16C's; -DPRM_VEC=0 leaves them out (tools/check_vectorized.py, which checks the
 * compiler-vectorized loops) */
#if !defined(PRM_VEC) && ((defined(PRM_HW_BF16_BUILT) && defined(__AVX512VL__)) ||         \
                          (defined(PRM_HW_F16_BUILT) && !defined(__AVX512F__)))
#define PRM_VEC 1
#endif
#if defined(PRM_VEC) && PRM_VEC && !PRM_CAT(PRM_ISQ8_, PRM_S)
#include "vec.inc.c"
/* the conversion instructions the vector kernels need, of pos->hw */
#define PRM_VNEED                                                                        \
    ((PRM_KP == 1 || PRM_KS == 1 ? PRM_VNEED_BF16 : 0) |                                 \
     (PRM_KP == 2 || PRM_KS == 2 ? PRM_VNEED_F16 : 0))
/* the slots past a call's whole vectors, for the staged kernel: slot 0 is EMA's
 * average (a state array) or the param */
PRM_INLINE void PRM_LOCAL(vec_tail)(char *const *a, char **b, ptrdiff_t nv, const int ema)
{
    const size_t size[PRM_MAX_ARRAYS] = {ema ? sizeof(ST) : sizeof(PT), sizeof(PT), sizeof(ST),
                                         sizeof(ST), sizeof(ST), sizeof(QT)};
    for (int k = 0; k < PRM_MAX_ARRAYS; k++) /* novec: six pointers */
        b[k] = a[k] ? a[k] + size[k] * (size_t)nv : NULL;
}
#define PRM_CHOOSE(rule, ema)                                                            \
    void PRM_FN(rule)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)  \
    {                                                                                    \
        const ptrdiff_t nv = (pos->hw & PRM_VNEED) == PRM_VNEED ? n - n % PRM_VW : 0;    \
        if (nv > 0) PRM_FN_AS(rule, vec)(a, nv, hp, pos);                                \
        if (nv < n) {                                                                    \
            char *b[PRM_MAX_ARRAYS];                                                     \
            prm_pos at = *pos;                                                           \
            PRM_LOCAL(vec_tail)(a, b, nv, ema);                                          \
            at.first += (uint32_t)nv;                                                    \
            PRM_FN_AS(rule, staged)(b, n - nv, hp, &at);                                 \
        }                                                                                \
    }
#else
#define PRM_CHOOSE(rule, ema)                                                            \
    void PRM_FN(rule)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos)  \
    {                                                                                    \
        PRM_FN_AS(rule, staged)(a, n, hp, pos);                                          \
    }
#endif
PRM_CHOOSE(ema, 1)
PRM_CHOOSE(rmsprop, 0)
PRM_CHOOSE(adam, 0)
PRM_CHOOSE(sgd, 0)
#undef PRM_CHOOSE
#undef PRM_VNEED
#undef PRM_IS_SR
#undef PRM_ISSR_none
#undef PRM_ISSR_fp32
#undef PRM_ISSR_split
#undef PRM_ISSR_kahan
#undef PRM_ISSR_sr
#else
/* The rule files' names for a plain loop over arrays of CT (float or double):
 *   VT, VW                an element's value type and the elements per iteration
 *                         (vec.inc.c: a vector of floats, its lanes)
 *   BT                    the type PRM_BLOCKS counts in (prefetch blocks)
 *   LDP(a, i)             element i of an array of the param's storage (the grad)
 *   LDS(a, i)             ... of a state array; STS(k, a, i, x) stores x there
 *                         (k: the array's slot)
 *   LDPARAM(p, q, i), STPARAM(p, q, i, x)
 *                         the param (q: its slot-5 array, for a master mode)
 *   SQRT, DIVC (x / c for a loop constant c, prm_storage.h), SEL(c, a, b) (an
 *                         option's choice: the options are literals in each
 *                         specialised loop), MAXGT(a, b) (a > b ? a : b)
 *   PRM_LOOP, PRM_KERNEL(rule)   a rule's loop's attributes, its kernel's name */
#define VT CT
#define VW 1
#define BT CT
#define LDP(a, i) ((a)[i])
#define LDS(a, i) ((a)[i])
#define STS(k, a, i, x) ((a)[i] = (x))
#define LDPARAM(p, q, i) ((p)[i])
#define STPARAM(p, q, i, x) ((p)[i] = (x))
#define SQRT PRM_CAT(PRM_SQRT_, PRM_P)
#define DIVC PRM_CAT(PRM_DIVC_, PRM_P)
#define SEL(c, a, b) ((c) ? (a) : (b))
#define MAXGT(a, b) ((a) > (b) ? (a) : (b))
#define PRM_LOOP PRM_INLINE
#define PRM_KERNEL(rule) void PRM_FN(rule)
#include "rules.inc.c"
#endif
#include "touch.inc.c"

#undef CT
#undef PT
#undef ST
#undef QT
#undef PRM_HAS_Q
#undef PRM_KP
#undef PRM_KS
#undef PRM_ALL16
#undef PRM_SFX
#undef PRM_P
#undef PRM_S
#undef PRM_M
