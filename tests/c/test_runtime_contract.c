/* The runtime's contract under pressure (issue 10): shutdowns that overlap
 * (a second call, rt_runtime_free, a call from inside a callback), what a
 * shutdown that timed out may leave outstanding (only the callbacks that
 * were running), and every rt_config field at its extremes (0, 1, the
 * largest value: RT_EINVAL or a working runtime, never a crash). Also run
 * under valgrind by make test-c. */
#define _GNU_SOURCE
#include "rt.h"
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int under_valgrind(void) {
    return getenv("RT_TEST_VALGRIND") != NULL;
}

/* Waits up to `ms` for `*v >= want`. */
static int wait_for(atomic_int *v, int want, long ms) {
    int64_t end = now_us() + ms * 1000;
    while (atomic_load(v) < want) {
        if (now_us() > end) {
            return 0;
        }
        sleep_ms(1);
    }
    return 1;
}

static rt_runtime *new_runtime(rt_flavor flavor, uint32_t workers, uint32_t max_blocking) {
    rt_config cfg;
    rt_runtime *rt = NULL;
    CHECK_EQ(rt_config_init(&cfg), 0);
    cfg.flavor = flavor;
    cfg.worker_threads = workers;
    if (max_blocking != 0) {
        cfg.max_blocking_threads = max_blocking;
    }
    CHECK_EQ(rt_runtime_new(&cfg, &rt), 0);
    return rt;
}

/* What a callback got: status 0, RT_ECANCELED, anything else. */
typedef struct {
    atomic_int calls;
    atomic_int cancels;
    atomic_int other;
} rec;

static void rec_status(rec *r, int status) {
    if (status == 0) {
        atomic_fetch_add(&r->calls, 1);
    } else if (status == RT_ECANCELED) {
        atomic_fetch_add(&r->cancels, 1);
    } else {
        atomic_fetch_add(&r->other, 1);
    }
}

static void rec_cb(void *arg, int status) {
    rec_status(arg, status);
}

/* Callbacks that block their thread until the gate opens. */
static atomic_int gate_open;
static atomic_int blocked_now;

static void block_until_open(void) {
    atomic_fetch_add(&blocked_now, 1);
    while (!atomic_load(&gate_open)) {
        sleep_ms(1);
    }
    atomic_fetch_sub(&blocked_now, 1);
}

/* Records its status, and blocks on its first call with status 0. */
static void blocking_rec_cb(void *arg, int status) {
    rec *r = arg;
    if (status == 0 && atomic_load(&r->calls) == 0) {
        block_until_open();
    }
    rec_status(r, status);
}

/* ---- a second shutdown, rt_runtime_free, and shutdown from callbacks ---- */

#define SLOW_FINALS 100

static atomic_int finals_started;
static atomic_int finals_done;
static atomic_int final_sleep_ms;
static atomic_int nested_rc_set;
static atomic_int nested_rc;
static atomic_int nested_rc0;
static rt_runtime *nested_rt;

/* A timer's final call that takes a while. */
static void slow_final_cb(void *arg, int status) {
    (void)arg;
    if (status != RT_ECANCELED) {
        return;
    }
    atomic_fetch_add(&finals_started, 1);
    if (nested_rt != NULL && atomic_exchange(&nested_rc_set, 1) == 0) {
        /* Re-entered from the first shutdown's own final call. */
        atomic_store(&nested_rc, rt_runtime_shutdown(nested_rt, -1));
        atomic_store(&nested_rc0, rt_runtime_shutdown(nested_rt, 0));
    }
    sleep_ms(atomic_load(&final_sleep_ms));
    atomic_fetch_add(&finals_done, 1);
}

/* A runtime with SLOW_FINALS armed timers whose final calls sleep `ms`. */
static rt_runtime *runtime_with_slow_finals(int ms) {
    rt_runtime *rt = new_runtime(RT_FLAVOR_MULTI_THREAD, 2, 0);
    rt_timer_id id;
    int i;
    atomic_store(&finals_started, 0);
    atomic_store(&finals_done, 0);
    atomic_store(&final_sleep_ms, ms);
    atomic_store(&nested_rc_set, 0);
    nested_rt = NULL;
    for (i = 0; i < SLOW_FINALS; i++) {
        CHECK_EQ(rt_timer_start(rt, 600000, 0, slow_final_cb, NULL, &id), 0);
    }
    return rt;
}

typedef struct {
    rt_runtime *rt;
    int64_t timeout_ms;
    int rc;
} shutdown_arg;

static void *shutdown_thread(void *p) {
    shutdown_arg *a = p;
    a->rc = rt_runtime_shutdown(a->rt, a->timeout_ms);
    return NULL;
}

