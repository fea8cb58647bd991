/* echo_server.c - a TCP echo server on librt's level-triggered fd callbacks.
 *
 * The server: a non-blocking listening socket on 127.0.0.1 (port 0) is
 * registered with rt_io_register(RT_READABLE); its callback accepts until
 * EAGAIN and registers each connection. A connection's callback reads what
 * is available and writes it back; what the socket does not take goes to a
 * per-connection pending buffer, and the interest becomes
 * RT_READABLE|RT_WRITABLE (rt_io_modify) until it is flushed. On EOF (after
 * flushing) or an error, the callback deregisters itself and closes the fd.
 *
 * The client: CLIENT_THREADS plain pthreads with blocking sockets, N_CONNS
 * connections in all, MSGS messages of varying sizes each, every echoed byte
 * checked. Exit status 0 only if every check passed.
 */
#define _GNU_SOURCE
#include "rt.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define N_CONNS 20
#define CLIENT_THREADS 4 /* each drives N_CONNS / CLIENT_THREADS connections */
#define MSGS 200
#define MAX_MSG 65536
#define PENDING_CAP (256 * 1024) /* stop reading a connection above this */

typedef struct {
    rt_runtime *rt;
    atomic_long accepted, closed, cancelled, errors;
    atomic_long bytes_in, bytes_out, partial_writes, modifies;
} server;

/* One connection. The mutex matters: rt_io_register hands the id back only
 * after the registration is live, so the callback may already run on another
 * worker; the acceptor holds `mu` until `id` is stored. Afterwards only this
 * registration's callbacks touch it (never two at once), so `mu` is then
 * uncontended, but it also makes the acceptor's writes visible to them. */
typedef struct {
    pthread_mutex_t mu;
    server *srv;
    rt_io_id id;
    int fd;
    uint32_t interest; /* what the registration currently asks for */
    int eof;           /* the peer finished sending: flush, then close */
    char *pend;        /* bytes read but not yet written back: [off, len) */
    size_t off, len, cap;
} conn;

static void note_error(server *s, const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, rc ? rt_strerror(rc) : strerror(errno));
    atomic_fetch_add(&s->errors, 1);
}

static void conn_free(conn *c) {
    close(c->fd);
    free(c->pend);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static int append_pending(conn *c, const char *p, size_t n) {
    if (c->off) { /* compact: drop what was already written */
        c->len -= c->off;
        memmove(c->pend, c->pend + c->off, c->len);
        c->off = 0;
    }
    if (c->len + n > c->cap) {
        char *np = realloc(c->pend, c->cap = 2 * (c->len + n));
        if (!np) return -1;
        c->pend = np;
    }
    memcpy(c->pend + c->len, p, n);
    c->len += n;
    return 0;
}

/* Writes as much of p[0..n) as the socket takes: bytes written, or -1. */
static ssize_t write_some(conn *c, const char *p, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t w = send(c->fd, p + done, n - done, MSG_NOSIGNAL);
        if (w > 0) { done += (size_t)w; continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return -1;
    }
    if (done < n) atomic_fetch_add(&c->srv->partial_writes, 1);
    atomic_fetch_add(&c->srv->bytes_out, (long)done);
    return (ssize_t)done;
}

/* Reads until EAGAIN/EOF, echoing at once what fits. 0 or -1 (error). */
static int read_and_echo(conn *c) {
    char buf[16384];
    while (c->len - c->off < PENDING_CAP) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0), w = 0;
        if (n == 0) { c->eof = 1; return 0; }
        if (n < 0) {
            if (errno == EINTR) continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
        atomic_fetch_add(&c->srv->bytes_in, (long)n);
        if (c->len == c->off && (w = write_some(c, buf, (size_t)n)) < 0) return -1;
        if (w < n && append_pending(c, buf + w, (size_t)(n - w)) < 0) return -1;
    }
    return 0;
}

