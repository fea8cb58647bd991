/* C API tests for timers, fd registrations, the blocking pool and poll
 * tasks. Also run under valgrind by make test. */
#define _GNU_SOURCE
#include "rt.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static rt_runtime *new_runtime(uint32_t workers, uint32_t max_blocking) {
    rt_config cfg;
    rt_runtime *rt = NULL;
    CHECK_EQ(rt_config_init(&cfg), 0);
    cfg.worker_threads = workers;
    if (max_blocking) {
        cfg.max_blocking_threads = max_blocking;
    }
    CHECK_EQ(rt_runtime_new(&cfg, &rt), 0);
    return rt;
}

/* Waits up to `ms` for *flag to reach `want`. */
static int wait_for(atomic_int *flag, int want, long ms) {
    long waited = 0;
    while (atomic_load(flag) < want && waited < ms) {
        sleep_ms(1);
        waited++;
    }
    return atomic_load(flag) >= want;
}

/* ---------------- timers ---------------- */

typedef struct {
    int64_t armed_us;
    int64_t timeout_us;
    atomic_int calls;
    atomic_int status;
    atomic_int early;
    int order_slot;
} timer_rec;

static atomic_int order_next;
static int order[3];

static void timer_cb(void *arg, int status) {
    timer_rec *r = arg;
    if (status == 0 && now_us() - r->armed_us < r->timeout_us) {
        atomic_fetch_add(&r->early, 1);
    }
    if (status == 0 && r->order_slot >= 0) {
        order[atomic_fetch_add(&order_next, 1)] = r->order_slot;
    }
    atomic_store(&r->status, status);
    atomic_fetch_add(&r->calls, 1);
}

static void test_timers_order_and_never_early(void) {
    /* One worker: callbacks run one after another, in firing order. Gaps of
     * 100 ms stay ordered even under valgrind. */
    rt_runtime *rt = new_runtime(1, 0);
    static timer_rec recs[3];
    uint64_t timeouts[3] = {300, 100, 200};
    rt_timer_id ids[3];
    int i;
    atomic_store(&order_next, 0);
    for (i = 0; i < 3; i++) {
        memset(&recs[i], 0, sizeof recs[i]);
        recs[i].order_slot = i;
        recs[i].armed_us = now_us();
        recs[i].timeout_us = (int64_t)timeouts[i] * 1000;
        CHECK_EQ(rt_timer_start(rt, timeouts[i], 0, timer_cb, &recs[i], &ids[i]), 0);
    }
    CHECK(wait_for(&order_next, 3, 5000));
    CHECK_EQ(order[0], 1);
    CHECK_EQ(order[1], 2);
    CHECK_EQ(order[2], 0);
    for (i = 0; i < 3; i++) {
        CHECK_EQ(atomic_load(&recs[i].calls), 1);
        CHECK_EQ(atomic_load(&recs[i].early), 0);
        /* A fired one-shot timer is gone. */
        CHECK_EQ(rt_timer_stop(rt, ids[i]), RT_ENOENT);
    }
    rt_runtime_free(rt);
}

static void test_timer_repeat_and_stop_from_other_thread(void) {
    rt_runtime *rt = new_runtime(2, 0);
    timer_rec r;
    rt_timer_id id;
    int after_stop;
    memset(&r, 0, sizeof r);
    r.order_slot = -1;
    r.armed_us = now_us();
    r.timeout_us = 5000;
    CHECK_EQ(rt_timer_start(rt, 5, 5, timer_cb, &r, &id), 0);
    CHECK(wait_for(&r.calls, 5, 5000));
    CHECK_EQ(rt_timer_stop(rt, id), 0);
    after_stop = atomic_load(&r.calls);
    sleep_ms(50);
    CHECK_EQ(atomic_load(&r.calls), after_stop);
    CHECK_EQ(rt_timer_stop(rt, id), RT_ENOENT);
    CHECK_EQ(atomic_load(&r.early), 0);
    rt_runtime_free(rt);
    /* Stopped: no final RT_ECANCELED call at shutdown either. */
    CHECK_EQ(atomic_load(&r.calls), after_stop);
}

typedef struct {
    rt_runtime *rt;
    rt_timer_id id;
    atomic_int calls;
    atomic_int stop_result;
} self_stop;

static void self_stop_cb(void *arg, int status) {
    self_stop *s = arg;
    if (status != 0) {
        return;
    }
    if (atomic_fetch_add(&s->calls, 1) + 1 == 3) {
        atomic_store(&s->stop_result, rt_timer_stop(s->rt, s->id));
    }
}

static void test_timer_stop_from_inside_callback(void) {
    rt_runtime *rt = new_runtime(2, 0);
    self_stop s;
    memset(&s, 0, sizeof s);
    s.rt = rt;
    atomic_store(&s.stop_result, 99);
    CHECK_EQ(rt_timer_start(rt, 2, 2, self_stop_cb, &s, &s.id), 0);
    sleep_ms(100);
    CHECK_EQ(atomic_load(&s.calls), 3);
    CHECK_EQ(atomic_load(&s.stop_result), 0);
    rt_runtime_free(rt);
    CHECK_EQ(atomic_load(&s.calls), 3);
}

