/* timers.c - librt timers: rt_timer_start / rt_timer_stop.
 *
 *  1. one-shot timers armed together with different timeouts fire in order,
 *     none earlier than asked; a fired one-shot's id is stale (RT_ENOENT);
 *  2. a repeating timer stops itself from inside its callback after N ticks;
 *  3. a repeating timer is stopped from another thread: once rt_timer_stop
 *     returns, its callback is not running and never runs again, so its
 *     argument is freed right away;
 *  4. a long timer still armed at shutdown gets one final RT_ECANCELED call,
 *     and shutdown does not wait for it.
 * Exit status 0 only if every check passed.
 */
#define _GNU_SOURCE
#include "rt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int failures;
#define EXPECT(cond) do { if (!(cond)) { fprintf(stderr, "FAILED: %s (line %d)\n", #cond, __LINE__); failures++; } } while (0)

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- 1. one-shot timers ---- */

#define N_ONESHOT 5
typedef struct {
    uint64_t timeout_ms;
    double armed_ms;     /* taken just before rt_timer_start */
    double fired_ms;     /* when the callback ran */
    int status, calls, rank;
    atomic_int fired;    /* set last: publishes the fields above */
} oneshot;

static atomic_int fire_rank; /* order in which the one-shots fired */

static void oneshot_cb(void *arg, int status) {
    oneshot *o = arg; /* only this timer's calls touch *o, one at a time */
    o->fired_ms = now_ms();
    o->rank = atomic_fetch_add(&fire_rank, 1);
    o->status = status;
    o->calls++;
    atomic_store(&o->fired, 1);
}

/* ---- 2. a repeating timer that stops itself ---- */

#define SELF_STOP_TICKS 5
#define PERIOD_MS 20
typedef struct {
    rt_runtime *rt;
    pthread_mutex_t mu; /* `id` is written after the timer is armed */
    rt_timer_id id;
    double armed_ms, tick_ms[SELF_STOP_TICKS];
    int ticks, stop_rc, late_calls, early;
} self_stopper;

