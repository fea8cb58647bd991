/* loop_count against librt: a callback that re-spawns itself with
 * rt_spawn until it ran NUM_TICKS times, on a current-thread runtime
 * driven by rt_run(RT_RUN_DEFAULT) (the counterpart of libuv's idle
 * handle: one empty callback per turn). */
#include <rt.h>
#include "bench.h"

static rt_runtime *rt;
static long ticks, target, bad_status;

static void tick(void *arg, int status) {
    if (status != 0) {
        bad_status++;
        return;
    }
    if (++ticks < target) BENCH_RT(rt_spawn(rt, tick, arg, NULL));
}

int main(void) {
    uint64_t t0, t1;
    char extra[256];
    int ran;

    target = bench_count(2L * 1000 * 1000);
    rt = bench_rt_new(RT_FLAVOR_CURRENT_THREAD);
    t0 = bench_now_ns();
    BENCH_RT(rt_spawn(rt, tick, NULL, NULL));
    ran = rt_run(rt, RT_RUN_DEFAULT);
    t1 = bench_now_ns();
    if (ran < 0) BENCH_FAIL("rt_run: %s", rt_err_name(ran));
    rt_runtime_free(rt);

    if (ticks != target || bad_status != 0)
        BENCH_FAIL("%ld ticks of %ld, %ld cancelled", ticks, target, bad_status);
    fprintf(stderr, "loop_count/librt: %ld ticks in %.3f s (%.0f/s; rt_run returned %d)\n",
            ticks, (t1 - t0) / 1e9, ticks / ((t1 - t0) / 1e9), ran);
    snprintf(extra, sizeof extra, "\"count\":%ld,\"per_second\":%.1f", ticks,
             ticks / ((t1 - t0) / 1e9));
    bench_result("loop_count", "librt", "current-thread", "time", "s", (t1 - t0) / 1e9, extra);
    return 0;
}