static void test_pending_timer_gets_final_cancel_at_shutdown(void) {
    rt_runtime *rt = new_runtime(1, 0);
    timer_rec r;
    rt_timer_id id;
    memset(&r, 0, sizeof r);
    r.order_slot = -1;
    atomic_store(&r.status, 99);
    CHECK_EQ(rt_timer_start(rt, 3600 * 1000, 0, timer_cb, &r, &id), 0);
    CHECK_EQ(rt_runtime_shutdown(rt, 5000), 0);
    CHECK_EQ(atomic_load(&r.calls), 1);
    CHECK_EQ(atomic_load(&r.status), RT_ECANCELED);
    CHECK_EQ(rt_timer_stop(rt, id), RT_ESHUTDOWN);
    rt_runtime_free(rt);
}

/* ---------------- fds ---------------- */

typedef struct {
    int fd;
    atomic_int bytes;
    atomic_int calls;
    atomic_int hup;
    atomic_int eof;
    atomic_int final_status;
} reader;

static void read_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    reader *r = arg;
    char buf[7]; /* small on purpose: partial reads */
    ssize_t n;
    if (status != 0) {
        atomic_store(&r->final_status, status);
        return;
    }
    atomic_fetch_add(&r->calls, 1);
    if (events & RT_HUP) {
        atomic_store(&r->hup, 1);
    }
    n = read(fd, buf, sizeof buf);
    if (n > 0) {
        atomic_fetch_add(&r->bytes, (int)n);
    } else if (n == 0) {
        atomic_store(&r->eof, 1);
    }
}

static void test_io_partial_reads_hup_and_deregister(void) {
    rt_runtime *rt = new_runtime(2, 0);
    int sv[2];
    reader r;
    rt_io_id id;
    char data[1000];
    int i, calls_after;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    memset(&r, 0, sizeof r);
    r.fd = sv[0];
    CHECK_EQ(rt_io_register(rt, sv[0], RT_READABLE, read_cb, &r, &id), 0);
    memset(data, 'x', sizeof data);
    for (i = 0; i < 10; i++) {
        CHECK_EQ(write(sv[1], data, 100), 100);
        sleep_ms(2);
    }
    /* Level-triggered: 7-byte reads drain all 1000 bytes. */
    CHECK(wait_for(&r.bytes, 1000, 5000));
    CHECK_EQ(atomic_load(&r.bytes), 1000);
    close(sv[1]);
    CHECK(wait_for(&r.eof, 1, 5000));
    CHECK_EQ(atomic_load(&r.hup), 1);
    CHECK_EQ(rt_io_deregister(rt, id), 0);
    calls_after = atomic_load(&r.calls);
    sleep_ms(30);
    CHECK_EQ(atomic_load(&r.calls), calls_after);
    CHECK_EQ(rt_io_deregister(rt, id), RT_ENOENT);
    CHECK_EQ(rt_io_modify(rt, id, RT_READABLE), RT_ENOENT);
    close(sv[0]);
    rt_runtime_free(rt);
    CHECK_EQ(atomic_load(&r.final_status), 0); /* deregistered: no final call */
}

static void test_io_bad_fds_and_final_cancel(void) {
    rt_runtime *rt = new_runtime(1, 0);
    reader r;
    rt_io_id id;
    int p[2], closed_fd;
    memset(&r, 0, sizeof r);
    CHECK_EQ(rt_io_register(rt, -1, RT_READABLE, read_cb, &r, &id), RT_EINVAL);
    CHECK_EQ(pipe(p), 0);
    closed_fd = p[0];
    close(p[0]);
    CHECK_EQ(rt_io_register(rt, closed_fd, RT_READABLE, read_cb, &r, &id), -EBADF);
    CHECK_EQ(rt_io_register(rt, p[1], 0, read_cb, &r, &id), RT_EINVAL);
    CHECK_EQ(rt_io_register(rt, p[1], RT_WRITABLE, NULL, &r, &id), RT_EINVAL);
    CHECK_EQ(rt_io_deregister(rt, 12345), RT_ENOENT);
    /* Still registered at shutdown: one final RT_ECANCELED call. */
    {
        int sv[2];
        atomic_store(&r.final_status, 0);
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        CHECK_EQ(rt_io_register(rt, sv[0], RT_READABLE, read_cb, &r, &id), 0);
        CHECK_EQ(rt_runtime_shutdown(rt, 5000), 0);
        CHECK_EQ(atomic_load(&r.final_status), RT_ECANCELED);
        close(sv[0]);
        close(sv[1]);
    }
    CHECK_EQ(atomic_load(&r.calls), 0);
    close(p[1]);
    rt_runtime_free(rt);
}

/* ---------------- blocking pool ---------------- */

typedef struct {
    long sleep;
    atomic_int worked;
    atomic_int done_calls;
    atomic_int done_status;
    atomic_int done_before_work;
} job;

static void work_fn(void *arg) {
    job *j = arg;
    if (j->sleep) {
        sleep_ms(j->sleep);
    }
    atomic_store(&j->worked, 1);
}

static void done_fn(void *arg, int status) {
    job *j = arg;
    if (status == 0 && !atomic_load(&j->worked)) {
        atomic_store(&j->done_before_work, 1);
    }
    atomic_store(&j->done_status, status);
    atomic_fetch_add(&j->done_calls, 1);
}

