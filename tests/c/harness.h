/* A tiny test runner: CHECK / CHECK_EQ and rt_run_tests printing
 * "N passed, N failed", plus the time helpers every test file uses and the
 * checks several files share. The including file defines _POSIX_C_SOURCE
 * (or _GNU_SOURCE) first. */
#ifndef RT_TEST_HARNESS_H
#define RT_TEST_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt.h"

static int rt_test_failed_checks;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            rt_test_failed_checks++;                                                \
        }                                                                           \
    } while (0)

#define CHECK_EQ(a, b)                                                              \
    do {                                                                            \
        long long va_ = (long long)(a), vb_ = (long long)(b);                       \
        if (va_ != vb_) {                                                           \
            fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__,   \
                    __LINE__, #a, #b, va_, vb_);                                    \
            rt_test_failed_checks++;                                                \
        }                                                                           \
    } while (0)

/* Every host-mode call (rt_run, rt_run_budget, rt_stop, rt_wake,
 * rt_backend_fd, rt_backend_timeout) refuses `rt` with RT_EINVAL: for a
 * multi-thread runtime, or NULL. */
static inline void check_host_calls_refused(rt_runtime *rt) {
    CHECK_EQ(rt_run(rt, RT_RUN_NOWAIT), RT_EINVAL);
    CHECK_EQ(rt_run_budget(rt, 1000, 10), RT_EINVAL);
    CHECK_EQ(rt_stop(rt), RT_EINVAL);
    CHECK_EQ(rt_wake(rt), RT_EINVAL);
    CHECK_EQ(rt_backend_fd(rt), RT_EINVAL);
    CHECK_EQ(rt_backend_timeout(rt), RT_EINVAL);
}

/* Sleeps `ms` milliseconds. */
static inline void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* Monotonic time in microseconds. */
static inline int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct {
    const char *name;
    void (*fn)(void);
} rt_test_case;

/* Runs every case (only those whose name contains $RT_TEST_FILTER, if
 * set) and prints "N passed, N failed". */
static int rt_run_tests(const rt_test_case *cases, size_t n) {
    size_t passed = 0, failed = 0, i;
    const char *filter = getenv("RT_TEST_FILTER");
    for (i = 0; i < n; i++) {
        int before = rt_test_failed_checks;
        if (filter != NULL && strstr(cases[i].name, filter) == NULL) {
            continue;
        }
        fprintf(stderr, "test %s ...\n", cases[i].name);
        cases[i].fn();
        if (rt_test_failed_checks == before) {
            passed++;
            fprintf(stderr, "test %s ... ok\n", cases[i].name);
        } else {
            failed++;
            fprintf(stderr, "test %s ... FAILED\n", cases[i].name);
        }
    }
    printf("%zu passed, %zu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

#endif