static void test_second_shutdown_waits_for_the_first(void) {
    rt_runtime *rt = runtime_with_slow_finals(2);
    shutdown_arg first = {rt, -1, 1};
    pthread_t t;
    int rc;
    pthread_create(&t, NULL, shutdown_thread, &first);
    CHECK(wait_for(&finals_started, 1, 5000));
    rc = rt_runtime_shutdown(rt, -1);
    /* It returned once the first had made every final call. */
    CHECK_EQ(rc, RT_ESHUTDOWN);
    CHECK_EQ(atomic_load(&finals_done), SLOW_FINALS);
    pthread_join(t, NULL);
    CHECK_EQ(first.rc, 0);
    CHECK_EQ(rt_runtime_shutdown(rt, -1), RT_ESHUTDOWN);
    rt_runtime_free(rt);
}

static void test_second_shutdown_respects_its_own_timeout(void) {
    rt_runtime *rt = runtime_with_slow_finals(5);
    shutdown_arg first = {rt, -1, 1};
    pthread_t t;
    int64_t start;
    int rc;
    pthread_create(&t, NULL, shutdown_thread, &first);
    CHECK(wait_for(&finals_started, 1, 5000));
    start = now_us();
    rc = rt_runtime_shutdown(rt, 20);
    CHECK_EQ(rc, RT_ETIMEDOUT);
    CHECK(now_us() - start < 400000);
    CHECK(atomic_load(&finals_done) < SLOW_FINALS);
    CHECK_EQ(rt_runtime_shutdown(rt, 0), RT_ETIMEDOUT);
    /* No limit: back once the first shutdown is over. */
    CHECK_EQ(rt_runtime_shutdown(rt, -1), RT_ESHUTDOWN);
    CHECK_EQ(atomic_load(&finals_done), SLOW_FINALS);
    pthread_join(t, NULL);
    CHECK_EQ(first.rc, 0);
    rt_runtime_free(rt);
}

static void test_shutdown_from_the_first_shutdowns_final_call(void) {
    rt_runtime *rt = runtime_with_slow_finals(0);
    atomic_store(&nested_rc, 1);
    atomic_store(&nested_rc0, 1);
    nested_rt = rt;
    /* Its final calls run on this thread: a nested shutdown cannot wait
     * for it (it would wait for itself). */
    CHECK_EQ(rt_runtime_shutdown(rt, -1), 0);
    CHECK_EQ(atomic_load(&nested_rc), RT_EDEADLK);
    CHECK_EQ(atomic_load(&nested_rc0), RT_ETIMEDOUT);
    CHECK_EQ(atomic_load(&finals_done), SLOW_FINALS);
    nested_rt = NULL;
    rt_runtime_free(rt);
}

/* A callback released while another thread's shutdown waits for it calls
 * rt_runtime_shutdown itself: RT_EDEADLK at once (the first shutdown
 * waits for this very callback; waiting for it back would deadlock). */
static atomic_int in_cb_rc;
static atomic_int in_cb_us;
static rt_runtime *in_cb_rt;

static void shutdown_inside_cb(void *arg, int status) {
    int64_t start;
    (void)arg;
    if (status != 0) {
        return;
    }
    block_until_open();
    start = now_us();
    atomic_store(&in_cb_rc, rt_runtime_shutdown(in_cb_rt, 10000));
    atomic_store(&in_cb_us, (int)(now_us() - start));
}

static void test_shutdown_from_a_callback_during_another_shutdown(void) {
    rt_runtime *rt = new_runtime(RT_FLAVOR_MULTI_THREAD, 2, 0);
    shutdown_arg first = {rt, -1, 1};
    pthread_t t;
    in_cb_rt = rt;
    atomic_store(&gate_open, 0);
    atomic_store(&in_cb_rc, 1);
    CHECK_EQ(rt_spawn(rt, shutdown_inside_cb, NULL, NULL), 0);
    CHECK(wait_for(&blocked_now, 1, 5000));
    pthread_create(&t, NULL, shutdown_thread, &first);
    sleep_ms(50);
    atomic_store(&gate_open, 1);
    pthread_join(t, NULL);
    CHECK_EQ(first.rc, 0);
    CHECK_EQ(atomic_load(&in_cb_rc), RT_EDEADLK);
    CHECK(atomic_load(&in_cb_us) < 5000000);
    rt_runtime_free(rt);
}

/* The same from blocking work: the first shutdown waits for the work, so
 * the work must not wait for it (a second shutdown with a limit would only
 * return at that limit). */
static void shutdown_inside_work(void *arg) {
    int64_t start;
    (void)arg;
    block_until_open();
    start = now_us();
    atomic_store(&in_cb_rc, rt_runtime_shutdown(in_cb_rt, 3000));
    atomic_store(&in_cb_us, (int)(now_us() - start));
}

