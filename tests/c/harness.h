/* A tiny test runner: TEST(name) { ... CHECK(cond); ... } and
 * RUN_TESTS(...) printing "N passed, N failed". */
#ifndef RT_TEST_HARNESS_H
#define RT_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

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

typedef struct {
    const char *name;
    void (*fn)(void);
} rt_test_case;

static int rt_run_tests(const rt_test_case *cases, size_t n) {
    size_t passed = 0, failed = 0, i;
    for (i = 0; i < n; i++) {
        int before = rt_test_failed_checks;
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
