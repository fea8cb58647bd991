/* C API tests for a host-driven runtime: rt_run modes, rt_run_budget,
 * rt_stop, rt_wake (also from a signal handler), rt_backend_fd /
 * rt_backend_timeout in the host's own poll(), and the completion queue.
 * Also run under valgrind by make test (RT_TEST_VALGRIND=1 relaxes the
 * timing checks there). */
#define _GNU_SOURCE
#include "rt.h"
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int under_valgrind(void) {
    const char *v = getenv("RT_TEST_VALGRIND");
    return v && v[0] == '1';
}

static int64_t thread_cpu_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static rt_runtime *new_current_thread(void) {
    rt_config cfg;
    rt_runtime *rt = NULL;
    CHECK_EQ(rt_config_init(&cfg), 0);
    cfg.flavor = RT_FLAVOR_CURRENT_THREAD;
    CHECK_EQ(rt_runtime_new(&cfg, &rt), 0);
    return rt;
}

static rt_runtime *new_multi_thread(uint32_t workers) {
    rt_config cfg;
    rt_runtime *rt = NULL;
    CHECK_EQ(rt_config_init(&cfg), 0);
    cfg.worker_threads = workers;
    CHECK_EQ(rt_runtime_new(&cfg, &rt), 0);
    return rt;
}

