/*
 * pyrmsprop.h -- the one public header of the pyrmsprop kernels.
 *
 * Every kernel is compiled once per SIMD target and storage combination from the
 * same source (csrc/kernels/<rule>.inc.c); both are pasted onto the symbol, e.g.
 * prm_adam_bf16_f32_none_avx2.  dispatch.c picks one table of kernels at import time and
 * prm_run() applies a job (one array or a list of arrays) through it, split
 * across the thread pool above a size threshold.
 *
 * All scalars arrive in double precision in a params struct whose every
 * step-dependent constant (1 - alpha, lr / bc1, ...) is already computed by the
 * caller; kernels cast them to the compute type (float32, or float64 for float64
 * params) once, before the loop.
 */
#ifndef PYRMSPROP_H
#define PYRMSPROP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- option flags (bit masks), resolved before every loop ---------------- */
#define PRM_MAXIMIZE      1  /* g <- -g                                        */
#define PRM_WEIGHT_DECAY  2  /* g <- g + wd*p (Adam: L2)                       */
#define PRM_CENTERED      4  /* RMSprop: d <- sqrt(s - m*m)                    */
#define PRM_MOMENTUM      8  /* RMSprop/SGD: momentum buffer                   */
#define PRM_EPS_IN_SQRT  16  /* RMSprop: d <- sqrt(s + eps)                    */
#define PRM_DECOUPLED     4  /* Adam: p <- p*(1 - lr*wd) instead of L2         */
#define PRM_AMSGRAD       8  /* Adam: vmax <- max(vmax, v)                     */
#define PRM_NESTEROV      4  /* SGD: g <- g + momentum*buf                     */
#define PRM_FIRST_STEP   16  /* SGD: buf <- g (torch's first momentum step)    */
#define PRM_NO_PREFETCH   1  /* touch: no software prefetch                    */

/* ---- hyperparameters, filled in double precision by the caller ------------ */
typedef struct {
    double beta, one_minus_beta;
} prm_ema_params;

typedef struct {
    int flags;                 /* touch (memory-only loop): PRM_NO_PREFETCH; the
                                  params may also be NULL (prefetches on)        */
} prm_touch_params;

typedef struct {
    int flags;
    double lr, alpha, one_minus_alpha, eps, weight_decay, momentum;
} prm_rmsprop_params;

typedef struct {
    int flags;
    double beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay;
    double step_size;   /* lr / (1 - beta1**t)                                */
    double bc2_sqrt;    /* sqrt(1 - beta2**t)                                 */
    double decay;       /* 1 - lr*weight_decay (decoupled only)               */
} prm_adam_params;

typedef struct {
    int flags;
    double lr, momentum, one_minus_dampening, weight_decay;
} prm_sgd_params;

/* ---- array slots --------------------------------------------------------------
 * EMA:     a0 avg (rw, state storage), a1 x (r, param storage)
 * RMSprop: a0 p (rw), a1 g (r), a2 square_avg (rw), a3 grad_avg (rw, centered),
 *          a4 momentum_buffer (rw, momentum)
 * Adam:    a0 p (rw), a1 g (r), a2 exp_avg (rw), a3 exp_avg_sq (rw),
 *          a4 max_exp_avg_sq (rw, amsgrad)
 * SGD:     a0 p (rw), a1 g (r), a2 momentum_buffer (rw, momentum)
 * touch:   a0 (rw), a1 (r), a2 (rw, optional), a3 (rw, optional): the memory-only
 *          loop that moves a rule's bytes with one add per store (the bandwidth
 *          limit the benchmark reports against)
 * every rule: a5 the param's master copy (float32), low halves (uint16) or
 *          compensation (param storage), by the job's master mode
 * 8-bit state (PRM_Q8): a state slot holds the uint8 codes, and the slot
 *          PRM_Q8_ABSMAX_SLOT(k) its float32 absmax, one per block of 256 elements
 *          (EMA's avg a6; a2, a3, a4 -> a6, a7, a8)
 * Arrays an option does not use are NULL.  The kernels are internal
 * (prm_dispatch.h): one per rule, storage combination and SIMD target.
 */

/* ---- jobs: one rule applied to a list of equally long array tuples --------- */
enum { PRM_EMA = 0, PRM_RMSPROP = 1, PRM_ADAM = 2, PRM_SGD = 3, PRM_TOUCH = 4, PRM_NRULES };
/* storage types: params and grads any; state float64 for float64 params, float32
 * or bfloat16 for float32 and bfloat16 params, float32 or float16 for float16; 8-bit
 * block-wise state (PRM_Q8, state only) for float32, bfloat16 and float16 params */
enum { PRM_F32 = 0, PRM_F64 = 1, PRM_BF16 = 2, PRM_F16 = 3, PRM_NSTORAGE, PRM_Q8 = PRM_NSTORAGE };
/* how a 16-bit param is kept (float32/float64 params: PRM_MASTER_NONE only) */
enum {
    PRM_MASTER_NONE = 0,       /* the param alone, rounded to nearest even           */
    PRM_MASTER_FP32 = 1,       /* a float32 master in slot 5; param = it, rounded    */
    PRM_MASTER_SPLIT = 2,      /* bfloat16: slot 5 holds the low halves (uint16)     */
    PRM_MASTER_KAHAN = 3,      /* slot 5: a compensation array, param storage        */
    PRM_MASTER_STOCHASTIC = 4, /* every 16-bit value written rounded stochastically  */
    PRM_NMASTER
};
#define PRM_MAX_ARRAYS 9
#define PRM_Q8_ABSMAX_SLOT(k) ((k) < 2 ? 6 : (k) + 4)