static void test_blocking_done_after_work_and_abort_queued(void) {
    rt_runtime *rt = new_runtime(2, 1);
    job a, b;
    rt_task *ta = NULL, *tb = NULL;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.sleep = 150;
    atomic_store(&b.done_status, 99);
    CHECK_EQ(rt_spawn_blocking(rt, work_fn, done_fn, &a, &ta), 0);
    sleep_ms(20);
    /* The single blocking thread is busy: b waits in the queue. */
    CHECK_EQ(rt_spawn_blocking(rt, work_fn, done_fn, &b, &tb), 0);
    CHECK_EQ(rt_task_abort(tb), 0);
    /* The cancelled `done` ran at once, not when the pool got to it. */
    CHECK_EQ(atomic_load(&b.done_calls), 1);
    CHECK_EQ(rt_task_join(tb, 0), 0);
    CHECK_EQ(rt_task_join(ta, 5000), 0);
    CHECK_EQ(rt_task_join(tb, 5000), 0);
    CHECK_EQ(atomic_load(&a.done_calls), 1);
    CHECK_EQ(atomic_load(&a.done_status), 0);
    CHECK_EQ(atomic_load(&a.done_before_work), 0);
    CHECK_EQ(atomic_load(&b.done_calls), 1);
    CHECK_EQ(atomic_load(&b.done_status), RT_ECANCELED);
    CHECK_EQ(atomic_load(&b.worked), 0);
    CHECK_EQ(rt_task_abort(ta), RT_EALREADY);
    rt_task_release(ta);
    rt_task_release(tb);
    rt_runtime_free(rt);
}

static void test_blocking_queued_work_cancelled_at_shutdown(void) {
    rt_runtime *rt = new_runtime(1, 1);
    enum { N = 5 };
    static job jobs[N];
    int i;
    for (i = 0; i < N; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].sleep = i == 0 ? 100 : 0;
        CHECK_EQ(rt_spawn_blocking(rt, work_fn, done_fn, &jobs[i], NULL), 0);
    }
    sleep_ms(20);
    CHECK_EQ(rt_runtime_shutdown(rt, 5000), 0);
    for (i = 0; i < N; i++) {
        CHECK_EQ(atomic_load(&jobs[i].done_calls), 1);
        if (atomic_load(&jobs[i].worked)) {
            CHECK_EQ(atomic_load(&jobs[i].done_status), 0);
        } else {
            CHECK_EQ(atomic_load(&jobs[i].done_status), RT_ECANCELED);
        }
    }
    CHECK_EQ(atomic_load(&jobs[0].worked), 1);
    rt_runtime_free(rt);
}

/* ---------------- poll tasks ---------------- */

typedef struct {
    atomic_int polls;
    atomic_int drops;
    rt_waker *_Atomic saved;
    atomic_int ready;
} pstate;

static int poll_fn(void *state, rt_waker *w) {
    pstate *s = state;
    atomic_fetch_add(&s->polls, 1);
    if (atomic_load(&s->ready)) {
        return RT_READY;
    }
    {
        rt_waker *old = atomic_exchange(&s->saved, rt_waker_clone(w));
        rt_waker_free(old);
    }
    /* The borrowed waker cannot be consumed. */
    CHECK_EQ(rt_waker_wake(w), RT_EINVAL);
    return RT_PENDING;
}

static void drop_fn(void *state) {
    atomic_fetch_add(&((pstate *)state)->drops, 1);
}

static void *waker_thread(void *p) {
    pstate *s = p;
    rt_waker *w = NULL;
    while ((w = atomic_exchange(&s->saved, NULL)) == NULL) {
        sleep_ms(1);
    }
    atomic_store(&s->ready, 1);
    CHECK_EQ(rt_waker_wake(w), 0);
    return NULL;
}

static void test_poll_task_woken_from_another_thread(void) {
    rt_runtime *rt = new_runtime(2, 0);
    pstate s;
    rt_task *t = NULL;
    pthread_t th;
    memset(&s, 0, sizeof s);
    CHECK_EQ(rt_spawn_poll(rt, poll_fn, &s, drop_fn, &t), 0);
    pthread_create(&th, NULL, waker_thread, &s);
    pthread_join(th, NULL);
    CHECK_EQ(rt_task_join(t, 5000), 0);
    CHECK(atomic_load(&s.polls) >= 2);
    CHECK_EQ(atomic_load(&s.drops), 1);
    rt_task_release(t);
    rt_runtime_free(rt);
    rt_waker_free(atomic_exchange(&s.saved, NULL));
}

static void test_poll_task_abort_and_shutdown_drop_once(void) {
    rt_runtime *rt = new_runtime(1, 0);
    pstate a, b;
    rt_task *ta = NULL;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    CHECK_EQ(rt_spawn_poll(rt, poll_fn, &a, drop_fn, &ta), 0);
    CHECK_EQ(rt_spawn_poll(rt, poll_fn, &b, drop_fn, NULL), 0);
    sleep_ms(20);
    CHECK_EQ(rt_task_abort(ta), 0);
    CHECK_EQ(rt_task_join(ta, 5000), 0);
    CHECK_EQ(atomic_load(&a.drops), 1);
    CHECK_EQ(rt_runtime_shutdown(rt, 5000), 0);
    CHECK_EQ(atomic_load(&b.drops), 1);
    CHECK_EQ(rt_spawn_poll(rt, poll_fn, &b, drop_fn, NULL), RT_ESHUTDOWN);
    CHECK_EQ(atomic_load(&b.drops), 1);
    rt_task_release(ta);
    rt_runtime_free(rt);
    rt_waker_free(atomic_exchange(&a.saved, NULL));
    rt_waker_free(atomic_exchange(&b.saved, NULL));
}

/* Stop from another thread while the callback runs: rt_timer_stop waits
 * for it to return, and no call follows. */
typedef struct {
    atomic_int in_cb;
    atomic_int calls;
    atomic_int returned;
} slow_timer;

