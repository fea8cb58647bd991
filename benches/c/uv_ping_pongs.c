/* ping_pongs against libuv: one client sends "PING\n", a server in the
 * same loop echoes it, the client sends the next ping when the whole
 * pong came back, for the benchmark's duration (libuv's
 * test/benchmark-ping-pongs.c; TCP_NODELAY on both ends). Checks every
 * byte of every pong, and that the server echoed exactly what was sent. */
#include "bench.h"
#include <uv.h>

static const char PING[] = "PING\n";
#define PING_LEN (sizeof PING - 1)

typedef struct {
    uv_write_t req;
    char data[];
} echo_req;

static uv_loop_t loop;
static uv_tcp_t server, sconn, client;
static uv_connect_t connect_req;
static uv_shutdown_t shutdown_req;
static uv_write_t ping_req;
static char cbuf[65536], sbuf[65536];
static size_t state;
static long pongs, sent_bytes, recv_bytes, echoed_bytes;
static int closed;
static uint64_t t0, t_stop, limit_ns;

static void alloc_client(uv_handle_t *h, size_t size, uv_buf_t *b) {
    (void)h; (void)size;
    *b = uv_buf_init(cbuf, sizeof cbuf);
}

static void alloc_server(uv_handle_t *h, size_t size, uv_buf_t *b) {
    (void)h; (void)size;
    *b = uv_buf_init(sbuf, sizeof sbuf);
}

static void close_cb(uv_handle_t *h) {
    (void)h;
    closed++;
}

static void ping_written(uv_write_t *r, int status) {
    (void)r;
    BENCH_OK(status);
}

static void send_ping(void) {
    uv_buf_t b = uv_buf_init((char *)PING, PING_LEN);
    BENCH_OK(uv_write(&ping_req, (uv_stream_t *)&client, &b, 1, ping_written));
    sent_bytes += PING_LEN;
}

static void shutdown_cb(uv_shutdown_t *r, int status) {
    (void)r;
    BENCH_OK(status);
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    ssize_t i;
    if (nread == UV_EOF) {
        uv_close((uv_handle_t *)s, close_cb);
        return;
    }
    if (nread < 0) BENCH_FAIL("client read: %s", uv_strerror((int)nread));
    recv_bytes += nread;
    for (i = 0; i < nread; i++) {
        if (b->base[i] != PING[state]) BENCH_FAIL("pong byte %ld wrong", recv_bytes);
        state = (state + 1) % PING_LEN;
        if (state == 0) {
            pongs++;
            if (bench_now_ns() - t0 > limit_ns) {
                t_stop = bench_now_ns();
                BENCH_OK(uv_shutdown(&shutdown_req, s, shutdown_cb));
            } else {
                send_ping();
            }
        }
    }
}

static void echo_written(uv_write_t *r, int status) {
    BENCH_OK(status);
    free(r);
}

static void server_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    echo_req *e;
    uv_buf_t out;
    if (nread == UV_EOF) {
        uv_close((uv_handle_t *)s, close_cb);
        uv_close((uv_handle_t *)&server, close_cb);
        return;
    }
    if (nread < 0) BENCH_FAIL("server read: %s", uv_strerror((int)nread));
    e = malloc(sizeof *e + (size_t)nread);
    BENCH_CHECK(e != NULL);
    memcpy(e->data, b->base, (size_t)nread);
    out = uv_buf_init(e->data, (unsigned)nread);
    BENCH_OK(uv_write(&e->req, s, &out, 1, echo_written));
    echoed_bytes += nread;
}

static void connection_cb(uv_stream_t *srv, int status) {
    BENCH_OK(status);
    BENCH_OK(uv_tcp_init(&loop, &sconn));
    BENCH_OK(uv_accept(srv, (uv_stream_t *)&sconn));
    BENCH_OK(uv_tcp_nodelay(&sconn, 1));
    BENCH_OK(uv_read_start((uv_stream_t *)&sconn, alloc_server, server_read));
}

static void connect_cb(uv_connect_t *r, int status) {
    BENCH_OK(status);
    BENCH_OK(uv_tcp_nodelay(&client, 1));
    t0 = bench_now_ns();
    send_ping();
    BENCH_OK(uv_read_start(r->handle, alloc_client, client_read));
}

int main(void) {
    struct sockaddr_in addr;
    int len = sizeof addr;
    char extra[256];
    double secs;

    limit_ns = bench_duration_ms() * 1000000u;
    BENCH_OK(uv_loop_init(&loop));
    BENCH_OK(uv_tcp_init(&loop, &server));
    BENCH_OK(uv_ip4_addr("127.0.0.1", 0, &addr));
    BENCH_OK(uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0));
    BENCH_OK(uv_listen((uv_stream_t *)&server, 128, connection_cb));
    BENCH_OK(uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len));
    BENCH_OK(uv_tcp_init(&loop, &client));
    BENCH_OK(uv_tcp_connect(&connect_req, &client, (const struct sockaddr *)&addr, connect_cb));
    BENCH_OK(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_OK(uv_loop_close(&loop));

    if (closed != 3 || pongs < 1 || state != 0 || recv_bytes != sent_bytes ||
        echoed_bytes != sent_bytes || recv_bytes != pongs * (long)PING_LEN)
        BENCH_FAIL("closed %d, %ld pongs, sent %ld, echoed %ld, received %ld",
                   closed, pongs, sent_bytes, echoed_bytes, recv_bytes);
    secs = (t_stop - t0) / 1e9;
    fprintf(stderr, "ping_pongs/libuv: %ld roundtrips in %.3f s (%.0f/s)\n",
            pongs, secs, pongs / secs);
    snprintf(extra, sizeof extra, "\"count\":%ld,\"seconds\":%.6f", pongs, secs);
    bench_result("ping_pongs", "libuv", "", "rate", "roundtrips/s", pongs / secs, extra);
    return 0;
}
