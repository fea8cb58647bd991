/* million_timers against libuv: NUM_TIMERS one-shot timers, the timeout
 * growing by 1 ms every 1000 timers, then closed (libuv's
 * test/benchmark-million-timers.c shape). Checks that every timer fired
 * once, in timeout order, and every close callback ran. */
#include "bench.h"
#include <uv.h>

static uv_timer_t *timers;
static long fired, closed, order_errors, tick_reorders;
static long last_index = -1;

static long timeout_of(long i) { return i / 1000 + 1; }

static void timer_cb(uv_timer_t *h) {
    long i = (long)(h - timers);
    if (last_index >= 0) {
        if (timeout_of(i) < timeout_of(last_index)) order_errors++;
        else if (i < last_index) tick_reorders++;
    }
    last_index = i;
    fired++;
}

static void close_cb(uv_handle_t *h) {
    (void)h;
    closed++;
}

int main(void) {
    long n = bench_count(10L * 1000 * 1000), i;
    uint64_t t_all, t_run, t_ran, t_end;
    uv_loop_t loop;
    char extra[512];
    double cpu_run, cpu_ran;

    timers = malloc((size_t)n * sizeof timers[0]);
    BENCH_CHECK(timers != NULL);
    BENCH_OK(uv_loop_init(&loop));

    t_all = bench_now_ns();
    for (i = 0; i < n; i++) {
        BENCH_OK(uv_timer_init(&loop, &timers[i]));
        BENCH_OK(uv_timer_start(&timers[i], timer_cb, (uint64_t)timeout_of(i), 0));
    }
    t_run = bench_now_ns();
    cpu_run = bench_cpu_s();
    BENCH_OK(uv_run(&loop, UV_RUN_DEFAULT));
    t_ran = bench_now_ns();
    cpu_ran = bench_cpu_s();
    for (i = 0; i < n; i++) uv_close((uv_handle_t *)&timers[i], close_cb);
    BENCH_OK(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_OK(uv_loop_close(&loop));
    free(timers);
    t_end = bench_now_ns();

    if (fired != n || closed != n || order_errors != 0)
        BENCH_FAIL("fired %ld closed %ld of %ld, %ld out of timeout order",
                   fired, closed, n, order_errors);
    fprintf(stderr, "million_timers/libuv: %ld timers: %.2f s total, %.2f init, "
            "%.2f dispatch, %.2f cleanup\n", n, (t_end - t_all) / 1e9,
            (t_run - t_all) / 1e9, (t_ran - t_run) / 1e9, (t_end - t_ran) / 1e9);
    snprintf(extra, sizeof extra,
             "\"count\":%ld,\"phases\":{\"init\":%.6f,\"dispatch\":%.6f,"
             "\"cleanup\":%.6f,\"dispatch CPU\":%.6f},\"same_tick_reorders\":%ld,"
             "\"max_rss_mib\":%.1f",
             n, (t_run - t_all) / 1e9, (t_ran - t_run) / 1e9,
             (t_end - t_ran) / 1e9, cpu_ran - cpu_run, tick_reorders, bench_max_rss_mib());
    bench_result("million_timers", "libuv", "", "time", "s", (t_end - t_all) / 1e9, extra);
    return 0;
}