static void slow_timer_cb(void *arg, int status) {
    slow_timer *t = arg;
    if (status != 0) {
        return;
    }
    atomic_fetch_add(&t->calls, 1);
    atomic_store(&t->in_cb, 1);
    sleep_ms(100);
    atomic_store(&t->in_cb, 0);
    atomic_fetch_add(&t->returned, 1);
}

static void test_timer_stop_while_firing_waits(void) {
    rt_runtime *rt = new_runtime(2, 0);
    slow_timer t;
    rt_timer_id id;
    int calls;
    memset(&t, 0, sizeof t);
    CHECK_EQ(rt_timer_start(rt, 1, 1, slow_timer_cb, &t, &id), 0);
    while (!atomic_load(&t.in_cb)) {
        sleep_ms(1);
    }
    CHECK_EQ(rt_timer_stop(rt, id), 0);
    /* The callback that was running has returned by now. */
    CHECK_EQ(atomic_load(&t.in_cb), 0);
    CHECK_EQ(atomic_load(&t.returned), atomic_load(&t.calls));
    calls = atomic_load(&t.calls);
    sleep_ms(50);
    CHECK_EQ(atomic_load(&t.calls), calls);
    rt_runtime_free(rt);
}

/* A callback that blocks its worker does not hold up the other worker's
 * timers and fd watches: the runtime was idle, one worker left the driver
 * to run the blocking callback, the other (parked) takes the driver over. */
typedef struct {
    int64_t start_us;
    atomic_llong at_us; /* when the callback ran, from start_us; -1: not yet */
} stamp;

static void blocking_timer_cb(void *arg, int status) {
    (void)arg;
    if (status == 0) {
        sleep_ms(800);
    }
}

static void stamp_timer_cb(void *arg, int status) {
    stamp *s = arg;
    if (status == 0) {
        atomic_store(&s->at_us, now_us() - s->start_us);
    }
}

static void stamp_read_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    stamp *s = arg;
    char buf[8];
    (void)events;
    if (status == 0 && atomic_load(&s->at_us) < 0) {
        atomic_store(&s->at_us, now_us() - s->start_us);
    }
    if (status == 0) {
        while (read(fd, buf, sizeof buf) > 0) {
        }
    }
}

static void test_blocking_callback_leaves_timers_and_fds_served(void) {
    rt_runtime *rt = new_runtime(2, 0);
    stamp t, r;
    rt_timer_id blocker, waiter;
    rt_io_id io;
    int p[2];
    CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    sleep_ms(20); /* both workers parked */
    t.start_us = r.start_us = now_us();
    atomic_store(&t.at_us, -1);
    atomic_store(&r.at_us, -1);
    CHECK_EQ(rt_io_register(rt, p[0], RT_READABLE, stamp_read_cb, &r, &io), 0);
    CHECK_EQ(rt_timer_start(rt, 10, 0, blocking_timer_cb, NULL, &blocker), 0);
    CHECK_EQ(rt_timer_start(rt, 60, 0, stamp_timer_cb, &t, &waiter), 0);
    sleep_ms(60);
    CHECK_EQ(write(p[1], "x", 1), 1);
    /* The block ends 810 ms after the start; served within ~10 ms of their
     * time otherwise (valgrind: a few times that). */
    sleep_ms(500);
    CHECK(atomic_load(&t.at_us) >= 60000);
    CHECK(atomic_load(&t.at_us) < 500000);
    CHECK(atomic_load(&r.at_us) >= 60000);
    CHECK(atomic_load(&r.at_us) < 500000);
    CHECK_EQ(rt_io_deregister(rt, io), 0);
    close(p[0]);
    close(p[1]);
    rt_runtime_free(rt);
}

