/* Ember's thread pool, compiled into every generated shared library (codegen/cpu.py links it).
 *
 * ember_parallel_for(body, ctx, n, grain) runs body(ctx, start, end) over [0, n) in contiguous chunks,
 * as many as there are threads (at least `grain` items each); the chunk boundaries depend only on n,
 * grain and the thread count, and each chunk is computed by one thread with the same code, so results
 * do not depend on which thread runs what. Chunks are claimed, not assigned: the caller and every
 * awake worker take the next unclaimed chunk until none is left, so a worker the OS has not scheduled
 * (another pool - NumPy's BLAS, PyTorch's OpenMP - spinning on the same cores) delays nothing: the
 * caller runs its chunk too, instead of waiting a time slice for it. The caller then waits only for
 * chunks still running. Threads: EMBER_NUM_THREADS, else every online CPU, read when the pool starts.
 * Workers spin briefly for the next job (kernels follow one another closely) and then sleep on a
 * condition variable. ember_pool_limit_threads(n) caps the threads a job uses (1: the caller only).
 * ember_pool_shutdown() stops and joins them; the runtime calls it before unloading the library, and a
 * forked child starts its own pool. Concurrent callers are serialized.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 256
#define SPIN_ROUNDS 20000

typedef void (*ember_body)(void *ctx, int64_t start, int64_t end);

static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_t workers[MAX_THREADS];
static int pool_size = 0; /* threads including the caller; 0: not started */
static pid_t pool_pid = 0;
static atomic_uint_fast64_t generation;
/* One word says everything a thread needs to claim a chunk: the job's tag (its generation, 44 bits), its
 * chunk count and its next unclaimed chunk (10 bits each): see claim_word. A thread reads no job field
 * until its compare-and-swap on this word has claimed a chunk; the fields stay fixed until every chunk
 * of the job is done, and a worker that wakes late for an older job finds another tag (or no chunk
 * left) and claims nothing. */
#define TAG_MASK ((UINT64_C(1) << 44) - 1)
static atomic_uint_fast64_t claim;
static atomic_int done; /* chunks of the current job finished */
static atomic_int stopping;
static ember_body job_body;
static void *job_ctx;
static int64_t job_n;
static int job_threads; /* the chunk count */
static uint_fast64_t pool_generation;
static int thread_limit = 0; /* ember_pool_limit_threads(n): at most n threads per job; 0: the pool's size */

static void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int threads_wanted(void) {
    const char *text = getenv("EMBER_NUM_THREADS");
    long n = text && *text ? strtol(text, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    return (int)n;
}

static void run_chunk(int t) {
    int64_t start = job_n * t / job_threads, end = job_n * (t + 1) / job_threads;
    if (start < end) job_body(job_ctx, start, end);
}

static uint_fast64_t claim_word(uint_fast64_t tag, int count, int next) {
    return (tag << 20) | ((uint_fast64_t)count << 10) | (uint_fast64_t)next;
}

/* Claim and run chunks of job `tag` until none is left. */
static void run_claimed_chunks(uint_fast64_t tag) {
    uint_fast64_t current = atomic_load(&claim);
    while ((current >> 20) == tag) {
        int count = (int)((current >> 10) & 1023), chunk = (int)(current & 1023);
        if (chunk >= count) return;
        if (atomic_compare_exchange_weak(&claim, &current, current + 1)) {
            run_chunk(chunk); /* the job's fields are read only now, after the claim */
            atomic_fetch_add(&done, 1);
            current = atomic_load(&claim);
        }
    }
}

static void *worker(void *arg) {
    (void)arg;
    uint_fast64_t seen = pool_generation; /* no job can have been published before the pool started */
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&generation, memory_order_acquire) == seen) {
            if (++spins < SPIN_ROUNDS) {
                relax();
                continue;
            }
            pthread_mutex_lock(&wake_lock);
            while (atomic_load(&generation) == seen) pthread_cond_wait(&wake, &wake_lock);
            pthread_mutex_unlock(&wake_lock);
        }
        seen = atomic_load_explicit(&generation, memory_order_acquire);
        if (atomic_load(&stopping)) return NULL;
        run_claimed_chunks(seen & TAG_MASK);
    }
}

static void start_pool(void) {
    pool_size = threads_wanted();
    pool_pid = getpid();
    pool_generation = atomic_load(&generation);
    atomic_store(&stopping, 0);
    for (int t = 1; t < pool_size; t++) {
        if (pthread_create(&workers[t], NULL, worker, NULL) != 0) {
            pool_size = t; /* run with the threads we got */
            break;
        }
    }
}

static void publish(void) {
    pthread_mutex_lock(&wake_lock);
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&wake_lock);
}

void ember_parallel_for(ember_body body, void *ctx, int64_t n, int64_t grain) {
    pthread_mutex_lock(&call_lock);
    if (thread_limit == 1) { /* the caller alone: the pool is never started */
        body(ctx, 0, n);
        pthread_mutex_unlock(&call_lock);
        return;
    }
    if (pool_size == 0 || pool_pid != getpid()) start_pool();
    int64_t chunks = grain > 0 ? n / grain : n;
    int cap = thread_limit > 0 && thread_limit < pool_size ? thread_limit : pool_size;
    int threads = cap < chunks ? cap : (int)(chunks > 1 ? chunks : 1);
    if (threads <= 1) {
        body(ctx, 0, n);
    } else {
        job_body = body;
        job_ctx = ctx;
        job_n = n;
        job_threads = threads;
        atomic_store(&done, 0);
        uint_fast64_t tag = (atomic_load(&generation) + 1) & TAG_MASK;
        atomic_store(&claim, claim_word(tag, threads, 0));
        publish();
        run_claimed_chunks(tag);
        while (atomic_load(&done) < threads) relax();
    }
    pthread_mutex_unlock(&call_lock);
}

/* Run this library's jobs on at most n threads (n <= 0: no limit); with n = 1 the pool never starts.
 * For programs called between other multi-threaded work (NumPy's BLAS in imperative code), where a
 * second pool spinning for the same cores costs more than it gains. */
void ember_pool_limit_threads(int n) {
    pthread_mutex_lock(&call_lock);
    thread_limit = n > 0 ? n : 0;
    pthread_mutex_unlock(&call_lock);
}

int ember_pool_threads(void) {
    return pool_size ? pool_size : threads_wanted();
}

void ember_pool_shutdown(void) {
    pthread_mutex_lock(&call_lock);
    if (pool_size > 1 && pool_pid == getpid()) {
        atomic_store(&stopping, 1);
        publish();
        for (int t = 1; t < pool_size; t++) pthread_join(workers[t], NULL);
    }
    pool_size = 0;
    pthread_mutex_unlock(&call_lock);
}
