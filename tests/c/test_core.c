/* Core C API tests: version, errors, runtime lifecycle, callback tasks,
 * abort, join, shutdown, bad input. Also run under valgrind by make test. */
#define _POSIX_C_SOURCE 200809L
#include "rt.h"
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static rt_runtime *new_runtime(rt_flavor flavor, uint32_t workers) {
    rt_config cfg;
    rt_runtime *rt = NULL;
    CHECK_EQ(rt_config_init(&cfg), 0);
    cfg.flavor = flavor;
    cfg.worker_threads = workers;
    CHECK_EQ(rt_runtime_new(&cfg, &rt), 0);
    CHECK(rt != NULL);
    return rt;
}

static void test_version_and_errors(void) {
    CHECK_EQ(rt_version(), RT_VERSION_HEX);
    CHECK(strcmp(rt_version_string(), "0.1.0") == 0);
    CHECK(strcmp(rt_err_name(RT_EINVAL), "RT_EINVAL") == 0);
    CHECK(strcmp(rt_err_name(RT_ECANCELED), "RT_ECANCELED") == 0);
    CHECK(strcmp(rt_err_name(-9), "RT_EOS") == 0);
    CHECK(strlen(rt_strerror(RT_ESHUTDOWN)) > 0);
    CHECK(strlen(rt_strerror(12345)) > 0);
}

/* ---- spawn from foreign threads ---- */

#define SPAWN_THREADS 4
#define SPAWN_PER_THREAD 25000

static atomic_int calls_ok;
static atomic_int calls_other;
static unsigned char called[SPAWN_THREADS * SPAWN_PER_THREAD];

static void count_cb(void *arg, int status) {
    size_t i = (size_t)arg;
    /* Before the counters: the main thread reads `called` once it sees the
     * counter reach the total. */
    called[i]++;
    if (status == 0) {
        atomic_fetch_add(&calls_ok, 1);
    } else {
        atomic_fetch_add(&calls_other, 1);
    }
}

typedef struct {
    rt_runtime *rt;
    int index;
    int errors;
} spawner_arg;

static void *spawner(void *p) {
    spawner_arg *a = p;
    int i;
    for (i = 0; i < SPAWN_PER_THREAD; i++) {
        size_t slot = (size_t)a->index * SPAWN_PER_THREAD + (size_t)i;
        if (rt_spawn(a->rt, count_cb, (void *)slot, NULL) != 0) {
            a->errors++;
        }
    }
    return NULL;
}

static void test_spawn_100k_from_4_threads(void) {
    rt_runtime *rt = new_runtime(RT_FLAVOR_MULTI_THREAD, 4);
    pthread_t threads[SPAWN_THREADS];
    spawner_arg args[SPAWN_THREADS];
    int i, total = SPAWN_THREADS * SPAWN_PER_THREAD, waited = 0;
    atomic_store(&calls_ok, 0);
    atomic_store(&calls_other, 0);
    memset(called, 0, sizeof called);
    for (i = 0; i < SPAWN_THREADS; i++) {
        args[i].rt = rt;
        args[i].index = i;
        args[i].errors = 0;
        pthread_create(&threads[i], NULL, spawner, &args[i]);
    }
    for (i = 0; i < SPAWN_THREADS; i++) {
        pthread_join(threads[i], NULL);
        CHECK_EQ(args[i].errors, 0);
    }
    while (atomic_load(&calls_ok) < total && waited < 20000) {
        sleep_ms(1);
        waited++;
    }
    CHECK_EQ(atomic_load(&calls_ok), total);
    CHECK_EQ(atomic_load(&calls_other), 0);
    for (i = 0; i < total; i++) {
        if (called[i] != 1) {
            CHECK_EQ(called[i], 1);
            break;
        }
    }
    {
        rt_metrics m;
        CHECK_EQ(rt_runtime_metrics(rt, &m), 0);
        CHECK(m.tasks_spawned >= (uint64_t)total);
        CHECK_EQ(m.workers, 4);
    }
    CHECK_EQ(rt_runtime_shutdown(rt, -1), 0);
    rt_runtime_free(rt);
}

/* ---- join, abort ---- */

typedef struct {
    atomic_int status;
    atomic_int calls;
    long sleep_ms;
} record;

static void record_cb(void *arg, int status) {
    record *r = arg;
    if (r->sleep_ms > 0) {
        sleep_ms(r->sleep_ms);
    }
    atomic_store(&r->status, status);
    atomic_fetch_add(&r->calls, 1);
}