static void test_shutdown_from_blocking_work_during_another_shutdown(void) {
    static rec done;
    rt_runtime *rt = new_runtime(RT_FLAVOR_MULTI_THREAD, 2, 0);
    shutdown_arg first = {rt, -1, 1};
    pthread_t t;
    memset(&done, 0, sizeof done);
    in_cb_rt = rt;
    atomic_store(&gate_open, 0);
    atomic_store(&blocked_now, 0);
    atomic_store(&in_cb_rc, 1);
    CHECK_EQ(rt_spawn_blocking(rt, shutdown_inside_work, rec_cb, &done, NULL), 0);
    CHECK(wait_for(&blocked_now, 1, 5000));
    pthread_create(&t, NULL, shutdown_thread, &first);
    sleep_ms(50);
    atomic_store(&gate_open, 1);
    pthread_join(t, NULL);
    CHECK_EQ(first.rc, 0);
    CHECK_EQ(atomic_load(&in_cb_rc), RT_EDEADLK);
    CHECK(atomic_load(&in_cb_us) < 1000000);
    CHECK_EQ(atomic_load(&done.calls), 1);
    rt_runtime_free(rt);
}

static void test_free_waits_for_a_shutdown_under_way(void) {
    rt_runtime *rt = runtime_with_slow_finals(2);
    shutdown_arg first = {rt, -1, 1};
    pthread_t t;
    pthread_create(&t, NULL, shutdown_thread, &first);
    CHECK(wait_for(&finals_started, 1, 5000));
    /* The first shutdown is making its final calls: free waits for it
     * (under valgrind, freeing under it would be reported). */
    rt_runtime_free(rt);
    CHECK_EQ(atomic_load(&finals_done), SLOW_FINALS);
    pthread_join(t, NULL);
    CHECK_EQ(first.rc, 0);
}

/* ---- a shutdown that times out: only running callbacks are outstanding ---- */

static atomic_int poll_calls;
static atomic_int poll_drops;

static int pending_poll(void *state, rt_waker *waker) {
    (void)state;
    (void)waker;
    atomic_fetch_add(&poll_calls, 1);
    return RT_PENDING;
}

static void count_drop(void *state) {
    (void)state;
    atomic_fetch_add(&poll_drops, 1);
}

static rec io_rec;

static void io_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    (void)arg;
    (void)fd;
    (void)events;
    rec_status(&io_rec, status);
}

static atomic_int work_ran;

static void quick_work(void *arg) {
    (void)arg;
    atomic_fetch_add(&work_ran, 1);
}

static void blocking_work(void *arg) {
    (void)arg;
    atomic_fetch_add(&work_ran, 1);
    block_until_open();
}

/* Everything pending that a timed-out shutdown must finish before it
 * returns, created while every thread that could run it is blocked. */
typedef struct {
    rec armed_timer, due_timer, spawn_plain, spawn_handle, queued_blocking, done_blocking;
    rt_task *task;
    int pipe[2];
    rt_io_id io;
} pending_set;

static void make_pending(rt_runtime *rt, pending_set *p) {
    rt_timer_id id;
    CHECK_EQ(rt_timer_start(rt, 600000, 0, rec_cb, &p->armed_timer, &id), 0);
    CHECK_EQ(rt_timer_start(rt, 0, 0, rec_cb, &p->due_timer, &id), 0);
    CHECK_EQ(rt_spawn(rt, rec_cb, &p->spawn_plain, NULL), 0);
    CHECK_EQ(rt_spawn(rt, rec_cb, &p->spawn_handle, &p->task), 0);
    CHECK_EQ(rt_spawn_poll(rt, pending_poll, NULL, count_drop, NULL), 0);
    CHECK_EQ(pipe(p->pipe), 0);
    CHECK_EQ(rt_io_register(rt, p->pipe[0], RT_READABLE, io_cb, NULL, &p->io), 0);
    /* The single blocking thread is busy: this one stays queued. */
    CHECK_EQ(rt_spawn_blocking(rt, quick_work, rec_cb, &p->queued_blocking, NULL), 0);
}

/* Right after the RT_ETIMEDOUT return: every pending callback had its
 * final call, exactly once. */
static void check_pending_finished(pending_set *p) {
    CHECK_EQ(atomic_load(&p->armed_timer.cancels), 1);
    CHECK_EQ(atomic_load(&p->due_timer.cancels) + atomic_load(&p->due_timer.calls), 1);
    CHECK_EQ(atomic_load(&p->spawn_plain.cancels), 1);
    CHECK_EQ(atomic_load(&p->spawn_handle.cancels), 1);
    CHECK_EQ(rt_task_is_finished(p->task), 1);
    CHECK_EQ(atomic_load(&poll_calls), 0);
    CHECK_EQ(atomic_load(&poll_drops), 1);
    CHECK_EQ(atomic_load(&io_rec.cancels), 1);
    CHECK_EQ(atomic_load(&io_rec.calls), 0);
    CHECK_EQ(atomic_load(&p->queued_blocking.cancels), 1);
    CHECK_EQ(atomic_load(&p->done_blocking.calls), 1);
    CHECK_EQ(atomic_load(&p->done_blocking.cancels), 0);
}

