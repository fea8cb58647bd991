/* million_timers against librt: NUM_TIMERS one-shot rt_timer_start timers,
 * the timeout growing by 1 ms every 1000 timers, on a current-thread
 * runtime driven by rt_run(RT_RUN_DEFAULT) (returns once no timer is
 * left). Checks that every timer fired once, with status 0, in timeout
 * order. Cleanup: rt_runtime_free and the id array. */
#include <rt.h>
#include "bench.h"

static long fired, bad_status, order_errors, tick_reorders;
static long last_index = -1;

static long timeout_of(long i) { return i / 1000 + 1; }

static void timer_cb(void *arg, int status) {
    long i = (long)(uintptr_t)arg;
    if (status != 0) {
        bad_status++;
        return;
    }
    if (last_index >= 0) {
        if (timeout_of(i) < timeout_of(last_index)) order_errors++;
        else if (i < last_index) tick_reorders++;
    }
    last_index = i;
    fired++;
}

int main(void) {
    long n = bench_count(10L * 1000 * 1000), i;
    uint64_t t_all, t_run, t_ran, t_end;
    rt_runtime *rt;
    rt_timer_id *ids;
    char extra[512];
    int ran;

    ids = malloc((size_t)n * sizeof ids[0]);
    BENCH_CHECK(ids != NULL);
    rt = bench_rt_new(RT_FLAVOR_CURRENT_THREAD);

    t_all = bench_now_ns();
    for (i = 0; i < n; i++)
        BENCH_RT(rt_timer_start(rt, (uint64_t)timeout_of(i), 0, timer_cb,
                                (void *)(uintptr_t)i, &ids[i]));
    t_run = bench_now_ns();
    ran = rt_run(rt, RT_RUN_DEFAULT);
    t_ran = bench_now_ns();
    if (ran < 0) BENCH_FAIL("rt_run: %s", rt_err_name(ran));
    rt_runtime_free(rt);
    free(ids);
    t_end = bench_now_ns();

    if (fired != n || bad_status != 0 || order_errors != 0)
        BENCH_FAIL("fired %ld of %ld, %ld with status != 0, %ld out of timeout order",
                   fired, n, bad_status, order_errors);
    fprintf(stderr, "million_timers/librt: %ld timers: %.2f s total, %.2f init, "
            "%.2f dispatch, %.2f cleanup (rt_run returned %d; %ld same-tick reorders)\n",
            n, (t_end - t_all) / 1e9, (t_run - t_all) / 1e9, (t_ran - t_run) / 1e9,
            (t_end - t_ran) / 1e9, ran, tick_reorders);
    snprintf(extra, sizeof extra,
             "\"count\":%ld,\"phases\":{\"init\":%.6f,\"dispatch\":%.6f,"
             "\"cleanup\":%.6f},\"same_tick_reorders\":%ld",
             n, (t_run - t_all) / 1e9, (t_ran - t_run) / 1e9,
             (t_end - t_ran) / 1e9, tick_reorders);
    bench_result("million_timers", "librt", "current-thread", "time", "s",
                 (t_end - t_all) / 1e9, extra);
    return 0;
}
