/* C API tests for the contracts around shutdown and fd registrations:
 * no call with status 0 once shutdown has begun (also when a callback
 * shuts its own multi-thread runtime down), calls racing a shutdown return
 * 0 or RT_ESHUTDOWN and nothing else, and fd registrations cost no fd of
 * their own (RLIMIT_NOFILE) while stale ids and reused fd numbers stay
 * safe. Also run under valgrind by make test (RT_TEST_VALGRIND=1 makes the
 * loops shorter there). */
#define _GNU_SOURCE
#include "rt.h"
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static int under_valgrind(void) {
    const char *v = getenv("RT_TEST_VALGRIND");
    return v && v[0] == '1';
}

static rt_runtime *new_runtime(uint32_t workers) {
    rt_config cfg;
    rt_runtime *rt = NULL;
    CHECK_EQ(rt_config_init(&cfg), 0);
    cfg.worker_threads = workers;
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

static int count_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    if (!d) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* ---------------- item 1: no status-0 call after shutdown began ---------------- */

/* An fd callback that shuts its own multi-thread runtime down. The fd stays
 * readable (nothing reads it): before the fix the callback was called again
 * with status 0 until the worker noticed the shutdown. Heap state, freed
 * right after rt_runtime_free: a late call is also a use after free that
 * valgrind reports. */
typedef struct {
    rt_runtime *rt;
    atomic_int shut;     /* 1 once this callback called rt_runtime_shutdown */
    atomic_int late;     /* status-0 calls after that */
    atomic_int finals;   /* RT_ECANCELED calls */
    atomic_int shutdown_rc;
} self_shutdown;

static void self_shutdown_io_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    self_shutdown *s = arg;
    (void)fd;
    (void)events;
    if (status == RT_ECANCELED) {
        atomic_fetch_add(&s->finals, 1);
        return;
    }
    if (atomic_load(&s->shut)) {
        atomic_fetch_add(&s->late, 1);
        return;
    }
    atomic_store(&s->shutdown_rc, rt_runtime_shutdown(s->rt, -1));
    atomic_store(&s->shut, 1);
}

static void test_fd_callback_shutting_down_its_runtime_is_not_called_again(void) {
    int rounds = under_valgrind() ? 5 : 40, i, late = 0;
    for (i = 0; i < rounds; i++) {
        self_shutdown *s = calloc(1, sizeof *s);
        int sv[2];
        rt_io_id id;
        s->rt = new_runtime(2);
        atomic_store(&s->shutdown_rc, 99);
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        CHECK_EQ(write(sv[1], "x", 1), 1);
        CHECK_EQ(rt_io_register(s->rt, sv[0], RT_READABLE, self_shutdown_io_cb, s, &id), 0);
        CHECK(wait_for(&s->finals, 1, 10000));
        CHECK_EQ(atomic_load(&s->shutdown_rc), RT_ETIMEDOUT); /* own worker: no wait */
        late += atomic_load(&s->late);
        CHECK_EQ(atomic_load(&s->finals), 1);
        rt_runtime_free(s->rt);
        close(sv[0]);
        close(sv[1]);
        free(s);
    }
    CHECK_EQ(late, 0);
}

/* A callback task spawns more callback tasks (they land in its worker's
 * own queue), then shuts the runtime down: each of them gets its single
 * call with RT_ECANCELED, none runs with status 0. One worker: none of them
 * can run (legitimately) before the shutdown on another worker. */
enum { SPAWNED = 32 };

typedef struct {
    rt_runtime *rt;
    atomic_int zeros;
    atomic_int cancels;
    atomic_int shutdown_rc;
    rt_task *handles[SPAWNED];
} spawn_then_shutdown;

static void spawned_cb(void *arg, int status) {
    spawn_then_shutdown *s = arg;
    atomic_fetch_add(status == 0 ? &s->zeros : &s->cancels, 1);
}

static void spawner_cb(void *arg, int status) {
    spawn_then_shutdown *s = arg;
    int i;
    if (status != 0) {
        return;
    }
    for (i = 0; i < SPAWNED; i++) {
        /* Half with a handle (the other code path). */
        CHECK_EQ(rt_spawn(s->rt, spawned_cb, s, i % 2 ? &s->handles[i] : NULL), 0);
    }
    atomic_store(&s->shutdown_rc, rt_runtime_shutdown(s->rt, -1));
}

