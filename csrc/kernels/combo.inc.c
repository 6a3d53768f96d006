/* combo.inc.c -- every rule for one storage combination, included by all.inc.c with
 *   PRM_P  the param's (and grad's) storage: f32, f64, bf16, f16
 *   PRM_S  the state arrays' storage
 *   PRM_M  how the param is kept: none (the param alone, rounded to nearest), fp32
 *          (a float32 master in slot 5), split (bf16: the low halves in slot 5),
 *          kahan (a compensation array in the param's storage in slot 5), sr
 *          (every 16-bit value written rounded stochastically)
 * The rules see only the macros below: CT (compute type), PT/ST/QT (the types of the
 * param, state and slot-5 arrays), LOAD_P/LOAD_S (an element as CT), P_GET/P_PUT
 * (the param's value and its store, given the value loaded) and S_PUT (a state
 * store).  A new storage type is a block of PRM_*_<name> macros in this file; a new
 * rule uses only these macros. */

/* ---- per storage type -------------------------------------------------------------- */
#define PRM_TYPE_f32 float
#define PRM_TYPE_f64 double
#define PRM_TYPE_bf16 uint16_t
#define PRM_TYPE_f16 uint16_t
#define PRM_CT_f32 float
#define PRM_CT_f64 double
#define PRM_CT_bf16 float
#define PRM_CT_f16 float
#define PRM_LOAD_f32(x) (x)
#define PRM_LOAD_f64(x) (x)
#define PRM_LOAD_bf16(x) prm_load_bf16(x)
#define PRM_LOAD_f16(x) prm_load_f16(x)
#define PRM_ROUND_f32(c) (c)
#define PRM_ROUND_f64(c) (c)
#define PRM_ROUND_bf16(c) prm_round_bf16(c)
#define PRM_ROUND_f16(c) prm_round_f16(c)
#define PRM_SROUND_f32(c, r) (c)
#define PRM_SROUND_f64(c, r) (c)
#define PRM_SROUND_bf16(c, r) prm_sround_bf16(c, r)
#define PRM_SROUND_f16(c, r) prm_sround_f16(c, r)

#define PRM_SQRT_f32 sqrtf
#define PRM_SQRT_f64 sqrt
#define PRM_SQRT_bf16 sqrtf
#define PRM_SQRT_f16 sqrtf
#define PRM_DIVC_f32 prm_divc_f32
#define PRM_DIVC_f64 prm_divc_f64
#define PRM_DIVC_bf16 prm_divc_f32
#define PRM_DIVC_f16 prm_divc_f32

/* float32 and float64 params: one loop per option set (PRM_SWITCH*); 16-bit params:
 * one per set of the options that decide which arrays a loop touches, the others
 * (maximize, weight decay, ...) as run-time values the loop selects with.  A
 * select picks the same value as the specialized loop computes, so the bits are
 * the same; it keeps the kernels' size and build time in bounds. */
#define PRM_FULL_f32 1
#define PRM_FULL_f64 1
#define PRM_FULL_bf16 0
#define PRM_FULL_f16 0
#define PRM_FULL PRM_CAT(PRM_FULL_, PRM_P)
/* SEL(c, a, b): an option's choice; a literal c folds, a run-time one selects bits */
#if PRM_FULL
#define SEL(c, a, b) ((c) ? (a) : (b))
#else
#define SEL(c, a, b) prm_sel(c, a, b)
#endif

#define CT PRM_CAT(PRM_CT_, PRM_P)
#define SQRT PRM_CAT(PRM_SQRT_, PRM_P)
#define DIVC PRM_CAT(PRM_DIVC_, PRM_P)
#define PT PRM_CAT(PRM_TYPE_, PRM_P)
#define ST PRM_CAT(PRM_TYPE_, PRM_S)
#define LOAD_P(x) PRM_CAT(PRM_LOAD_, PRM_P)(x)
#define LOAD_S(x) PRM_CAT(PRM_LOAD_, PRM_S)(x)
#define ROUND_P(c) PRM_CAT(PRM_ROUND_, PRM_P)(c)
#define ROUND_S(c) PRM_CAT(PRM_ROUND_, PRM_S)(c)
#define SROUND_P(c, r) PRM_CAT(PRM_SROUND_, PRM_P)(c, r)
#define SROUND_S(c, r) PRM_CAT(PRM_SROUND_, PRM_S)(c, r)

