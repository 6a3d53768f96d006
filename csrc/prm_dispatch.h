/* prm_dispatch.h -- internal: the storage combinations, the kernel tables and the
 * position a kernel call starts at; shared by the kernels, dispatch.c and threads.c. */
#ifndef PRM_DISPATCH_H
#define PRM_DISPATCH_H

#include "pyrmsprop.h"

/* The rules of a table row, in the order of pyrmsprop.h's PRM_EMA ... PRM_TOUCH. */
#define PRM_RULES(Y) Y(ema) Y(rmsprop) Y(adam) Y(sgd) Y(touch)

/* Every storage combination a kernel exists for: X(r, param, state, master), with
 * r passed through.  Adding one is a line here and a block in
 * csrc/kernels/all.inc.c; prm_combo() finds it, the table holds it. */
#define PRM_COMBOS(X, r)                                                              \
    X(r, f32, f32, none) X(r, f64, f64, none) X(r, f32, bf16, none)                   \
    X(r, bf16, bf16, none) X(r, bf16, bf16, fp32) X(r, bf16, bf16, split)             \
    X(r, bf16, bf16, kahan) X(r, bf16, bf16, sr)                                      \
    X(r, bf16, f32, none) X(r, bf16, f32, fp32) X(r, bf16, f32, split)                \
    X(r, bf16, f32, kahan) X(r, bf16, f32, sr)                                        \
    X(r, f16, f16, none) X(r, f16, f16, fp32) X(r, f16, f16, kahan) X(r, f16, f16, sr) \
    X(r, f16, f32, none) X(r, f16, f32, fp32) X(r, f16, f32, kahan) X(r, f16, f32, sr) \
    X(r, f32, q8, none) X(r, bf16, q8, none) X(r, bf16, q8, fp32) X(r, bf16, q8, split) \
    X(r, bf16, q8, kahan) X(r, bf16, q8, sr) X(r, f16, q8, none) X(r, f16, q8, fp32)    \
    X(r, f16, q8, kahan) X(r, f16, q8, sr)

/* The storage types, in the order of PRM_F32 ... PRM_F16. */
#define PRM_STORAGES(Y) Y(f32) Y(f64) Y(bf16) Y(f16)

#define PRM_ID_f32 PRM_F32
#define PRM_ID_f64 PRM_F64
#define PRM_ID_bf16 PRM_BF16
#define PRM_ID_f16 PRM_F16
#define PRM_ID_q8 PRM_Q8
#define PRM_ID_none PRM_MASTER_NONE
#define PRM_ID_fp32 PRM_MASTER_FP32
#define PRM_ID_split PRM_MASTER_SPLIT
#define PRM_ID_kahan PRM_MASTER_KAHAN
#define PRM_ID_sr PRM_MASTER_STOCHASTIC

#define PRM_COMBO_ENUM(r, P, S, M) PRM_COMBO_##P##_##S##_##M,
enum { PRM_COMBOS(PRM_COMBO_ENUM, _) PRM_NCOMBOS };
#undef PRM_COMBO_ENUM

/* Where a kernel call starts: the index (mod 2^32) of its first element in its
 * tensor, per array slot the stochastic-rounding key, the hardware conversions the
 * kernel may use (PRM_HW_*), and for 8-bit state the slots of the unsigned map
 * (prm_q8_unsigned_slots; prm_apply fills all four).  An 8-bit job's calls start at
 * a multiple of 256 elements (threads.c), so its absmax slots start at a block. */
typedef struct {
    uint32_t key[PRM_MAX_ARRAYS];
    uint32_t first;
    int hw;
    unsigned q8_unsigned;
} prm_pos;

/* Every kernel: the slot pointers (prm_job's order; unused ones NULL), the length,
 * the rule's params struct (NULL for touch), the position. */
typedef void (*prm_kernel_fn)(char *const *a, ptrdiff_t n, const void *hp, const prm_pos *pos);
typedef int (*prm_nonfinite_fn)(const void *x, ptrdiff_t n);

typedef struct {
    prm_kernel_fn fn[PRM_NRULES][PRM_NCOMBOS];
    prm_nonfinite_fn nonfinite[PRM_NSTORAGE];
} prm_kernel_table;

/* Each target file's table (csrc/kernels/all.inc.c). */
extern const prm_kernel_table prm_table_baseline;
extern const prm_kernel_table prm_table_avx2;
extern const prm_kernel_table prm_table_avx512;

/* The combination's index, or -1 when (param, state, master) has no kernels. */
int prm_combo(int param, int state, int master);

const prm_kernel_table *prm_table(void);                      /* prm_target_current */
const prm_kernel_table *prm_table_for(int rule, int dtype);   /* the rule's entry   */
const prm_kernel_table *prm_table_of(int target);             /* NULL: unsupported  */

/* Bytes per element of slot k of a job's arrays (0: the slot has no storage, or
 * holds one value per block: an absmax). */
size_t prm_slot_size(const prm_job *job, int k);

/* Apply tensor t's elements [lo, hi) of a job through table tb. */
void prm_apply(const prm_kernel_table *tb, const prm_job *job, ptrdiff_t t, ptrdiff_t lo,
               ptrdiff_t hi);

#endif /* PRM_DISPATCH_H */