static void test_spawned_tasks_after_shutdown_from_a_callback_are_cancelled(void) {
    int rounds = under_valgrind() ? 3 : 20, i, k, zeros = 0;
    for (i = 0; i < rounds; i++) {
        spawn_then_shutdown *s = calloc(1, sizeof *s);
        s->rt = new_runtime(1);
        atomic_store(&s->shutdown_rc, 99);
        CHECK_EQ(rt_spawn(s->rt, spawner_cb, s, NULL), 0);
        for (k = 0; k < 10000 && atomic_load(&s->zeros) + atomic_load(&s->cancels) < SPAWNED; k++) {
            sleep_ms(1);
        }
        CHECK_EQ(atomic_load(&s->zeros) + atomic_load(&s->cancels), SPAWNED);
        zeros += atomic_load(&s->zeros);
        for (k = 1; k < SPAWNED; k += 2) {
            CHECK_EQ(rt_task_join(s->handles[k], 5000), 0);
            rt_task_release(s->handles[k]);
        }
        /* The final calls can all be made before the shutdown call
         * inside spawner_cb has returned: wait for its return. */
        for (k = 0; k < 10000 && atomic_load(&s->shutdown_rc) == 99; k++) {
            sleep_ms(1);
        }
        CHECK_EQ(atomic_load(&s->shutdown_rc), RT_ETIMEDOUT); /* own worker: no wait */
        rt_runtime_free(s->rt);
        free(s);
    }
    CHECK_EQ(zeros, 0);
}

/* A poll task that shuts its runtime down, wakes itself and returns
 * RT_PENDING: it is not polled again (its drop runs once). */
typedef struct {
    rt_runtime *rt;
    atomic_int polls_after;
    atomic_int shut;
    atomic_int dropped;
} poll_shutdown;

static int poll_shutdown_fn(void *state, rt_waker *w) {
    poll_shutdown *p = state;
    if (atomic_load(&p->shut)) {
        atomic_fetch_add(&p->polls_after, 1);
    } else {
        /* Its own worker: no wait for the runtime's threads. */
        CHECK_EQ(rt_runtime_shutdown(p->rt, -1), RT_ETIMEDOUT);
        atomic_store(&p->shut, 1);
    }
    rt_waker_wake_by_ref(w);
    return RT_PENDING;
}

static void poll_shutdown_drop(void *state) {
    atomic_fetch_add(&((poll_shutdown *)state)->dropped, 1);
}

static void test_poll_task_is_not_polled_after_shutdown_began(void) {
    int rounds = under_valgrind() ? 3 : 20, i, after = 0;
    for (i = 0; i < rounds; i++) {
        poll_shutdown *p = calloc(1, sizeof *p);
        p->rt = new_runtime(2);
        CHECK_EQ(rt_spawn_poll(p->rt, poll_shutdown_fn, p, poll_shutdown_drop, NULL), 0);
        CHECK(wait_for(&p->dropped, 1, 10000));
        after += atomic_load(&p->polls_after);
        CHECK_EQ(atomic_load(&p->dropped), 1);
        rt_runtime_free(p->rt);
        free(p);
    }
    CHECK_EQ(after, 0);
}

/* ---------------- item 3: calls racing a shutdown ---------------- */

enum { RACERS = 4, RING = 64 };

typedef struct {
    atomic_int io_finals;    /* RT_ECANCELED calls of fd registrations */
    atomic_int io_ok;        /* successful registrations */
    atomic_int io_dereg_ok;  /* deregistrations that returned 0 */
    atomic_int bad;          /* return codes other than 0 / RT_ESHUTDOWN */
    atomic_int bad_code;
    atomic_int after_calls;  /* status-0 calls after shutdown returned */
    atomic_int shutdown_done;
    rt_runtime *rt;
} race;

static void race_io_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    race *r = arg;
    (void)fd;
    (void)events;
    if (status == RT_ECANCELED) {
        atomic_fetch_add(&r->io_finals, 1);
    } else if (atomic_load(&r->shutdown_done)) {
        atomic_fetch_add(&r->after_calls, 10);
    }
}

static void race_cb(void *arg, int status) {
    race *r = arg;
    if (status == 0 && atomic_load(&r->shutdown_done)) {
        atomic_fetch_add(&r->after_calls, 1);
    }
}

