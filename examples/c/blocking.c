/* blocking.c - offloading slow work with rt_spawn_blocking.
 *
 * N_JOBS "slow" jobs (a sleep, standing for blocking I/O, plus a checksum
 * over a buffer) go to the blocking pool; each job's `done` callback then
 * runs on a runtime thread and delivers the result. The pool is capped at
 * one thread (max_blocking_threads = 1), so the jobs queue up behind each
 * other: that makes it deterministic that the last job is still queued when
 * we abort it (its work never runs; its done gets RT_ECANCELED) and that
 * aborting the running first job changes nothing (RT_EALREADY).
 * Meanwhile the main thread keeps spawning small rt_spawn callbacks and
 * measures how soon they run: the blocking jobs do not hold up the workers.
 * The main thread waits for everything with rt_task_join.
 * Exit status 0 only if every check passed.
 */
#define _GNU_SOURCE
#include "rt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_JOBS 5
#define JOB_SLEEP_MS 80
#define BUF_SIZE (256 * 1024)
#define MAX_TICKS 200

static int failures;
#define EXPECT(cond) do { if (!(cond)) { fprintf(stderr, "FAILED: %s (line %d)\n", #cond, __LINE__); failures++; } } while (0)

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    while (n--) h = (h ^ *p++) * 1099511628211ull;
    return h;
}

/* A job. `work` fills the work fields on the pool thread; `done` reads them
 * on a runtime thread (the library orders work before done) and fills the
 * done fields; main reads everything after rt_task_join returned 0 (join
 * returns after done returned). */
typedef struct {
    int no;
    unsigned char *buf;
    double t0, work_start, work_end, done_at;
    uint64_t checksum;           /* computed by work */
    uint64_t result;             /* delivered by done */
    pthread_t work_thread, done_thread;
    int done_status, done_calls;
    atomic_int started;          /* main polls it: is work running? */
    atomic_int work_runs;
} job;

static atomic_int jobs_in_work; /* how many work functions are running now */

static void work(void *arg) {
    job *j = arg;
    atomic_fetch_add(&jobs_in_work, 1);
    atomic_fetch_add(&j->work_runs, 1);
    j->work_start = now_ms();
    j->work_thread = pthread_self();
    atomic_store(&j->started, 1);
    sleep_ms(JOB_SLEEP_MS);             /* blocking: fine on the pool */
    j->checksum = fnv1a(j->buf, BUF_SIZE);
    j->work_end = now_ms();
    atomic_fetch_sub(&jobs_in_work, 1);
}

static void done(void *arg, int status) {
    job *j = arg;
    j->done_at = now_ms();
    j->done_thread = pthread_self();
    j->done_status = status;
    j->done_calls++;
    if (status == 0) j->result = j->checksum; /* deliver the result */
}

/* A small callback task: records how long it waited to run. */
typedef struct {
    double spawned, ran;
    int status, during_work;
} tick;

static void tick_cb(void *arg, int status) {
    tick *t = arg;
    t->ran = now_ms();
    t->status = status;
    t->during_work = atomic_load(&jobs_in_work) > 0;
}