static void test_join_and_is_finished(void) {
    rt_runtime *rt = new_runtime(RT_FLAVOR_MULTI_THREAD, 2);
    record r = {0};
    rt_task *t = NULL;
    r.sleep_ms = 50;
    atomic_store(&r.status, 99);
    CHECK_EQ(rt_spawn(rt, record_cb, &r, &t), 0);
    CHECK(t != NULL);
    CHECK_EQ(rt_task_join(t, 0), RT_ETIMEDOUT);
    CHECK_EQ(rt_task_join(t, 5000), 0);
    CHECK_EQ(rt_task_is_finished(t), 1);
    {
        /* Handles are reference counted: a clone outlives the original. */
        rt_task *t2 = rt_task_clone(t);
        CHECK(t2 != NULL);
        CHECK_EQ(rt_task_is_finished(t2), 1);
        rt_task_release(t2);
    }
    CHECK(rt_task_clone(NULL) == NULL);
    CHECK_EQ(atomic_load(&r.status), 0);
    CHECK_EQ(atomic_load(&r.calls), 1);
    /* Abort after it ran: nothing changes, and it says so. */
    CHECK_EQ(rt_task_abort(t), RT_EALREADY);
    rt_task_release(t);
    rt_runtime_free(rt);
}

static void block_cb(void *arg, int status) {
    (void)status;
    sleep_ms((long)(size_t)arg);
}

static void test_abort_before_start(void) {
    /* One worker, kept busy so the second task cannot start yet. */
    rt_runtime *rt = new_runtime(RT_FLAVOR_MULTI_THREAD, 1);
    record r = {0};
    rt_task *blocker = NULL, *t = NULL;
    CHECK_EQ(rt_spawn(rt, block_cb, (void *)(size_t)200, &blocker), 0);
    sleep_ms(20);
    atomic_store(&r.status, 99);
    CHECK_EQ(rt_spawn(rt, record_cb, &r, &t), 0);
    CHECK_EQ(rt_task_abort(t), 0);
    CHECK_EQ(rt_task_abort(t), RT_EALREADY);
    CHECK_EQ(rt_task_join(t, 5000), 0);
    CHECK_EQ(atomic_load(&r.status), RT_ECANCELED);
    CHECK_EQ(atomic_load(&r.calls), 1);
    CHECK_EQ(rt_task_join(blocker, 5000), 0);
    rt_task_release(t);
    rt_task_release(blocker);
    rt_runtime_free(rt);
}

/* Abort racing with the start, from another thread, many times: each
 * callback is called exactly once, with 0 or RT_ECANCELED. */
static void test_abort_races(void) {
    rt_runtime *rt = new_runtime(RT_FLAVOR_MULTI_THREAD, 2);
    enum { N = 2000 };
    static record recs[N];
    rt_task *tasks[N];
    int i, ok = 0, cancelled = 0, aborted = 0;
    for (i = 0; i < N; i++) {
        memset(&recs[i], 0, sizeof recs[i]);
        atomic_store(&recs[i].status, 99);
        CHECK_EQ(rt_spawn(rt, record_cb, &recs[i], &tasks[i]), 0);
        if (i % 2 == 0) {
            aborted += rt_task_abort(tasks[i]) == 0;
        }
    }
    for (i = 0; i < N; i++) {
        CHECK_EQ(rt_task_join(tasks[i], 10000), 0);
        CHECK_EQ(atomic_load(&recs[i].calls), 1);
        if (atomic_load(&recs[i].status) == 0) {
            ok++;
        } else if (atomic_load(&recs[i].status) == RT_ECANCELED) {
            cancelled++;
        }
        rt_task_release(tasks[i]);
    }
    CHECK_EQ(ok + cancelled, N);
    CHECK_EQ(cancelled, aborted);
    rt_runtime_free(rt);
}

/* A task joining another from inside a callback gets RT_EDEADLK. */
static rt_task *inner_task;
static atomic_int inner_join_result;

static void join_inside_cb(void *arg, int status) {
    (void)arg;
    (void)status;
    atomic_store(&inner_join_result, rt_task_join(inner_task, 1000));
}

