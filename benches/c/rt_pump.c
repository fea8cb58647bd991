/* pump against librt. Usage: rt_pump ct|mt
 *
 * CONNS loopback TCP connections; each client fd (non-blocking,
 * rt_io_register RT_WRITABLE) keeps one 8192-byte write in flight: a
 * callback writes what the socket takes of the current buffer, a fully
 * written buffer counts as one completed write and the next one starts at
 * once, until the socket is full (libuv's tcp_pump100_client, where
 * uv_write completes the same way and its callback issues the next). A sink fd
 * per connection (RT_READABLE) reads and discards, up to 32 reads of 64 KiB
 * per callback, stopping at a short read (libuv's read loop). An rt_timer_start timer ends the run:
 * the rate counts the writes completed before it; after it each client
 * finishes its buffer, shuts down its write side and closes, each sink
 * closes on EOF, and the sinks must have received exactly every byte
 * written. ct: current-thread runtime driven by rt_run(RT_RUN_DEFAULT);
 * mt: multi-thread runtime, the main thread waits. */
#include <rt.h>
#include "bench.h"
#include <semaphore.h>

#define CONNS 100
#define WRITE_SIZE 8192

typedef struct {
    int fd;
    rt_io_id id;
    size_t off;
} conn;

static rt_runtime *rt;
static sem_t finished;
static conn clients[CONNS], sinks[CONNS];
static char write_buffer[WRITE_SIZE];
static int stop;                               /* atomic */
static long long nsent, nsent_at_stop, nrecv; /* atomic */
static long bad_status;                        /* atomic */
static uint64_t t0, t_stop;

static void finish(conn *c) {
    BENCH_RT(rt_io_deregister(rt, c->id));
    BENCH_CHECK(close(c->fd) == 0);
    BENCH_CHECK(sem_post(&finished) == 0);
}

static void client_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    conn *c = arg;
    ssize_t n;
    (void)events;
    if (status != 0) {
        BENCH_ADD(&bad_status, 1);
        return;
    }
    /* A completed write starts the next one at once, as in libuv, where
     * write_cb -> do_write -> uv_write completes synchronously while the
     * socket takes the data and the pending phase runs write callbacks
     * until one does not complete: write until the socket is full. */
    for (;;) {
        if (c->off == 0 && BENCH_LOAD(&stop)) {
            BENCH_CHECK(shutdown(fd, SHUT_WR) == 0);
            finish(c);
            return;
        }
        n = write(fd, write_buffer + c->off, WRITE_SIZE - c->off);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        if (n <= 0) BENCH_FAIL("client write: %s", strerror(errno));
        c->off += (size_t)n;
        if (c->off < WRITE_SIZE) return; /* partial: the socket is full */
        c->off = 0;
        BENCH_ADD(&nsent, WRITE_SIZE);
    }
}

static void sink_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    static __thread char buf[65536];
    conn *c = arg;
    long long got = 0;
    ssize_t n;
    int i;
    (void)events;
    if (status != 0) {
        BENCH_ADD(&bad_status, 1);
        return;
    }
    for (i = 0; i < 32; i++) {
        n = read(fd, buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
        if (n < 0) BENCH_FAIL("sink read: %s", strerror(errno));
        if (n == 0) {
            BENCH_ADD(&nrecv, got);
            finish(c);
            return;
        }
        got += n;
        if ((size_t)n < sizeof buf) break; /* drained (libuv stops here too) */
    }
    BENCH_ADD(&nrecv, got);
}

static void timer_cb(void *arg, int status) {
    (void)arg;
    if (status != 0) {
        BENCH_ADD(&bad_status, 1);
        return;
    }
    t_stop = bench_now_ns();
    BENCH_STORE(&nsent_at_stop, BENCH_LOAD(&nsent));
    BENCH_STORE(&stop, 1);
}

int main(int argc, char **argv) {
    const char *variant;
    rt_flavor flavor = bench_rt_flavor_arg(argc > 1 ? argv[1] : NULL, &variant);
    rt_timer_id tid;
    char extra[256];
    int lfd, port, i, ran;
    double secs;

    BENCH_CHECK(sem_init(&finished, 0, 0) == 0);
    memset(write_buffer, 'x', sizeof write_buffer);
    rt = bench_rt_new(flavor);
    lfd = bench_listen(1000, &port);
    for (i = 0; i < CONNS; i++) clients[i].fd = bench_connect(port);
    for (i = 0; i < CONNS; i++) {
        sinks[i].fd = accept(lfd, NULL, NULL);
        BENCH_CHECK(sinks[i].fd >= 0);
    }
    BENCH_CHECK(close(lfd) == 0);
    for (i = 0; i < CONNS; i++) {
        bench_set_nonblock(clients[i].fd);
        bench_set_nonblock(sinks[i].fd);
        BENCH_RT(rt_io_register(rt, sinks[i].fd, RT_READABLE, sink_cb, &sinks[i], &sinks[i].id));
    }
    t0 = bench_now_ns();
    BENCH_RT(rt_timer_start(rt, bench_duration_ms(), 0, timer_cb, NULL, &tid));
    for (i = 0; i < CONNS; i++)
        BENCH_RT(rt_io_register(rt, clients[i].fd, RT_WRITABLE, client_cb, &clients[i],
                                &clients[i].id));
    if (flavor == RT_FLAVOR_CURRENT_THREAD) {
        ran = rt_run(rt, RT_RUN_DEFAULT);
        if (ran < 0) BENCH_FAIL("rt_run: %s", rt_err_name(ran));
        for (i = 0; i < 2 * CONNS; i++) BENCH_CHECK(sem_trywait(&finished) == 0);
    } else {
        for (i = 0; i < 2 * CONNS; i++) BENCH_CHECK(sem_wait(&finished) == 0);
    }
    rt_runtime_free(rt);

    if (!stop || nsent_at_stop <= 0 || bad_status != 0 || nrecv != nsent)
        BENCH_FAIL("sent %lld (%lld at stop), received %lld, %ld cancelled", nsent,
                   nsent_at_stop, nrecv, bad_status);
    secs = (t_stop - t0) / 1e9;
    fprintf(stderr, "pump/librt (%s): %d conns, %lld bytes in %.3f s (%.2f Gbit/s)\n",
            variant, CONNS, nsent_at_stop, secs, nsent_at_stop * 8 / secs / 1e9);
    snprintf(extra, sizeof extra, "\"count\":%lld,\"seconds\":%.6f,\"connections\":%d",
             nsent_at_stop, secs, CONNS);
    bench_result("pump", "librt", variant, "rate", "bytes/s", nsent_at_stop / secs, extra);
    return 0;
}
