/* queue_work against librt: one job re-submitted with rt_spawn_blocking
 * from its done callback until an rt_timer_start timer ends the run, on a
 * current-thread runtime driven by rt_run(RT_RUN_DEFAULT) (libuv's
 * uv_queue_work "ping-pong async jobs"). rt_run returns once the timer
 * fired and the last job's done callback ran. */
#include <rt.h>
#include "bench.h"

static rt_runtime *rt;
static int done;
static long events, bad_status;
static long work_ran; /* atomic: written on the pool */
static unsigned result;

static unsigned fastrand(void) {
    static unsigned g = 0;
    g = g * 214013 + 2531011;
    return g;
}

static void work_cb(void *arg) {
    (void)arg;
    result = fastrand();
    BENCH_ADD(&work_ran, 1);
}

static void done_cb(void *arg, int status) {
    if (status != 0) {
        bad_status++;
        return;
    }
    events++;
    if (!done) BENCH_RT(rt_spawn_blocking(rt, work_cb, done_cb, arg, NULL));
}

static void timer_cb(void *arg, int status) {
    (void)arg;
    if (status != 0) bad_status++;
    done = 1;
}

int main(void) {
    uint64_t t0, t1;
    rt_timer_id tid;
    char extra[256];
    double secs;
    int ran;

    rt = bench_rt_new(RT_FLAVOR_CURRENT_THREAD);
    BENCH_RT(rt_timer_start(rt, bench_duration_ms(), 0, timer_cb, NULL, &tid));
    t0 = bench_now_ns();
    BENCH_RT(rt_spawn_blocking(rt, work_cb, done_cb, NULL, NULL));
    ran = rt_run(rt, RT_RUN_DEFAULT);
    t1 = bench_now_ns();
    if (ran < 0) BENCH_FAIL("rt_run: %s", rt_err_name(ran));
    rt_runtime_free(rt);

    if (events < 1 || bad_status != 0 || events != BENCH_LOAD(&work_ran))
        BENCH_FAIL("%ld completions, %ld work calls, %ld cancelled", events,
                   work_ran, bad_status);
    secs = (t1 - t0) / 1e9;
    fprintf(stderr, "queue_work/librt: %ld jobs in %.3f s (%.0f/s)\n", events,
            secs, events / secs);
    snprintf(extra, sizeof extra, "\"count\":%ld,\"seconds\":%.6f", events, secs);
    bench_result("queue_work", "librt", "current-thread", "rate", "jobs/s", events / secs, extra);
    return 0;
}