static void race_done_cb(void *arg, int status) {
    race *r = arg;
    if (status == 0 && atomic_load(&r->shutdown_done)) {
        atomic_fetch_add(&r->after_calls, 1000);
    }
}

static void race_timer_cb(void *arg, int status) {
    race *r = arg;
    if (status == 0 && atomic_load(&r->shutdown_done)) {
        atomic_fetch_add(&r->after_calls, 100000);
    }
}

static void race_work(void *arg) {
    (void)arg;
}

static int race_poll(void *state, rt_waker *w) {
    (void)state;
    (void)w;
    return RT_READY;
}

static void expect_ok_or_shutdown(race *r, int rc) {
    if (rc != 0 && rc != RT_ESHUTDOWN) {
        atomic_fetch_add(&r->bad, 1);
        atomic_store(&r->bad_code, rc);
    }
}

static void *racer(void *arg) {
    race *r = arg;
    int fds[RING];
    rt_io_id ids[RING];
    int live[RING];
    int i, k = 0, shut_seen = 0, rc;
    memset(live, 0, sizeof live);
    for (i = 0; i < RING; i++) {
        fds[i] = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    }
    while (shut_seen < 50) {
        int slot = k++ % RING;
        rt_timer_id tid;
        rt_queue *q = NULL;
        if (live[slot]) {
            /* Deregister before the fd is used again. */
            expect_ok_or_shutdown(r, rc = rt_io_modify(r->rt, ids[slot], RT_READABLE | RT_WRITABLE));
            rc = rt_io_deregister(r->rt, ids[slot]);
            expect_ok_or_shutdown(r, rc);
            if (rc == 0) {
                atomic_fetch_add(&r->io_dereg_ok, 1);
                live[slot] = 0;
            } else {
                /* Its final call may come: the fd stays as it is. */
                shut_seen++;
                continue;
            }
        }
        rc = rt_io_register(r->rt, fds[slot], RT_READABLE, race_io_cb, r, &ids[slot]);
        expect_ok_or_shutdown(r, rc);
        if (rc == 0) {
            atomic_fetch_add(&r->io_ok, 1);
            live[slot] = 1;
        } else {
            shut_seen++;
        }
        rc = rt_timer_start(r->rt, 60000, 0, race_timer_cb, r, &tid);
        expect_ok_or_shutdown(r, rc);
        if (rc == 0) {
            expect_ok_or_shutdown(r, rt_timer_stop(r->rt, tid));
        }
        expect_ok_or_shutdown(r, rt_spawn(r->rt, race_cb, r, NULL));
        if (k % 8 == 0) {
            expect_ok_or_shutdown(r, rt_spawn_blocking(r->rt, race_work, race_done_cb, r, NULL));
            expect_ok_or_shutdown(r, rt_spawn_poll(r->rt, race_poll, r, NULL, NULL));
            rc = rt_queue_new(r->rt, &q);
            expect_ok_or_shutdown(r, rc);
            if (rc == 0) {
                rt_queue_free(q);
            }
        }
    }
    /* Every registration made its final call (or was deregistered) by now:
     * shutdown returned before the racers stopped. */
    while (!atomic_load(&r->shutdown_done)) {
        sleep_ms(1);
    }
    for (i = 0; i < RING; i++) {
        close(fds[i]);
    }
    return NULL;
}

/* The thread that drives a current-thread runtime, racing the shutdown
 * too: rt_run and the host calls return a count / fd / timeout, or
 * RT_ESHUTDOWN. */
static void *host_driver(void *arg) {
    race *r = arg;
    int rc;
    while (!atomic_load(&r->shutdown_done)) {
        rc = rt_run(r->rt, RT_RUN_NOWAIT);
        expect_ok_or_shutdown(r, rc > 0 ? 0 : rc);
        rc = rt_run_budget(r->rt, 1000, 16);
        expect_ok_or_shutdown(r, rc > 0 ? 0 : rc);
        rc = rt_backend_fd(r->rt);
        expect_ok_or_shutdown(r, rc >= 0 ? 0 : rc);
        rc = rt_backend_timeout(r->rt);
        expect_ok_or_shutdown(r, rc >= -1 ? 0 : rc);
        expect_ok_or_shutdown(r, rt_wake(r->rt));
    }
    expect_ok_or_shutdown(r, rt_stop(r->rt));
    return NULL;
}

