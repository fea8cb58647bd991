/* loop_count against libuv: an idle handle runs NUM_TICKS times (libuv's
 * test/benchmark-loop-count.c: one empty callback per loop iteration). */
#include "bench.h"
#include <uv.h>

static long ticks, target;
static uv_idle_t idle;

static void idle_cb(uv_idle_t *h) {
    if (++ticks == target) BENCH_OK(uv_idle_stop(h));
}

int main(void) {
    uv_loop_t loop;
    uint64_t t0, t1;
    char extra[256];

    target = bench_count(2L * 1000 * 1000);
    BENCH_OK(uv_loop_init(&loop));
    BENCH_OK(uv_idle_init(&loop, &idle));
    BENCH_OK(uv_idle_start(&idle, idle_cb));
    t0 = bench_now_ns();
    BENCH_OK(uv_run(&loop, UV_RUN_DEFAULT));
    t1 = bench_now_ns();
    uv_close((uv_handle_t *)&idle, NULL);
    BENCH_OK(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_OK(uv_loop_close(&loop));

    if (ticks != target) BENCH_FAIL("%ld ticks of %ld", ticks, target);
    fprintf(stderr, "loop_count/libuv: %ld ticks in %.3f s (%.0f/s)\n", ticks,
            (t1 - t0) / 1e9, ticks / ((t1 - t0) / 1e9));
    snprintf(extra, sizeof extra, "\"count\":%ld,\"per_second\":%.1f", ticks,
             ticks / ((t1 - t0) / 1e9));
    bench_result("loop_count", "libuv", "", "time", "s", (t1 - t0) / 1e9, extra);
    return 0;
}
