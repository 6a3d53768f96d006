/* combo.inc.c -- every rule for one storage combination, included by all.inc.c with
 *   PRM_P  the param's (and grad's) storage: f32, f64, bf16, f16
 *   PRM_S  the state arrays' storage
 *   PRM_M  how the param is kept: none (the param alone, rounded to nearest), fp32
 *          (a float32 master in slot 5), split (bf16: the low halves in slot 5),
 *          kahan (a compensation array in the param's storage in slot 5), sr
 *          (every 16-bit value written rounded stochastically)
 * float32 and float64: the rule files (ema, rmsprop, adam, sgd .inc.c) are plain loops
 * over arrays of CT (float or double), one per option set.  A combination with
 * 16-bit arrays runs the float32 loops on converted stages (stage.inc.c), so a new
 * rule is one loop written once, and a new storage type is its conversions in
 * prm_storage.h and stage.inc.c.  The memory-only loop (touch.inc.c) is the one
 * rule written per combination: it must move exactly the combination's bytes. */

/* ---- per storage type -------------------------------------------------------------- */
#define PRM_TYPE_f32 float
#define PRM_TYPE_f64 double
#define PRM_TYPE_bf16 uint16_t
#define PRM_TYPE_f16 uint16_t
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
#define QT PRM_CAT(PRM_QT_, PRM_M)
#define PRM_HAS_Q PRM_CAT(PRM_HASQ_, PRM_M)

#define PRM_SFX PRM_CAT3(PRM_P, PRM_CAT(_, PRM_S), PRM_CAT(_, PRM_M))

#if PRM_CAT(PRM_IS16_, PRM_P) || PRM_CAT(PRM_IS16_, PRM_S)
#include "stage.inc.c"
#else
/* SQRT, DIVC (x / c for a loop constant c, prm_storage.h) and SEL (an option's
 * choice: the options are literals in each specialised loop) */
#define SQRT PRM_CAT(PRM_SQRT_, PRM_P)
#define DIVC PRM_CAT(PRM_DIVC_, PRM_P)
#define SEL(c, a, b) ((c) ? (a) : (b))
#include "ema.inc.c"
#include "rmsprop.inc.c"
#include "adam.inc.c"
#include "sgd.inc.c"
#undef SQRT
#undef DIVC
#undef SEL
#endif
#include "touch.inc.c"

#undef CT
#undef PT
#undef ST
#undef QT
#undef PRM_HAS_Q
#undef PRM_SFX
#undef PRM_P
#undef PRM_S
#undef PRM_M
