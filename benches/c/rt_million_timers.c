/* million_timers against librt: NUM_TIMERS one-shot rt_timer_start timers,
 * the timeout growing by 1 ms every 1000 timers, on a current-thread
 * runtime driven by rt_run(RT_RUN_DEFAULT) (returns once no timer is
 * left). Checks that every timer fired once, with status 0, in timeout
 * order. Cleanup: rt_runtime_free and the id array.
 *
 * libuv counts every timeout from the loop's cached time (taken before
 * init), librt from each rt_timer_start call. To give both the same
 * deadlines (start of init + timeout), the librt side passes the timeout
 * minus the whole milliseconds already spent in init (read every 1000
 * timers, when the timeout steps). */
#include <rt.h>
#include "bench.h"

static long fired, bad_status, order_errors, tick_reorders;
static long last_index = -1;
static long first_inversion[2] = {-1, -1}; /* (earlier timeout, fired after) */

static long timeout_of(long i) { return i / 1000 + 1; }

static void timer_cb(void *arg, int status) {
    long i = (long)(uintptr_t)arg;
    if (status != 0) {
        bad_status++;
        return;
    }
    if (last_index >= 0) {
        /* The init-time compensation works in whole ms, and the clock is
         * read just before each rt_timer_start: neighbours across a 1 ms
         * step may swap (a reorder). Firing 2 ms or more out of order is
         * an error. */
        if (timeout_of(i) < timeout_of(last_index) - 1) {
            if (order_errors++ == 0) {
                first_inversion[0] = i;
                first_inversion[1] = last_index;
            }
        }
        else if (i < last_index) tick_reorders++; /* same or adjacent ms */
    }
    last_index = i;
    fired++;
}

int main(void) {
    long n = bench_count(10L * 1000 * 1000), i, spent_ms = 0;
    uint64_t t_all, t_run, t_ran, t_end;
    rt_runtime *rt;
    rt_timer_id *ids;
    char extra[512];
    double cpu_run, cpu_ran;
    int ran;

    ids = malloc((size_t)n * sizeof ids[0]);
    BENCH_CHECK(ids != NULL);
    rt = bench_rt_new(RT_FLAVOR_CURRENT_THREAD);

    t_all = bench_now_ns();
    for (i = 0; i < n; i++) {
        /* The compensation is re-read whenever the timeout steps (every
         * 1000 timers): libuv's loop reads no clock per timer either. */
        if (i % 1000 == 0) spent_ms = (long)((bench_now_ns() - t_all) / 1000000);
        long timeout = timeout_of(i) - spent_ms;
        BENCH_RT(rt_timer_start(rt, (uint64_t)(timeout > 0 ? timeout : 0), 0, timer_cb,
                                (void *)(uintptr_t)i, &ids[i]));
    }
    t_run = bench_now_ns();
    cpu_run = bench_cpu_s();
    ran = rt_run(rt, RT_RUN_DEFAULT);
    t_ran = bench_now_ns();
    cpu_ran = bench_cpu_s();
    if (ran < 0) BENCH_FAIL("rt_run: %s", rt_err_name(ran));
    rt_runtime_free(rt);
    free(ids);
    t_end = bench_now_ns();

    if (fired != n || bad_status != 0 || order_errors != 0)
        BENCH_FAIL("fired %ld of %ld, %ld with status != 0, %ld out of timeout order "
                   "(first: timer %ld, timeout %ld ms, ran after timer %ld, timeout %ld ms)",
                   fired, n, bad_status, order_errors, first_inversion[0],
                   first_inversion[0] < 0 ? 0 : timeout_of(first_inversion[0]),
                   first_inversion[1],
                   first_inversion[1] < 0 ? 0 : timeout_of(first_inversion[1]));
    fprintf(stderr, "million_timers/librt: %ld timers: %.2f s total, %.2f init, "
            "%.2f dispatch, %.2f cleanup (rt_run returned %d; %ld reorders within 1 ms)\n",
            n, (t_end - t_all) / 1e9, (t_run - t_all) / 1e9, (t_ran - t_run) / 1e9,
            (t_end - t_ran) / 1e9, ran, tick_reorders);
    snprintf(extra, sizeof extra,
             "\"count\":%ld,\"phases\":{\"init\":%.6f,\"dispatch\":%.6f,"
             "\"cleanup\":%.6f,\"dispatch CPU\":%.6f},\"same_tick_reorders\":%ld,"
             "\"max_rss_mib\":%.1f",
             n, (t_run - t_all) / 1e9, (t_ran - t_run) / 1e9,
             (t_end - t_ran) / 1e9, cpu_ran - cpu_run, tick_reorders, bench_max_rss_mib());
    bench_result("million_timers", "librt", "current-thread", "time", "s",
                 (t_end - t_all) / 1e9, extra);
    return 0;
}
