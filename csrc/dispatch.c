/*
 * dispatch.c -- CPU detection, the kernel tables, and applying one job's
 * arrays through the chosen table.  Compiled with baseline flags only: nothing
 * here may use an instruction the detection has not checked.
 *
 * The build defines PRM_HAVE_AVX2 / PRM_HAVE_AVX512 for the targets it compiled
 * (setup.py's target table); detection checks exactly what those flags enable.
 */
#include "pyrmsprop.h"
#include "prm_common.h"
#include "prm_dispatch.h"
#define PRM_QMAP_DEFINE   /* the maps and cells are defined here, declared elsewhere */
#include "prm_q8.h"

#include <stdint.h>

#if (defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86))
#define PRM_X86 1
#if defined(_MSC_VER)
#include <intrin.h>
#endif
#endif

/* ---- tables (each target file defines its own: csrc/kernels/all.inc.c) -------- */
#define table_baseline prm_table_baseline
#ifdef PRM_HAVE_AVX2
#define table_avx2 prm_table_avx2
#endif
#ifdef PRM_HAVE_AVX512
#define table_avx512 prm_table_avx512
#endif

static const prm_kernel_table *const tables[PRM_NTARGETS] = {
    &table_baseline,
#ifdef PRM_HAVE_AVX2
    &table_avx2,
#else
    NULL,
#endif
#ifdef PRM_HAVE_AVX512
    &table_avx512,
#else
    NULL,
#endif
};