/* NULLs, stale ids and calls after shutdown, for every driver function. */
static void io_never(void *arg, rt_fd fd, uint32_t events, int status) {
    (void)fd;
    (void)events;
    (void)status;
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void cb_never(void *arg, int status) {
    (void)status;
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void work_never(void *arg) {
    atomic_fetch_add((atomic_int *)arg, 1);
}

static int poll_never(void *state, rt_waker *w) {
    (void)w;
    atomic_fetch_add((atomic_int *)state, 1);
    return RT_READY;
}

static void test_driver_bad_inputs_table(void) {
    rt_runtime *rt = new_runtime(1, 0);
    atomic_int never = 0;
    rt_timer_id tid = 0;
    rt_io_id iid = 0;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    /* NULL runtime, callback or out pointer. */
    CHECK_EQ(rt_timer_start(NULL, 1, 0, cb_never, &never, &tid), RT_EINVAL);
    CHECK_EQ(rt_timer_start(rt, 1, 0, NULL, &never, &tid), RT_EINVAL);
    CHECK_EQ(rt_timer_start(rt, 1, 0, cb_never, &never, NULL), RT_EINVAL);
    CHECK_EQ(rt_timer_stop(NULL, 1), RT_EINVAL);
    CHECK_EQ(rt_io_register(NULL, sv[0], RT_READABLE, io_never, &never, &iid), RT_EINVAL);
    CHECK_EQ(rt_io_register(rt, sv[0], RT_READABLE, io_never, &never, NULL), RT_EINVAL);
    CHECK_EQ(rt_io_modify(NULL, 1, RT_READABLE), RT_EINVAL);
    CHECK_EQ(rt_io_deregister(NULL, 1), RT_EINVAL);
    CHECK_EQ(rt_spawn_blocking(NULL, work_never, cb_never, &never, NULL), RT_EINVAL);
    CHECK_EQ(rt_spawn_blocking(rt, NULL, cb_never, &never, NULL), RT_EINVAL);
    CHECK_EQ(rt_spawn_blocking(rt, work_never, NULL, &never, NULL), RT_EINVAL);
    CHECK_EQ(rt_spawn_poll(NULL, poll_never, &never, NULL, NULL), RT_EINVAL);
    CHECK_EQ(rt_spawn_poll(rt, NULL, &never, NULL, NULL), RT_EINVAL);
    CHECK(rt_waker_clone(NULL) == NULL);
    CHECK_EQ(rt_waker_wake(NULL), RT_EINVAL);
    CHECK_EQ(rt_waker_wake_by_ref(NULL), RT_EINVAL);
    rt_waker_free(NULL);
    /* Stale and unknown ids. */
    CHECK_EQ(rt_timer_stop(rt, 0), RT_ENOENT);
    CHECK_EQ(rt_timer_stop(rt, 0xdeadbeefULL), RT_ENOENT);
    CHECK_EQ(rt_io_deregister(rt, 0), RT_ENOENT);
    CHECK_EQ(rt_io_modify(rt, 0xdeadbeefULL, RT_READABLE), RT_ENOENT);
    CHECK_EQ(rt_timer_start(rt, 3600000, 0, cb_never, &never, &tid), 0);
    CHECK_EQ(rt_timer_stop(rt, tid), 0);
    CHECK_EQ(rt_timer_stop(rt, tid), RT_ENOENT);
    CHECK_EQ(rt_io_register(rt, sv[0], RT_READABLE, io_never, &never, &iid), 0);
    CHECK_EQ(rt_io_modify(rt, iid, 0), RT_EINVAL);
    CHECK_EQ(rt_io_deregister(rt, iid), 0);
    CHECK_EQ(rt_io_deregister(rt, iid), RT_ENOENT);
    /* After shutdown. */
    CHECK_EQ(rt_runtime_shutdown(rt, 5000), 0);
    CHECK_EQ(rt_timer_start(rt, 1, 0, cb_never, &never, &tid), RT_ESHUTDOWN);
    CHECK_EQ(rt_timer_stop(rt, tid), RT_ESHUTDOWN);
    CHECK_EQ(rt_io_register(rt, sv[0], RT_READABLE, io_never, &never, &iid), RT_ESHUTDOWN);
    CHECK_EQ(rt_io_modify(rt, iid, RT_READABLE), RT_ESHUTDOWN);
    CHECK_EQ(rt_io_deregister(rt, iid), RT_ESHUTDOWN);
    CHECK_EQ(rt_spawn_blocking(rt, work_never, cb_never, &never, NULL), RT_ESHUTDOWN);
    CHECK_EQ(rt_spawn_poll(rt, poll_never, &never, NULL, NULL), RT_ESHUTDOWN);
    /* No callback handed in above was ever called. */
    CHECK_EQ(atomic_load(&never), 0);
    close(sv[0]);
    close(sv[1]);
    rt_runtime_free(rt);
}

/* The same over a pipe. */
static void test_io_pipe_partial_reads(void) {
    rt_runtime *rt = new_runtime(2, 0);
    int p[2];
    reader r;
    rt_io_id id;
    char data[500];
    CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    memset(&r, 0, sizeof r);
    CHECK_EQ(rt_io_register(rt, p[0], RT_READABLE, read_cb, &r, &id), 0);
    memset(data, 'y', sizeof data);
    CHECK_EQ(write(p[1], data, sizeof data), (ssize_t)sizeof data);
    CHECK(wait_for(&r.bytes, 500, 5000));
    close(p[1]);
    CHECK(wait_for(&r.eof, 1, 5000));
    CHECK_EQ(rt_io_deregister(rt, id), 0);
    close(p[0]);
    rt_runtime_free(rt);
}

/* Shutdown with pending everything: every callback gets its final call and
 * every drop runs once. */
static void test_shutdown_with_pending_everything(void) {
    rt_runtime *rt = new_runtime(1, 1);
    atomic_int cancelled = 0;
    timer_rec tr;
    reader rr;
    job busy, queued;
    pstate ps;
    rt_timer_id tid;
    rt_io_id iid;
    int sv[2];
    memset(&tr, 0, sizeof tr);
    memset(&rr, 0, sizeof rr);
    memset(&busy, 0, sizeof busy);
    memset(&queued, 0, sizeof queued);
    memset(&ps, 0, sizeof ps);
    tr.order_slot = -1;
    CHECK_EQ(rt_timer_start(rt, 3600000, 0, timer_cb, &tr, &tid), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    CHECK_EQ(rt_io_register(rt, sv[0], RT_READABLE, read_cb, &rr, &iid), 0);
    busy.sleep = 100;
    CHECK_EQ(rt_spawn_blocking(rt, work_fn, done_fn, &busy, NULL), 0);
    sleep_ms(20);
    CHECK_EQ(rt_spawn_blocking(rt, work_fn, done_fn, &queued, NULL), 0);
    CHECK_EQ(rt_spawn_poll(rt, poll_fn, &ps, drop_fn, NULL), 0);
    sleep_ms(20);
    CHECK_EQ(rt_runtime_shutdown(rt, 5000), 0);
    CHECK_EQ(atomic_load(&tr.calls), 1);
    CHECK_EQ(atomic_load(&tr.status), RT_ECANCELED);
    CHECK_EQ(atomic_load(&rr.final_status), RT_ECANCELED);
    CHECK_EQ(atomic_load(&busy.done_calls), 1);
    CHECK_EQ(atomic_load(&busy.done_status), 0);
    CHECK_EQ(atomic_load(&queued.done_calls), 1);
    CHECK_EQ(atomic_load(&queued.done_status), RT_ECANCELED);
    CHECK_EQ(atomic_load(&queued.worked), 0);
    CHECK_EQ(atomic_load(&ps.drops), 1);
    (void)cancelled;
    close(sv[0]);
    close(sv[1]);
    rt_runtime_free(rt);
    rt_waker_free(atomic_exchange(&ps.saved, NULL));
}

/* The id is written before the first callback can run: a callback may use
 * it at once (here: a writable socket deregisters itself). */
typedef struct {
    rt_runtime *rt;
    rt_io_id id;
    atomic_int result;
    atomic_int calls;
} self_dereg;

static void self_dereg_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    self_dereg *d = arg;
    (void)fd;
    (void)events;
    if (status != 0) {
        return;
    }
    if (atomic_fetch_add(&d->calls, 1) == 0) {
        atomic_store(&d->result, rt_io_deregister(d->rt, d->id));
    }
}

static void test_io_id_usable_from_first_callback(void) {
    rt_runtime *rt = new_runtime(2, 0);
    enum { N = 200 };
    static self_dereg d[N];
    int sv[N][2];
    int i;
    for (i = 0; i < N; i++) {
        memset(&d[i], 0, sizeof d[i]);
        d[i].rt = rt;
        atomic_store(&d[i].result, 99);
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv[i]), 0);
        CHECK_EQ(rt_io_register(rt, sv[i][0], RT_WRITABLE, self_dereg_cb, &d[i], &d[i].id), 0);
    }
    for (i = 0; i < N; i++) {
        CHECK(wait_for(&d[i].calls, 1, 5000));
    }
    sleep_ms(20);
    for (i = 0; i < N; i++) {
        CHECK_EQ(atomic_load(&d[i].result), 0);
        CHECK_EQ(atomic_load(&d[i].calls), 1);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    rt_runtime_free(rt);
}

/* A one-shot timer's expiry is its final call: a stop racing with it
 * reports RT_ENOENT, never 0 after the call. */
static void test_oneshot_stop_during_its_call_is_enoent(void) {
    rt_runtime *rt = new_runtime(2, 0);
    slow_timer t;
    rt_timer_id id;
    memset(&t, 0, sizeof t);
    CHECK_EQ(rt_timer_start(rt, 1, 0, slow_timer_cb, &t, &id), 0);
    while (!atomic_load(&t.in_cb)) {
        sleep_ms(1);
    }
    CHECK_EQ(rt_timer_stop(rt, id), RT_ENOENT);
    CHECK(wait_for(&t.returned, 1, 5000));
    CHECK_EQ(atomic_load(&t.calls), 1);
    rt_runtime_free(rt);
}

/* Two timers whose callbacks stop each other: never a deadlock. */
typedef struct {
    rt_runtime *rt;
    rt_timer_id other;
    atomic_int result;
    atomic_int calls;
} mutual;

static void mutual_cb(void *arg, int status) {
    mutual *m = arg;
    if (status != 0) {
        return;
    }
    if (atomic_fetch_add(&m->calls, 1) == 0) {
        sleep_ms(20); /* both callbacks are running now */
        atomic_store(&m->result, rt_timer_stop(m->rt, m->other));
    }
}

static void test_callbacks_stopping_each_other_do_not_deadlock(void) {
    rt_runtime *rt = new_runtime(2, 0);
    mutual a, b;
    rt_timer_id ia, ib;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.rt = b.rt = rt;
    atomic_store(&a.result, 99);
    atomic_store(&b.result, 99);
    CHECK_EQ(rt_timer_start(rt, 10, 10, mutual_cb, &a, &ia), 0);
    CHECK_EQ(rt_timer_start(rt, 10, 10, mutual_cb, &b, &ib), 0);
    a.other = ib;
    b.other = ia;
    /* At least one of them runs; one may stop the other before it ever
     * runs (under valgrind, say). What must not happen is a hang. */
    CHECK(wait_for(&a.calls, 1, 5000) || wait_for(&b.calls, 1, 5000));
    sleep_ms(200);
    {
        int ra = atomic_load(&a.result), rb = atomic_load(&b.result);
        CHECK(ra == 99 || ra == 0 || ra == RT_EDEADLK || ra == RT_ENOENT);
        CHECK(rb == 99 || rb == 0 || rb == RT_EDEADLK || rb == RT_ENOENT);
        CHECK(ra != 99 || rb != 99);
    }
    rt_runtime_free(rt);
}

/* Interest switched away from READABLE with data left, then back: the data
 * is still reported (level-triggered across interest changes). */
typedef struct {
    rt_runtime *rt;
    rt_io_id id;
    atomic_int reads;
    atomic_int bytes;
    atomic_int writable_calls;
} switcher;

static void switch_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    switcher *s = arg;
    char c;
    if (status != 0) {
        return;
    }
    if (events & RT_READABLE) {
        if (read(fd, &c, 1) == 1) {
            atomic_fetch_add(&s->bytes, 1);
        }
        if (atomic_fetch_add(&s->reads, 1) == 0) {
            rt_io_modify(s->rt, s->id, RT_WRITABLE);
        }
    } else if (events & RT_WRITABLE) {
        if (atomic_fetch_add(&s->writable_calls, 1) == 0) {
            rt_io_modify(s->rt, s->id, RT_READABLE);
        }
    }
}

