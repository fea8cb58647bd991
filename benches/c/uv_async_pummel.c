/* async_pummel_N against libuv: N threads call uv_async_send in a loop
 * until the loop thread ran NUM_PINGS (coalesced) async callbacks
 * (libuv's test/benchmark-async-pummel.c). Usage: uv_async_pummel N */
#include "bench.h"
#include <pthread.h>
#include <uv.h>

enum { RUNNING, STOP };

static uv_async_t handle;
static long callbacks, target;
static int state = RUNNING; /* atomic */
static int acked;           /* atomic: threads that saw STOP */
static int nthreads;
static long sends; /* atomic */

static void async_cb(uv_async_t *h) {
    if (++callbacks == target) {
        BENCH_STORE(&state, STOP);
        while (BENCH_LOAD(&acked) != nthreads) sched_yield();
        uv_close((uv_handle_t *)h, NULL);
    }
}

static void *pummel(void *arg) {
    long n = 0;
    (void)arg;
    while (BENCH_LOAD(&state) == RUNNING) {
        BENCH_OK(uv_async_send(&handle));
        n++;
    }
    BENCH_ADD(&sends, n);
    BENCH_ADD(&acked, 1);
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t tids[64];
    uv_loop_t loop;
    uint64_t t0, t1;
    char name[64], extra[256];
    int i;
    double secs;

    nthreads = argc > 1 ? atoi(argv[1]) : 1;
    BENCH_CHECK(nthreads >= 1 && nthreads <= 64);
    target = bench_count(1000L * 1000);
    BENCH_OK(uv_loop_init(&loop));
    BENCH_OK(uv_async_init(&loop, &handle, async_cb));
    for (i = 0; i < nthreads; i++)
        BENCH_CHECK(pthread_create(&tids[i], NULL, pummel, NULL) == 0);
    t0 = bench_now_ns();
    BENCH_OK(uv_run(&loop, UV_RUN_DEFAULT));
    t1 = bench_now_ns();
    for (i = 0; i < nthreads; i++) BENCH_CHECK(pthread_join(tids[i], NULL) == 0);
    BENCH_OK(uv_loop_close(&loop));

    if (callbacks != target) BENCH_FAIL("%ld callbacks of %ld", callbacks, target);
    BENCH_CHECK(sends >= callbacks);
    secs = (t1 - t0) / 1e9;
    snprintf(name, sizeof name, "async_pummel_%d", nthreads);
    fprintf(stderr, "%s/libuv: %ld callbacks in %.3f s (%.0f/s), %ld sends\n",
            name, callbacks, secs, callbacks / secs, sends);
    snprintf(extra, sizeof extra, "\"count\":%ld,\"seconds\":%.6f,\"sends\":%ld",
             callbacks, secs, sends);
    bench_result(name, "libuv", "", "rate", "callbacks/s", callbacks / secs, extra);
    return 0;
}
