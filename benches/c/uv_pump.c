/* pump against libuv: CONNS client connections each keep one 8192-byte
 * uv_write in flight (libuv's tcp_pump100_client in
 * test/benchmark-pump.c) to a sink server in the same loop, for the
 * benchmark's duration. The rate counts the writes completed before the
 * stop; after it each client finishes its write and shuts down, and the
 * sink must have received exactly every byte written. */
#include "bench.h"
#include <uv.h>

#define CONNS 100
#define WRITE_SIZE 8192

static uv_loop_t loop;
static uv_tcp_t server, clients[CONNS];
static uv_connect_t creqs[CONNS];
static uv_write_t wreqs[CONNS];
static uv_shutdown_t sreqs[CONNS];
static uv_timer_t timer;
static char write_buffer[WRITE_SIZE];
static char read_buffer[65536];
static int connected, accepted, sink_closed, clients_closed, stop;
static long long nsent, nsent_at_stop, nrecv;
static uint64_t t0, t_stop;

static void do_write(int i);

static void client_closed(uv_handle_t *h) {
    (void)h;
    clients_closed++;
}

static void shutdown_cb(uv_shutdown_t *r, int status) {
    BENCH_OK(status);
    uv_close((uv_handle_t *)r->handle, client_closed);
}

static void write_cb(uv_write_t *r, int status) {
    int i = (int)(r - wreqs);
    BENCH_OK(status);
    nsent += WRITE_SIZE;
    if (stop)
        BENCH_OK(uv_shutdown(&sreqs[i], (uv_stream_t *)&clients[i], shutdown_cb));
    else
        do_write(i);
}

static void do_write(int i) {
    uv_buf_t b = uv_buf_init(write_buffer, WRITE_SIZE);
    BENCH_OK(uv_write(&wreqs[i], (uv_stream_t *)&clients[i], &b, 1, write_cb));
}

static void timer_cb(uv_timer_t *h) {
    t_stop = bench_now_ns();
    nsent_at_stop = nsent;
    stop = 1;
    uv_close((uv_handle_t *)h, NULL);
}

static void connect_cb(uv_connect_t *r, int status) {
    int i;
    (void)r;
    BENCH_OK(status);
    if (++connected < CONNS) return;
    BENCH_OK(uv_timer_init(&loop, &timer));
    BENCH_OK(uv_timer_start(&timer, timer_cb, bench_duration_ms(), 0));
    t0 = bench_now_ns();
    for (i = 0; i < CONNS; i++) do_write(i);
}

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *b) {
    (void)h; (void)size;
    *b = uv_buf_init(read_buffer, sizeof read_buffer);
}

static void sink_closed_cb(uv_handle_t *h) {
    free(h);
    if (++sink_closed == CONNS) uv_close((uv_handle_t *)&server, NULL);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    (void)b;
    if (nread == UV_EOF) {
        uv_close((uv_handle_t *)s, sink_closed_cb);
        return;
    }
    if (nread < 0) BENCH_FAIL("sink read: %s", uv_strerror((int)nread));
    nrecv += nread;
}

static void connection_cb(uv_stream_t *srv, int status) {
    uv_tcp_t *c;
    BENCH_OK(status);
    c = malloc(sizeof *c);
    BENCH_CHECK(c != NULL);
    BENCH_OK(uv_tcp_init(&loop, c));
    BENCH_OK(uv_accept(srv, (uv_stream_t *)c));
    BENCH_OK(uv_read_start((uv_stream_t *)c, alloc_cb, read_cb));
    accepted++;
}

int main(void) {
    struct sockaddr_in addr;
    int len = sizeof addr, i;
    char extra[256];
    double secs;

    BENCH_OK(uv_loop_init(&loop));
    BENCH_OK(uv_tcp_init(&loop, &server));
    BENCH_OK(uv_ip4_addr("127.0.0.1", 0, &addr));
    BENCH_OK(uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0));
    BENCH_OK(uv_listen((uv_stream_t *)&server, 1000, connection_cb));
    BENCH_OK(uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len));
    for (i = 0; i < CONNS; i++) {
        BENCH_OK(uv_tcp_init(&loop, &clients[i]));
        BENCH_OK(uv_tcp_connect(&creqs[i], &clients[i], (const struct sockaddr *)&addr,
                                connect_cb));
    }
    BENCH_OK(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_OK(uv_loop_close(&loop));

    if (accepted != CONNS || sink_closed != CONNS || clients_closed != CONNS ||
        nsent_at_stop <= 0 || nrecv != nsent)
        BENCH_FAIL("accepted %d, closed %d/%d, sent %lld (%lld at stop), received %lld",
                   accepted, sink_closed, clients_closed, nsent, nsent_at_stop, nrecv);
    secs = (t_stop - t0) / 1e9;
    fprintf(stderr, "pump/libuv: %d conns, %lld bytes in %.3f s (%.2f Gbit/s)\n",
            CONNS, nsent_at_stop, secs, nsent_at_stop * 8 / secs / 1e9);
    snprintf(extra, sizeof extra, "\"count\":%lld,\"seconds\":%.6f,\"connections\":%d",
             nsent_at_stop, secs, CONNS);
    bench_result("pump", "libuv", "", "rate", "bytes/s", nsent_at_stop / secs, extra);
    return 0;
}