static void test_io_readiness_survives_interest_changes(void) {
    rt_runtime *rt = new_runtime(2, 0);
    switcher s;
    int sv[2];
    memset(&s, 0, sizeof s);
    s.rt = rt;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    CHECK_EQ(write(sv[1], "ab", 2), 2);
    CHECK_EQ(rt_io_register(rt, sv[0], RT_READABLE, switch_cb, &s, &s.id), 0);
    CHECK(wait_for(&s.bytes, 2, 3000));
    CHECK_EQ(atomic_load(&s.bytes), 2);
    CHECK_EQ(rt_io_deregister(rt, s.id), 0);
    close(sv[0]);
    close(sv[1]);
    rt_runtime_free(rt);
}

typedef struct {
    atomic_int status;
    atomic_int calls;
} record;

static void record_cb(void *arg, int status) {
    record *r = arg;
    atomic_store(&r->status, status);
    atomic_fetch_add(&r->calls, 1);
}

/* A host drives a current-thread runtime with rt_run_budget. */
static void test_run_budget_drives_current_thread_runtime(void) {
    rt_config cfg;
    rt_runtime *rt = NULL, *mt = new_runtime(1, 0);
    enum { N = 10 };
    static record recs[N];
    int i, total = 0, calls = 0;
    CHECK_EQ(rt_config_init(&cfg), 0);
    cfg.flavor = RT_FLAVOR_CURRENT_THREAD;
    CHECK_EQ(rt_runtime_new(&cfg, &rt), 0);
    for (i = 0; i < N; i++) {
        memset(&recs[i], 0, sizeof recs[i]);
        CHECK_EQ(rt_spawn(rt, record_cb, &recs[i], NULL), 0);
    }
    CHECK_EQ(rt_run_budget(rt, 1000000, 3), 3);
    while (total < N - 3 && calls < 100) {
        int n = rt_run_budget(rt, 1000000, 100);
        CHECK(n >= 0);
        total += n;
        calls++;
    }
    for (i = 0; i < N; i++) {
        CHECK_EQ(atomic_load(&recs[i].calls), 1);
        CHECK_EQ(atomic_load(&recs[i].status), 0);
    }
    CHECK_EQ(rt_run_budget(rt, 0, 100), 0);
    CHECK_EQ(rt_run_budget(mt, 1000, 10), RT_EINVAL);
    CHECK_EQ(rt_run_budget(NULL, 1000, 10), RT_EINVAL);
    rt_runtime_free(rt);
    rt_runtime_free(mt);
    CHECK_EQ(rt_run_budget(NULL, 0, 0), RT_EINVAL);
}