static void test_join_on_worker_is_edeadlk(void) {
    rt_runtime *rt = new_runtime(RT_FLAVOR_MULTI_THREAD, 1);
    rt_task *outer = NULL;
    CHECK_EQ(rt_spawn(rt, block_cb, (void *)(size_t)300, &inner_task), 0);
    atomic_store(&inner_join_result, 1);
    CHECK_EQ(rt_spawn(rt, join_inside_cb, NULL, &outer), 0);
    CHECK_EQ(rt_task_join(outer, 5000), 0);
    {
        int r = atomic_load(&inner_join_result);
        /* Either the inner one was already done, or the join refused. */
        CHECK(r == RT_EDEADLK || r == 0);
    }
    rt_task_release(outer);
    rt_task_release(inner_task);
    rt_runtime_free(rt);
}

/* ---- shutdown ---- */

static void test_shutdown_gives_pending_callbacks_their_final_call(void) {
    /* Current-thread runtime: nothing drives it, so nothing runs before
     * the shutdown. */
    rt_runtime *rt = new_runtime(RT_FLAVOR_CURRENT_THREAD, 0);
    enum { N = 1000 };
    static record recs[N];
    int i;
    for (i = 0; i < N; i++) {
        memset(&recs[i], 0, sizeof recs[i]);
        atomic_store(&recs[i].status, 99);
        CHECK_EQ(rt_spawn(rt, record_cb, &recs[i], NULL), 0);
    }
    CHECK_EQ(rt_runtime_shutdown(rt, 5000), 0);
    for (i = 0; i < N; i++) {
        CHECK_EQ(atomic_load(&recs[i].calls), 1);
        CHECK_EQ(atomic_load(&recs[i].status), RT_ECANCELED);
    }
    /* Calls after shutdown: an error, and the callback is never called. */
    {
        record late = {0};
        CHECK_EQ(rt_spawn(rt, record_cb, &late, NULL), RT_ESHUTDOWN);
        CHECK_EQ(atomic_load(&late.calls), 0);
    }
    CHECK_EQ(rt_runtime_shutdown(rt, 0), RT_ESHUTDOWN);
    {
        rt_metrics m;
        CHECK_EQ(rt_runtime_metrics(rt, &m), 0);
        CHECK_EQ(m.tasks_alive, 0);
    }
    rt_runtime_free(rt);
}

static void test_shutdown_timeout_with_busy_worker(void) {
    rt_runtime *rt = new_runtime(RT_FLAVOR_MULTI_THREAD, 2);
    rt_task *t = NULL;
    CHECK_EQ(rt_spawn(rt, block_cb, (void *)(size_t)500, &t), 0);
    sleep_ms(50);
    CHECK_EQ(rt_runtime_shutdown(rt, 50), RT_ETIMEDOUT);
    /* The handle stays usable; the callback finishes in the background. */
    CHECK_EQ(rt_task_join(t, 5000), 0);
    rt_task_release(t);
    rt_runtime_free(rt);
    /* The timed-out shutdown detached the worker thread: let it exit before
     * the process does, so valgrind does not report its stack as lost. */
    sleep_ms(200);
}

/* ---- bad input ---- */