static void race_shutdown(rt_flavor flavor) {
    int rounds = under_valgrind() ? 2 : 30, i, t;
    for (i = 0; i < rounds; i++) {
        race r;
        pthread_t th[RACERS], host;
        rt_config cfg;
        memset(&r, 0, sizeof r);
        CHECK_EQ(rt_config_init(&cfg), 0);
        cfg.flavor = flavor;
        cfg.worker_threads = 2;
        CHECK_EQ(rt_runtime_new(&cfg, &r.rt), 0);
        if (flavor == RT_FLAVOR_CURRENT_THREAD) {
            CHECK_EQ(pthread_create(&host, NULL, host_driver, &r), 0);
        }
        for (t = 0; t < RACERS; t++) {
            CHECK_EQ(pthread_create(&th[t], NULL, racer, &r), 0);
        }
        sleep_ms(i % 5);
        CHECK_EQ(rt_runtime_shutdown(r.rt, -1), 0);
        atomic_store(&r.shutdown_done, 1);
        for (t = 0; t < RACERS; t++) {
            pthread_join(th[t], NULL);
        }
        if (flavor == RT_FLAVOR_CURRENT_THREAD) {
            pthread_join(host, NULL);
        }
        if (atomic_load(&r.bad)) {
            fprintf(stderr, "  round %d: %d bad return codes, e.g. %d (%s)\n", i,
                    atomic_load(&r.bad), atomic_load(&r.bad_code),
                    rt_err_name(atomic_load(&r.bad_code)));
        }
        CHECK_EQ(atomic_load(&r.bad), 0);
        /* Exactly one final call per registration not deregistered. */
        CHECK_EQ(atomic_load(&r.io_finals), atomic_load(&r.io_ok) - atomic_load(&r.io_dereg_ok));
        CHECK_EQ(atomic_load(&r.after_calls), 0);
        rt_runtime_free(r.rt);
    }
}

static void test_calls_racing_shutdown_return_ok_or_eshutdown(void) {
    race_shutdown(RT_FLAVOR_MULTI_THREAD);
}

static void test_calls_racing_shutdown_return_ok_or_eshutdown_current_thread(void) {
    race_shutdown(RT_FLAVOR_CURRENT_THREAD);
}

/* ---------------- item 8: no fd of its own per registration ---------------- */

static void quiet_io_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    (void)fd;
    (void)events;
    if (status == 0) {
        atomic_fetch_add((atomic_int *)arg, 1);
    }
}

/* With RLIMIT_NOFILE lowered, as many sockets register as the limit leaves
 * fds: a registration keeps no duplicate (before: two fds per socket, so
 * half as many). */
static void test_registrations_reach_the_fd_limit(void) {
    enum { ROOM = 300 };
    struct rlimit old, low;
    rt_runtime *rt = new_runtime(2);
    static int socks[ROOM + 16];
    static rt_io_id ids[ROOM + 16];
    atomic_int calls = 0;
    int base, n = 0, i, rc = 0;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    base = count_fds();
    low = old;
    low.rlim_cur = (rlim_t)(base + ROOM);
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) {
        fprintf(stderr, "  setrlimit refused (%s): skipped\n", strerror(errno));
        rt_runtime_free(rt);
        return;
    }
    while (n < ROOM + 16) {
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (s < 0) {
            rc = -errno;
            break;
        }
        rc = rt_io_register(rt, s, RT_READABLE, quiet_io_cb, &calls, &ids[n]);
        if (rc != 0) {
            close(s);
            break;
        }
        socks[n++] = s;
    }
    fprintf(stderr, "  RLIMIT_NOFILE %d (%d fds open before): %d sockets registered, then %s\n",
            (int)low.rlim_cur, base, n, rt_err_name(rc));
    CHECK_EQ(rc, -EMFILE);
    /* Every fd the limit leaves goes to a socket (a few may go to the
     * runtime's own lazily made fds). */
    CHECK(n >= ROOM - 4);
    for (i = 0; i < n; i++) {
        CHECK_EQ(rt_io_deregister(rt, ids[i]), 0);
        close(socks[i]);
    }
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
    CHECK_EQ(atomic_load(&calls), 0);
    rt_runtime_free(rt);
}

