/*
 * xc_smoke.c -- a small program linked against the C core (dispatch.c, threads.c and
 * every kernel target), with no Python: tools/ci/cross_compile.sh builds it for Linux
 * and for Windows (MinGW-w64 gcc; and with the core compiled by clang in MSVC mode),
 * runs the Windows builds under Wine, and compares their output with the Linux build's.
 *
 * For every rule, dtype and a few option sets it runs one update on a list of tensors
 * (one above the chunk size, so that the thread pool splits it), through every target
 * this CPU supports, with 1 and 3 threads, and checks
 *   - each result against a double-precision reference written here from
 *     ALGORITHMS.md (error over (|reference| + 1), inputs being of order 1: at most 2e-6 for float32,
 *     1e-14 for float64);
 *   - that every (target, threads) run gives the same bits as baseline with 1 thread;
 * then prints one line per case with a hash of the result bits, so that the caller can
 * compare builds, and a line with the compiled/supported targets.  Exits 1 on any failure.
 */
#include "pyrmsprop.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NT 4
static const ptrdiff_t LENS[NT] = {70001, 7, 0, 40000};  /* > 2 chunks of 32768 */
#define NTOT (70001 + 7 + 0 + 40000)
#define NARR 5  /* a0 .. a4 */

static int failures = 0;

static uint64_t rng = 88172645463325252ull;
static double urand(double lo, double hi)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return lo + (hi - lo) * (double)(rng >> 11) / 9007199254740992.0;
}

/* inputs, in double; a0 p / avg, a1 g / x, a2 s / m / buf, a3 m / v, a4 buf / vmax */
static double in[NARR][NTOT];

static void make_inputs(void)
{
    for (ptrdiff_t i = 0; i < NTOT; i++) {
        in[0][i] = urand(-1.0, 1.0);
        in[1][i] = urand(-2.0, 2.0);
        in[2][i] = urand(0.5, 1.0);   /* square_avg / exp_avg_sq-like: positive */
        in[3][i] = urand(0.01, 0.1);  /* grad_avg (small: s - m*m stays > 0.4) or exp_avg_sq */
        in[4][i] = urand(0.6, 1.2);
    }
}

/* ---- the reference: ALGORITHMS.md, in double, from the double params ---------------- */
static double x[NARR][NTOT];  /* the inputs as the dtype holds them */

static void reference(int rule, int dtype, const void *hp, double r[NARR][NTOT])
{
    for (int k = 0; k < NARR; k++)
        for (ptrdiff_t i = 0; i < NTOT; i++) x[k][i] = dtype == PRM_F32 ? (double)(float)in[k][i] : in[k][i];
    for (ptrdiff_t i = 0; i < NTOT; i++) {
        const double g0 = x[1][i];
        if (rule == PRM_EMA) {
            const prm_ema_params *e = hp;
            r[0][i] = e->beta * x[0][i] + e->one_minus_beta * g0;
        } else if (rule == PRM_RMSPROP) {
            const prm_rmsprop_params *q = hp;
            double p = x[0][i], g = (q->flags & PRM_MAXIMIZE) ? -g0 : g0;
            if (q->flags & PRM_WEIGHT_DECAY) g += q->weight_decay * p;
            const double s = q->alpha * x[2][i] + q->one_minus_alpha * g * g;
            double var = s, m = x[3][i];
            if (q->flags & PRM_CENTERED) {
                m = m + q->one_minus_alpha * (g - m);
                var = s - m * m;
            }
            const double d = (q->flags & PRM_EPS_IN_SQRT) ? sqrt(var + q->eps) : sqrt(var) + q->eps;
            double buf = x[4][i];
            if (q->flags & PRM_MOMENTUM) {
                buf = q->momentum * buf + g / d;
                p -= q->lr * buf;
            } else {
                p -= q->lr * (g / d);
            }
            r[0][i] = p; r[2][i] = s; r[3][i] = m; r[4][i] = buf;
        } else if (rule == PRM_ADAM) {
            const prm_adam_params *a = hp;
            double p = x[0][i], g = (a->flags & PRM_MAXIMIZE) ? -g0 : g0;
            if ((a->flags & PRM_WEIGHT_DECAY) && (a->flags & PRM_DECOUPLED)) p *= a->decay;
            if ((a->flags & PRM_WEIGHT_DECAY) && !(a->flags & PRM_DECOUPLED)) g += a->weight_decay * p;
            const double m = x[2][i] + a->one_minus_beta1 * (g - x[2][i]);
            double v = a->beta2 * x[3][i] + a->one_minus_beta2 * g * g;
            r[3][i] = v;
            double vmax = x[4][i];
            if (a->flags & PRM_AMSGRAD) {
                vmax = vmax > v ? vmax : v;
                v = vmax;
            }
            const double d = sqrt(v) / a->bc2_sqrt + a->eps;
            r[0][i] = p - a->step_size * (m / d); r[2][i] = m; r[4][i] = vmax;
        } else {
            const prm_sgd_params *q = hp;
            double p = x[0][i], g = (q->flags & PRM_MAXIMIZE) ? -g0 : g0;
            if (q->flags & PRM_WEIGHT_DECAY) g += q->weight_decay * p;
            double buf = x[2][i];
            if (q->flags & PRM_MOMENTUM) {
                buf = (q->flags & PRM_FIRST_STEP) ? g : q->momentum * buf + q->one_minus_dampening * g;
                g = (q->flags & PRM_NESTEROV) ? g + q->momentum * buf : buf;
            }
            r[0][i] = p - q->lr * g; r[2][i] = buf;
        }
        r[1][i] = g0;
    }
}