static void reset_pending(pending_set *p) {
    memset(p, 0, sizeof *p);
    memset(&io_rec, 0, sizeof io_rec);
    atomic_store(&poll_calls, 0);
    atomic_store(&poll_drops, 0);
    atomic_store(&work_ran, 0);
    atomic_store(&gate_open, 0);
    atomic_store(&blocked_now, 0);
}

static void test_timed_out_shutdown_multi_thread(void) {
    static pending_set p;
    static rec spawned_blocker, repeat_blocker, running_blocking;
    rt_runtime *rt = new_runtime(RT_FLAVOR_MULTI_THREAD, 2, 1);
    rt_timer_id id;
    reset_pending(&p);
    memset(&spawned_blocker, 0, sizeof spawned_blocker);
    memset(&repeat_blocker, 0, sizeof repeat_blocker);
    memset(&running_blocking, 0, sizeof running_blocking);
    /* Both workers blocked: one in a callback task, one in a repeating
     * timer's call. */
    CHECK_EQ(rt_spawn(rt, blocking_rec_cb, &spawned_blocker, NULL), 0);
    CHECK(wait_for(&blocked_now, 1, 5000));
    CHECK_EQ(rt_timer_start(rt, 0, 1000, blocking_rec_cb, &repeat_blocker, &id), 0);
    CHECK(wait_for(&blocked_now, 2, 5000));
    /* Blocking work that finished: its `done` waits for a worker. */
    CHECK_EQ(rt_spawn_blocking(rt, quick_work, rec_cb, &p.done_blocking, NULL), 0);
    CHECK(wait_for(&work_ran, 1, 5000));
    sleep_ms(20);
    /* Blocking work that blocks the single blocking thread. */
    CHECK_EQ(rt_spawn_blocking(rt, blocking_work, rec_cb, &running_blocking, NULL), 0);
    CHECK(wait_for(&blocked_now, 3, 5000));
    make_pending(rt, &p);

    CHECK_EQ(rt_runtime_shutdown(rt, 100), RT_ETIMEDOUT);
    check_pending_finished(&p);
    /* The running ones are still running: no call made for them yet. */
    CHECK_EQ(atomic_load(&spawned_blocker.calls) + atomic_load(&spawned_blocker.cancels), 0);
    CHECK_EQ(atomic_load(&repeat_blocker.calls) + atomic_load(&repeat_blocker.cancels), 0);
    CHECK_EQ(atomic_load(&running_blocking.calls) + atomic_load(&running_blocking.cancels), 0);

    /* Released, each makes its own call, then the one final call it owes. */
    atomic_store(&gate_open, 1);
    CHECK(wait_for(&spawned_blocker.calls, 1, 5000));
    CHECK(wait_for(&repeat_blocker.cancels, 1, 5000));
    CHECK(wait_for(&running_blocking.calls, 1, 5000));
    sleep_ms(50);
    CHECK_EQ(atomic_load(&spawned_blocker.cancels), 0);
    CHECK_EQ(atomic_load(&repeat_blocker.calls), 1);
    CHECK_EQ(atomic_load(&repeat_blocker.cancels), 1);
    CHECK_EQ(atomic_load(&running_blocking.cancels), 0);
    CHECK_EQ(atomic_load(&work_ran), 2);
    CHECK_EQ(rt_runtime_shutdown(rt, 5000), RT_ESHUTDOWN);
    rt_task_release(p.task);
    rt_runtime_free(rt);
    close(p.pipe[0]);
    close(p.pipe[1]);
    /* Let the detached threads exit before the process does. */
    sleep_ms(200);
}

typedef struct {
    rt_runtime *rt;
    int rc;
} run_arg;

static void *host_thread(void *p) {
    run_arg *a = p;
    a->rc = rt_run(a->rt, RT_RUN_DEFAULT);
    return NULL;
}