typedef struct {
    atomic_int calls;
    atomic_int bytes;
    atomic_int finals;
    atomic_int last_fd;
} counter;

static void counting_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    counter *c = arg;
    char buf[64];
    (void)events;
    if (status != 0) {
        atomic_fetch_add(&c->finals, 1);
        return;
    }
    atomic_fetch_add(&c->calls, 1);
    atomic_store(&c->last_fd, fd);
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
        atomic_fetch_add(&c->bytes, (int)n);
    }
}

/* Deregister, close, and the same number comes back for a new socket: the
 * old id is stale (RT_ENOENT) and cannot touch the new registration. */
static void test_reused_fd_number_after_deregister(void) {
    rt_runtime *rt = new_runtime(2);
    counter a, b;
    int s1[2], s2[2], old_fd;
    rt_io_id id1, id2;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s1), 0);
    CHECK_EQ(rt_io_register(rt, s1[0], RT_READABLE, counting_cb, &a, &id1), 0);
    CHECK_EQ(rt_io_deregister(rt, id1), 0);
    old_fd = s1[0];
    close(s1[0]);
    close(s1[1]);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s2), 0);
    CHECK_EQ(s2[0], old_fd); /* the lowest free number: reused */
    CHECK_EQ(rt_io_register(rt, s2[0], RT_READABLE, counting_cb, &b, &id2), 0);
    CHECK(id1 != id2);
    CHECK_EQ(rt_io_deregister(rt, id1), RT_ENOENT);
    CHECK_EQ(rt_io_modify(rt, id1, RT_WRITABLE), RT_ENOENT);
    CHECK_EQ(write(s2[1], "hello", 5), 5);
    CHECK(wait_for(&b.bytes, 5, 5000));
    CHECK_EQ(atomic_load(&a.calls), 0);
    CHECK_EQ(rt_io_deregister(rt, id2), 0);
    close(s2[0]);
    close(s2[1]);
    rt_runtime_free(rt);
    CHECK_EQ(atomic_load(&a.finals) + atomic_load(&b.finals), 0);
}

/* One registration per fd (as with epoll and libuv): a second one of the
 * same fd is refused with -EEXIST, and the first keeps working. A dup of the
 * fd is another fd: it may be registered. */
static void test_second_registration_of_an_fd_is_eexist(void) {
    rt_runtime *rt = new_runtime(2);
    counter a, b;
    int sv[2], other;
    rt_io_id id1, id2, id3;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    CHECK_EQ(rt_io_register(rt, sv[0], RT_READABLE, counting_cb, &a, &id1), 0);
    CHECK_EQ(rt_io_register(rt, sv[0], RT_WRITABLE, counting_cb, &b, &id2), -EEXIST);
    other = dup(sv[0]);
    CHECK(other >= 0);
    CHECK_EQ(rt_io_register(rt, other, RT_WRITABLE, counting_cb, &b, &id3), 0);
    CHECK(wait_for(&b.calls, 1, 5000)); /* writable */
    CHECK_EQ(rt_io_deregister(rt, id3), 0);
    close(other);
    CHECK_EQ(write(sv[1], "abc", 3), 3);
    CHECK(wait_for(&a.bytes, 3, 5000));
    CHECK_EQ(rt_io_deregister(rt, id1), 0);
    close(sv[0]);
    close(sv[1]);
    rt_runtime_free(rt);
    CHECK_EQ(atomic_load(&a.finals) + atomic_load(&b.finals), 0);
}

/* The caller breaks the contract: closes a registered fd without
 * deregistering it, and the number comes back for a new socket that is
 * registered. The old registration falls silent (never called with status 0
 * for the new file), its deregister returns 0 and leaves the new
 * registration alone; also when another fd keeps the old file open (its
 * readiness then still reaches the reactor). */