static void self_stop_cb(void *arg, int status) {
    self_stopper *s = arg;
    pthread_mutex_lock(&s->mu);
    if (status != 0 || s->ticks >= SELF_STOP_TICKS) {
        s->late_calls++; /* must never happen: it stopped itself */
    } else {
        double t = now_ms();
        s->tick_ms[s->ticks++] = t;
        /* tick k (from 1) is due PERIOD_MS * k after arming, never earlier */
        if (t - s->armed_ms < (double)PERIOD_MS * s->ticks) s->early++;
        if (s->ticks == SELF_STOP_TICKS) s->stop_rc = rt_timer_stop(s->rt, s->id); /* returns at once */
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- 3. a repeating timer stopped from another thread ---- */

typedef struct {
    atomic_int ticks;
    atomic_int running; /* 1 while the callback runs */
} counter;

static void counter_cb(void *arg, int status) {
    counter *c = arg;
    atomic_store(&c->running, 1);
    sleep_ms(2); /* widen the window in which a stop has to wait for us */
    if (status == 0) atomic_fetch_add(&c->ticks, 1);
    atomic_store(&c->running, 0);
}

typedef struct {
    rt_runtime *rt;
    rt_timer_id id;
    counter *c;
    int stop_rc, stop_again_rc, running_after_stop, ticks_at_stop;
} stopper_args;

static void *stopper_thread(void *arg) {
    stopper_args *a = arg;
    sleep_ms(100);
    a->stop_rc = rt_timer_stop(a->rt, a->id); /* waits if counter_cb is running */
    a->running_after_stop = atomic_load(&a->c->running);
    a->ticks_at_stop = atomic_load(&a->c->ticks);
    a->stop_again_rc = rt_timer_stop(a->rt, a->id);
    free(a->c); /* safe: never called again (valgrind would see otherwise) */
    return NULL;
}

/* ---- 4. a long timer cancelled by shutdown ---- */

typedef struct {
    atomic_int calls;
    atomic_int status;
} final_rec;

static void long_cb(void *arg, int status) {
    final_rec *f = arg;
    atomic_store(&f->status, status);
    atomic_fetch_add(&f->calls, 1);
}

static void warm_cb(void *arg, int status) { (void)arg; (void)status; }

int main(void) {
    /* Timeouts armed in this (shuffled) order; they must fire sorted. */
    static const uint64_t timeouts[N_ONESHOT] = {200, 40, 160, 80, 120};
    oneshot shots[N_ONESHOT] = {{0}};
    rt_timer_id shot_ids[N_ONESHOT], long_id;
    self_stopper self = {0};
    stopper_args sa = {0};
    final_rec fin = {0};
    pthread_t th;
    rt_config cfg;
    rt_metrics m;
    rt_runtime *rt;
    int i, j, rc;
    double t;

    rt_config_init(&cfg);
    cfg.worker_threads = 2;
    if ((rc = rt_runtime_new(&cfg, &rt)) != 0) { fprintf(stderr, "rt_runtime_new: %s\n", rt_strerror(rc)); return 1; }

    /* Warm up first (the first run of any code is slow under valgrind): a
     * no-op task and a 1 ms timer, waited for. */
    {
        rt_task *warm = NULL;
        oneshot w = {0};
        rt_timer_id wid;
        EXPECT(rt_spawn(rt, warm_cb, NULL, &warm) == 0 && rt_task_join(warm, 5000) == 0);
        rt_task_release(warm);
        EXPECT(rt_timer_start(rt, 1, 0, oneshot_cb, &w, &wid) == 0);
        for (i = 0; i < 5000 && !atomic_load(&w.fired); i++) sleep_ms(1);
        EXPECT(atomic_load(&w.fired) && w.status == 0);
        atomic_store(&fire_rank, 0);
    }

    /* 1. one-shots */
    for (i = 0; i < N_ONESHOT; i++) {
        shots[i].timeout_ms = timeouts[i];
        shots[i].armed_ms = now_ms();
        EXPECT(rt_timer_start(rt, timeouts[i], 0, oneshot_cb, &shots[i], &shot_ids[i]) == 0);
    }
    /* 2. self-stopping repeater: hold `mu` until its id is stored */
    self.rt = rt;
    pthread_mutex_init(&self.mu, NULL);
    pthread_mutex_lock(&self.mu);
    self.armed_ms = now_ms();
    EXPECT(rt_timer_start(rt, PERIOD_MS, PERIOD_MS, self_stop_cb, &self, &self.id) == 0);
    pthread_mutex_unlock(&self.mu);
    /* 3. repeater stopped by another thread after ~100 ms */
    sa.rt = rt;
    sa.c = calloc(1, sizeof *sa.c);
    EXPECT(rt_timer_start(rt, 5, 5, counter_cb, sa.c, &sa.id) == 0);
    pthread_create(&th, NULL, stopper_thread, &sa);
    /* 4. a timer far in the future */
    EXPECT(rt_timer_start(rt, 60000, 0, long_cb, &fin, &long_id) == 0);

    pthread_join(th, NULL);
    /* Wait (at most 5 s) for the one-shots, plus a margin for strays. */
    for (i = 0; i < N_ONESHOT; i++)
        for (j = 0; j < 5000 && !atomic_load(&shots[i].fired); j++) sleep_ms(1);
    sleep_ms(100);

    printf("one-shot timers (armed in order 200,40,160,80,120 ms):\n");
    for (i = 0; i < N_ONESHOT; i++) {
        oneshot *o = &shots[i];
        double delay = o->fired_ms - o->armed_ms;
        int want_rank = 0;
        for (j = 0; j < N_ONESHOT; j++) want_rank += timeouts[j] < o->timeout_ms;
        printf("  %3llu ms timer: fired #%d after %6.1f ms (%+.1f ms), status %d\n",
               (unsigned long long)o->timeout_ms, o->rank + 1, delay, delay - (double)o->timeout_ms, o->status);
        EXPECT(atomic_load(&o->fired) && o->calls == 1 && o->status == 0);
        EXPECT(delay >= (double)o->timeout_ms); /* never early */
        EXPECT(o->rank == want_rank);            /* in timeout order */
        EXPECT(rt_timer_stop(rt, shot_ids[i]) == RT_ENOENT); /* fired: stale id */
    }

    pthread_mutex_lock(&self.mu);
    printf("self-stopping repeater (%d ms): %d ticks at", PERIOD_MS, self.ticks);
    for (i = 0; i < self.ticks; i++) printf(" %.1f", self.tick_ms[i] - self.armed_ms);
    printf(" ms; rt_timer_stop from its callback -> %s\n", rt_err_name(self.stop_rc));
    EXPECT(self.ticks == SELF_STOP_TICKS && self.stop_rc == 0 && self.late_calls == 0 && self.early == 0);
    EXPECT(rt_timer_stop(rt, self.id) == RT_ENOENT); /* already stopped */
    pthread_mutex_unlock(&self.mu);

    printf("repeater stopped from another thread: %d ticks, stop -> %s, running after stop: %d, "
           "second stop -> %s\n", sa.ticks_at_stop, rt_err_name(sa.stop_rc), sa.running_after_stop,
           rt_err_name(sa.stop_again_rc));
    EXPECT(sa.stop_rc == 0 && sa.running_after_stop == 0 && sa.stop_again_rc == RT_ENOENT);
    EXPECT(sa.ticks_at_stop >= 5); /* ~100 ms at 5 ms + 2 ms of work per tick */

    rt_runtime_metrics(rt, &m);
    printf("timers armed before shutdown: %llu (the long one)\n", (unsigned long long)m.timers);
    EXPECT(m.timers == 1);
    EXPECT(atomic_load(&fin.calls) == 0);

    t = now_ms();
    EXPECT((rc = rt_runtime_shutdown(rt, 5000)) == 0);
    t = now_ms() - t;
    printf("shutdown took %.1f ms; the 60 s timer got %d call(s), status %s\n", t, atomic_load(&fin.calls),
           rt_err_name(atomic_load(&fin.status)));
    EXPECT(atomic_load(&fin.calls) == 1 && atomic_load(&fin.status) == RT_ECANCELED);
    EXPECT(t < 2000);
    EXPECT(rt_timer_stop(rt, long_id) == RT_ESHUTDOWN);
    EXPECT(rt_timer_start(rt, 1, 0, long_cb, &fin, &long_id) == RT_ESHUTDOWN);
    rt_runtime_free(rt);

    /* After shutdown: no stray calls anywhere. */
    for (i = 0; i < N_ONESHOT; i++) EXPECT(shots[i].calls == 1);
    EXPECT(self.ticks == SELF_STOP_TICKS && self.late_calls == 0);
    EXPECT(atomic_load(&fin.calls) == 1);
    pthread_mutex_destroy(&self.mu);
    printf("timers: %s\n", failures ? "FAILED" : "OK");
    return failures ? 1 : 0;
}
