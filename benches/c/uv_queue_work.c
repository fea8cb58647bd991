/* queue_work against libuv: one work item, re-queued with uv_queue_work
 * from its after-work callback until a timer ends the run (libuv's
 * test/benchmark-queue-work.c, "ping-pong async jobs"). */
#include "bench.h"
#include <uv.h>

static uv_work_t req;
static uv_timer_t timer;
static int done;
static long events;
static long work_ran; /* atomic: written on the pool */
static unsigned result;

static unsigned fastrand(void) {
    static unsigned g = 0;
    g = g * 214013 + 2531011;
    return g;
}

static void work_cb(uv_work_t *r) {
    (void)r;
    result = fastrand();
    BENCH_ADD(&work_ran, 1);
}

static void after_cb(uv_work_t *r, int status) {
    BENCH_OK(status);
    events++;
    if (!done) BENCH_OK(uv_queue_work(r->loop, r, work_cb, after_cb));
}

static void timer_cb(uv_timer_t *h) {
    done = 1;
    uv_close((uv_handle_t *)h, NULL);
}

int main(void) {
    uv_loop_t loop;
    uint64_t t0, t1, ms = bench_duration_ms();
    char extra[256];
    double secs;

    BENCH_OK(uv_loop_init(&loop));
    BENCH_OK(uv_timer_init(&loop, &timer));
    BENCH_OK(uv_timer_start(&timer, timer_cb, ms, 0));
    t0 = bench_now_ns();
    BENCH_OK(uv_queue_work(&loop, &req, work_cb, after_cb));
    BENCH_OK(uv_run(&loop, UV_RUN_DEFAULT));
    t1 = bench_now_ns();
    BENCH_OK(uv_loop_close(&loop));

    if (events < 1 || events != BENCH_LOAD(&work_ran))
        BENCH_FAIL("%ld completions, %ld work calls", events, work_ran);
    secs = (t1 - t0) / 1e9;
    fprintf(stderr, "queue_work/libuv: %ld jobs in %.3f s (%.0f/s)\n", events,
            secs, events / secs);
    snprintf(extra, sizeof extra, "\"count\":%ld,\"seconds\":%.6f", events, secs);
    bench_result("queue_work", "libuv", "", "rate", "jobs/s", events / secs, extra);
    return 0;
}