/* which arrays a rule writes (and so compares and hashes) */
static int written(int rule, int k, int flags)
{
    switch (rule) {
    case PRM_EMA: return k == 0;
    case PRM_RMSPROP:
        return k == 0 || k == 2 || (k == 3 && (flags & PRM_CENTERED)) || (k == 4 && (flags & PRM_MOMENTUM));
    case PRM_ADAM: return k == 0 || k == 2 || k == 3 || (k == 4 && (flags & PRM_AMSGRAD));
    default: return k == 0 || (k == 2 && (flags & PRM_MOMENTUM));
    }
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* One run: fresh copies of the inputs in the dtype, prm_run, the written arrays' bits
 * into out (dtype-sized elements). */
static void run_once(int rule, int dtype, const void *hp, unsigned char *out)
{
    const size_t es = dtype == PRM_F32 ? sizeof(float) : sizeof(double);
    static unsigned char buf[NARR][NTOT * sizeof(double)];
    char *ptrs[NT * PRM_MAX_ARRAYS];
    for (int k = 0; k < NARR; k++)
        for (ptrdiff_t i = 0; i < NTOT; i++) {
            if (dtype == PRM_F32) ((float *)buf[k])[i] = (float)in[k][i];
            else ((double *)buf[k])[i] = in[k][i];
        }
    ptrdiff_t off = 0;
    for (int t = 0; t < NT; t++) {
        for (int k = 0; k < PRM_MAX_ARRAYS; k++)   /* slot 5 (a master's array): none */
            ptrs[t * PRM_MAX_ARRAYS + k] = k < NARR ? (char *)buf[k] + off * es : NULL;
        off += LENS[t];
    }
    const prm_job job = {rule, dtype, dtype, PRM_MASTER_NONE, 0, 0, NT, ptrs, LENS, hp};
    prm_run(&job);
    for (int k = 0; k < NARR; k++) memcpy(out + (size_t)k * NTOT * es, buf[k], NTOT * es);
}

static unsigned char got[NARR * NTOT * sizeof(double)], first[NARR * NTOT * sizeof(double)];
static double ref[NARR][NTOT];

static const char *rule_name[] = {"ema", "rmsprop", "adam", "sgd"};

static void check_case(int rule, int dtype, int flags, const void *hp)
{
    const size_t es = dtype == PRM_F32 ? sizeof(float) : sizeof(double);
    const double rtol = dtype == PRM_F32 ? 2e-6 : 1e-14;
    reference(rule, dtype, hp, ref);
    int runs = 0;
    for (int tgt = 0; tgt < PRM_NTARGETS; tgt++) {
        if (!prm_target_supported(tgt)) continue;
        prm_set_target(tgt);
        for (int threads = 1; threads <= 3; threads += 2) {
            prm_set_num_threads(threads);
            run_once(rule, dtype, hp, got);
            if (runs++ == 0) {
                memcpy(first, got, sizeof got);
                double worst = 0.0;
                for (int k = 0; k < NARR; k++) {
                    if (!written(rule, k, flags)) continue;
                    for (ptrdiff_t i = 0; i < NTOT; i++) {
                        const unsigned char *e = got + ((size_t)k * NTOT + (size_t)i) * es;
                        double v;
                        if (dtype == PRM_F32) { float f; memcpy(&f, e, sizeof f); v = f; }
                        else memcpy(&v, e, sizeof v);
                        const double err = fabs(v - ref[k][i]) / (fabs(ref[k][i]) + 1.0);
                        if (!(err <= worst)) worst = err;  /* NaN-safe */
                    }
                }
                if (!(worst <= rtol)) {
                    printf("FAIL %s %s flags=%d: relative error %.3g > %.3g vs reference\n",
                           rule_name[rule], dtype == PRM_F32 ? "f32" : "f64", flags, worst, rtol);
                    failures++;
                }
            } else {
                for (int k = 0; k < NARR; k++) {
                    if (!written(rule, k, flags)) continue;
                    const size_t o = (size_t)k * NTOT * es;
                    if (memcmp(got + o, first + o, NTOT * es) != 0) {
                        printf("FAIL %s %s flags=%d: target %s with %d threads differs from "
                               "baseline with 1 thread (array a%d)\n",
                               rule_name[rule], dtype == PRM_F32 ? "f32" : "f64", flags,
                               prm_target_name(tgt), threads, k);
                        failures++;
                    }
                }
            }
        }
    }
    uint64_t h = 14695981039346656037ull;
    for (int k = 0; k < NARR; k++)
        if (written(rule, k, flags)) h = fnv(h, first + (size_t)k * NTOT * es, NTOT * es);
    printf("case %s %s flags=%d runs=%d hash=%016llx\n", rule_name[rule],
           dtype == PRM_F32 ? "f32" : "f64", flags, runs, (unsigned long long)h);
}

int main(void)
{
    make_inputs();
    printf("targets:");
    for (int t = 0; t < PRM_NTARGETS; t++)
        printf(" %s=%s", t == 0 ? "baseline" : prm_target_name(t),
               prm_target_supported(t) ? "supported" : prm_target_compiled(t) ? "compiled" : "absent");
    printf(" best=%s\n", prm_target_name(prm_target_best()));
    printf("note: %s\n", prm_target_note());
    printf("threads: %s\n", prm_thread_mode());
    printf("compiler: %s\n", prm_compiler());
    prm_set_thread_threshold(0);  /* split every job of two chunks or more */

    for (int dtype = PRM_F32; dtype <= PRM_F64; dtype++) {
        const prm_ema_params e = {0.9, 0.1};
        check_case(PRM_EMA, dtype, 0, &e);
        static const int rms_flags[] = {0, PRM_MOMENTUM | PRM_CENTERED | PRM_WEIGHT_DECAY,
                                        PRM_EPS_IN_SQRT | PRM_MAXIMIZE};
        for (int i = 0; i < 3; i++) {
            const prm_rmsprop_params q = {rms_flags[i], 1e-2, 0.99, 0.01, 1e-8, 0.05, 0.9};
            check_case(PRM_RMSPROP, dtype, rms_flags[i], &q);
        }
        static const int adam_flags[] = {0, PRM_WEIGHT_DECAY | PRM_DECOUPLED | PRM_AMSGRAD,
                                         PRM_WEIGHT_DECAY | PRM_MAXIMIZE};
        for (int i = 0; i < 3; i++) {
            const double lr = 1e-3, b1 = 0.9, b2 = 0.999, wd = 1e-2, t = 3.0;
            const prm_adam_params a = {adam_flags[i], b1, 1.0 - b1, b2, 1.0 - b2, 1e-8, wd,
                                       lr / (1.0 - pow(b1, t)), sqrt(1.0 - pow(b2, t)),
                                       1.0 - lr * wd};
            check_case(PRM_ADAM, dtype, adam_flags[i], &a);
        }
        static const int sgd_flags[] = {PRM_MOMENTUM | PRM_FIRST_STEP,
                                        PRM_MOMENTUM | PRM_NESTEROV | PRM_WEIGHT_DECAY, PRM_MAXIMIZE};
        for (int i = 0; i < 3; i++) {
            const prm_sgd_params q = {sgd_flags[i], 0.1, 0.9, 0.75, 1e-4};
            check_case(PRM_SGD, dtype, sgd_flags[i], &q);
        }
    }
    printf("smoke: %d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