static void conn_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    conn *c = arg;
    server *s = c->srv;
    int dead = 0;
    uint32_t want;
    (void)fd;
    pthread_mutex_lock(&c->mu);
    if (status != 0) { /* RT_ECANCELED: still open at shutdown, final call */
        pthread_mutex_unlock(&c->mu);
        atomic_fetch_add(&s->cancelled, 1);
        conn_free(c);
        return;
    }
    if ((events & RT_WRITABLE) && c->len > c->off) { /* flush pending first */
        ssize_t w = write_some(c, c->pend + c->off, c->len - c->off);
        if (w < 0) dead = 1; else c->off += (size_t)w;
        if (c->off == c->len) c->off = c->len = 0;
    }
    if (!dead && !c->eof && (events & (RT_READABLE | RT_HUP | RT_ERROR)))
        dead = read_and_echo(c) < 0;
    if (!dead && c->eof && c->len == c->off) dead = 1; /* all echoed: close */
    if (!dead) {
        /* Nothing pending: read only. Pending: also wait for writability,
         * but stop reading once the peer sent EOF or the buffer is full
         * (level-triggered: unread data would call us again at once). */
        want = RT_READABLE;
        if (c->len > c->off)
            want = (c->eof || c->len - c->off >= PENDING_CAP) ? RT_WRITABLE
                                                              : RT_READABLE | RT_WRITABLE;
        if (want != c->interest) {
            int rc = rt_io_modify(s->rt, c->id, want);
            if (rc != 0) { note_error(s, "rt_io_modify", rc); dead = 1; }
            else { c->interest = want; atomic_fetch_add(&s->modifies, 1); }
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (dead) {
        /* From inside our own callback: returns at once, no further call. */
        int rc = rt_io_deregister(s->rt, c->id);
        if (rc != 0) note_error(s, "rt_io_deregister(conn)", rc);
        atomic_fetch_add(&s->closed, 1);
        conn_free(c);
    }
}

static void listen_cb(void *arg, rt_fd lfd, uint32_t events, int status) {
    server *s = arg;
    (void)events;
    if (status != 0) { atomic_fetch_add(&s->cancelled, 1); return; }
    for (;;) {
        int small = 4096, rc, fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        conn *c;
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) note_error(s, "accept4", 0);
            return;
        }
        /* A small send buffer makes partial writes (the pending path) common. */
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        if (!(c = calloc(1, sizeof *c))) { note_error(s, "calloc", 0); close(fd); continue; }
        pthread_mutex_init(&c->mu, NULL);
        c->srv = s;
        c->fd = fd;
        c->interest = RT_READABLE;
        atomic_fetch_add(&s->accepted, 1);
        pthread_mutex_lock(&c->mu); /* until c->id is stored */
        rc = rt_io_register(s->rt, fd, RT_READABLE, conn_cb, c, &c->id);
        pthread_mutex_unlock(&c->mu);
        if (rc != 0) { /* cb never called: the connection is ours to drop */
            note_error(s, "rt_io_register(conn)", rc);
            conn_free(c);
        }
    }
}

/* ---------------- the client ---------------- */

static struct sockaddr_in server_addr;
static atomic_long client_failures, client_bytes, client_msgs;

static size_t msg_size(int conn_no, int i) {
    unsigned h = (unsigned)(conn_no * 7919 + i * 104729) * 2654435761u;
    return i % 10 == 9 ? 16384 + h % (MAX_MSG - 16384) : 1 + h % 2048; /* 1 B..64 KiB */
}
static unsigned char msg_byte(int conn_no, int i, size_t j) {
    return (unsigned char)(conn_no * 131 + i * 31 + j * 7 + (j >> 8));
}