static void test_timed_out_shutdown_current_thread(void) {
    static pending_set p;
    static rec blocker, queued1, queued2, running_blocking;
    rt_runtime *rt = new_runtime(RT_FLAVOR_CURRENT_THREAD, 0, 1);
    run_arg host = {rt, 0};
    pthread_t t;
    rt_timer_id id;
    reset_pending(&p);
    memset(&blocker, 0, sizeof blocker);
    memset(&queued1, 0, sizeof queued1);
    memset(&queued2, 0, sizeof queued2);
    memset(&running_blocking, 0, sizeof running_blocking);
    /* Three timers due at once: the first blocks the host thread, the
     * other two are queued behind it. */
    CHECK_EQ(rt_timer_start(rt, 0, 0, blocking_rec_cb, &blocker, &id), 0);
    CHECK_EQ(rt_timer_start(rt, 0, 0, rec_cb, &queued1, &id), 0);
    CHECK_EQ(rt_timer_start(rt, 0, 0, rec_cb, &queued2, &id), 0);
    /* Blocking work that finished before the host ran: its `done` waits. */
    CHECK_EQ(rt_spawn_blocking(rt, quick_work, rec_cb, &p.done_blocking, NULL), 0);
    CHECK(wait_for(&work_ran, 1, 5000));
    sleep_ms(20);
    pthread_create(&t, NULL, host_thread, &host);
    CHECK(wait_for(&blocked_now, 1, 5000));
    CHECK_EQ(rt_spawn_blocking(rt, blocking_work, rec_cb, &running_blocking, NULL), 0);
    CHECK(wait_for(&blocked_now, 2, 5000));
    make_pending(rt, &p);

    CHECK_EQ(rt_runtime_shutdown(rt, 100), RT_ETIMEDOUT);
    /* The done of finished work may have run before the blocker did. */
    check_pending_finished(&p);
    CHECK_EQ(atomic_load(&queued1.cancels) + atomic_load(&queued1.calls), 1);
    CHECK_EQ(atomic_load(&queued2.cancels) + atomic_load(&queued2.calls), 1);
    CHECK_EQ(atomic_load(&blocker.calls) + atomic_load(&blocker.cancels), 0);
    CHECK_EQ(atomic_load(&running_blocking.calls), 0);

    atomic_store(&gate_open, 1);
    pthread_join(t, NULL);
    CHECK(wait_for(&blocker.calls, 1, 5000));
    CHECK(wait_for(&running_blocking.calls, 1, 5000));
    sleep_ms(50);
    CHECK_EQ(atomic_load(&blocker.cancels), 0);
    CHECK_EQ(atomic_load(&queued1.calls) + atomic_load(&queued1.cancels), 1);
    CHECK_EQ(atomic_load(&queued2.calls) + atomic_load(&queued2.cancels), 1);
    CHECK_EQ(atomic_load(&running_blocking.cancels), 0);
    rt_task_release(p.task);
    rt_runtime_free(rt);
    close(p.pipe[0]);
    close(p.pipe[1]);
    sleep_ms(200);
}

/* A host thread inside rt_run runs a current-thread runtime's callbacks: a
 * shutdown from another thread waits for that call to return like for the
 * runtime's own threads (0 would tell the caller nothing runs). */
static void test_shutdown_waits_for_the_host_run(void) {
    static rec blocker;
    rt_runtime *rt = new_runtime(RT_FLAVOR_CURRENT_THREAD, 0, 0);
    run_arg host = {rt, 0};
    pthread_t t;
    shutdown_arg second = {rt, -1, 1};
    pthread_t t2;
    int64_t start;
    memset(&blocker, 0, sizeof blocker);
    atomic_store(&gate_open, 0);
    atomic_store(&blocked_now, 0);
    CHECK_EQ(rt_spawn(rt, blocking_rec_cb, &blocker, NULL), 0);
    pthread_create(&t, NULL, host_thread, &host);
    CHECK(wait_for(&blocked_now, 1, 5000));
    start = now_us();
    CHECK_EQ(rt_runtime_shutdown(rt, 50), RT_ETIMEDOUT);
    CHECK(now_us() - start >= 45000);
    /* A second shutdown without a limit returns once the first did. */
    pthread_create(&t2, NULL, shutdown_thread, &second);
    sleep_ms(50);
    atomic_store(&gate_open, 1);
    pthread_join(t, NULL);
    pthread_join(t2, NULL);
    CHECK_EQ(second.rc, RT_ESHUTDOWN);
    CHECK_EQ(atomic_load(&blocker.calls), 1);
    CHECK_EQ(host.rc, 1);
    rt_runtime_free(rt);
}

static void test_shutdown_without_limit_waits_for_the_host_run(void) {
    static rec blocker;
    rt_runtime *rt = new_runtime(RT_FLAVOR_CURRENT_THREAD, 0, 0);
    run_arg host = {rt, 0};
    shutdown_arg first = {rt, -1, 1};
    pthread_t t, t2;
    memset(&blocker, 0, sizeof blocker);
    atomic_store(&gate_open, 0);
    atomic_store(&blocked_now, 0);
    CHECK_EQ(rt_spawn(rt, blocking_rec_cb, &blocker, NULL), 0);
    pthread_create(&t, NULL, host_thread, &host);
    CHECK(wait_for(&blocked_now, 1, 5000));
    pthread_create(&t2, NULL, shutdown_thread, &first);
    sleep_ms(100);
    /* Still waiting for the callback on the host thread. */
    CHECK_EQ(first.rc, 1);
    atomic_store(&gate_open, 1);
    pthread_join(t2, NULL);
    CHECK_EQ(first.rc, 0);
    CHECK_EQ(atomic_load(&blocker.calls), 1);
    pthread_join(t, NULL);
    rt_runtime_free(rt);
}