/* ---- atomics: one int, loaded with acquire, stored with release ----------------- */
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
typedef volatile long prm_atomic_int;
static int atomic_load(prm_atomic_int *p) { return (int)_InterlockedOr(p, 0); }
static void atomic_store(prm_atomic_int *p, int v) { _InterlockedExchange(p, v); }
static int atomic_cas(prm_atomic_int *p, int expect, int v)
{
    return _InterlockedCompareExchange(p, v, expect) == expect;
}
#else
typedef int prm_atomic_int;
static int atomic_load(prm_atomic_int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void atomic_store(prm_atomic_int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static int atomic_cas(prm_atomic_int *p, int expect, int v)
{
    return __atomic_compare_exchange_n(p, &expect, v, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
#endif

/* ---- detection (once; immutable thereafter) --------------------------------------
 * The first caller (module import, in practice) detects; on free-threaded CPython
 * several threads may arrive at once, so the state goes 0 (not started) -> 1 (one
 * thread detecting) -> 2 (done, published with release); the others wait for 2.
 * Detection takes microseconds and never calls back into Python. */
static prm_atomic_int detect_state = 0;
static int supported[PRM_NTARGETS];
static const char *note = "";
static char cpu_name[96];   /* 48 of the brand string, then at most 36 more */

#ifdef PRM_X86
/* buf[len...] = text then v in decimal; returns the new length (no libc here: the
 * Windows builds of this file are freestanding). */
static size_t append(char *buf, size_t len, const char *text, uint32_t v)
{
    while (*text) buf[len++] = *text++;
    char digits[10];
    int k = 0;
    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (k > 0) buf[len++] = digits[--k];
    return len;
}
#endif

#ifdef PRM_X86
static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
#if defined(_MSC_VER)
    int out[4];
    __cpuidex(out, (int)leaf, (int)sub);
    r[0] = (uint32_t)out[0]; r[1] = (uint32_t)out[1];
    r[2] = (uint32_t)out[2]; r[3] = (uint32_t)out[3];
#else
    __asm__ __volatile__("cpuid"
                         : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                         : "a"(leaf), "c"(sub));
#endif
}

static uint64_t xgetbv0(void)
{
#if defined(_MSC_VER)
    return (uint64_t)_xgetbv(0);
#else
    uint32_t lo, hi;
    /* the xgetbv opcode, so that no -mxsave is needed for the baseline file */
    __asm__ __volatile__(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
#endif
}
#endif

/* hardware conversions: found by detect_now(), in use (prm_set_hw_conversions) */
static int hw_found;
static prm_atomic_int hw_in_use;

static void detect_now(void)
{
    supported[PRM_TARGET_BASELINE] = 1;
#ifdef PRM_X86
    uint32_t r[4];
    cpuid(0x80000000u, 0, r);
    if (r[0] >= 0x80000004u) {   /* the brand string: 48 bytes in 3 x 4 registers */
        for (uint32_t k = 0; k < 3; k++) {
            cpuid(0x80000002u + k, 0, r);
            for (int j = 0; j < 16; j++) cpu_name[16 * k + j] = (char)(r[j / 4] >> (8 * (j % 4)));
        }
    }
    cpuid(0, 0, r);
    const uint32_t max_leaf = r[0];
    cpuid(1, 0, r);
    {
        const uint32_t family = ((r[0] >> 8) & 0xf) + ((r[0] >> 20) & 0xff);
        const uint32_t model = ((r[0] >> 4) & 0xf) | ((r[0] >> 12) & 0xf0);
        size_t len = 0;
        while (len < 48 && cpu_name[len] != '\0') len++;
        while (len > 0 && cpu_name[len - 1] == ' ') len--;
        len = append(cpu_name, len, " (family ", family);
        len = append(cpu_name, len, " model ", model);
        len = append(cpu_name, len, " stepping ", r[0] & 0xf);
        cpu_name[len++] = ')';
        cpu_name[len] = '\0';
    }
    const int fma = (r[2] >> 12) & 1, osxsave = (r[2] >> 27) & 1, avx = (r[2] >> 28) & 1;
    const int f16c = (r[2] >> 29) & 1;
    uint64_t xcr0 = 0;
    if (osxsave) xcr0 = xgetbv0();
    int avx2 = 0, f = 0, dq = 0, bw = 0, vl = 0, bf16 = 0;
    if (max_leaf >= 7) {
        cpuid(7, 0, r);
        avx2 = (r[1] >> 5) & 1;
        f = (r[1] >> 16) & 1;
        dq = (r[1] >> 17) & 1;
        bw = (r[1] >> 30) & 1;
        vl = (r[1] >> 31) & 1;
        if (r[0] >= 1) {                  /* subleaf 1: AVX-512 BF16 */
            cpuid(7, 1, r);
            bf16 = (r[0] >> 5) & 1;
        }
    }
    const int os_ymm = osxsave && (xcr0 & 0x6) == 0x6;      /* XMM + YMM state   */
    const int os_zmm = osxsave && (xcr0 & 0xe6) == 0xe6;    /* + opmask, ZMM     */
    const int has_avx2 = avx && avx2 && fma && os_ymm;
    supported[PRM_TARGET_AVX2] = tables[PRM_TARGET_AVX2] != NULL && has_avx2;
#if defined(__APPLE__)
    /* macOS enables AVX-512 state lazily (the commpage, not XCR0, tells);
     * pyrmsprop does not dispatch AVX-512 there. */
    (void)f; (void)dq; (void)bw; (void)vl; (void)os_zmm;
    supported[PRM_TARGET_AVX512] = 0;
    note = "AVX-512 is not dispatched on macOS";
#else
    supported[PRM_TARGET_AVX512] =
        tables[PRM_TARGET_AVX512] != NULL && has_avx2 && f && dq && bw && vl && os_zmm;
#endif
    /* F16C is used by the AVX2 and AVX-512 builds, AVX-512 BF16 by the AVX-512 one */
    hw_found = (f16c && os_ymm ? PRM_HW_F16 : 0)
               | (bf16 && supported[PRM_TARGET_AVX512] ? PRM_HW_BF16 : 0);
    atomic_store(&hw_in_use, hw_found);
#endif
}

static void detect(void)
{
    if (atomic_load(&detect_state) == 2) return;
    if (atomic_cas(&detect_state, 0, 1)) {
        detect_now();
        atomic_store(&detect_state, 2);
        return;
    }
    while (atomic_load(&detect_state) != 2) {
    }
}

/* The target in use: set at import to the best target, changed by prm_set_target()
 * (set_simd), which another Python thread may call while updates run.  It is one
 * atomic int, and a call loads it once (prm_run hands that table to its workers), so
 * a switch is a clean change from one whole table to another, never a torn read. */
static prm_atomic_int current_target = PRM_TARGET_BASELINE;
static int target_load(void) { return atomic_load(&current_target); }
static void target_store(int t) { atomic_store(&current_target, t); }

/* The target of each rule and dtype, the same kind of atomic int: prm_set_target
 * sets them all, prm_set_rule_target one (pyrmsprop's "auto" mode runs each rule
 * on the target it measured fastest). */
static prm_atomic_int rule_target[PRM_NRULES][PRM_NSTORAGE];

/* dtype: the param's storage, or the state's when that is 16-bit (16-bit storage
 * has its own entries: its conversions make another target the fastest, e.g.
 * AVX-512 for bfloat16 where AVX2 wins for float32) */
static int rule_ok(int rule, int dtype)
{
    return rule >= 0 && rule < PRM_NRULES && dtype >= 0 && dtype < PRM_NSTORAGE;
}

int prm_target_compiled(int target)
{
    return target >= 0 && target < PRM_NTARGETS && tables[target] != NULL;
}

int prm_target_supported(int target)
{
    detect();
    return prm_target_compiled(target) && supported[target];
}

int prm_target_best(void)
{
    int best = PRM_TARGET_BASELINE;
    for (int t = 0; t < PRM_NTARGETS; t++)
        if (prm_target_supported(t)) best = t;
    return best;
}

int prm_target_current(void) { return target_load(); }

void prm_set_target(int target)
{
    if (!prm_target_supported(target)) return;
    target_store(target);
    for (int r = 0; r < PRM_NRULES; r++)
        for (int d = 0; d < PRM_NSTORAGE; d++) atomic_store(&rule_target[r][d], target);
}

void prm_set_rule_target(int rule, int dtype, int target)
{
    if (rule_ok(rule, dtype) && prm_target_supported(target))
        atomic_store(&rule_target[rule][dtype], target);
}

int prm_rule_target(int rule, int dtype)
{
    return rule_ok(rule, dtype) ? atomic_load(&rule_target[rule][dtype]) : target_load();
}

const char *prm_target_name(int target)
{
    switch (target) {
    case PRM_TARGET_BASELINE:
#if defined(__aarch64__) || defined(_M_ARM64)
        return "neon";
#else
        return "baseline";
#endif
    case PRM_TARGET_AVX2: return "avx2";
    case PRM_TARGET_AVX512: return "avx512";
    default: return "";
    }
}

const char *prm_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#elif defined(_MSC_VER)
#define PRM_STR_(x) #x
#define PRM_STR(x) PRM_STR_(x)
    return "msvc " PRM_STR(_MSC_FULL_VER);
#else
    return "unknown";
#endif
}

const char *prm_cpu_name(void)
{
    detect();
    const char *s = cpu_name;
    while (*s == ' ') s++;
    return s;
}

int prm_hw_conversions_supported(void)
{
    detect();
    return hw_found;
}

int prm_hw_conversions(void)
{
    detect();
    return atomic_load(&hw_in_use);
}

int prm_set_hw_conversions(int mask)
{
    detect();
    atomic_store(&hw_in_use, mask & hw_found);
    return atomic_load(&hw_in_use);
}

const char *prm_target_note(void)
{
    detect();
    return note;
}

const prm_kernel_table *prm_table(void) { return tables[target_load()]; }
const prm_kernel_table *prm_table_for(int rule, int dtype)
{
    return tables[prm_rule_target(rule, dtype)];
}
const prm_kernel_table *prm_table_of(int target)
{
    return prm_target_supported(target) ? tables[target] : NULL;
}

/* ---- storage combinations ------------------------------------------------------ */
int prm_combo(int param, int state, int master)
{
#define PRM_FIND(r, P, S, M)                                                              \
    if (param == PRM_ID_##P && state == PRM_ID_##S && master == PRM_ID_##M)               \
        return PRM_COMBO_##P##_##S##_##M;
    PRM_COMBOS(PRM_FIND, _)
#undef PRM_FIND
    return -1;
}

int prm_job_supported(const prm_job *job)
{
    return job->rule >= 0 && job->rule < PRM_NRULES &&
           prm_combo(job->dtype, job->state, job->master) >= 0;
}

static size_t storage_size(int s)
{
    return s == PRM_F64 ? 8 : s == PRM_F32 ? 4 : s == PRM_Q8 ? 1 : 2;
}

size_t prm_slot_size(const prm_job *job, int k)
{
    if (k > 5) return 0;   /* an 8-bit state array's absmax */
    if (k == 5) {   /* the param's extra array */
        return job->master == PRM_MASTER_FP32 ? 4
             : job->master == PRM_MASTER_SPLIT || job->master == PRM_MASTER_KAHAN ? 2 : 0;
    }
    const int param_like = job->rule == PRM_EMA ? k == 1 : k <= 1;
    return storage_size(param_like ? job->dtype : job->state);
}

/* ---- stochastic rounding keys ----------------------------------------------------
 * One 32-bit key per (seed, step, tensor, slot, index / 2^32): splitmix64's
 * finalizer over their combination, folded to 32 bits; the kernels mix it with the
 * element's index (prm_bits). */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t sr_key(const prm_job *job, ptrdiff_t t, int k, uint64_t high)
{
    uint64_t z = mix64(job->seed + 0x9e3779b97f4a7c15ull);
    z = mix64(z ^ job->step);
    z = mix64(z ^ (uint64_t)t);
    z = mix64(z ^ ((uint64_t)k << 56) ^ high);
    return (uint32_t)(z ^ (z >> 32));
}

/* ---- apply one tensor's slice [lo, hi) --------------------------------------- */
static void apply_part(const prm_kernel_fn fn, const prm_job *job, ptrdiff_t t, ptrdiff_t lo,
                       ptrdiff_t hi)
{
    char *const *a = job->ptrs + t * PRM_MAX_ARRAYS;
    char *x[PRM_MAX_ARRAYS];
    prm_pos pos;
    for (int k = 0; k < PRM_MAX_ARRAYS; k++) {
        /* an absmax slot: one float32 per block (lo is a block's first element) */
        const size_t off = k > 5 ? (size_t)(lo / PRM_Q8_BLOCK) * sizeof(float)
                                 : (size_t)lo * prm_slot_size(job, k);
        x[k] = a[k] ? a[k] + off : NULL;
        pos.key[k] = job->master == PRM_MASTER_STOCHASTIC
                         ? sr_key(job, t, k, (uint64_t)lo >> 32) : 0;
    }
    pos.first = (uint32_t)((uint64_t)lo & 0xffffffffu);
    pos.hw = atomic_load(&hw_in_use);
    pos.q8_unsigned = job->state == PRM_Q8 ? prm_q8_unsigned_slots(job->rule) : 0;
    fn(x, hi - lo, job->params, &pos);
}

void prm_apply(const prm_kernel_table *tb, const prm_job *job, ptrdiff_t t, ptrdiff_t lo,
               ptrdiff_t hi)
{
    const int c = prm_combo(job->dtype, job->state, job->master);
    if (c < 0 || job->rule < 0 || job->rule >= PRM_NRULES) return;
    const prm_kernel_fn fn = tb->fn[job->rule][c];
    /* a part never crosses a multiple of 2^32 elements: the keys change there */
    while (lo < hi) {
        const uint64_t next = ((uint64_t)lo | 0xffffffffull) + 1;
        const ptrdiff_t end = (uint64_t)hi > next ? (ptrdiff_t)next : hi;
        apply_part(fn, job, t, lo, end);
        lo = end;
    }
}

int prm_any_nonfinite(int dtype, char *const *ptrs, const ptrdiff_t *lens, ptrdiff_t ntensors)
{
    if (dtype < 0 || dtype >= PRM_NSTORAGE) return 0;
    const prm_nonfinite_fn fn = prm_table()->nonfinite[dtype];
    for (ptrdiff_t t = 0; t < ntensors; t++) {
        if (lens[t] == 0) continue;
        if (fn(ptrs[t], lens[t])) return 1;
    }
    return 0;
}

/* ---- 8-bit block-wise state ------------------------------------------------------ */
unsigned prm_q8_unsigned_slots(int rule)
{
    switch (rule) {
    case PRM_ADAM: return 1u << 3 | 1u << 4;   /* exp_avg_sq, max_exp_avg_sq */
    case PRM_RMSPROP: return 1u << 2;          /* square_avg                 */
    default: return 0;                         /* EMA's avg, momentum: signed */
    }
}

void prm_q8_quantize(const float *x, ptrdiff_t n, uint8_t *codes, float *absmax,
                     int is_unsigned)
{
    prm_q8_put(codes, absmax, x, n, is_unsigned);
}

void prm_q8_dequantize(const uint8_t *codes, const float *absmax, ptrdiff_t n, float *out,
                       int is_unsigned)
{
    prm_q8_get(out, codes, absmax, n, is_unsigned);
}

const uint32_t *prm_q8_map(int is_unsigned)
{
    return is_unsigned ? prm_q8_map_unsigned : prm_q8_map_signed;
}
