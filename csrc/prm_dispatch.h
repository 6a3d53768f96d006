/* prm_dispatch.h -- internal: the kernel table shared by dispatch.c and threads.c. */
#ifndef PRM_DISPATCH_H
#define PRM_DISPATCH_H

#include "pyrmsprop.h"

#define PRM_FN_TYPES(T, SFX)                                                                \
    typedef void (*prm_ema_##SFX##_fn)(T *, const T *, ptrdiff_t, const prm_ema_params *);  \
    typedef void (*prm_rmsprop_##SFX##_fn)(T *, const T *, T *, T *, T *, ptrdiff_t,        \
                                           const prm_rmsprop_params *);                     \
    typedef void (*prm_adam_##SFX##_fn)(T *, const T *, T *, T *, T *, ptrdiff_t,           \
                                        const prm_adam_params *);                           \
    typedef void (*prm_sgd_##SFX##_fn)(T *, const T *, T *, ptrdiff_t, const prm_sgd_params *); \
    typedef void (*prm_touch_##SFX##_fn)(T *, const T *, T *, T *, ptrdiff_t);           \
    typedef int (*prm_nonfinite_##SFX##_fn)(const T *, ptrdiff_t);

PRM_FN_TYPES(float, f32)
PRM_FN_TYPES(double, f64)

/* One pointer per rule and dtype; every option set is inside each kernel. */
typedef struct {
    struct { prm_ema_f32_fn f32; prm_ema_f64_fn f64; } ema;
    struct { prm_rmsprop_f32_fn f32; prm_rmsprop_f64_fn f64; } rmsprop;
    struct { prm_adam_f32_fn f32; prm_adam_f64_fn f64; } adam;
    struct { prm_sgd_f32_fn f32; prm_sgd_f64_fn f64; } sgd;
    struct { prm_touch_f32_fn f32; prm_touch_f64_fn f64; } touch;
    struct { prm_nonfinite_f32_fn f32; prm_nonfinite_f64_fn f64; } nonfinite;
} prm_kernel_table;

const prm_kernel_table *prm_table(void);                      /* prm_target_current */
const prm_kernel_table *prm_table_for(int rule, int dtype);   /* the rule's entry   */
const prm_kernel_table *prm_table_of(int target);             /* NULL: unsupported  */

/* Apply tensor t's elements [lo, hi) of a job through table tb. */
void prm_apply(const prm_kernel_table *tb, const prm_job *job, ptrdiff_t t, ptrdiff_t lo,
               ptrdiff_t hi);

#endif /* PRM_DISPATCH_H */