static void *client_thread(void *arg) {
    int t = (int)(intptr_t)arg, per = N_CONNS / CLIENT_THREADS, k, i, fds[N_CONNS];
    unsigned char *buf = malloc(MAX_MSG);
    long fail = 0;
    if (!buf) { atomic_fetch_add(&client_failures, 1); return NULL; }
    for (k = 0; k < per; k++) {
        int small = 4096;
        struct timeval tv = {10, 0}; /* a hung server fails the run instead */
        fds[k] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        setsockopt(fds[k], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        setsockopt(fds[k], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (fds[k] < 0 || connect(fds[k], (struct sockaddr *)&server_addr, sizeof server_addr)) {
            perror("client connect");
            fail++;
            per = k + 1; /* close what we have */
        }
    }
    /* Each round: one message to each of our connections, then the echoes. */
    for (i = 0; i < MSGS && !fail; i++) {
        for (k = 0; k < per; k++) {
            int cn = t * per + k;
            size_t n = msg_size(cn, i), j;
            for (j = 0; j < n; j++) buf[j] = msg_byte(cn, i, j);
            if (send(fds[k], buf, n, MSG_NOSIGNAL) != (ssize_t)n) { perror("client send"); fail++; }
        }
        for (k = 0; k < per && !fail; k++) {
            int cn = t * per + k;
            size_t n = msg_size(cn, i), got = 0, j;
            while (got < n) {
                ssize_t r = recv(fds[k], buf + got, n - got, 0);
                if (r <= 0) { fprintf(stderr, "client recv: %s\n", r ? strerror(errno) : "EOF"); fail++; break; }
                got += (size_t)r;
            }
            for (j = 0; j < got && buf[j] == msg_byte(cn, i, j); j++) {}
            if (j < got) { fprintf(stderr, "conn %d msg %d byte %zu differs\n", cn, i, j); fail++; }
            atomic_fetch_add(&client_bytes, (long)got);
            atomic_fetch_add(&client_msgs, 1);
        }
    }
    /* Half-close: the server must finish echoing, then close (we see EOF). */
    for (k = 0; k < per; k++) {
        char c;
        shutdown(fds[k], SHUT_WR);
        if (!fail && recv(fds[k], &c, 1, 0) != 0) { fprintf(stderr, "no EOF from server\n"); fail++; }
        close(fds[k]);
    }
    atomic_fetch_add(&client_failures, fail);
    free(buf);
    return NULL;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#define EXPECT(cond) do { if (!(cond)) { fprintf(stderr, "FAILED: %s\n", #cond); failures++; } } while (0)

int main(void) {
    static server s; /* static: zero-initialized atomics */
    rt_config cfg;
    rt_metrics m;
    rt_io_id lid;
    pthread_t th[CLIENT_THREADS];
    socklen_t alen = sizeof server_addr;
    int lfd, rc, i, failures = 0;
    double t0;
    rt_config_init(&cfg);
    cfg.worker_threads = 4;
    if ((rc = rt_runtime_new(&cfg, &s.rt)) != 0) { fprintf(stderr, "rt_runtime_new: %s\n", rt_strerror(rc)); return 1; }

    /* Listening socket on 127.0.0.1, port chosen by the kernel. */
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    server_addr.sin_family = AF_INET;
    server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&server_addr, sizeof server_addr) || listen(lfd, 128) ||
        getsockname(lfd, (struct sockaddr *)&server_addr, &alen)) {
        perror("listen socket");
        return 1;
    }
    if ((rc = rt_io_register(s.rt, lfd, RT_READABLE, listen_cb, &s, &lid)) != 0) {
        fprintf(stderr, "rt_io_register(listener): %s\n", rt_strerror(rc));
        return 1;
    }
    printf("echo server on 127.0.0.1:%d, %d clients x %d messages\n", ntohs(server_addr.sin_port), N_CONNS, MSGS);

    t0 = now_ms();
    for (i = 0; i < CLIENT_THREADS; i++) pthread_create(&th[i], NULL, client_thread, (void *)(intptr_t)i);
    for (i = 0; i < CLIENT_THREADS; i++) pthread_join(th[i], NULL);
    /* The clients saw EOF, so every connection already closed itself;
     * `closed` is counted just after that close: give it a moment. */
    for (i = 0; i < 5000 && atomic_load(&s.closed) < N_CONNS; i++) usleep(1000);

    /* The reactor lets go of a deregistered fd shortly after (on a runtime
     * thread): soon only the listener should be left. */
    for (i = 0; i < 1000 && rt_runtime_metrics(s.rt, &m) == 0 && m.io_registrations != 1; i++) usleep(1000);
    printf("time %.0f ms; %llu workers; reactor registrations once clients left: %llu\n", now_ms() - t0,
           (unsigned long long)m.workers, (unsigned long long)m.io_registrations);
    EXPECT(m.io_registrations == 1);

    /* From another thread: returns once listen_cb is not running. */
    EXPECT(rt_io_deregister(s.rt, lid) == 0);
    close(lfd);
    EXPECT(rt_runtime_shutdown(s.rt, 5000) == 0);
    rt_runtime_free(s.rt);

    printf("client: %ld messages, %ld bytes verified, %ld failures\n", client_msgs, client_bytes, client_failures);
    printf("server: accepted %ld, closed %ld, cancelled at shutdown %ld, errors %ld\n", s.accepted, s.closed,
           s.cancelled, s.errors);
    printf("server: %ld bytes in, %ld out, %ld partial writes, %ld interest changes\n", s.bytes_in, s.bytes_out,
           s.partial_writes, s.modifies);
    EXPECT(client_failures == 0 && client_msgs == (long)N_CONNS * MSGS);
    EXPECT(s.accepted == N_CONNS && s.closed == N_CONNS && s.cancelled == 0 && s.errors == 0);
    EXPECT(s.bytes_in == client_bytes && s.bytes_out == client_bytes);
    printf("echo_server: %s\n", failures ? "FAILED" : "OK");
    return failures ? 1 : 0;
}