/* 1 if `fd` is readable within `timeout_ms` (-1: no limit). */
static int readable(int fd, int timeout_ms) {
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static void count_cb(void *arg, int status) {
    if (status == 0) {
        atomic_fetch_add((atomic_int *)arg, 1);
    }
}

/* ---------------- run modes ---------------- */

typedef struct {
    const rt_runtime *rt;
    atomic_int done;
} blocking_ctx;

static void blocking_work(void *arg) {
    (void)arg;
    sleep_ms(50);
}

static void blocking_done(void *arg, int status) {
    blocking_ctx *c = arg;
    if (status == 0) {
        atomic_fetch_add(&c->done, 1);
    }
}

static void test_run_default_returns_when_work_is_done(void) {
    rt_runtime *rt = new_current_thread();
    atomic_int fired = 0;
    blocking_ctx b;
    rt_timer_id tid;
    int i, n;
    int64_t start;
    memset(&b, 0, sizeof b);
    b.rt = rt;
    for (i = 0; i < 10; i++) {
        CHECK_EQ(rt_timer_start(rt, (uint64_t)(5 * i), 0, count_cb, &fired, &tid), 0);
        CHECK_EQ(rt_spawn(rt, count_cb, &fired, NULL), 0);
    }
    CHECK_EQ(rt_spawn_blocking(rt, blocking_work, blocking_done, &b, NULL), 0);
    start = now_us();
    n = rt_run(rt, RT_RUN_DEFAULT);
    CHECK(n >= 21);
    CHECK_EQ(atomic_load(&fired), 20);
    CHECK_EQ(atomic_load(&b.done), 1);
    CHECK(now_us() - start >= 45000); /* waited for the timers and the job */
    /* Nothing left: returns at once. */
    start = now_us();
    CHECK_EQ(rt_run(rt, RT_RUN_DEFAULT), 0);
    CHECK(now_us() - start < 1000000);
    rt_runtime_free(rt);
}

static void test_run_once_blocks_until_an_event(void) {
    rt_runtime *rt = new_current_thread();
    atomic_int fired = 0;
    rt_timer_id id;
    int64_t start;
    int n;
    CHECK_EQ(rt_timer_start(rt, 40, 0, count_cb, &fired, &id), 0);
    start = now_us();
    /* Arming the timer is not a callback: one call waits for the expiry. */
    n = rt_run(rt, RT_RUN_ONCE);
    CHECK_EQ(n, 1);
    CHECK_EQ(atomic_load(&fired), 1);
    CHECK(now_us() - start >= 39000);
    rt_runtime_free(rt);
}

static void test_run_nowait_never_blocks(void) {
    rt_runtime *rt = new_current_thread();
    atomic_int fired = 0;
    rt_timer_id tid;
    int i;
    int64_t start;
    CHECK_EQ(rt_timer_start(rt, 3600 * 1000, 0, count_cb, &fired, &tid), 0);
    for (i = 0; i < 5; i++) {
        CHECK_EQ(rt_spawn(rt, count_cb, &fired, NULL), 0);
    }
    start = now_us();
    CHECK_EQ(rt_run(rt, RT_RUN_NOWAIT), 5); /* callbacks; arming the timer is not one */
    CHECK_EQ(atomic_load(&fired), 5);
    for (i = 0; i < 100; i++) {
        CHECK_EQ(rt_run(rt, RT_RUN_NOWAIT), 0);
    }
    CHECK(now_us() - start < 1000000);
    rt_runtime_free(rt);
}

typedef struct {
    const rt_runtime *rt;
    long delay_ms;
    int what; /* 0: rt_stop, 1: rt_wake, 2: rt_spawn */
    atomic_int spawned;
} poker;

static void *poke_thread(void *arg) {
    poker *p = arg;
    sleep_ms(p->delay_ms);
    if (p->what == 0) {
        CHECK_EQ(rt_stop(p->rt), 0);
    } else if (p->what == 1) {
        CHECK_EQ(rt_wake(p->rt), 0);
        CHECK_EQ(rt_wake(p->rt), 0); /* coalesces */
    } else {
        CHECK_EQ(rt_spawn(p->rt, count_cb, &p->spawned, NULL), 0);
    }
    return NULL;
}

static void start_poker(pthread_t *t, poker *p, const rt_runtime *rt, long delay_ms, int what) {
    memset(p, 0, sizeof *p);
    p->rt = rt;
    p->delay_ms = delay_ms;
    p->what = what;
    CHECK_EQ(pthread_create(t, NULL, poke_thread, p), 0);
}

static void test_stop_and_wake_interrupt_a_blocking_run(void) {
    rt_runtime *rt = new_current_thread();
    atomic_int fired = 0;
    rt_timer_id tid;
    pthread_t t;
    poker p;
    int64_t start;
    int n;
    /* A far timer keeps DEFAULT running: rt_stop ends it. */
    CHECK_EQ(rt_timer_start(rt, 3600 * 1000, 0, count_cb, &fired, &tid), 0);
    start_poker(&t, &p, rt, 30, 0);
    start = now_us();
    n = rt_run(rt, RT_RUN_DEFAULT);
    CHECK(n >= 0);
    CHECK(now_us() - start >= 25000);
    pthread_join(t, NULL);
    /* rt_wake ends a blocking ONCE with nothing run. */
    start_poker(&t, &p, rt, 30, 1);
    start = now_us();
    CHECK_EQ(rt_run(rt, RT_RUN_ONCE), 0);
    CHECK(now_us() - start >= 25000);
    pthread_join(t, NULL);
    /* The two wakes counted once: the next ONCE blocks again until a
     * cross-thread spawn. */
    start_poker(&t, &p, rt, 30, 2);
    start = now_us();
    CHECK_EQ(rt_run(rt, RT_RUN_ONCE), 1);
    CHECK(now_us() - start >= 25000);
    CHECK_EQ(atomic_load(&p.spawned), 1);
    pthread_join(t, NULL);
    /* A stop before the call: returns 0 at once, and only once. */
    CHECK_EQ(rt_stop(rt), 0);
    CHECK_EQ(rt_run(rt, RT_RUN_DEFAULT), 0);
    CHECK_EQ(rt_run(rt, RT_RUN_NOWAIT), 0);
    CHECK_EQ(atomic_load(&fired), 0);
    /* A wake made before ONCE is not lost when the library's own step
     * (arming a timer) runs in the same pass. */
    CHECK_EQ(rt_timer_start(rt, 3000, 0, count_cb, &fired, &tid), 0);
    CHECK_EQ(rt_wake(rt), 0);
    start = now_us();
    CHECK_EQ(rt_run(rt, RT_RUN_ONCE), 0);
    CHECK(now_us() - start < 1000000);
    CHECK_EQ(atomic_load(&fired), 0);
    rt_runtime_free(rt);
}

/* rt_stop from a callback ends DEFAULT right after that callback. */
static const rt_runtime *stopper_rt;

static void stopper_cb(void *arg, int status) {
    if (status == 0 && atomic_fetch_add((atomic_int *)arg, 1) == 0) {
        CHECK_EQ(rt_stop(stopper_rt), 0);
    }
}

static void test_stop_from_callback_ends_default_after_it(void) {
    rt_runtime *rt = new_current_thread();
    atomic_int n = 0;
    int i;
    stopper_rt = rt;
    for (i = 0; i < 10; i++) {
        CHECK_EQ(rt_spawn(rt, stopper_cb, &n, NULL), 0);
    }
    CHECK_EQ(rt_run(rt, RT_RUN_DEFAULT), 1);
    CHECK_EQ(atomic_load(&n), 1);
    CHECK_EQ(rt_run(rt, RT_RUN_DEFAULT), 9); /* the rest, in order, then no work left */
    rt_runtime_free(rt);
}

/* DEFAULT returns once the last blocking job is over, also when its done
 * callback ran before the pool thread finished with the job. */
typedef struct {
    const rt_runtime *rt;
    long after_ms;
    atomic_int cancel;
} watchdog;

static void *watchdog_thread(void *arg) {
    watchdog *w = arg;
    long waited = 0;
    while (!atomic_load(&w->cancel) && waited < w->after_ms) {
        sleep_ms(1);
        waited++;
    }
    if (!atomic_load(&w->cancel)) {
        rt_stop(w->rt); /* only on a hang: the test then fails on time */
    }
    return NULL;
}

static void quick_work(void *arg) {
    (void)arg;
}

static void test_default_waits_for_blocking_jobs_without_hanging(void) {
    rt_runtime *rt = new_current_thread();
    blocking_ctx b;
    watchdog w;
    pthread_t t;
    int i, hangs = 0;
    memset(&b, 0, sizeof b);
    memset(&w, 0, sizeof w);
    w.rt = rt;
    w.after_ms = 5000;
    CHECK_EQ(pthread_create(&t, NULL, watchdog_thread, &w), 0);
    for (i = 0; i < 300 && !hangs; i++) {
        int64_t start = now_us();
        CHECK_EQ(rt_spawn_blocking(rt, quick_work, blocking_done, &b, NULL), 0);
        CHECK_EQ(rt_run(rt, RT_RUN_DEFAULT), 1);
        if (now_us() - start > 4000000) {
            hangs++;
        }
    }
    atomic_store(&w.cancel, 1);
    pthread_join(t, NULL);
    CHECK_EQ(hangs, 0);
    CHECK_EQ(atomic_load(&b.done), i);
    rt_runtime_free(rt);
}

/* Shutting down from another thread while the host is inside rt_run* frees
 * everything (no fd of the runtime survives rt_runtime_free). */
static int count_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    if (!d) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

static const rt_runtime *race_rt;
static atomic_int race_stop;

static void respawn_cb(void *arg, int status) {
    (void)arg;
    if (status == 0) {
        rt_spawn(race_rt, respawn_cb, NULL, NULL);
    }
}

static void *race_host(void *arg) {
    long mode = (long)(size_t)arg;
    rt_backend_fd(race_rt);
    while (!atomic_load(&race_stop)) {
        int r = mode == 3 ? rt_run_budget(race_rt, 50, 3) : rt_run(race_rt, (rt_run_mode)mode);
        if (r < 0) {
            break;
        }
    }
    return NULL;
}

/* rt_runtime_free returns with every fd of the runtime closed, also right
 * after blocking jobs (their pool threads may still be exiting then). */
static void test_free_after_blocking_jobs_closes_every_fd(void) {
    int before = count_fds(), i, leaked = 0;
    for (i = 0; i < 100; i++) {
        rt_runtime *rt = new_current_thread();
        blocking_ctx b;
        memset(&b, 0, sizeof b);
        b.rt = rt;
        CHECK_EQ(rt_spawn_blocking(rt, quick_work, blocking_done, &b, NULL), 0);
        CHECK_EQ(rt_run(rt, RT_RUN_DEFAULT), 1);
        rt_runtime_free(rt);
        if (count_fds() != before) {
            leaked++;
        }
    }
    CHECK_EQ(leaked, 0);
}

static void test_shutdown_racing_a_driving_thread_frees_everything(void) {
    int before = count_fds(), i;
    rt_timer_id tid;
    for (i = 0; i < 40; i++) {
        rt_runtime *rt = new_current_thread();
        pthread_t h;
        int k;
        race_rt = rt;
        atomic_store(&race_stop, 0);
        for (k = 0; k < 8; k++) {
            CHECK_EQ(rt_spawn(rt, respawn_cb, NULL, NULL), 0);
        }
        CHECK_EQ(rt_timer_start(rt, 100000, 0, count_cb, NULL, &tid), 0);
        CHECK_EQ(pthread_create(&h, NULL, race_host, (void *)(size_t)(i % 2 ? 2 : 3)), 0);
        sleep_ms(1);
        CHECK(rt_runtime_shutdown(rt, 1000) == 0);
        atomic_store(&race_stop, 1);
        pthread_join(h, NULL);
        rt_runtime_free(rt);
    }
    CHECK_EQ(count_fds(), before);
}

/* Timers run in deadline order, equal deadlines in start order, also when
 * the loop is late and other callbacks are queued ahead of them. */
typedef struct {
    int order[128];
    atomic_int n;
} order_log;

typedef struct {
    order_log *log;
    int index;
} order_item;

static void order_cb(void *arg, int status) {
    order_item *it = arg;
    if (status == 0) {
        int k = atomic_fetch_add(&it->log->n, 1);
        if (k < 128) {
            it->log->order[k] = it->index;
        }
    }
}

static void spin_cb(void *arg, int status) {
    int64_t until = now_us() + 100;
    (void)arg;
    (void)status;
    while (now_us() < until) {
    }
}

static void test_timers_fire_in_deadline_order_when_late(void) {
    rt_runtime *rt = new_current_thread();
    static order_log log;
    static order_item items[102];
    rt_timer_id tid;
    int i, in_order = 1;
    memset(&log, 0, sizeof log);
    items[0].log = &log;
    items[0].index = 0;
    CHECK_EQ(rt_timer_start(rt, 1, 0, order_cb, &items[0], &tid), 0); /* A: 1 ms */
    for (i = 0; i < 60; i++) {
        CHECK_EQ(rt_spawn(rt, spin_cb, NULL, NULL), 0); /* 6 ms of work ahead */
    }
    items[1].log = &log;
    items[1].index = 1;
    CHECK_EQ(rt_timer_start(rt, 2, 0, order_cb, &items[1], &tid), 0); /* B: 2 ms */
    /* 100 timers with the same timeout, started back to back. */
    for (i = 2; i < 102; i++) {
        items[i].log = &log;
        items[i].index = i;
        CHECK_EQ(rt_timer_start(rt, 20, 0, order_cb, &items[i], &tid), 0);
    }
    CHECK(rt_run(rt, RT_RUN_DEFAULT) >= 102);
    CHECK_EQ(atomic_load(&log.n), 102);
    for (i = 0; i < 102; i++) {
        if (log.order[i] != i) {
            in_order = 0;
        }
    }
    CHECK(in_order);
    rt_runtime_free(rt);
}

/* Timers that fired but whose calls have not run yet get their final
 * RT_ECANCELED at shutdown, each exactly once. */
typedef struct {
    atomic_int ok;
    atomic_int cancelled;
    atomic_int other;
} outcome;

static void outcome_cb(void *arg, int status) {
    outcome *o = arg;
    if (status == 0) {
        atomic_fetch_add(&o->ok, 1);
    } else if (status == RT_ECANCELED) {
        atomic_fetch_add(&o->cancelled, 1);
    } else {
        atomic_fetch_add(&o->other, 1);
    }
}

static void test_fired_timers_not_yet_called_are_cancelled_at_shutdown(void) {
    rt_runtime *rt = new_current_thread();
    static outcome each[100];
    rt_timer_id tid;
    int i, ran, ok = 0, cancelled = 0, once = 1;
    memset(each, 0, sizeof each);
    for (i = 0; i < 100; i++) {
        CHECK_EQ(rt_timer_start(rt, 1, 0, outcome_cb, &each[i], &tid), 0);
    }
    sleep_ms(20);
    ran = rt_run_budget(rt, 1000000, 10); /* fires all 100, calls a few */
    CHECK(ran >= 0 && ran <= 10);
    CHECK_EQ(rt_runtime_shutdown(rt, -1), 0);
    for (i = 0; i < 100; i++) {
        int calls = atomic_load(&each[i].ok) + atomic_load(&each[i].cancelled) +
                    atomic_load(&each[i].other);
        if (calls != 1) {
            once = 0;
        }
        ok += atomic_load(&each[i].ok);
        cancelled += atomic_load(&each[i].cancelled);
    }
    CHECK(once);
    CHECK_EQ(ok, ran);
    CHECK_EQ(cancelled, 100 - ran);
    rt_runtime_free(rt);
}

/* ---------------- rt_wake from a signal handler ---------------- */

static const rt_runtime *signal_rt;
static volatile sig_atomic_t signal_seen;

static void on_sigusr1(int sig) {
    (void)sig;
    signal_seen = 1;
    rt_wake(signal_rt);
}

typedef struct {
    pthread_t target;
    long delay_ms;
} signaller;

static void *signal_thread(void *arg) {
    signaller *s = arg;
    sleep_ms(s->delay_ms);
    pthread_kill(s->target, SIGUSR1);
    return NULL;
}

static void test_wake_from_signal_handler(void) {
    rt_runtime *rt = new_current_thread();
    struct sigaction sa, old;
    signaller s;
    pthread_t t;
    int64_t start;
    int fd;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    signal_rt = rt;
    signal_seen = 0;
    CHECK_EQ(sigaction(SIGUSR1, &sa, &old), 0);
    s.target = pthread_self();
    s.delay_ms = 30;
    CHECK_EQ(pthread_create(&t, NULL, signal_thread, &s), 0);
    start = now_us();
    CHECK_EQ(rt_run(rt, RT_RUN_ONCE), 0);
    CHECK(now_us() - start >= 25000);
    CHECK_EQ(signal_seen, 1);
    pthread_join(t, NULL);
    /* And a host blocked in poll() on the backend fd. */
    fd = rt_backend_fd(rt);
    CHECK(fd >= 0);
    signal_seen = 0;
    CHECK_EQ(pthread_create(&t, NULL, signal_thread, &s), 0);
    start = now_us();
    while (!signal_seen && now_us() - start < 5000000) {
        readable(fd, 5000); /* EINTR with SA_RESTART is not restarted for poll */
    }
    CHECK(readable(fd, 0));
    CHECK_EQ(rt_run(rt, RT_RUN_NOWAIT), 0);
    CHECK(!readable(fd, 0));
    pthread_join(t, NULL);
    CHECK_EQ(sigaction(SIGUSR1, &old, NULL), 0);
    rt_runtime_free(rt);
}

/* ---------------- rt_run_budget ---------------- */

enum { BUDGET_N = 10000 };

typedef struct {
    int64_t spin_us;
    int next;      /* the index the next callback must have */
    int out_of_order;
    int calls;
} budget_state;

typedef struct {
    budget_state *state;
    int index;
    atomic_int called;
} budget_item;

static void budget_cb(void *arg, int status) {
    budget_item *it = arg;
    int64_t until = now_us() + it->state->spin_us;
    CHECK_EQ(status, 0);
    if (it->index != it->state->next) {
        it->state->out_of_order++;
    }
    it->state->next = it->index + 1;
    it->state->calls++;
    atomic_fetch_add(&it->called, 1);
    while (now_us() < until) {
    }
}

static int cmp_int(const void *a, const void *b) {
    return *(const int *)a - *(const int *)b;
}

static void test_run_budget_spends_its_budget_in_fifo_order(void) {
    rt_runtime *rt = new_current_thread();
    static budget_item items[BUDGET_N];
    static int counts[BUDGET_N];
    budget_state st;
    int i, total = 0, calls = 0, max_n = 0, over = 0;
    int64_t max_over_us = 0;
    memset(&st, 0, sizeof st);
    st.spin_us = 10;
    for (i = 0; i < BUDGET_N; i++) {
        items[i].state = &st;
        items[i].index = i;
        atomic_init(&items[i].called, 0);
        CHECK_EQ(rt_spawn(rt, budget_cb, &items[i], NULL), 0);
    }
    while (total < BUDGET_N && calls < BUDGET_N) {
        /* CPU time of this thread: a preemption (a loaded machine) stretches
         * the wall time of a call, not the work it does. */
        int64_t start = thread_cpu_us(), took;
        int n = rt_run_budget(rt, 1000, UINT32_MAX);
        took = thread_cpu_us() - start;
        CHECK(n > 0);
        if (n <= 0) {
            break;
        }
        /* 10 us per callback, checked before each: at most 100 start
         * inside 1 ms, plus the one that crosses it. */
        CHECK(n <= 101);
        if (n > max_n) {
            max_n = n;
        }
        /* Overrun past the budget: at most one callback plus overhead. */
        if (took - 1000 > max_over_us) {
            max_over_us = took - 1000;
        }
        if (took > 1000 + 2 * st.spin_us + 1000) {
            over++;
        }
        counts[calls++] = n;
        total += n;
    }
    CHECK_EQ(total, BUDGET_N);
    CHECK_EQ(st.calls, BUDGET_N);
    CHECK_EQ(st.out_of_order, 0);
    for (i = 0; i < BUDGET_N; i++) {
        CHECK_EQ(atomic_load(&items[i].called), 1);
    }
    qsort(counts, (size_t)calls, sizeof counts[0], cmp_int);
    fprintf(stderr, "  rt_run_budget(1 ms) over 10 us callbacks: %d calls, median %d, max %d per call, "
                    "max overrun %lld us (thread CPU time), %d calls over budget+1 ms\n",
            calls, counts[calls / 2], max_n, (long long)max_over_us, over);
    if (!under_valgrind()) {
        /* "About 100": allow for preemption on a loaded 2-core machine. */
        CHECK(counts[calls / 2] >= 50);
        /* Scheduling noise may stretch a few calls, not most of them. */
        CHECK(over <= calls / 10);
    }
    CHECK_EQ(rt_run_budget(rt, 1000, 100), 0);
    rt_runtime_free(rt);
}

/* ---------------- rt_backend_fd in the host's poll ---------------- */

typedef struct {
    atomic_int calls;
    char buf[16];
    int got;
} fd_reader;

static void read_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    fd_reader *r = arg;
    if (status != 0) {
        return;
    }
    if (events & RT_READABLE) {
        ssize_t n = read(fd, r->buf, sizeof r->buf);
        if (n > 0) {
            r->got += (int)n;
        }
    }
    atomic_fetch_add(&r->calls, 1);
}