int main(void) {
    static job jobs[N_JOBS];
    static tick ticks[MAX_TICKS];
    rt_task *tasks[N_JOBS];
    rt_config cfg;
    rt_metrics m;
    rt_runtime *rt;
    pthread_t main_thread = pthread_self();
    int i, rc, n_ticks = 0, ticks_during_work = 0;
    double t0, t_abort, max_wait = 0, total_wait = 0;
    const char *where;
    size_t k;

    rt_config_init(&cfg);
    cfg.worker_threads = 2;
    cfg.max_blocking_threads = 1; /* the jobs run one after another */
    if ((rc = rt_runtime_new(&cfg, &rt)) != 0) { fprintf(stderr, "rt_runtime_new: %s\n", rt_strerror(rc)); return 1; }

    for (i = 0; i < N_JOBS; i++) {
        jobs[i].no = i;
        if (!(jobs[i].buf = malloc(BUF_SIZE))) return 1;
        for (k = 0; k < BUF_SIZE; k++) jobs[i].buf[k] = (unsigned char)(k * (i + 3) + (k >> 10));
    }

    t0 = now_ms();
    for (i = 0; i < N_JOBS; i++) {
        jobs[i].t0 = t0;
        EXPECT((rc = rt_spawn_blocking(rt, work, done, &jobs[i], &tasks[i])) == 0);
        if (rc != 0) return 1;
    }
    /* The last job is queued behind the others (one pool thread): abort it. */
    rc = rt_task_abort(tasks[N_JOBS - 1]);
    t_abort = now_ms();
    printf("abort of queued job %d -> %s\n", N_JOBS - 1, rt_err_name(rc));
    EXPECT(rc == 0);
    /* Job 0 is running (or about to): once started, an abort is refused. */
    while (!atomic_load(&jobs[0].started)) sleep_ms(1);
    rc = rt_task_abort(tasks[0]);
    printf("abort of running job 0 -> %s\n", rt_err_name(rc));
    EXPECT(rc == RT_EALREADY);

    /* Meanwhile: callback tasks every 5 ms, each joined from here. */
    while (n_ticks < MAX_TICKS && !rt_task_is_finished(tasks[N_JOBS - 2])) {
        tick *t = &ticks[n_ticks++];
        rt_task *tt = NULL;
        t->spawned = now_ms();
        EXPECT(rt_spawn(rt, tick_cb, t, &tt) == 0);
        EXPECT(rt_task_join(tt, 5000) == 0); /* then tick_cb has returned */
        rt_task_release(tt);
        EXPECT(t->status == 0);
        if (t->ran - t->spawned > max_wait) max_wait = t->ran - t->spawned;
        total_wait += t->ran - t->spawned;
        ticks_during_work += t->during_work;
        sleep_ms(5);
    }

    /* Wait for every job: join returns once its done callback returned. */
    for (i = 0; i < N_JOBS; i++) {
        EXPECT(rt_task_join(tasks[i], 10000) == 0);
        EXPECT(rt_task_is_finished(tasks[i]) == 1);
    }
    printf("%-4s %-10s %-8s %-18s %-18s %s\n", "job", "status", "ran", "work (ms)", "done at (ms)", "result");
    for (i = 0; i < N_JOBS; i++) {
        job *j = &jobs[i];
        int ran = atomic_load(&j->work_runs);
        printf("%-4d %-10s %-8s", i, j->done_status ? rt_err_name(j->done_status) : "ok", ran ? "yes" : "no");
        if (ran) printf(" %6.1f .. %6.1f   ", j->work_start - t0, j->work_end - t0);
        else printf(" %-18s", "-");
        printf(" %7.1f%10s", j->done_at - t0, "");
        if (j->done_status == 0) printf(" %016llx\n", (unsigned long long)j->result);
        else printf(" -\n");
        EXPECT(j->done_calls == 1);
        if (i == N_JOBS - 1) { /* aborted while queued */
            EXPECT(j->done_status == RT_ECANCELED && ran == 0);
            continue;
        }
        EXPECT(j->done_status == 0 && ran == 1);
        EXPECT(j->result == fnv1a(j->buf, BUF_SIZE));   /* the right answer */
        EXPECT(j->work_end - j->work_start >= JOB_SLEEP_MS);
        EXPECT(j->done_at >= j->work_end);               /* done after work */
        EXPECT(!pthread_equal(j->done_thread, j->work_thread)); /* on a runtime thread */
        EXPECT(!pthread_equal(j->done_thread, main_thread));
        if (i > 0) EXPECT(j->work_start >= jobs[i - 1].work_end); /* one pool thread */
    }
    /* Where and when did the aborted job's done(RT_ECANCELED) run? (The
     * library queues the abort: the pool drops the job when it reaches it.) */
    where = pthread_equal(jobs[N_JOBS - 1].done_thread, main_thread) ? "the main (aborting) thread"
            : pthread_equal(jobs[N_JOBS - 1].done_thread, jobs[0].work_thread) ? "the blocking-pool thread"
                                                                               : "a runtime thread";
    printf("aborted job %d: done(RT_ECANCELED) ran %.1f ms after rt_task_abort returned, on %s\n", N_JOBS - 1,
           jobs[N_JOBS - 1].done_at - t_abort, where);
    printf("%d callback tasks ran meanwhile (%d while a job worked): wait avg %.2f ms, max %.2f ms\n", n_ticks,
           ticks_during_work, n_ticks ? total_wait / n_ticks : 0.0, max_wait);
    EXPECT(ticks_during_work > 0);

    rt_runtime_metrics(rt, &m);
    /* rt_metrics.blocking_threads counts the worker threads too. */
    printf("blocking pool: %llu thread(s) (%llu of them workers), %llu idle, queue depth %llu\n",
           (unsigned long long)m.blocking_threads, (unsigned long long)m.workers,
           (unsigned long long)m.blocking_idle_threads, (unsigned long long)m.blocking_queue_depth);
    EXPECT(m.blocking_threads <= m.workers + 1 && m.blocking_queue_depth == 0);

    EXPECT(rt_runtime_shutdown(rt, 5000) == 0);
    EXPECT(rt_spawn_blocking(rt, work, done, &jobs[0], NULL) == RT_ESHUTDOWN);
    rt_runtime_free(rt);
    for (i = 0; i < N_JOBS; i++) {
        rt_task_release(tasks[i]); /* task handles outlive the runtime */
        free(jobs[i].buf);
    }
    printf("blocking: %s\n", failures ? "FAILED" : "OK");
    return failures ? 1 : 0;
}
