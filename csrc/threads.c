/*
 * threads.c -- prm_run(): apply a job serially, or split it across a small
 * persistent pool of worker threads in which the caller takes part.
 *
 * The contract (DEVELOPERS.md, "threads must never make a call slower"):
 *   - the caller posts the job, then claims chunks itself until none is left;
 *   - it then waits only for chunks a worker has already claimed (those
 *     workers are running), never for a worker that has not started: on a
 *     machine whose other core is busy the caller simply does every chunk;
 *   - chunks are PRM_CHUNK elements (a multiple of 64 bytes for float and
 *     double) of one tensor, so chunk edges fall on cache lines of each array;
 *   - kernels are elementwise, so every split gives the same bits.
 *
 * Claiming is one 64-bit atomic "ticket": generation (15 bits) | number of
 * chunks (24) | next chunk (24), 63 bits, so a ticket is never negative and no
 * shift ever reaches the sign bit.  A worker that wakes late compares the whole
 * ticket in a compare-and-swap, so it can never claim a chunk of a job that has
 * ended; it reads the job only after a successful claim, when the caller is
 * still waiting for that chunk and the job is alive.  (The generation wraps every
 * 32768 jobs; a worker that slept through exactly a multiple of that many and
 * finds the very same ticket claims a chunk that is genuinely unclaimed in the
 * current job, which is just as correct.)
 * A second caller that finds the pool busy runs its job serially.
 * No threading runtime (OpenMP, TBB) is used: pthreads, or Win32 threads.
 */
#include "pyrmsprop.h"
#include "prm_dispatch.h"

#include <stdint.h>
#include <stdlib.h>

#define PRM_CHUNK ((ptrdiff_t)1 << 15)       /* elements; multiple of 16          */
#define PRM_MAX_WORKERS 255
#define PRM_SPIN 4000                        /* caller: pause loops before sleeping */
#define PRM_WORKER_SPIN 20000                /* worker: pause loops, after a job,
                                                watching for the next one before it
                                                sleeps (back-to-back calls then find
                                                it awake, as OpenMP runtimes do)     */
#define PRM_MAX_CHUNKS (((int64_t)1 << 24) - 1)

/* Jobs smaller than this many float32-EMA elements stay serial (about 25 us of
 * work on one core here): measured with `python -m pyrmsprop.bench --threshold`
 * (README, "SIMD targets and threads").  A job's size is weighted by its rule and
 * dtype's cost per element relative to float32 EMA (1T, in cache, this machine's
 * benchmark: EMA 0.09 ns, SGD 0.15, RMSprop 0.37, Adam 0.55; float64 EMA 0.16,
 * SGD 0.33, RMSprop 1.33, Adam 1.9), so that every job split costs about as much. */
#define PRM_DEFAULT_THRESHOLD ((ptrdiff_t)1 << 18)
static const ptrdiff_t weight[PRM_NRULES][2] = {
    /* EMA */ {1, 2}, /* RMSprop */ {4, 15}, /* Adam */ {6, 21}, /* SGD */ {2, 4},
    /* memory-only: splits no later than any rule it stands in for */ {6, 21},
};