/* After rt_io_deregister returns and the caller closes its fd, the file is
 * closed at once (the peer sees EOF), even while every worker is busy. */
static void busy_cb(void *arg, int status) {
    (void)status;
    sleep_ms((long)(size_t)arg);
}

static void test_close_after_deregister_is_immediate(void) {
    rt_runtime *rt = new_runtime(1, 0);
    reader r;
    rt_io_id id;
    int sv[2];
    char c;
    memset(&r, 0, sizeof r);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    CHECK_EQ(rt_io_register(rt, sv[0], RT_READABLE, read_cb, &r, &id), 0);
    sleep_ms(20);
    CHECK_EQ(rt_spawn(rt, busy_cb, (void *)(size_t)300, NULL), 0);
    sleep_ms(20); /* the only worker is busy now */
    CHECK_EQ(rt_io_deregister(rt, id), 0);
    close(sv[0]);
    CHECK_EQ(read(sv[1], &c, 1), 0); /* EOF, not EAGAIN */
    close(sv[1]);
    rt_runtime_free(rt);
}

/* Stops racing expiries on a multi-thread runtime: every one-shot timer is
 * either stopped (0, never called) or called exactly once (stop: RT_ENOENT);
 * a repeating timer is never called after its stop returned 0; nothing
 * stopped gets a final RT_ECANCELED call at shutdown. */
typedef struct {
    atomic_int calls;
    atomic_int cancels;
} race_rec;

static void race_cb(void *arg, int status) {
    race_rec *r = arg;
    atomic_fetch_add(status == 0 ? &r->calls : &r->cancels, 1);
}

