/* async_pummel_N against librt. Usage: rt_async_pummel N wake|queue
 *
 * wake:  N threads call rt_wake in a loop; the loop thread calls
 *        rt_run(rt, RT_RUN_ONCE) on an otherwise idle current-thread
 *        runtime until it returned NUM_PINGS times. Each return is caused
 *        by a (coalesced) wake: the counterpart of a uv_async callback.
 *        Checked first: rt_run(RT_RUN_ONCE) really blocks until a wake.
 * queue: N threads share NUM_PINGS rt_queue_post calls; the loop thread
 *        waits for rt_queue_fd to be readable and runs the posted
 *        callbacks with rt_queue_drain until all NUM_PINGS ran. Unlike a
 *        uv_async callback each post is one callback (no coalescing). */
#include <rt.h>
#include "bench.h"
#include <poll.h>
#include <pthread.h>

enum { RUNNING, STOP };

static rt_runtime *rt;
static rt_queue *queue;
static long target;
static int nthreads;
static int state = RUNNING; /* atomic */
static int acked;           /* atomic */
static long sends;          /* atomic */
static long tickets;        /* atomic: queue posts handed out */
static long drained, bad_status;

static void *pummel_wake(void *arg) {
    long n = 0;
    (void)arg;
    while (BENCH_LOAD(&state) == RUNNING) {
        BENCH_RT(rt_wake(rt));
        n++;
    }
    BENCH_ADD(&sends, n);
    BENCH_ADD(&acked, 1);
    return NULL;
}

static void posted(void *arg, int status) {
    (void)arg;
    if (status != 0) bad_status++;
    else drained++;
}

static void *pummel_queue(void *arg) {
    long n = 0;
    (void)arg;
    while (BENCH_ADD(&tickets, 1) <= target) {
        BENCH_RT(rt_queue_post(queue, posted, NULL));
        n++;
    }
    BENCH_ADD(&sends, n);
    BENCH_ADD(&acked, 1);
    return NULL;
}

static void *wake_later(void *arg) {
    (void)arg;
    usleep(50 * 1000);
    BENCH_RT(rt_wake(rt));
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t tids[64];
    uint64_t t0, t1;
    char name[64], extra[256];
    const char *mode;
    long callbacks = 0, ran_total = 0;
    int i, r, queue_mode;
    double secs;

    nthreads = argc > 1 ? atoi(argv[1]) : 1;
    mode = argc > 2 ? argv[2] : "wake";
    BENCH_CHECK(nthreads >= 1 && nthreads <= 64);
    queue_mode = strcmp(mode, "queue") == 0;
    BENCH_CHECK(queue_mode || strcmp(mode, "wake") == 0);
    target = bench_count(1000L * 1000);
    rt = bench_rt_new(RT_FLAVOR_CURRENT_THREAD);

    if (queue_mode) {
        BENCH_RT(rt_queue_new(rt, &queue));
        for (i = 0; i < nthreads; i++)
            BENCH_CHECK(pthread_create(&tids[i], NULL, pummel_queue, NULL) == 0);
        t0 = bench_now_ns();
        while (drained < target) {
            r = rt_queue_drain(queue, 0);
            if (r < 0) BENCH_FAIL("rt_queue_drain: %s", rt_err_name(r));
            callbacks += r;
            if (r == 0) {
                struct pollfd p = {rt_queue_fd(queue), POLLIN, 0};
                BENCH_CHECK(p.fd >= 0);
                BENCH_CHECK(poll(&p, 1, -1) >= 0);
            }
        }
        while (BENCH_LOAD(&acked) != nthreads) sched_yield();
        t1 = bench_now_ns();
        for (i = 0; i < nthreads; i++) BENCH_CHECK(pthread_join(tids[i], NULL) == 0);
        if (drained != target || callbacks != target || sends != target || bad_status != 0)
            BENCH_FAIL("%ld posts, %ld callbacks ran (drain counted %ld), %ld cancelled",
                       sends, drained, callbacks, bad_status);
        rt_queue_free(queue);
    } else {
        pthread_t probe;
        /* rt_run(ONCE) with nothing to do must block until the wake. */
        BENCH_CHECK(pthread_create(&probe, NULL, wake_later, NULL) == 0);
        t0 = bench_now_ns();
        r = rt_run(rt, RT_RUN_ONCE);
        t1 = bench_now_ns();
        BENCH_CHECK(pthread_join(probe, NULL) == 0);
        if (r < 0) BENCH_FAIL("rt_run: %s", rt_err_name(r));
        if (t1 - t0 < 40 * 1000000u)
            BENCH_FAIL("rt_run(RT_RUN_ONCE) returned after %.1f ms, before the wake",
                       (t1 - t0) / 1e6);

        for (i = 0; i < nthreads; i++)
            BENCH_CHECK(pthread_create(&tids[i], NULL, pummel_wake, NULL) == 0);
        t0 = bench_now_ns();
        while (callbacks < target) {
            r = rt_run(rt, RT_RUN_ONCE);
            if (r < 0) BENCH_FAIL("rt_run: %s", rt_err_name(r));
            ran_total += r;
            callbacks++;
        }
        BENCH_STORE(&state, STOP);
        while (BENCH_LOAD(&acked) != nthreads) sched_yield();
        t1 = bench_now_ns();
        for (i = 0; i < nthreads; i++) BENCH_CHECK(pthread_join(tids[i], NULL) == 0);
        if (ran_total != 0 || sends < callbacks)
            BENCH_FAIL("%ld returns, %ld wakes sent, %ld tasks ran (expected none)",
                       callbacks, sends, ran_total);
    }
    rt_runtime_free(rt);

    secs = (t1 - t0) / 1e9;
    snprintf(name, sizeof name, "async_pummel_%d", nthreads);
    fprintf(stderr, "%s/librt (%s): %ld callbacks in %.3f s (%.0f/s), %ld %s\n", name,
            queue_mode ? "rt_queue_post" : "rt_wake", callbacks, secs, callbacks / secs,
            sends, queue_mode ? "posts" : "wakes");
    snprintf(extra, sizeof extra, "\"count\":%ld,\"seconds\":%.6f,\"sends\":%ld",
             callbacks, secs, sends);
    bench_result(name, "librt", queue_mode ? "rt_queue_post" : "rt_wake", "rate",
                 "callbacks/s", callbacks / secs, extra);
    return 0;
}
