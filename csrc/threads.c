/*
 * threads.c -- prm_run(): apply a job serially, or split it across a small
 * persistent pool of worker threads in which the caller takes part.
 *
 * The contract (DEVELOPERS.md, "threads must never make a call slower"):
 *   - the caller posts the job, then claims chunks itself until none is left;
 *   - it then waits only for chunks a worker has already claimed (those
 *     workers are running), never for a worker that has not started: on a
 *     machine whose other core is busy the caller simply does every chunk;
 *   - a worker that spins waiting for the next job yields its CPU now and then,
 *     so that it never holds up a caller the scheduler put on the same CPU;
 *   - kernels are elementwise, so every split gives the same bits.
 *
 * Layout.  Each tensor is cut into chunks of PRM_CHUNK elements whose edges fall
 * on 64-byte boundaries of the tensor's arrays: the first chunk is longer by the
 * tensor's "head", the elements before the first cache-line boundary of most of
 * its arrays (align_head), and every kernel call that starts at element 0 runs
 * the head on its own, so that the vector body's loads and stores never split a
 * cache line (numpy places large arrays 16 bytes past a line; torch and
 * pyrmsprop's own state arrays on one).  The chunks of a job, numbered across its
 * tensors, form one range per taking-part thread, contiguous and of about equal
 * elements: each thread streams through its own memory, as torch's and
 * DeepSpeed's OpenMP loops do.  A thread that finishes its range takes chunks
 * from the END of another's (work stealing), so the owner keeps streaming from
 * the front; the caller takes a worker's whole range when that worker never
 * starts.
 *
 * Claiming: each range is one 64-bit atomic ticket, generation (15 bits) | end
 * (24) | next (24), 63 bits, so a ticket is never negative and no shift reaches
 * the sign bit.  The owner claims `next`, a thief `end - 1`, both by a
 * compare-and-swap of the whole ticket while next < end.  A worker that wakes
 * late compares the generation too, so it can never claim a chunk of a job that
 * has ended; it reads the job only after a successful claim, when the caller is
 * still waiting for that chunk and the job is alive.  (The generation wraps every
 * 32768 jobs; a worker that slept through exactly a multiple of that many and
 * finds the very same ticket claims a chunk that is genuinely unclaimed in the
 * current job, which is just as correct.)
 * A second caller that finds the pool busy runs its job serially.
 * No threading runtime (OpenMP, TBB) is used: pthreads, or Win32 threads.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE   /* sched_getcpu */
#endif
#include "pyrmsprop.h"
#include "prm_dispatch.h"

#include <stdint.h>
#include <stdlib.h>

#define PRM_CHUNK ((ptrdiff_t)1 << 15)       /* elements; multiple of 16 and of the
                                                8-bit state's blocks (256)          */
#define PRM_ALIGN 64                         /* bytes: the cache line               */
#define PRM_PEEL_MIN 1024                    /* elements: shorter calls are not peeled */
#define PRM_MAX_WORKERS 255
#define PRM_SPIN 4000                        /* caller: pause loops before sleeping */
#define PRM_WORKER_SPIN 20000                /* worker: pause loops, after a job,
                                                watching for the next one before it
                                                sleeps (back-to-back calls then find
                                                it awake, as OpenMP runtimes do)     */
/* ... yielding its CPU every PRM_YIELD_EVERY of them (sched_yield, SwitchToThread)
 * when it runs on the CPU the caller posted the job from (sched_getcpu,
 * GetCurrentProcessorNumber; elsewhere it cannot tell and always yields).  With the
 * other CPU busy, the scheduler may run the worker on the caller's CPU: spinning
 * there, it took the caller's time in slices, and runs of calls took hundreds of
 * microseconds.  On a Zen 5-class EPYC with a busy loop on the second CPU, 3000
 * float32 Adam calls over 6.4e4 elements with 2 threads had 61-67 calls over 100 us
 * without the yields and 1-3 with them (1 thread: 2-6); the busy-core experiment
 * went from 1.56-1.99x the 1-thread time to 0.77-1.10x.  Yielding on any CPU made
 * idle 2-thread calls of that size about 14% slower (medians of nine runs,
 * alternating with a build without yields); yielding only on the caller's CPU was
 * not slower than not yielding (three alternating runs). */