/* After a shutdown that timed out while the host thread runs a callback,
 * rt_runtime_free waits for that rt_run call to return (it still uses the
 * runtime). */
static void *free_thread(void *p) {
    rt_runtime_free(p);
    return NULL;
}

static void test_free_waits_for_a_host_run_under_way(void) {
    static rec blocker;
    static atomic_int freed;
    rt_runtime *rt = new_runtime(RT_FLAVOR_CURRENT_THREAD, 0, 0);
    run_arg host = {rt, 0};
    pthread_t t, t2;
    memset(&blocker, 0, sizeof blocker);
    atomic_store(&gate_open, 0);
    atomic_store(&blocked_now, 0);
    atomic_store(&freed, 0);
    CHECK_EQ(rt_spawn(rt, blocking_rec_cb, &blocker, NULL), 0);
    pthread_create(&t, NULL, host_thread, &host);
    CHECK(wait_for(&blocked_now, 1, 5000));
    CHECK_EQ(rt_runtime_shutdown(rt, 0), RT_ETIMEDOUT);
    pthread_create(&t2, NULL, free_thread, rt);
    sleep_ms(100);
    /* Still inside the host's callback: free has not returned. */
    CHECK_EQ(pthread_tryjoin_np(t2, NULL), EBUSY);
    atomic_store(&gate_open, 1);
    pthread_join(t, NULL);
    pthread_join(t2, NULL);
    CHECK_EQ(atomic_load(&blocker.calls), 1);
}

/* ---- rt_config at its extremes ---- */

static int new_with(rt_config *cfg, rt_runtime **out) {
    *out = NULL;
    return rt_runtime_new(cfg, out);
}

static void test_config_out_of_range_is_einval(void) {
    static const uint32_t bad_workers[] = {UINT32_MAX, 65535, 65536, RT_MAX_WORKER_THREADS + 1};
    rt_config cfg;
    rt_runtime *rt;
    size_t i;
    int flavor;
    for (flavor = 0; flavor < 2; flavor++) {
        for (i = 0; i < sizeof bad_workers / sizeof bad_workers[0]; i++) {
            rt_config_init(&cfg);
            cfg.flavor = (rt_flavor)flavor;
            cfg.worker_threads = bad_workers[i];
            CHECK_EQ(new_with(&cfg, &rt), RT_EINVAL);
            CHECK(rt == NULL);
        }
        rt_config_init(&cfg);
        cfg.flavor = (rt_flavor)flavor;
        cfg.max_blocking_threads = 0;
        CHECK_EQ(new_with(&cfg, &rt), RT_EINVAL);
        rt_config_init(&cfg);
        cfg.flavor = (rt_flavor)flavor;
        cfg.event_interval = 0;
        CHECK_EQ(new_with(&cfg, &rt), RT_EINVAL);
        rt_config_init(&cfg);
        cfg.flavor = (rt_flavor)flavor;
        cfg.struct_size = 0;
        CHECK_EQ(new_with(&cfg, &rt), RT_EINVAL);
        cfg.struct_size = UINT32_MAX;
        CHECK_EQ(new_with(&cfg, &rt), RT_EINVAL);
    }
    rt_config_init(&cfg);
    {
        /* An unknown flavor, written as the raw integer a C caller may pass. */
        uint32_t raw = 2;
        memcpy(&cfg.flavor, &raw, sizeof raw);
        CHECK_EQ(new_with(&cfg, &rt), RT_EINVAL);
        raw = UINT32_MAX;
        memcpy(&cfg.flavor, &raw, sizeof raw);
        CHECK_EQ(new_with(&cfg, &rt), RT_EINVAL);
    }
}

/* A runtime built from `cfg` works: callbacks, blocking work and a timer
 * complete, and the shutdown is prompt. */
static atomic_int ext_done;

static void ext_cb(void *arg, int status) {
    (void)arg;
    if (status == 0) {
        atomic_fetch_add(&ext_done, 1);
    }
}