/* ---- per master mode ----------------------------------------------------------------
 * P_GET(i): the param's value; P_PUT(i, v, old): store new value v of a param whose
 * P_GET was old; S_PUT(a, k, i, v): store v in state array a (slot k).  RBITS(k, i) is
 * element i's random bits for slot k (sr only; `key` and `first` from prm_pos). */
#define RBITS(k, i) prm_bits(key[k], first + (uint32_t)(i))

#define PRM_QT_none char
#define PRM_GET_none(i) LOAD_P(p[i])
#define PRM_PUT_none(i, v, old) (p[i] = ROUND_P(v))
#define PRM_SPUT_none(a, k, i, v) (a[i] = ROUND_S(v))

#define PRM_QT_sr char
#define PRM_GET_sr(i) LOAD_P(p[i])
#define PRM_PUT_sr(i, v, old) (p[i] = SROUND_P(v, RBITS(0, i)))
#define PRM_SPUT_sr(a, k, i, v) (a[i] = SROUND_S(v, RBITS(k, i)))

#define PRM_QT_fp32 float
#define PRM_GET_fp32(i) (q[i])
#define PRM_PUT_fp32(i, v, old) (q[i] = (v), p[i] = ROUND_P(q[i]))
#define PRM_SPUT_fp32 PRM_SPUT_none

#define PRM_QT_split uint16_t
#define PRM_GET_split(i) prm_split_get(p[i], q[i])
#define PRM_PUT_split(i, v, old) (p[i] = prm_split_hi(v), q[i] = prm_split_lo(v, p[i]))
#define PRM_SPUT_split PRM_SPUT_none

/* Kahan: u = k + (v - old); p = round(old + u); k = round(u - (p - old)) */
#define PRM_QT_kahan PRM_KCAT(PRM_TYPE_, PRM_P)   /* PT, by a second paste macro */
#define PRM_KCAT_(a, b) a##b
#define PRM_KCAT(a, b) PRM_KCAT_(a, b)
#define PRM_GET_kahan(i) LOAD_P(p[i])
#define PRM_PUT_kahan(i, v, old) PRM_LOCAL(kahan_put)(p + (i), q + (i), v, old)
#define PRM_SPUT_kahan PRM_SPUT_none

#define PRM_HASQ_none 0
#define PRM_HASQ_sr 0
#define PRM_HASQ_fp32 1
#define PRM_HASQ_split 1
#define PRM_HASQ_kahan 1

#define QT PRM_CAT(PRM_QT_, PRM_M)
#define PRM_HAS_Q PRM_CAT(PRM_HASQ_, PRM_M)
#define P_GET PRM_CAT(PRM_GET_, PRM_M)
#define P_PUT PRM_CAT(PRM_PUT_, PRM_M)
#define S_PUT PRM_CAT(PRM_SPUT_, PRM_M)

#define PRM_SFX PRM_CAT3(PRM_P, PRM_CAT(_, PRM_S), PRM_CAT(_, PRM_M))

PRM_INLINE void PRM_LOCAL(kahan_put)(PT *p, PT *k, const CT v, const CT old)
{
    const CT u = LOAD_P(*k) + (v - old);
    const PT n = ROUND_P(old + u);
    *p = n;
    *k = ROUND_P(u - (LOAD_P(n) - old));
}

/* the keys (sr) or nothing, before a loop */
#define PRM_POS_KEYS                                                                  \
    const uint32_t key[PRM_MAX_ARRAYS] = {pos->key[0], pos->key[1], pos->key[2],      \
                                          pos->key[3], pos->key[4], pos->key[5]};     \
    const uint32_t first = pos->first;                                                \
    (void)key; (void)first

#include "ema.inc.c"
#include "rmsprop.inc.c"
#include "adam.inc.c"
#include "sgd.inc.c"
#include "touch.inc.c"

#undef CT
#undef PRM_FULL
#undef SEL
#undef SQRT
#undef DIVC
#undef PT
#undef ST
#undef QT
#undef PRM_HAS_Q
#undef LOAD_P
#undef LOAD_S
#undef ROUND_P
#undef ROUND_S
#undef SROUND_P
#undef SROUND_S
#undef P_GET
#undef P_PUT
#undef S_PUT
#undef PRM_SFX
#undef PRM_P
#undef PRM_S
#undef PRM_M