typedef struct {
    int rule;                  /* PRM_EMA ... PRM_TOUCH                              */
    int dtype;                 /* the param's and grad's storage (EMA: x's)          */
    int state;                 /* the state arrays' storage (EMA: avg's)             */
    int master;                /* PRM_MASTER_*                                       */
    uint64_t seed, step;       /* stochastic rounding: the key, with the tensor's
                                  index, slot and each element's index              */
    ptrdiff_t ntensors;        /* number of tensors (1 for the functional API)       */
    char *const *ptrs;         /* ntensors * PRM_MAX_ARRAYS pointers, tensor-major   */
    const ptrdiff_t *lens;     /* ntensors lengths, in elements                      */
    const void *params;        /* the rule's params struct                           */
} prm_job;

/* Apply a job: serially below the threshold or with one thread, else split
 * into cache-line aligned chunks claimed by the caller and the pool.  Never
 * fails; results are bit-identical for every split.  Call without the GIL. */
void prm_run(const prm_job *job);

/* 1 if any element of the ntensors arrays ptrs[t] (lens[t] elements, of storage
 * dtype) is NaN or +-Inf.  Serial; call without the GIL. */
int prm_any_nonfinite(int dtype, char *const *ptrs, const ptrdiff_t *lens, ptrdiff_t ntensors);

/* 1 if the job's (rule, dtype, state, master) has kernels (prm_run needs it). */
int prm_job_supported(const prm_job *job);

/* ---- 8-bit block-wise state ----------------------------------------------------
 * Bit k set: state slot k of the rule holds non-negative values (a second moment)
 * and uses the unsigned map; the others the signed one. */
unsigned prm_q8_unsigned_slots(int rule);
/* n float32 values into codes and one absmax per block of 256 (prm_q8.h's rule),
 * and back; the map's 256 entries as float32 bits.  Serial; call without the GIL. */
void prm_q8_quantize(const float *x, ptrdiff_t n, uint8_t *codes, float *absmax,
                     int is_unsigned);
void prm_q8_dequantize(const uint8_t *codes, const float *absmax, ptrdiff_t n, float *out,
                       int is_unsigned);
const uint32_t *prm_q8_map(int is_unsigned);

/* ---- dispatch ---------------------------------------------------------------- */
enum { PRM_TARGET_BASELINE = 0, PRM_TARGET_AVX2 = 1, PRM_TARGET_AVX512 = 2, PRM_NTARGETS };

int prm_target_compiled(int target);   /* built into this binary                  */
int prm_target_supported(int target);  /* built and supported by this CPU and OS   */
int prm_target_best(void);             /* best supported target                   */
int prm_target_current(void);          /* the target last set with prm_set_target */
void prm_set_target(int target);       /* every rule and dtype uses it; the caller
                                          checks prm_target_supported()            */
/* One rule and param storage's target (an update's kernels come from its rule's
 * entry; the finite check from prm_target_current's table). */
void prm_set_rule_target(int rule, int dtype, int target);
int prm_rule_target(int rule, int dtype);
/* Apply a job serially through one supported target's kernels, whatever the
 * rule's entry says (to time the targets against each other). */
void prm_run_serial_on(int target, const prm_job *job);
const char *prm_target_note(void);     /* e.g. why AVX-512 is not used            */
const char *prm_target_name(int target); /* 'baseline' (or 'neon'), 'avx2', 'avx512' */
const char *prm_compiler(void);        /* compiler that built dispatch.c           */
/* Hardware conversions of the 16-bit storage types (bits PRM_HW_*): the ones this
 * CPU has, and the ones in use (all of those at import; the result is bit for bit
 * that of the integer code, which prm_set_hw_conversions(0) selects, for tests). */
#define PRM_HW_BF16 1          /* AVX-512 BF16: vcvtne2ps2bf16 for float32 -> bf16  */
#define PRM_HW_F16 2           /* F16C: vcvtps2ph / vcvtph2ps                       */
int prm_hw_conversions_supported(void);
int prm_hw_conversions(void);
int prm_set_hw_conversions(int mask);  /* returns the bits now in use               */
const char *prm_cpu_name(void);        /* x86: CPUID's brand string and family/model/
                                          stepping; elsewhere ""                    */

/* ---- threads ------------------------------------------------------------------- */
void prm_set_num_threads(int n);       /* n >= 1                                  */
int prm_get_num_threads(void);
void prm_set_thread_threshold(ptrdiff_t elems);  /* jobs below stay serial    */
ptrdiff_t prm_get_thread_threshold(void);
/* The threshold is in float32-EMA elements: a job of n elements of a rule/dtype
 * that costs w times as much per element counts as n*w; this returns the
 * smallest n that is split for (rule, dtype).                                    */
ptrdiff_t prm_split_elems(int rule, int dtype);
const char *prm_thread_mode(void);
ptrdiff_t prm_chunk_elems(void);

#ifdef __cplusplus
}
#endif
#endif /* PYRMSPROP_H */