static void exercise(rt_config *cfg, const char *what) {
    rt_runtime *rt = NULL;
    rt_timer_id id;
    int rc = rt_runtime_new(cfg, &rt), i;
    int64_t start;
    if (rc != 0) {
        fprintf(stderr, "  %s: rt_runtime_new returned %d (%s)\n", what, rc, rt_err_name(rc));
    }
    CHECK_EQ(rc, 0);
    if (rc != 0) {
        return;
    }
    atomic_store(&ext_done, 0);
    for (i = 0; i < 50; i++) {
        CHECK_EQ(rt_spawn(rt, ext_cb, NULL, NULL), 0);
    }
    CHECK_EQ(rt_spawn_blocking(rt, quick_work, ext_cb, NULL, NULL), 0);
    CHECK_EQ(rt_spawn_blocking(rt, quick_work, ext_cb, NULL, NULL), 0);
    CHECK_EQ(rt_timer_start(rt, 1, 0, ext_cb, NULL, &id), 0);
    if (cfg->flavor == RT_FLAVOR_CURRENT_THREAD) {
        CHECK(rt_run(rt, RT_RUN_DEFAULT) >= 0);
    }
    if (!wait_for(&ext_done, 53, 10000)) {
        fprintf(stderr, "  %s: %d of 53 callbacks\n", what, atomic_load(&ext_done));
        CHECK(0);
    }
    start = now_us();
    CHECK_EQ(rt_runtime_shutdown(rt, 10000), 0);
    CHECK(now_us() - start < 5000000);
    rt_runtime_free(rt);
}

static void test_config_extremes_work(void) {
    rt_config cfg;
    int flavor;
    for (flavor = 0; flavor < 2; flavor++) {
#define EXTREME(field, value)                                                     \
    do {                                                                          \
        rt_config_init(&cfg);                                                     \
        cfg.flavor = (rt_flavor)flavor;                                           \
        cfg.field = (value);                                                      \
        exercise(&cfg, #field " = " #value);                                      \
    } while (0)
        EXTREME(worker_threads, 1);
        EXTREME(worker_threads, 0);
        EXTREME(max_blocking_threads, 1);
        EXTREME(max_blocking_threads, UINT32_MAX);
        EXTREME(thread_keep_alive_ms, 0);
        EXTREME(thread_keep_alive_ms, UINT64_MAX);
        EXTREME(global_queue_interval, 1);
        EXTREME(global_queue_interval, UINT32_MAX);
        EXTREME(event_interval, 1);
        EXTREME(event_interval, UINT32_MAX);
#undef EXTREME
    }
}

/* The largest worker count: a working runtime, or the OS's refusal of a
 * thread as an error (never RT_EINVAL, a panic or an abort). Not under
 * valgrind (it runs at most a few hundred threads). */
static void test_max_worker_threads(void) {
    rt_config cfg;
    rt_runtime *rt = NULL;
    int rc;
    if (under_valgrind()) {
        return;
    }
    rt_config_init(&cfg);
    cfg.worker_threads = RT_MAX_WORKER_THREADS;
    rc = rt_runtime_new(&cfg, &rt);
    if (rc == 0) {
        rt_metrics m;
        CHECK_EQ(rt_runtime_metrics(rt, &m), 0);
        CHECK_EQ(m.workers, RT_MAX_WORKER_THREADS);
        CHECK_EQ(rt_runtime_shutdown(rt, 30000), 0);
        rt_runtime_free(rt);
    } else {
        fprintf(stderr, "  (the OS refused %u threads: %s)\n", RT_MAX_WORKER_THREADS, rt_err_name(rc));
        CHECK(rc < 0 && rc != RT_EINVAL && rc != RT_EPANIC);
    }
}

/* Runs this binary again as `test_runtime_contract <mode>` (a child whose
 * resource limits cannot touch the other tests); checks it exits 0. */
static void run_child(const char *mode) {
    pid_t pid;
    int status = 0;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_runtime_contract", mode, (char *)NULL);
        _exit(5);
    }
    CHECK(pid > 0);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

/* In a child process whose address space is too small for the threads'
 * stacks: rt_runtime_new must return the OS error. */
static int spawn_failure_child(void) {
    struct rlimit lim;
    rt_config cfg;
    rt_runtime *rt = NULL;
    long pages = 0;
    int rc;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL || fscanf(f, "%ld", &pages) != 1) {
        return 3;
    }
    fclose(f);
    /* Room for a few dozen 2 MiB stacks, not for 4096. */
    lim.rlim_cur = lim.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (96u << 20);
    if (setrlimit(RLIMIT_AS, &lim) != 0) {
        return 4;
    }
    rt_config_init(&cfg);
    cfg.worker_threads = RT_MAX_WORKER_THREADS;
    rc = rt_runtime_new(&cfg, &rt);
    printf("  (child: rt_runtime_new returned %d, %s)\n", rc, rt_err_name(rc));
    if (rc == 0) {
        rt_runtime_free(rt);
        return 1;
    }
    return rc < 0 && rc != RT_EINVAL && rc != RT_EPANIC ? 0 : 2;
}

static void test_thread_spawn_failure_is_an_error(void) {
    if (!under_valgrind()) {
        run_child("spawn-failure-child");
    }
}