static void test_closed_without_deregister_then_reused(void) {
    int keep_old_open;
    for (keep_old_open = 0; keep_old_open < 2; keep_old_open++) {
        rt_runtime *rt = new_runtime(2);
        counter a, b;
        int s1[2], s2[2], old_fd, keeper = -1, a_calls;
        rt_io_id id1, id2;
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s1), 0);
        CHECK_EQ(rt_io_register(rt, s1[0], RT_READABLE, counting_cb, &a, &id1), 0);
        old_fd = s1[0];
        if (keep_old_open) {
            keeper = fcntl(s1[0], F_DUPFD, 100);
            CHECK(keeper >= 0);
        }
        close(s1[0]); /* contract violation: still registered */
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s2), 0);
        CHECK_EQ(s2[0], old_fd);
        CHECK_EQ(rt_io_register(rt, s2[0], RT_READABLE, counting_cb, &b, &id2), 0);
        /* The old file becomes readable: if it is still open, the kernel
         * reports it under the old registration, which stays silent. */
        send(s1[1], "old", 3, MSG_NOSIGNAL); /* EPIPE unless kept open */
        sleep_ms(20);
        a_calls = atomic_load(&a.calls);
        CHECK_EQ(a_calls, 0);
        CHECK_EQ(rt_io_deregister(rt, id1), 0);
        CHECK_EQ(rt_io_deregister(rt, id1), RT_ENOENT);
        CHECK_EQ(write(s2[1], "new", 3), 3);
        CHECK(wait_for(&b.bytes, 3, 5000));
        CHECK_EQ(atomic_load(&b.last_fd), s2[0]);
        CHECK_EQ(rt_io_deregister(rt, id2), 0);
        if (keeper >= 0) {
            close(keeper);
        }
        close(s1[1]);
        close(s2[0]);
        close(s2[1]);
        rt_runtime_free(rt);
        CHECK_EQ(atomic_load(&a.finals) + atomic_load(&b.finals), 0);
    }
}

/* The contract broken from inside the callback: it closes its fd without a
 * deregister and the number comes back at once for another socket, with
 * data waiting (not registered anywhere). The registration notices at its
 * re-arm and falls silent: it is not called again for the other file. */
typedef struct {
    atomic_int calls;
    int other[2];
    atomic_int replaced;
} closer;

static void closing_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    closer *c = arg;
    (void)events;
    if (status != 0) {
        return;
    }
    if (atomic_fetch_add(&c->calls, 1) == 0) {
        close(fd); /* contract violation: still registered */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, c->other) == 0) {
            atomic_store(&c->replaced, c->other[0] == fd ? 1 : -1);
            (void)!write(c->other[1], "z", 1);
        }
    }
}

static void test_closed_inside_its_callback_then_reused(void) {
    rt_runtime *rt = new_runtime(2);
    closer c;
    int sv[2];
    rt_io_id id;
    memset(&c, 0, sizeof c);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    CHECK_EQ(write(sv[1], "x", 1), 1);
    CHECK_EQ(rt_io_register(rt, sv[0], RT_READABLE, closing_cb, &c, &id), 0);
    CHECK(wait_for(&c.replaced, 1, 5000));
    CHECK_EQ(atomic_load(&c.replaced), 1); /* the same number, another file */
    sleep_ms(30);
    CHECK_EQ(atomic_load(&c.calls), 1);
    CHECK_EQ(rt_io_deregister(rt, id), 0);
    close(sv[1]);
    close(c.other[0]);
    close(c.other[1]);
    rt_runtime_free(rt);
}

int main(void) {
    static const rt_test_case cases[] = {
        {"fd_callback_shutting_down_its_runtime_is_not_called_again",
         test_fd_callback_shutting_down_its_runtime_is_not_called_again},
        {"spawned_tasks_after_shutdown_from_a_callback_are_cancelled",
         test_spawned_tasks_after_shutdown_from_a_callback_are_cancelled},
        {"poll_task_is_not_polled_after_shutdown_began", test_poll_task_is_not_polled_after_shutdown_began},
        {"calls_racing_shutdown_return_ok_or_eshutdown", test_calls_racing_shutdown_return_ok_or_eshutdown},
        {"calls_racing_shutdown_return_ok_or_eshutdown_current_thread",
         test_calls_racing_shutdown_return_ok_or_eshutdown_current_thread},
        {"registrations_reach_the_fd_limit", test_registrations_reach_the_fd_limit},
        {"reused_fd_number_after_deregister", test_reused_fd_number_after_deregister},
        {"second_registration_of_an_fd_is_eexist", test_second_registration_of_an_fd_is_eexist},
        {"closed_without_deregister_then_reused", test_closed_without_deregister_then_reused},
        {"closed_inside_its_callback_then_reused", test_closed_inside_its_callback_then_reused},
    };
    return rt_run_tests(cases, sizeof cases / sizeof cases[0]);
}