static void test_backend_fd_wakes_host_poll(void) {
    rt_runtime *rt = new_current_thread();
    atomic_int fired = 0;
    fd_reader r;
    rt_io_id id;
    rt_timer_id tid;
    pthread_t t;
    poker p;
    int sv[2], fd, timeout, i;
    int64_t start;
    memset(&r, 0, sizeof r);
    fd = rt_backend_fd(rt);
    CHECK(fd >= 0);
    CHECK_EQ(rt_backend_fd(rt), fd);
    CHECK(!readable(fd, 0));
    CHECK_EQ(rt_backend_timeout(rt), -1);

    /* An fd event. */
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    CHECK_EQ(rt_io_register(rt, sv[0], RT_READABLE, read_cb, &r, &id), 0);
    CHECK(readable(fd, 1000)); /* the registration task is queued */
    CHECK_EQ(rt_backend_timeout(rt), 0);
    CHECK_EQ(rt_run(rt, RT_RUN_NOWAIT), 0); /* registered: no callback yet */
    CHECK(!readable(fd, 0));
    CHECK_EQ(rt_backend_timeout(rt), -1);
    CHECK_EQ(write(sv[1], "ping", 4), 4);
    CHECK(readable(fd, 2000));
    CHECK(rt_run(rt, RT_RUN_NOWAIT) >= 1);
    CHECK_EQ(r.got, 4);
    CHECK_EQ(atomic_load(&r.calls), 1);
    /* The callback drained the fd: nothing is left to do. */
    CHECK(!readable(fd, 0));
    CHECK_EQ(atomic_load(&r.calls), 1);

    /* A timer: the fd alone wakes the host when it is due (and maybe once
     * before, at a cascade point of the timer wheel, with nothing to run). */
    {
        int64_t armed = now_us();
        int wakeups = 0;
        CHECK_EQ(rt_timer_start(rt, 50, 0, count_cb, &fired, &tid), 0);
        CHECK_EQ(rt_run(rt, RT_RUN_NOWAIT), 0); /* armed, not fired */
        timeout = rt_backend_timeout(rt);
        CHECK(timeout > 0 && timeout <= 51);
        CHECK(!readable(fd, 0));
        while (atomic_load(&fired) == 0 && now_us() - armed < 5000000) {
            CHECK(readable(fd, 5000)); /* no timeout needed: the fd wakes us */
            CHECK(rt_run(rt, RT_RUN_NOWAIT) >= 0);
            wakeups++;
        }
        CHECK_EQ(atomic_load(&fired), 1);
        CHECK(now_us() - armed >= 50000);
        CHECK(wakeups <= 3);
        for (i = 0; i < 3 && readable(fd, 0); i++) {
            CHECK(rt_run(rt, RT_RUN_NOWAIT) >= 0);
        }
    }

    /* A cross-thread spawn. */
    CHECK(!readable(fd, 0));
    start_poker(&t, &p, rt, 30, 2);
    start = now_us();
    CHECK(readable(fd, 5000));
    CHECK(now_us() - start >= 25000);
    CHECK_EQ(rt_run(rt, RT_RUN_NOWAIT), 1);
    CHECK_EQ(atomic_load(&p.spawned), 1);
    pthread_join(t, NULL);

    /* rt_wake from another thread. */
    CHECK(!readable(fd, 0));
    start_poker(&t, &p, rt, 30, 1);
    CHECK(readable(fd, 5000));
    CHECK_EQ(rt_run(rt, RT_RUN_NOWAIT), 0);
    CHECK(!readable(fd, 0));
    pthread_join(t, NULL);

    /* Work left over by a budgeted run keeps it readable. */
    {
        atomic_int n = 0;
        for (i = 0; i < 10; i++) {
            CHECK_EQ(rt_spawn(rt, count_cb, &n, NULL), 0);
        }
        CHECK_EQ(rt_run_budget(rt, 1000000, 4), 4);
        CHECK(readable(fd, 0));
        CHECK_EQ(rt_backend_timeout(rt), 0);
        CHECK_EQ(rt_run_budget(rt, 1000000, 100), 6);
        CHECK(!readable(fd, 0));
        CHECK_EQ(atomic_load(&n), 10);
    }
    CHECK_EQ(rt_io_deregister(rt, id), 0);
    close(sv[0]);
    close(sv[1]);
    rt_runtime_free(rt);
}

