/* ping_pongs against librt. Usage: rt_ping_pongs ct|mt
 *
 * One loopback TCP connection (TCP_NODELAY, non-blocking), both ends
 * registered with rt_io_register (level-triggered, RT_READABLE): the
 * client sends "PING\n", the server callback echoes what it reads, the
 * client sends the next ping when the whole pong came back, for the
 * benchmark's duration; then the client shuts down its write side, the
 * server closes on EOF and the client on EOF. ct: a current-thread
 * runtime driven by rt_run(RT_RUN_DEFAULT) (returns once both fds are
 * deregistered); mt: a multi-thread runtime, the main thread waits.
 * Checks every byte of every pong and that the server echoed exactly what
 * was sent. */
#include <rt.h>
#include "bench.h"
#include <semaphore.h>

static const char PING[] = "PING\n";
#define PING_LEN (sizeof PING - 1)

typedef struct {
    int fd;
    rt_io_id id;
} conn;

static rt_runtime *rt;
static sem_t finished;
static conn client, server;
static size_t state;
static int shut;
static long pongs, sent_bytes, recv_bytes, echoed_bytes, bad_status;
static uint64_t t0, t_stop, limit_ns;

static void finish(conn *c) {
    BENCH_RT(rt_io_deregister(rt, c->id));
    BENCH_CHECK(close(c->fd) == 0);
    BENCH_CHECK(sem_post(&finished) == 0);
}

static void client_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    char buf[65536];
    ssize_t n, i;
    (void)arg; (void)events;
    if (status != 0) {
        bad_status++;
        return;
    }
    n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n < 0) BENCH_FAIL("client read: %s", strerror(errno));
    if (n == 0) {
        BENCH_CHECK(shut);
        finish(&client);
        return;
    }
    recv_bytes += n;
    for (i = 0; i < n; i++) {
        if (buf[i] != PING[state]) BENCH_FAIL("pong byte %ld wrong", recv_bytes);
        state = (state + 1) % PING_LEN;
        if (state == 0) {
            pongs++;
            BENCH_CHECK(!shut);
            if (bench_now_ns() - t0 > limit_ns) {
                t_stop = bench_now_ns();
                BENCH_CHECK(shutdown(fd, SHUT_WR) == 0);
                shut = 1;
            } else {
                bench_write_all(fd, PING, PING_LEN);
                sent_bytes += PING_LEN;
            }
        }
    }
}

static void server_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    char buf[65536];
    ssize_t n;
    (void)arg; (void)events;
    if (status != 0) {
        bad_status++;
        return;
    }
    n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n < 0) BENCH_FAIL("server read: %s", strerror(errno));
    if (n == 0) {
        finish(&server);
        return;
    }
    bench_write_all(fd, buf, (size_t)n);
    echoed_bytes += n;
}

int main(int argc, char **argv) {
    const char *variant;
    rt_flavor flavor = bench_rt_flavor_arg(argc > 1 ? argv[1] : NULL, &variant);
    char extra[256];
    int lfd, port, ran = 0;
    double secs;

    limit_ns = bench_duration_ms() * 1000000u;
    BENCH_CHECK(sem_init(&finished, 0, 0) == 0);
    rt = bench_rt_new(flavor);
    lfd = bench_listen(128, &port);
    client.fd = bench_connect(port);
    server.fd = accept(lfd, NULL, NULL);
    BENCH_CHECK(server.fd >= 0);
    BENCH_CHECK(close(lfd) == 0);
    bench_set_nonblock(client.fd);
    bench_set_nonblock(server.fd);
    bench_set_nodelay(client.fd);
    bench_set_nodelay(server.fd);
    BENCH_RT(rt_io_register(rt, server.fd, RT_READABLE, server_cb, NULL, &server.id));
    BENCH_RT(rt_io_register(rt, client.fd, RT_READABLE, client_cb, NULL, &client.id));

    t0 = bench_now_ns();
    bench_write_all(client.fd, PING, PING_LEN);
    sent_bytes += PING_LEN;
    if (flavor == RT_FLAVOR_CURRENT_THREAD) {
        ran = rt_run(rt, RT_RUN_DEFAULT);
        if (ran < 0) BENCH_FAIL("rt_run: %s", rt_err_name(ran));
        BENCH_CHECK(sem_trywait(&finished) == 0 && sem_trywait(&finished) == 0);
    } else {
        BENCH_CHECK(sem_wait(&finished) == 0 && sem_wait(&finished) == 0);
    }
    rt_runtime_free(rt);

    if (!shut || pongs < 1 || state != 0 || bad_status != 0 || recv_bytes != sent_bytes ||
        echoed_bytes != sent_bytes || recv_bytes != pongs * (long)PING_LEN)
        BENCH_FAIL("%ld pongs, sent %ld, echoed %ld, received %ld, %ld cancelled",
                   pongs, sent_bytes, echoed_bytes, recv_bytes, bad_status);
    secs = (t_stop - t0) / 1e9;
    fprintf(stderr, "ping_pongs/librt (%s): %ld roundtrips in %.3f s (%.0f/s)\n",
            variant, pongs, secs, pongs / secs);
    snprintf(extra, sizeof extra, "\"count\":%ld,\"seconds\":%.6f", pongs, secs);
    bench_result("ping_pongs", "librt", variant, "rate", "roundtrips/s", pongs / secs, extra);
    return 0;
}