#define PRM_YIELD_EVERY 64
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
static void yield_cpu(void) { SwitchToThread(); }
static int64_t current_cpu(void) { return (int64_t)GetCurrentProcessorNumber(); }
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
static void yield_cpu(void) { sched_yield(); }
static int64_t current_cpu(void)   /* -1: unknown */
{
#if defined(__linux__)
    return (int64_t)sched_getcpu();
#else
    return -1;
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
typedef struct {
    prm_atomic ticket;          /* gen15 | end24 | next24                             */
    char pad[64 - sizeof(prm_atomic)];   /* one cache line per range                  */
} prm_range;

static struct {
    prm_mutex m;                /* guards gen, wanted, nworkers and the job fields   */
    prm_cond work_cv;           /* a new job was posted                               */
    prm_cond done_cv;           /* a worker finished a job's last chunk               */
    prm_atomic gen;             /* job generation (written under m, read also without) */
    int wanted;                 /* workers taking part in the current job             */
    int nworkers;               /* workers started                                    */
    prm_atomic busy;            /* 1 while a caller owns the pool                     */
    prm_atomic done;            /* chunks finished in the current job                 */
    int nranges;                /* threads taking part: the caller + wanted workers   */
    int64_t nchunks;            /* chunks in the current job                          */
    prm_job job;                /* the current job, valid while chunks are pending    */
    const ptrdiff_t *cstart;    /* first chunk of each tensor, ntensors + 1 entries   */
    const prm_kernel_table *tb;
} pool = {PRM_MUTEX_INIT, PRM_COND_INIT, PRM_COND_INIT, 0, 0, 0, 0, 0, 0, 0,
          {0}, NULL, NULL};

/* range 0 is the caller's, range k + 1 worker k's */
static prm_range ranges[PRM_MAX_WORKERS + 1];

/* Settings: written by set_num_threads / set_thread_threshold (from any Python
 * thread, and without a GIL on free-threaded builds) while other threads run
 * prm_run, so every access is atomic (each call reads them once). */
static prm_atomic num_threads = 1;
static prm_atomic threshold = PRM_DEFAULT_THRESHOLD;
/* The CPU the last caller posted its job from (-1: unknown); see PRM_YIELD_EVERY. */
static prm_atomic caller_cpu = -1;

#define PRM_GEN_MASK 0x7fff   /* 15 bits: (gen & PRM_GEN_MASK) << 48 stays below 2^63 */
#define TICKET(gen, end, next) \
    ((((int64_t)(gen) & PRM_GEN_MASK) << 48) | ((int64_t)(end) << 24) | (int64_t)(next))
#define TICKET_GEN(t) (((t) >> 48) & PRM_GEN_MASK)
#define TICKET_END(t) (((t) >> 24) & 0xffffff)
#define TICKET_NEXT(t) ((t) & 0xffffff)

/* ---- chunk geometry ------------------------------------------------------------- */
/* Elements of tensor t before the 64-byte boundary that the most of its arrays share
 * (ties: the parameter's, slot 0); 0 for short tensors or when no array's address
 * is a multiple of the element size. */
static ptrdiff_t align_head(const prm_job *job, ptrdiff_t t)
{
    const ptrdiff_t n = job->lens[t];
    /* 8-bit state: every call starts at a block (chunks are whole blocks) */
    if (n < PRM_PEEL_MIN || job->state == PRM_Q8) return 0;
    char *const *a = job->ptrs + t * PRM_MAX_ARRAYS;
    ptrdiff_t heads[PRM_MAX_ARRAYS];
    int votes[PRM_MAX_ARRAYS], kinds = 0, best = -1;
    for (int k = 0; k < PRM_MAX_ARRAYS; k++) {
        const size_t es = prm_slot_size(job, k);
        if (a[k] == NULL || es == 0) continue;
        const size_t off = (size_t)((uintptr_t)a[k] % PRM_ALIGN);
        if (off % es != 0) continue;
        const ptrdiff_t h = (ptrdiff_t)(((PRM_ALIGN - off) % PRM_ALIGN) / es);
        int j = 0;
        while (j < kinds && heads[j] != h) j++;
        if (j == kinds) {
            heads[kinds] = h;
            votes[kinds++] = 0;
        }
        votes[j]++;
        if (best < 0 || votes[j] > votes[best]) best = j;
    }
    if (best < 0) return 0;
    return heads[best] < n ? heads[best] : 0;
}

/* Chunks of tensor t: [0, head + CHUNK), then CHUNK each; none when empty. */
static ptrdiff_t tensor_chunks(ptrdiff_t n, ptrdiff_t head)
{
    if (n == 0) return 0;
    const ptrdiff_t body = n - head;
    return body <= PRM_CHUNK ? 1 : (body + PRM_CHUNK - 1) / PRM_CHUNK;
}

/* Tensor t's slice [lo, hi), its head (if any) as a call of its own. */
static void apply_range(const prm_kernel_table *tb, const prm_job *job, ptrdiff_t t,
                        ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t head)
{
    if (lo < head && head < hi) {
        prm_apply(tb, job, t, lo, head);
        lo = head;
    }
    prm_apply(tb, job, t, lo, hi);
}

static void run_chunk(int64_t idx)
{
    /* the tensor t with cstart[t] <= idx < cstart[t + 1] (empty tensors own no chunk) */
    ptrdiff_t lo = 0, hi = pool.job.ntensors;
    while (hi - lo > 1) {
        const ptrdiff_t mid = lo + (hi - lo) / 2;
        if (pool.cstart[mid] <= idx) lo = mid;
        else hi = mid;
    }
    const ptrdiff_t n = pool.job.lens[lo], head = align_head(&pool.job, lo);
    const ptrdiff_t j = (ptrdiff_t)idx - pool.cstart[lo];
    const ptrdiff_t first = j == 0 ? 0 : head + j * PRM_CHUNK;
    const ptrdiff_t last = head + (j + 1) * PRM_CHUNK < n ? head + (j + 1) * PRM_CHUNK : n;
    apply_range(pool.tb, &pool.job, lo, first, last, head);
}

/* One chunk of range r for generation gen15: its front for the owner, its back for a
 * thief; -1 when the range is empty (or belongs to another generation). */
static int64_t claim(int r, int64_t gen15, int from_back)
{
    for (;;) {
        const int64_t t = a_load(&ranges[r].ticket);
        const int64_t end = TICKET_END(t), next = TICKET_NEXT(t);
        if (TICKET_GEN(t) != gen15 || next >= end) return -1;
        const int64_t want = from_back ? TICKET(gen15, end - 1, next) : t + 1;
        if (a_cas(&ranges[r].ticket, t, want)) return from_back ? end - 1 : next;
    }
}

/* Run the chunks of range `own`, then steal from the others' backs, until none of
 * generation gen15 is left; returns how many this thread ran.  A worker (nchunks > 0:
 * the job's count, as it read it with the generation) reports each chunk as done at
 * once; the caller (nchunks = 0) adds its count when it has run out. */
static int64_t claim_chunks(int own, int nranges, int64_t gen15, int64_t nchunks)
{
    int64_t ran = 0;
    for (int k = 0; k < nranges; k++) {
        const int r = (own + k) % nranges;
        for (;;) {
            const int64_t idx = claim(r, gen15, r != own);
            if (idx < 0) break;
            run_chunk(idx);
            ran++;
            if (nchunks > 0 && a_add(&pool.done, 1) == nchunks) {
                mutex_lock(&pool.m);
                cond_broadcast(&pool.done_cv);
                mutex_unlock(&pool.m);
            }
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
            /* and every PRM_YIELD_EVERY pauses, when it is on the caller's CPU (or
               cannot tell), lets the caller run */
            for (int spin = 0; spin < PRM_WORKER_SPIN && a_load(&pool.gen) == seen; spin++) {
                cpu_relax();
                if (spin % PRM_YIELD_EVERY == PRM_YIELD_EVERY - 1) {
                    const int64_t c = a_load(&caller_cpu);
                    if (c < 0 || c == current_cpu()) yield_cpu();
                }
            }
            mutex_lock(&pool.m);
            while (pool.gen == seen) cond_wait(&pool.work_cv, &pool.m);
        }
        seen = pool.gen;
        /* read with seen, under m: one job's values (a worker that is late for it
           finds its tickets taken or of a newer generation, and claims nothing) */
        const int take_part = id < pool.wanted, nranges = pool.nranges;
        const int64_t nchunks = pool.nchunks;
        mutex_unlock(&pool.m);
        if (take_part) claim_chunks(id + 1, nranges, seen & PRM_GEN_MASK, nchunks);
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
        if (job->lens[t] > 0) apply_range(tb, job, t, 0, job->lens[t], align_head(job, t));
}

/* Cut chunks [0, nchunks) into `nranges` contiguous ranges of about equal elements
 * and publish their tickets (called with the pool owned, before the job is posted). */
static void set_ranges(const prm_job *job, const ptrdiff_t *cstart, ptrdiff_t total,
                       int nranges, int64_t gen15)
{
    const int64_t nchunks = cstart[job->ntensors];
    int64_t begin = 0;
    ptrdiff_t t = 0, before = 0;   /* elements of the tensors before t */
    for (int r = 0; r < nranges; r++) {
        int64_t end = nchunks;
        if (r + 1 < nranges) {
            /* the chunk boundary nearest element total * (r + 1) / nranges of the
               job (not the start of the chunk holding it: a job of two chunks would
               then leave the caller's range empty, and which core ran which half
               would change from call to call, its data moving between their caches) */
            const ptrdiff_t target = (ptrdiff_t)((double)total * (r + 1) / nranges);
            while (t + 1 < job->ntensors && before + job->lens[t] <= target) {
                before += job->lens[t];
                t++;
            }
            const ptrdiff_t head = align_head(job, t), at = target - before;
            ptrdiff_t j = at <= head ? 0 : (at - head + PRM_CHUNK / 2) / PRM_CHUNK;
            const ptrdiff_t nch = cstart[t + 1] - cstart[t];
            if (j > nch) j = nch;
            end = cstart[t] + j;
            if (end < begin) end = begin;
            if (end > nchunks) end = nchunks;
        }
        a_store(&ranges[r].ticket, TICKET(gen15, end, begin));
        begin = end;
    }
}

void prm_run_serial_on(int target, const prm_job *job)
{
    const prm_kernel_table *tb = prm_table_of(target);
    if (tb != NULL) run_serial(job, tb);
}

void prm_run(const prm_job *job)
{
    /* the target chosen for the call's 16-bit storage type if it has one (float32
     * params with bfloat16 state run on the bfloat16 choice: its conversions decide) */
    const int key = job->state == PRM_BF16 || job->state == PRM_F16 ? job->state : job->dtype;
    const prm_kernel_table *tb = prm_table_for(job->rule, key);
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
            cstart[t + 1] = cstart[t] + tensor_chunks(job->lens[t], align_head(job, t));
        if (cstart[job->ntensors] >= 2 && cstart[job->ntensors] <= PRM_MAX_CHUNKS) {
            const int want = nthreads - 1 < PRM_MAX_WORKERS ? (int)nthreads - 1 : PRM_MAX_WORKERS;
            workers = ensure_workers(want);
            if (workers > cstart[job->ntensors] - 1) workers = (int)cstart[job->ntensors] - 1;
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
    pool.nranges = workers + 1;
    pool.nchunks = nchunks;
    a_store(&pool.gen, pool.gen + 1);
    const int64_t gen15 = pool.gen & PRM_GEN_MASK;
    a_store(&pool.done, 0);
    a_store(&caller_cpu, current_cpu());
    set_ranges(job, cstart, total, workers + 1, gen15);
    cond_broadcast(&pool.work_cv);
    mutex_unlock(&pool.m);

    const int64_t mine = claim_chunks(0, workers + 1, gen15, 0);
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
    /* every storage but float64 computes in float32: float32's weight */
    const int d = dtype == PRM_F64 ? PRM_F64 : PRM_F32;
    const ptrdiff_t w = (rule >= 0 && rule < PRM_NRULES && dtype >= 0 && dtype < PRM_NSTORAGE)
                            ? weight[rule][d] : 1;
    /* ceil(threshold / w) without forming threshold + w - 1, which overflows for
     * thresholds near PTRDIFF_MAX (a negative result would split every job) */
    return threshold_now / w + (threshold_now % w != 0);
}
const char *prm_thread_mode(void) { return mode_name; }
ptrdiff_t prm_chunk_elems(void) { return PRM_CHUNK; }