/* A host that waits on the backend fd with rt_backend_timeout wakes once per
 * timer deadline: the timeout is the time to the deadline (not to an earlier
 * step of the timer wheel), the fd becomes readable then, and the run that
 * fired the timer leaves it unreadable. */
static void test_backend_fd_wakes_once_per_timer(void) {
    rt_runtime *rt = new_current_thread();
    atomic_int fired = 0, ticks = 0;
    rt_timer_id tid;
    int fd, timeout, wakeups = 0;
    int64_t armed;
    fd = rt_backend_fd(rt);
    CHECK(fd >= 0);
    /* 40 ms after the runtime started, a 50 ms timer lies past the wheel's
     * next cascade point (its 64 ms step, 24 ms before the deadline). */
    sleep_ms(40);
    armed = now_us();
    CHECK_EQ(rt_timer_start(rt, 50, 0, count_cb, &fired, &tid), 0);
    CHECK_EQ(rt_run(rt, RT_RUN_NOWAIT), 0);
    CHECK(!readable(fd, 0));
    timeout = rt_backend_timeout(rt);
    /* 50 ms, + up to 1 ms: deadlines round up to the runtime's 1 ms tick;
     * less the time spent since arming (a loaded machine or valgrind). */
    CHECK(timeout <= 51);
    CHECK(timeout >= 49 - (int)((now_us() - armed) / 1000));
    while (atomic_load(&fired) == 0 && now_us() - armed < 5000000) {
        /* The fd wakes the host; the bound is only a safety net. */
        CHECK(readable(fd, rt_backend_timeout(rt) + 1000));
        CHECK(rt_run(rt, RT_RUN_NOWAIT) >= 0);
        wakeups++;
        CHECK(!readable(fd, 0)); /* the run consumed all the work */
    }
    CHECK_EQ(atomic_load(&fired), 1);
    CHECK_EQ(wakeups, 1);
    CHECK(now_us() - armed >= 50000);
    CHECK_EQ(rt_backend_timeout(rt), -1);

    /* A repeating timer: one wake per period. */
    wakeups = 0;
    armed = now_us();
    CHECK_EQ(rt_timer_start(rt, 40, 40, count_cb, &ticks, &tid), 0);
    CHECK_EQ(rt_run(rt, RT_RUN_NOWAIT), 0);
    while (atomic_load(&ticks) < 3 && now_us() - armed < 5000000) {
        timeout = rt_backend_timeout(rt);
        CHECK(timeout >= 0 && timeout <= 41);
        CHECK(readable(fd, timeout + 1000));
        CHECK(rt_run(rt, RT_RUN_NOWAIT) >= 0);
        wakeups++;
        CHECK(!readable(fd, 0));
    }
    CHECK_EQ(atomic_load(&ticks), 3);
    CHECK_EQ(wakeups, 3);
    CHECK_EQ(rt_timer_stop(rt, tid), 0);
    CHECK(rt_run(rt, RT_RUN_NOWAIT) >= 0); /* its final call */
    CHECK(!readable(fd, 0));
    rt_runtime_free(rt);
}