/* In a child process, a current-thread runtime (its blocking pool has no
 * thread yet) in an address space with no room for a thread stack:
 * rt_spawn_blocking returns the OS error and calls neither function (not
 * even a final RT_ECANCELED); with the limit lifted it works. */
static atomic_int refused_work_calls, refused_done_calls, refused_done_status;

static void refused_work(void *arg) {
    (void)arg;
    atomic_fetch_add(&refused_work_calls, 1);
}

static void refused_done(void *arg, int status) {
    (void)arg;
    atomic_store(&refused_done_status, status);
    atomic_fetch_add(&refused_done_calls, 1);
}

static int blocking_refused_child(void) {
    struct rlimit old, lim;
    rt_config cfg;
    rt_runtime *rt = NULL;
    long pages = 0;
    int rc, run;
    FILE *f;
    rt_config_init(&cfg);
    cfg.flavor = RT_FLAVOR_CURRENT_THREAD;
    if (rt_runtime_new(&cfg, &rt) != 0) {
        return 3;
    }
    f = fopen("/proc/self/statm", "r");
    if (f == NULL || fscanf(f, "%ld", &pages) != 1 || getrlimit(RLIMIT_AS, &old) != 0) {
        return 3;
    }
    fclose(f);
    /* Room for small allocations, not for a thread's stack. */
    lim = old;
    lim.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (1u << 20);
    if (setrlimit(RLIMIT_AS, &lim) != 0) {
        return 4;
    }
    rc = rt_spawn_blocking(rt, refused_work, refused_done, NULL, NULL);
    if (setrlimit(RLIMIT_AS, &old) != 0) {
        return 4;
    }
    printf("  (child: rt_spawn_blocking returned %d, %s)\n", rc, rt_err_name(rc));
    if (rc >= 0 || rc == RT_EINVAL || rc == RT_EPANIC) {
        return 5;
    }
    run = rt_run(rt, RT_RUN_NOWAIT);
    if (run != 0 || atomic_load(&refused_work_calls) != 0 || atomic_load(&refused_done_calls) != 0) {
        return 6;
    }
    /* The limit lifted: the same call works, done(0) on the host. */
    if (rt_spawn_blocking(rt, refused_work, refused_done, NULL, NULL) != 0) {
        return 7;
    }
    if (rt_run(rt, RT_RUN_DEFAULT) < 0) {
        return 8;
    }
    if (atomic_load(&refused_work_calls) != 1 || atomic_load(&refused_done_calls) != 1 ||
        atomic_load(&refused_done_status) != 0) {
        return 9;
    }
    rt_runtime_free(rt);
    return 0;
}

static void test_blocking_thread_refused_is_an_error(void) {
    if (!under_valgrind()) {
        run_child("blocking-refused-child");
    }
}

int main(int argc, char **argv) {
    static const rt_test_case cases[] = {
        {"thread_spawn_failure_is_an_error", test_thread_spawn_failure_is_an_error},
        {"blocking_thread_refused_is_an_error", test_blocking_thread_refused_is_an_error},
        {"second_shutdown_waits_for_the_first", test_second_shutdown_waits_for_the_first},
        {"second_shutdown_respects_its_own_timeout", test_second_shutdown_respects_its_own_timeout},
        {"shutdown_from_the_first_shutdowns_final_call", test_shutdown_from_the_first_shutdowns_final_call},
        {"shutdown_from_a_callback_during_another_shutdown", test_shutdown_from_a_callback_during_another_shutdown},
        {"shutdown_from_blocking_work_during_another_shutdown", test_shutdown_from_blocking_work_during_another_shutdown},
        {"free_waits_for_a_shutdown_under_way", test_free_waits_for_a_shutdown_under_way},
        {"timed_out_shutdown_multi_thread", test_timed_out_shutdown_multi_thread},
        {"timed_out_shutdown_current_thread", test_timed_out_shutdown_current_thread},
        {"shutdown_waits_for_the_host_run", test_shutdown_waits_for_the_host_run},
        {"shutdown_without_limit_waits_for_the_host_run", test_shutdown_without_limit_waits_for_the_host_run},
        {"free_waits_for_a_host_run_under_way", test_free_waits_for_a_host_run_under_way},
        {"config_extremes_work", test_config_extremes_work},
        {"max_worker_threads", test_max_worker_threads},
        {"config_out_of_range_is_einval", test_config_out_of_range_is_einval},
    };
    if (argc > 1 && strcmp(argv[1], "spawn-failure-child") == 0) {
        return spawn_failure_child();
    }
    if (argc > 1 && strcmp(argv[1], "blocking-refused-child") == 0) {
        return blocking_refused_child();
    }
    return rt_run_tests(cases, sizeof cases / sizeof cases[0]);
}