static void never_cb(void *arg, int status) {
    (void)status;
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void test_bad_inputs(void) {
    rt_config cfg;
    rt_runtime *rt = NULL;
    atomic_int never = 0;
    CHECK_EQ(rt_config_init(NULL), RT_EINVAL);
    CHECK_EQ(rt_runtime_new(NULL, NULL), RT_EINVAL);
    CHECK_EQ(rt_config_init(&cfg), 0);
    cfg.struct_size = 3;
    CHECK_EQ(rt_runtime_new(&cfg, &rt), RT_EINVAL);
    CHECK_EQ(rt_config_init(&cfg), 0);
    cfg.max_blocking_threads = 0;
    CHECK_EQ(rt_runtime_new(&cfg, &rt), RT_EINVAL);
    CHECK_EQ(rt_config_init(&cfg), 0);
    cfg.flavor = (rt_flavor)7;
    CHECK_EQ(rt_runtime_new(&cfg, &rt), RT_EINVAL);
    CHECK(rt == NULL);
    CHECK_EQ(rt_runtime_shutdown(NULL, 0), RT_EINVAL);
    CHECK_EQ(rt_runtime_metrics(NULL, NULL), RT_EINVAL);
    CHECK_EQ(rt_spawn(NULL, never_cb, &never, NULL), RT_EINVAL);
    CHECK_EQ(rt_task_abort(NULL), RT_EINVAL);
    CHECK_EQ(rt_task_is_finished(NULL), RT_EINVAL);
    CHECK_EQ(rt_task_join(NULL, 0), RT_EINVAL);
    rt_task_release(NULL);
    rt_runtime_free(NULL);
    rt = new_runtime(RT_FLAVOR_MULTI_THREAD, 1);
    CHECK_EQ(rt_spawn(rt, NULL, NULL, NULL), RT_EINVAL);
    CHECK_EQ(rt_runtime_metrics(rt, NULL), RT_EINVAL);
    rt_runtime_free(rt);
    CHECK_EQ(atomic_load(&never), 0);
}

/* ---- shutdown and free from inside a callback ---- */

/* A callback runs on a thread that drives a runtime, where rt-core refuses
 * to wait for a runtime's threads (it panics there, as Tokio does): the C
 * calls must shut down without waiting instead, never answer RT_EPANIC. */
static rt_runtime *cb_victim;
static atomic_int cb_result;

static void shutdown_victim_cb(void *arg, int status) {
    if (status == 0) {
        atomic_store(&cb_result, rt_runtime_shutdown(cb_victim, (int64_t)(size_t)arg - 1));
    }
}

static void free_victim_cb(void *arg, int status) {
    (void)arg;
    if (status == 0) {
        rt_runtime_free(cb_victim);
        cb_victim = NULL;
        atomic_store(&cb_result, 0);
    }
}

static void test_shutdown_and_free_inside_a_callback(void) {
    rt_runtime *rt = new_runtime(RT_FLAVOR_MULTI_THREAD, 2);
    rt_task *t = NULL;
    long timeout;
    int r;
    /* Another runtime, no limit and a positive limit. */
    for (timeout = -1; timeout <= 1000; timeout += 1001) {
        atomic_int never = 0;
        cb_victim = new_runtime(RT_FLAVOR_MULTI_THREAD, 1);
        atomic_store(&cb_result, 1);
        CHECK_EQ(rt_spawn(rt, shutdown_victim_cb, (void *)(size_t)(timeout + 1), &t), 0);
        CHECK_EQ(rt_task_join(t, 5000), 0);
        rt_task_release(t);
        r = atomic_load(&cb_result);
        CHECK(r == 0 || r == RT_ETIMEDOUT);
        CHECK_EQ(rt_spawn(cb_victim, never_cb, &never, NULL), RT_ESHUTDOWN);
        rt_runtime_free(cb_victim);
        CHECK_EQ(atomic_load(&never), 0);
    }
    /* rt_runtime_free of another runtime. */
    cb_victim = new_runtime(RT_FLAVOR_CURRENT_THREAD, 0);
    atomic_store(&cb_result, 1);
    CHECK_EQ(rt_spawn(rt, free_victim_cb, NULL, &t), 0);
    CHECK_EQ(rt_task_join(t, 5000), 0);
    rt_task_release(t);
    CHECK_EQ(atomic_load(&cb_result), 0);
    CHECK(cb_victim == NULL);
    /* Its own runtime: the callback's thread is not waited for. */
    cb_victim = rt;
    atomic_store(&cb_result, 1);
    CHECK_EQ(rt_spawn(rt, shutdown_victim_cb, (void *)(size_t)0, &t), 0);
    CHECK_EQ(rt_task_join(t, 5000), 0);
    rt_task_release(t);
    r = atomic_load(&cb_result);
    CHECK(r == 0 || r == RT_ETIMEDOUT);
    rt_runtime_free(rt);
    /* Let the threads shut down in the background exit before valgrind's
     * leak check. */
    sleep_ms(200);
}

int main(void) {
    static const rt_test_case cases[] = {
        {"version_and_errors", test_version_and_errors},
        {"spawn_100k_from_4_threads", test_spawn_100k_from_4_threads},
        {"join_and_is_finished", test_join_and_is_finished},
        {"abort_before_start", test_abort_before_start},
        {"abort_races", test_abort_races},
        {"join_on_worker_is_edeadlk", test_join_on_worker_is_edeadlk},
        {"shutdown_gives_pending_callbacks_their_final_call", test_shutdown_gives_pending_callbacks_their_final_call},
        {"shutdown_timeout_with_busy_worker", test_shutdown_timeout_with_busy_worker},
        {"shutdown_and_free_inside_a_callback", test_shutdown_and_free_inside_a_callback},
        {"bad_inputs", test_bad_inputs},
    };
    return rt_run_tests(cases, sizeof cases / sizeof cases[0]);
}