/* ---------------- completion queue ---------------- */

enum { PRODUCERS = 4, POSTS = 25000 };

typedef struct {
    int producer;
    int seq;
} post_arg;

typedef struct {
    int next[PRODUCERS];
    int out_of_order;
    int drained;
    int bad_status;
} consumer;

static consumer the_consumer;
static post_arg post_args[PRODUCERS][POSTS];

static void drained_cb(void *arg, int status) {
    post_arg *a = arg;
    if (status != 0) {
        the_consumer.bad_status++;
        return;
    }
    if (a->seq != the_consumer.next[a->producer]) {
        the_consumer.out_of_order++;
    }
    the_consumer.next[a->producer] = a->seq + 1;
    the_consumer.drained++;
}

typedef struct {
    rt_queue *q;
    int producer;
} producer_ctx;

static void *producer_thread(void *arg) {
    producer_ctx *p = arg;
    int i;
    for (i = 0; i < POSTS; i++) {
        post_args[p->producer][i].producer = p->producer;
        post_args[p->producer][i].seq = i;
        if (rt_queue_post(p->q, drained_cb, &post_args[p->producer][i]) != 0) {
            break;
        }
    }
    return NULL;
}

static void test_queue_four_producers_per_producer_order(void) {
    rt_runtime *rt = new_multi_thread(2);
    rt_queue *q = NULL;
    producer_ctx ctx[PRODUCERS];
    pthread_t t[PRODUCERS];
    int i, fd, rounds = 0;
    int64_t start;
    memset(&the_consumer, 0, sizeof the_consumer);
    CHECK_EQ(rt_queue_new(rt, &q), 0);
    fd = rt_queue_fd(q);
    CHECK(fd >= 0);
    CHECK(!readable(fd, 0));
    CHECK_EQ(rt_queue_drain(q, 0), 0);
    for (i = 0; i < PRODUCERS; i++) {
        ctx[i].q = q;
        ctx[i].producer = i;
        CHECK_EQ(pthread_create(&t[i], NULL, producer_thread, &ctx[i]), 0);
    }
    /* The game thread: wait on the fd, drain a bounded batch per "frame". */
    start = now_us();
    while (the_consumer.drained < PRODUCERS * POSTS && now_us() - start < 60000000) {
        int n;
        if (!readable(fd, 1000)) {
            continue;
        }
        n = rt_queue_drain(q, 1000);
        CHECK(n >= 1 && n <= 1000); /* readable means non-empty */
        rounds++;
    }
    for (i = 0; i < PRODUCERS; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK_EQ(the_consumer.drained, PRODUCERS * POSTS);
    CHECK_EQ(the_consumer.out_of_order, 0);
    CHECK_EQ(the_consumer.bad_status, 0);
    for (i = 0; i < PRODUCERS; i++) {
        CHECK_EQ(the_consumer.next[i], POSTS);
    }
    CHECK(!readable(fd, 0));
    CHECK_EQ(rt_queue_drain(q, 0), 0);
    fprintf(stderr, "  drained %d posts from %d producers in %d rounds\n", the_consumer.drained,
            PRODUCERS, rounds);
    rt_queue_free(q);
    rt_runtime_free(rt);
}

/* Runtime callbacks post their results to the game thread. */
typedef struct {
    rt_queue *q;
    atomic_int ran_on_worker;
    pthread_t game_thread;
    atomic_int delivered;
    atomic_int on_game_thread;
    atomic_int cancelled;
} relay;

static void delivered_cb(void *arg, int status) {
    relay *r = arg;
    if (status == RT_ECANCELED) {
        atomic_fetch_add(&r->cancelled, 1);
        return;
    }
    atomic_fetch_add(&r->delivered, 1);
    if (pthread_equal(pthread_self(), r->game_thread)) {
        atomic_fetch_add(&r->on_game_thread, 1);
    }
}

static void worker_cb(void *arg, int status) {
    relay *r = arg;
    if (status == 0) {
        if (!pthread_equal(pthread_self(), r->game_thread)) {
            atomic_fetch_add(&r->ran_on_worker, 1);
        }
        CHECK_EQ(rt_queue_post(r->q, delivered_cb, r), 0);
    }
}

static void test_queue_from_runtime_callbacks_and_final_cancel(void) {
    rt_runtime *rt = new_multi_thread(2);
    relay r;
    int i, fd;
    int64_t start;
    memset(&r, 0, sizeof r);
    r.game_thread = pthread_self();
    CHECK_EQ(rt_queue_new(rt, &r.q), 0);
    fd = rt_queue_fd(r.q);
    for (i = 0; i < 100; i++) {
        CHECK_EQ(rt_spawn(rt, worker_cb, &r, NULL), 0);
    }
    start = now_us();
    while (atomic_load(&r.delivered) < 100 && now_us() - start < 10000000) {
        if (readable(fd, 1000)) {
            rt_queue_drain(r.q, 0);
        }
    }
    CHECK_EQ(atomic_load(&r.delivered), 100);
    CHECK_EQ(atomic_load(&r.on_game_thread), 100);
    CHECK_EQ(atomic_load(&r.ran_on_worker), 100);
    /* Left in the queue at free: each gets RT_ECANCELED, once. */
    for (i = 0; i < 7; i++) {
        CHECK_EQ(rt_queue_post(r.q, delivered_cb, &r), 0);
    }
    CHECK(readable(fd, 0));
    CHECK_EQ(rt_queue_drain(r.q, 2), 2);
    CHECK(readable(fd, 0));
    rt_runtime_free(rt); /* the queue may outlive the runtime */
    rt_queue_free(r.q);
    CHECK_EQ(atomic_load(&r.delivered), 102);
    CHECK_EQ(atomic_load(&r.cancelled), 5);
}

/* ---------------- errors ---------------- */

typedef struct {
    const rt_runtime *rt;
    atomic_int run_result;
    atomic_int budget_result;
    atomic_int wake_result;
    atomic_int called;
} reentry;

static void reentry_cb(void *arg, int status) {
    reentry *e = arg;
    (void)status;
    atomic_store(&e->run_result, rt_run(e->rt, RT_RUN_NOWAIT));
    atomic_store(&e->budget_result, rt_run_budget(e->rt, 1000, 10));
    atomic_store(&e->wake_result, rt_wake(e->rt));
    atomic_fetch_add(&e->called, 1);
}

static void test_wrong_flavor_reentrancy_and_bad_input(void) {
    rt_runtime *ct = new_current_thread();
    rt_runtime *mt = new_multi_thread(1);
    rt_queue *q = NULL;
    reentry e;
    memset(&e, 0, sizeof e);
    e.rt = ct;
    /* Re-entrant runs from a callback. */
    CHECK_EQ(rt_spawn(ct, reentry_cb, &e, NULL), 0);
    CHECK_EQ(rt_run(ct, RT_RUN_NOWAIT), 1);
    CHECK_EQ(atomic_load(&e.called), 1);
    CHECK_EQ(atomic_load(&e.run_result), RT_EDEADLK);
    CHECK_EQ(atomic_load(&e.budget_result), RT_EDEADLK);
    CHECK_EQ(atomic_load(&e.wake_result), 0);
    /* Wrong flavor. */
    check_host_calls_refused(mt);
    /* Bad input. */
    CHECK_EQ(rt_run(ct, 3), RT_EINVAL);
    CHECK_EQ(rt_run(ct, (rt_run_mode)-1), RT_EINVAL);
    check_host_calls_refused(NULL);
    CHECK_EQ(rt_queue_new(NULL, &q), RT_EINVAL);
    CHECK_EQ(rt_queue_new(ct, NULL), RT_EINVAL);
    CHECK_EQ(rt_queue_post(NULL, count_cb, NULL), RT_EINVAL);
    CHECK_EQ(rt_queue_drain(NULL, 0), RT_EINVAL);
    CHECK_EQ(rt_queue_fd(NULL), RT_EINVAL);
    rt_queue_free(NULL);
    CHECK_EQ(rt_queue_new(ct, &q), 0);
    CHECK_EQ(rt_queue_post(q, NULL, NULL), RT_EINVAL);
    rt_queue_free(q);
    /* After shutdown. */
    CHECK_EQ(rt_runtime_shutdown(ct, -1), 0);
    CHECK_EQ(rt_run(ct, RT_RUN_DEFAULT), RT_ESHUTDOWN);
    CHECK_EQ(rt_run_budget(ct, 1000, 10), RT_ESHUTDOWN);
    CHECK_EQ(rt_stop(ct), RT_ESHUTDOWN);
    CHECK_EQ(rt_wake(ct), 0);
    CHECK_EQ(rt_backend_fd(ct), RT_ESHUTDOWN);
    CHECK_EQ(rt_backend_timeout(ct), RT_ESHUTDOWN);
    CHECK_EQ(rt_queue_new(ct, &q), RT_ESHUTDOWN);
    rt_runtime_free(ct);
    rt_runtime_free(mt);
}

int main(void) {
    static const rt_test_case cases[] = {
        {"run_default_returns_when_work_is_done", test_run_default_returns_when_work_is_done},
        {"run_once_blocks_until_an_event", test_run_once_blocks_until_an_event},
        {"run_nowait_never_blocks", test_run_nowait_never_blocks},
        {"stop_and_wake_interrupt_a_blocking_run", test_stop_and_wake_interrupt_a_blocking_run},
        {"stop_from_callback_ends_default_after_it", test_stop_from_callback_ends_default_after_it},
        {"default_waits_for_blocking_jobs_without_hanging", test_default_waits_for_blocking_jobs_without_hanging},
        {"free_after_blocking_jobs_closes_every_fd", test_free_after_blocking_jobs_closes_every_fd},
        {"shutdown_racing_a_driving_thread_frees_everything", test_shutdown_racing_a_driving_thread_frees_everything},
        {"timers_fire_in_deadline_order_when_late", test_timers_fire_in_deadline_order_when_late},
        {"fired_timers_not_yet_called_are_cancelled_at_shutdown", test_fired_timers_not_yet_called_are_cancelled_at_shutdown},
        {"wake_from_signal_handler", test_wake_from_signal_handler},
        {"run_budget_spends_its_budget_in_fifo_order", test_run_budget_spends_its_budget_in_fifo_order},
        {"backend_fd_wakes_host_poll", test_backend_fd_wakes_host_poll},
        {"backend_fd_wakes_once_per_timer", test_backend_fd_wakes_once_per_timer},
        {"queue_four_producers_per_producer_order", test_queue_four_producers_per_producer_order},
        {"queue_from_runtime_callbacks_and_final_cancel", test_queue_from_runtime_callbacks_and_final_cancel},
        {"wrong_flavor_reentrancy_and_bad_input", test_wrong_flavor_reentrancy_and_bad_input},
    };
    return rt_run_tests(cases, sizeof cases / sizeof cases[0]);
}