/* ---- portability: mutex, condition variable, thread, atomics -------------------- */
#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
typedef SRWLOCK prm_mutex;
typedef CONDITION_VARIABLE prm_cond;
typedef volatile LONG64 prm_atomic;
#define PRM_MUTEX_INIT SRWLOCK_INIT
#define PRM_COND_INIT CONDITION_VARIABLE_INIT
static void mutex_lock(prm_mutex *m) { AcquireSRWLockExclusive(m); }
static void mutex_unlock(prm_mutex *m) { ReleaseSRWLockExclusive(m); }
static void cond_wait(prm_cond *c, prm_mutex *m) { SleepConditionVariableSRW(c, m, INFINITE, 0); }
static void cond_broadcast(prm_cond *c) { WakeAllConditionVariable(c); }
static int64_t a_load(prm_atomic *p) { return InterlockedCompareExchange64(p, 0, 0); }
static void a_store(prm_atomic *p, int64_t v) { InterlockedExchange64(p, v); }
static int a_cas(prm_atomic *p, int64_t expect, int64_t want)
{
    return InterlockedCompareExchange64(p, want, expect) == expect;
}
static int64_t a_add(prm_atomic *p, int64_t v) { return InterlockedExchangeAdd64(p, v) + v; }
static void cpu_relax(void) { YieldProcessor(); }
static DWORD WINAPI worker_entry(LPVOID arg);
static int thread_start(int id)
{
    HANDLE h = CreateThread(NULL, 0, worker_entry, (LPVOID)(intptr_t)id, 0, NULL);
    if (h == NULL) return -1;
    CloseHandle(h);
    return 0;
}
static const char mode_name[] = "persistent pool (Win32 threads), caller participates";
#else
#include <pthread.h>
#include <sched.h>
typedef pthread_mutex_t prm_mutex;
typedef pthread_cond_t prm_cond;
typedef int64_t prm_atomic;
#define PRM_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#define PRM_COND_INIT PTHREAD_COND_INITIALIZER
static void mutex_lock(prm_mutex *m) { pthread_mutex_lock(m); }
static void mutex_unlock(prm_mutex *m) { pthread_mutex_unlock(m); }
static void cond_wait(prm_cond *c, prm_mutex *m) { pthread_cond_wait(c, m); }
static void cond_broadcast(prm_cond *c) { pthread_cond_broadcast(c); }
static int64_t a_load(prm_atomic *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void a_store(prm_atomic *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static int a_cas(prm_atomic *p, int64_t expect, int64_t want)
{
    return __atomic_compare_exchange_n(p, &expect, want, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static int64_t a_add(prm_atomic *p, int64_t v) { return __atomic_add_fetch(p, v, __ATOMIC_ACQ_REL); }
static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
static void *worker_entry(void *arg);
static int thread_start(int id)
{
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    const int rc = pthread_create(&th, &attr, worker_entry, (void *)(intptr_t)id);
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}
static const char mode_name[] = "persistent pool (pthreads), caller participates";
#endif

/* ---- the pool ------------------------------------------------------------------- */
static struct {
    prm_mutex m;                /* guards gen, wanted, nworkers and the job fields   */
    prm_cond work_cv;           /* a new job was posted                               */
    prm_cond done_cv;           /* a worker finished a job's last chunk               */
    prm_atomic gen;             /* job generation (written under m, read also without) */
    int wanted;                 /* workers taking part in the current job             */
    int nworkers;               /* workers started                                    */
    prm_atomic busy;            /* 1 while a caller owns the pool                     */
    prm_atomic ticket;          /* gen15 | nchunks24 | next24                         */
    prm_atomic done;            /* chunks finished in the current job                 */
    prm_job job;                /* the current job, valid while chunks are pending    */
    const ptrdiff_t *cstart;    /* first chunk of each tensor, ntensors + 1 entries   */
    const prm_kernel_table *tb;
} pool = {PRM_MUTEX_INIT, PRM_COND_INIT, PRM_COND_INIT, 0, 0, 0, 0, 0, 0,
          {0, 0, 0, NULL, NULL, NULL}, NULL, NULL};

/* Settings: written by set_num_threads / set_thread_threshold (from any Python
 * thread, and without a GIL on free-threaded builds) while other threads run
 * prm_run, so every access is atomic (each call reads them once). */
static prm_atomic num_threads = 1;
static prm_atomic threshold = PRM_DEFAULT_THRESHOLD;

#define PRM_GEN_MASK 0x7fff   /* 15 bits: (gen & PRM_GEN_MASK) << 48 stays below 2^63 */
#define TICKET(gen, nch, next) \
    ((((int64_t)(gen) & PRM_GEN_MASK) << 48) | ((int64_t)(nch) << 24) | (int64_t)(next))
#define TICKET_GEN(t) (((t) >> 48) & PRM_GEN_MASK)
#define TICKET_NCH(t) (((t) >> 24) & 0xffffff)
#define TICKET_NEXT(t) ((t) & 0xffffff)

static void run_chunk(int64_t idx)
{
    /* the tensor t with cstart[t] <= idx < cstart[t + 1] (empty tensors own no chunk) */
    ptrdiff_t lo = 0, hi = pool.job.ntensors;
    while (hi - lo > 1) {
        const ptrdiff_t mid = lo + (hi - lo) / 2;
        if (pool.cstart[mid] <= idx) lo = mid;
        else hi = mid;
    }
    const ptrdiff_t first = ((ptrdiff_t)idx - pool.cstart[lo]) * PRM_CHUNK;
    ptrdiff_t last = first + PRM_CHUNK;
    if (last > pool.job.lens[lo]) last = pool.job.lens[lo];
    prm_apply(pool.tb, &pool.job, lo, first, last);
}

/* Claim and run chunks of generation gen15 until none is left; returns how many
 * this thread ran.  A worker reports each chunk as done at once. */
static int64_t claim_chunks(int64_t gen15, int is_worker)
{
    int64_t ran = 0;
    for (;;) {
        const int64_t t = a_load(&pool.ticket);
        if (TICKET_GEN(t) != gen15 || TICKET_NEXT(t) >= TICKET_NCH(t)) break;
        if (!a_cas(&pool.ticket, t, t + 1)) continue;
        run_chunk(TICKET_NEXT(t));
        ran++;
        if (is_worker && a_add(&pool.done, 1) == TICKET_NCH(t)) {
            mutex_lock(&pool.m);
            cond_broadcast(&pool.done_cv);
            mutex_unlock(&pool.m);
        }
    }
    return ran;
}

static void worker_loop(int id)
{
    mutex_lock(&pool.m);
    int64_t seen = pool.gen;
    for (;;) {
        if (pool.gen == seen) {
            mutex_unlock(&pool.m);
            for (int spin = 0; spin < PRM_WORKER_SPIN && a_load(&pool.gen) == seen; spin++)
                cpu_relax();
            mutex_lock(&pool.m);
            while (pool.gen == seen) cond_wait(&pool.work_cv, &pool.m);
        }
        seen = pool.gen;
        const int take_part = id < pool.wanted;
        mutex_unlock(&pool.m);
        if (take_part) claim_chunks(seen & PRM_GEN_MASK, 1);
        mutex_lock(&pool.m);
    }
}

#if defined(_WIN32)
static DWORD WINAPI worker_entry(LPVOID arg)
{
    worker_loop((int)(intptr_t)arg);
    return 0;
}
#else
static void *worker_entry(void *arg)
{
    worker_loop((int)(intptr_t)arg);
    return NULL;
}

/* A forked child has none of the parent's threads: start afresh. */
static void after_fork_child(void)
{
    pthread_mutex_init(&pool.m, NULL);
    pthread_cond_init(&pool.work_cv, NULL);
    pthread_cond_init(&pool.done_cv, NULL);
    pool.nworkers = 0;
    pool.wanted = 0;
    pool.busy = 0;
}
#endif

/* Start workers up to `want` (called with the pool owned); returns how many run. */
static int ensure_workers(int want)
{
#if !defined(_WIN32)
    static int atfork_done = 0;
    if (!atfork_done) {
        pthread_atfork(NULL, NULL, after_fork_child);
        atfork_done = 1;
    }
#endif
    mutex_lock(&pool.m);
    while (pool.nworkers < want && thread_start(pool.nworkers) == 0) pool.nworkers++;
    const int have = pool.nworkers;
    mutex_unlock(&pool.m);
    return have < want ? have : want;
}

static void run_serial(const prm_job *job, const prm_kernel_table *tb)
{
    for (ptrdiff_t t = 0; t < job->ntensors; t++)
        if (job->lens[t] > 0) prm_apply(tb, job, t, 0, job->lens[t]);
}

void prm_run(const prm_job *job)
{
    const prm_kernel_table *tb = prm_table();
    ptrdiff_t total = 0;
    for (ptrdiff_t t = 0; t < job->ntensors; t++) total += job->lens[t];
    const int64_t nthreads = a_load(&num_threads);
    if (nthreads <= 1 || total < prm_split_elems(job->rule, job->dtype) ||
        !a_cas(&pool.busy, 0, 1)) {
        run_serial(job, tb);
        return;
    }

    ptrdiff_t small[9];
    ptrdiff_t *cstart = job->ntensors < 9 ? small
                        : (ptrdiff_t *)malloc(sizeof(ptrdiff_t) * (size_t)(job->ntensors + 1));
    int workers = 0;
    if (cstart != NULL) {
        cstart[0] = 0;
        for (ptrdiff_t t = 0; t < job->ntensors; t++)
            cstart[t + 1] = cstart[t] + (job->lens[t] + PRM_CHUNK - 1) / PRM_CHUNK;
        if (cstart[job->ntensors] >= 2 && cstart[job->ntensors] <= PRM_MAX_CHUNKS) {
            const int want = nthreads - 1 < PRM_MAX_WORKERS ? (int)nthreads - 1 : PRM_MAX_WORKERS;
            workers = ensure_workers(want);
        }
    }
    if (workers == 0) {
        if (cstart != small) free(cstart);
        a_store(&pool.busy, 0);
        run_serial(job, tb);
        return;
    }

    const int64_t nchunks = cstart[job->ntensors];
    mutex_lock(&pool.m);
    pool.job = *job;
    pool.cstart = cstart;
    pool.tb = tb;
    pool.wanted = workers;
    a_store(&pool.gen, pool.gen + 1);
    const int64_t gen15 = pool.gen & PRM_GEN_MASK;
    a_store(&pool.done, 0);
    a_store(&pool.ticket, TICKET(gen15, nchunks, 0));
    cond_broadcast(&pool.work_cv);
    mutex_unlock(&pool.m);

    const int64_t mine = claim_chunks(gen15, 0);
    if (a_add(&pool.done, mine) != nchunks) {
        /* only chunks that running workers claimed are left */
        for (int spin = 0; spin < PRM_SPIN && a_load(&pool.done) != nchunks; spin++) cpu_relax();
        if (a_load(&pool.done) != nchunks) {
            mutex_lock(&pool.m);
            while (a_load(&pool.done) != nchunks) cond_wait(&pool.done_cv, &pool.m);
            mutex_unlock(&pool.m);
        }
    }
    if (cstart != small) free(cstart);
    a_store(&pool.busy, 0);
}

void prm_set_num_threads(int n) { a_store(&num_threads, n < 1 ? 1 : n); }
int prm_get_num_threads(void) { return (int)a_load(&num_threads); }
void prm_set_thread_threshold(ptrdiff_t elems) { a_store(&threshold, elems < 0 ? 0 : elems); }
ptrdiff_t prm_get_thread_threshold(void) { return (ptrdiff_t)a_load(&threshold); }
ptrdiff_t prm_split_elems(int rule, int dtype)
{
    const ptrdiff_t threshold_now = (ptrdiff_t)a_load(&threshold);
    const ptrdiff_t w = (rule >= 0 && rule < PRM_NRULES && (dtype == PRM_F32 || dtype == PRM_F64))
                            ? weight[rule][dtype] : 1;
    /* ceil(threshold / w) without forming threshold + w - 1, which overflows for
     * thresholds near PTRDIFF_MAX (a negative result would split every job) */
    return threshold_now / w + (threshold_now % w != 0);
}
const char *prm_thread_mode(void) { return mode_name; }
ptrdiff_t prm_chunk_elems(void) { return PRM_CHUNK; }