static void test_timer_stop_races_fire_exactly_once(void) {
    enum { ONESHOTS = 1000, REPEATS = 100 };
    rt_runtime *rt = new_runtime(2, 0);
    static race_rec one[ONESHOTS], rep[REPEATS];
    static rt_timer_id one_id[ONESHOTS], rep_id[REPEATS];
    static int one_rc[ONESHOTS], rep_after[REPEATS];
    int stopped = 0, fired = 0, i;
    memset(one, 0, sizeof one);
    memset(rep, 0, sizeof rep);
    for (i = 0; i < REPEATS; i++) {
        CHECK_EQ(rt_timer_start(rt, 1, 1, race_cb, &rep[i], &rep_id[i]), 0);
    }
    for (i = 0; i < ONESHOTS; i++) {
        CHECK_EQ(rt_timer_start(rt, (uint64_t)(i % 3), 0, race_cb, &one[i], &one_id[i]), 0);
        if (i % 4 == 3) {
            sleep_ms(1); /* let some of them fire before their stop */
        }
        if (i % 2 == 1) { /* stop the previous one, maybe as it fires */
            one_rc[i - 1] = rt_timer_stop(rt, one_id[i - 1]);
        }
    }
    for (i = 0; i < REPEATS; i++) {
        CHECK_EQ(rt_timer_stop(rt, rep_id[i]), 0);
        rep_after[i] = atomic_load(&rep[i].calls);
        CHECK_EQ(rt_timer_stop(rt, rep_id[i]), RT_ENOENT);
    }
    sleep_ms(30); /* every timer not stopped is due by now */
    for (i = 0; i < ONESHOTS; i++) {
        if (i % 2 == 0 && one_rc[i] == 0) {
            stopped++;
            CHECK_EQ(atomic_load(&one[i].calls), 0);
        } else {
            if (i % 2 == 0) {
                CHECK_EQ(one_rc[i], RT_ENOENT);
            }
            fired++;
            CHECK(wait_for(&one[i].calls, 1, 5000));
            CHECK_EQ(atomic_load(&one[i].calls), 1);
        }
    }
    for (i = 0; i < REPEATS; i++) {
        CHECK_EQ(atomic_load(&rep[i].calls), rep_after[i]);
    }
    rt_runtime_free(rt);
    for (i = 0; i < ONESHOTS; i++) {
        CHECK_EQ(atomic_load(&one[i].cancels), 0);
    }
    for (i = 0; i < REPEATS; i++) {
        CHECK_EQ(atomic_load(&rep[i].cancels), 0);
    }
    CHECK_EQ(stopped + fired, ONESHOTS);
    printf("  (%d of %d raced one-shots stopped first)\n", stopped, ONESHOTS / 2);
}

/* A shutdown that times out while a timer callback still runs, then
 * rt_runtime_free: a timer still armed gets its final RT_ECANCELED call
 * exactly once all the same (made before the shutdown returns). */
static atomic_int slow_running;

static void slow_cb(void *arg, int status) {
    race_rec *r = arg;
    atomic_store(&slow_running, 1);
    sleep_ms(300);
    race_cb(r, status);
}

static void test_timer_final_cancel_after_timed_out_shutdown_and_free(void) {
    rt_runtime *rt = new_runtime(2, 0);
    static race_rec armed, slow;
    rt_timer_id a, b;
    memset(&armed, 0, sizeof armed);
    memset(&slow, 0, sizeof slow);
    atomic_store(&slow_running, 0);
    CHECK_EQ(rt_timer_start(rt, 60000, 0, race_cb, &armed, &a), 0);
    CHECK_EQ(rt_timer_start(rt, 0, 0, slow_cb, &slow, &b), 0);
    while (!atomic_load(&slow_running)) {
        sleep_ms(1);
    }
    CHECK_EQ(rt_runtime_shutdown(rt, 0), RT_ETIMEDOUT);
    rt_runtime_free(rt);
    CHECK(wait_for(&armed.cancels, 1, 5000));
    CHECK(wait_for(&slow.calls, 1, 5000));
    sleep_ms(100);
    CHECK_EQ(atomic_load(&armed.cancels), 1);
    CHECK_EQ(atomic_load(&armed.calls), 0);
    CHECK_EQ(atomic_load(&slow.cancels), 0);
}

int main(void) {
    static const rt_test_case cases[] = {
        {"timers_order_and_never_early", test_timers_order_and_never_early},
        {"timer_repeat_and_stop_from_other_thread", test_timer_repeat_and_stop_from_other_thread},
        {"timer_stop_from_inside_callback", test_timer_stop_from_inside_callback},
        {"pending_timer_gets_final_cancel_at_shutdown", test_pending_timer_gets_final_cancel_at_shutdown},
        {"io_partial_reads_hup_and_deregister", test_io_partial_reads_hup_and_deregister},
        {"io_bad_fds_and_final_cancel", test_io_bad_fds_and_final_cancel},
        {"blocking_done_after_work_and_abort_queued", test_blocking_done_after_work_and_abort_queued},
        {"blocking_queued_work_cancelled_at_shutdown", test_blocking_queued_work_cancelled_at_shutdown},
        {"poll_task_woken_from_another_thread", test_poll_task_woken_from_another_thread},
        {"poll_task_abort_and_shutdown_drop_once", test_poll_task_abort_and_shutdown_drop_once},
        {"timer_stop_while_firing_waits", test_timer_stop_while_firing_waits},
        {"blocking_callback_leaves_timers_and_fds_served", test_blocking_callback_leaves_timers_and_fds_served},
        {"driver_bad_inputs_table", test_driver_bad_inputs_table},
        {"io_pipe_partial_reads", test_io_pipe_partial_reads},
        {"shutdown_with_pending_everything", test_shutdown_with_pending_everything},
        {"io_id_usable_from_first_callback", test_io_id_usable_from_first_callback},
        {"oneshot_stop_during_its_call_is_enoent", test_oneshot_stop_during_its_call_is_enoent},
        {"callbacks_stopping_each_other_do_not_deadlock", test_callbacks_stopping_each_other_do_not_deadlock},
        {"io_readiness_survives_interest_changes", test_io_readiness_survives_interest_changes},
        {"run_budget_drives_current_thread_runtime", test_run_budget_drives_current_thread_runtime},
        {"close_after_deregister_is_immediate", test_close_after_deregister_is_immediate},
        {"timer_stop_races_fire_exactly_once", test_timer_stop_races_fire_exactly_once},
        {"timer_final_cancel_after_timed_out_shutdown_and_free",
         test_timer_final_cancel_after_timed_out_shutdown_and_free},
    };
    return rt_run_tests(cases, sizeof cases / sizeof cases[0]);
}
