/*
 * bench.h - helpers shared by the libuv-vs-librt benchmark programs in
 * benches/c (clock, sizes, result lines, checks, loopback sockets).
 *
 * Each program measures one workload against one library and prints
 * exactly one result line on stdout, a JSON object:
 *
 *   {"workload":"ping_pongs","impl":"librt","variant":"current-thread",
 *    "metric":"rate","unit":"roundtrips/s","value":12345.6,"ok":true,...}
 *
 * metric "time": seconds, lower is better; metric "rate": per second,
 * higher is better. Human-readable notes go to stderr. A program whose
 * correctness checks fail prints the failure on stderr and exits 1 without
 * a result line.
 *
 * Sizes follow libuv's benchmarks (test/benchmark-*.c); RT_BENCH_QUICK=1
 * makes every duration 1 s and every count 10x smaller (a smoke test).
 * RT_BENCH_DURATION_MS overrides the duration of the timed workloads.
 */
#ifndef BENCH_H
#define BENCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BENCH_CHECK(cond)                                                     \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                   \
            fflush(stderr);                                                   \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

/* A call returning 0 or a negative error code (libuv and librt alike). */
#define BENCH_OK(call)                                                        \
    do {                                                                      \
        long bench_rc_ = (long)(call);                                        \
        if (bench_rc_ != 0) {                                                 \
            fprintf(stderr, "%s:%d: %s returned %ld\n", __FILE__, __LINE__,   \
                    #call, bench_rc_);                                        \
            fflush(stderr);                                                   \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

#define BENCH_FAIL(...)                                                       \
    do {                                                                      \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                       \
        fprintf(stderr, __VA_ARGS__);                                         \
        fputc('\n', stderr);                                                  \
        fflush(stderr);                                                       \
        exit(1);                                                              \
    } while (0)

static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time (user + system) of the whole process so far, in seconds. */
static inline double bench_cpu_s(void) {
    struct rusage ru;
    BENCH_CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Peak resident memory of the process so far, in MiB. */
static inline double bench_max_rss_mib(void) {
    struct rusage ru;
    BENCH_CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
    return ru.ru_maxrss / 1024.0;
}

static inline int bench_quick(void) {
    const char *q = getenv("RT_BENCH_QUICK");
    return q != NULL && *q != '\0' && strcmp(q, "0") != 0;
}

/* A count from libuv's benchmark, 10x smaller in quick mode. */
static inline long bench_count(long full) {
    return bench_quick() ? full / 10 : full;
}

/* The duration of the timed workloads: 5000 ms (libuv's), 1000 quick. */
static inline uint64_t bench_duration_ms(void) {
    const char *d = getenv("RT_BENCH_DURATION_MS");
    if (d != NULL && *d != '\0') {
        long v = strtol(d, NULL, 10);
        if (v > 0) return (uint64_t)v;
    }
    return bench_quick() ? 1000 : 5000;
}

/*
 * Prints the result line. `extra` is NULL or more JSON members without
 * the leading comma ("\"count\":5,\"seconds\":1.0").
 */
static inline void bench_result(const char *workload, const char *impl,
                                const char *variant, const char *metric,
                                const char *unit, double value,
                                const char *extra) {
    printf("{\"workload\":\"%s\",\"impl\":\"%s\",\"variant\":\"%s\","
           "\"metric\":\"%s\",\"unit\":\"%s\",\"value\":%.6g,\"ok\":true,"
           "\"quick\":%s%s%s}\n",
           workload, impl, variant, metric, unit, value,
           bench_quick() ? "true" : "false", extra ? "," : "",
           extra ? extra : "");
    fflush(stdout);
}

/* Atomics (GCC builtins) for counters shared with other threads. */
#define BENCH_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define BENCH_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define BENCH_ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)

/* ---- loopback sockets (the librt programs drive raw fds) ---- */

static inline void bench_set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    BENCH_CHECK(fl >= 0);
    BENCH_CHECK(fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

static inline void bench_set_nodelay(int fd) {
    int one = 1;
    BENCH_CHECK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
}

/* A blocking listener on 127.0.0.1, ephemeral port; the port in *port. */
static inline int bench_listen(int backlog, int *port) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BENCH_CHECK(fd >= 0);
    BENCH_CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    BENCH_CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    BENCH_CHECK(listen(fd, backlog) == 0);
    BENCH_CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A blocking connect to 127.0.0.1:port (completes into the backlog). */
static inline int bench_connect(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BENCH_CHECK(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    BENCH_CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

/* Writes all of buf to a blocking-or-nonblocking socket that has room
 * (small messages); fails the benchmark if the kernel refuses. */
static inline void bench_write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            sched_yield();
            continue;
        }
        BENCH_CHECK(n > 0);
        buf += n;
        len -= (size_t)n;
    }
}

/* ---- librt helpers (when rt.h was included before this header) ---- */
#ifdef RT_H

/* A call returning 0 or a negative RT_E* code. */
#define BENCH_RT(call)                                                        \
    do {                                                                      \
        int bench_rt_ = (int)(call);                                          \
        if (bench_rt_ != 0) {                                                 \
            fprintf(stderr, "%s:%d: %s returned %s (%d): %s\n", __FILE__,     \
                    __LINE__, #call, rt_err_name(bench_rt_), bench_rt_,       \
                    rt_strerror(bench_rt_));                                  \
            fflush(stderr);                                                   \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

/* A runtime of the given flavor (multi-thread: one worker per CPU). */
static inline rt_runtime *bench_rt_new(rt_flavor flavor) {
    rt_config cfg;
    rt_runtime *rt = NULL;
    BENCH_RT(rt_config_init(&cfg));
    cfg.flavor = flavor;
    BENCH_RT(rt_runtime_new(&cfg, &rt));
    return rt;
}

/* "ct" / "mt" on the command line: the flavor and its variant name. */
static inline rt_flavor bench_rt_flavor_arg(const char *arg, const char **variant) {
    if (arg != NULL && strcmp(arg, "mt") == 0) {
        *variant = "multi-thread";
        return RT_FLAVOR_MULTI_THREAD;
    }
    BENCH_CHECK(arg == NULL || strcmp(arg, "ct") == 0);
    *variant = "current-thread";
    return RT_FLAVOR_CURRENT_THREAD;
}

#endif /* RT_H */

#endif /* BENCH_H */
