/*
 * dispatch.c -- CPU detection, the kernel tables, and applying one job's
 * arrays through the chosen table.  Compiled with baseline flags only: nothing
 * here may use an instruction the detection has not checked.
 *
 * The build defines PRM_HAVE_AVX2 / PRM_HAVE_AVX512 for the targets it compiled
 * (setup.py's target table); detection checks exactly what those flags enable.
 */
#include "pyrmsprop.h"
#include "prm_dispatch.h"

#include <stdint.h>

#if (defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86))
#define PRM_X86 1
#if defined(_MSC_VER)
#include <intrin.h>
#endif
#endif

/* ---- tables ------------------------------------------------------------------ */
#define PRM_TABLE(TGT)                                                              \
    {                                                                               \
        {prm_ema_f32_##TGT, prm_ema_f64_##TGT},                                     \
        {prm_rmsprop_f32_##TGT, prm_rmsprop_f64_##TGT},                             \
        {prm_adam_f32_##TGT, prm_adam_f64_##TGT},                                   \
        {prm_sgd_f32_##TGT, prm_sgd_f64_##TGT},                                     \
        {prm_touch_f32_##TGT, prm_touch_f64_##TGT},                                 \
        {prm_nonfinite_f32_##TGT, prm_nonfinite_f64_##TGT},                         \
    }

static const prm_kernel_table table_baseline = PRM_TABLE(baseline);
#ifdef PRM_HAVE_AVX2
static const prm_kernel_table table_avx2 = PRM_TABLE(avx2);
#endif
#ifdef PRM_HAVE_AVX512
static const prm_kernel_table table_avx512 = PRM_TABLE(avx512);
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
    uint64_t xcr0 = 0;
    if (osxsave) xcr0 = xgetbv0();
    int avx2 = 0, f = 0, dq = 0, bw = 0, vl = 0;
    if (max_leaf >= 7) {
        cpuid(7, 0, r);
        avx2 = (r[1] >> 5) & 1;
        f = (r[1] >> 16) & 1;
        dq = (r[1] >> 17) & 1;
        bw = (r[1] >> 30) & 1;
        vl = (r[1] >> 31) & 1;
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
static prm_atomic_int rule_target[PRM_NRULES][2];

static int rule_ok(int rule, int dtype)
{
    return rule >= 0 && rule < PRM_NRULES && (dtype == PRM_F32 || dtype == PRM_F64);
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
        for (int d = 0; d < 2; d++) atomic_store(&rule_target[r][d], target);
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

/* ---- apply one tensor's slice [lo, hi) --------------------------------------- */
void prm_apply(const prm_kernel_table *tb, const prm_job *job, ptrdiff_t t, ptrdiff_t lo,
               ptrdiff_t hi)
{
    const size_t es = job->dtype == PRM_F32 ? sizeof(float) : sizeof(double);
    char *const *a = job->ptrs + t * PRM_MAX_ARRAYS;
    char *x[PRM_MAX_ARRAYS];
    for (int k = 0; k < PRM_MAX_ARRAYS; k++) x[k] = a[k] ? a[k] + (size_t)lo * es : NULL;
    const ptrdiff_t n = hi - lo;
    const int d = job->dtype;
    switch (job->rule) {
    case PRM_EMA:
        if (d == PRM_F32) tb->ema.f32((float *)x[0], (const float *)x[1], n, job->params);
        else tb->ema.f64((double *)x[0], (const double *)x[1], n, job->params);
        break;
    case PRM_RMSPROP:
        if (d == PRM_F32)
            tb->rmsprop.f32((float *)x[0], (const float *)x[1], (float *)x[2], (float *)x[3],
                            (float *)x[4], n, job->params);
        else
            tb->rmsprop.f64((double *)x[0], (const double *)x[1], (double *)x[2],
                            (double *)x[3], (double *)x[4], n, job->params);
        break;
    case PRM_ADAM:
        if (d == PRM_F32)
            tb->adam.f32((float *)x[0], (const float *)x[1], (float *)x[2], (float *)x[3],
                         (float *)x[4], n, job->params);
        else
            tb->adam.f64((double *)x[0], (const double *)x[1], (double *)x[2], (double *)x[3],
                         (double *)x[4], n, job->params);
        break;
    case PRM_SGD:
        if (d == PRM_F32)
            tb->sgd.f32((float *)x[0], (const float *)x[1], (float *)x[2], n, job->params);
        else
            tb->sgd.f64((double *)x[0], (const double *)x[1], (double *)x[2], n, job->params);
        break;
    case PRM_TOUCH:
        if (d == PRM_F32)
            tb->touch.f32((float *)x[0], (const float *)x[1], (float *)x[2], (float *)x[3], n);
        else
            tb->touch.f64((double *)x[0], (const double *)x[1], (double *)x[2], (double *)x[3],
                          n);
        break;
    default:
        break;
    }
}

int prm_any_nonfinite(int dtype, char *const *ptrs, const ptrdiff_t *lens, ptrdiff_t ntensors)
{
    const prm_kernel_table *tb = prm_table();
    for (ptrdiff_t t = 0; t < ntensors; t++) {
        if (lens[t] == 0) continue;
        const int bad = dtype == PRM_F32 ? tb->nonfinite.f32((const float *)ptrs[t], lens[t])
                                         : tb->nonfinite.f64((const double *)ptrs[t], lens[t]);
        if (bad) return 1;
    }
    return 0;
}
