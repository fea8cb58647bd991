/* game_loop.c - a 60 Hz game loop that drives a current-thread runtime.
 *
 * The game thread (main) owns a RT_FLAVOR_CURRENT_THREAD runtime and runs
 * every one of its callbacks itself, inside rt_run_budget: at most
 * BUDGET_US of runtime work per frame, the rest of the frame is the game's.
 *
 *  - Networking: two non-blocking UDP sockets on 127.0.0.1 (port 0), both
 *    registered with rt_io_register. The "client" sends PKTS_PER_FRAME
 *    packets per frame (from the game logic); the "server" callback echoes
 *    each one (payload XORed, so an echo is told from the original); the
 *    client callback checks every echo: magic, sequence number seen exactly
 *    once, length, payload bytes. The round trip is counted in frames.
 *  - Level load: at frame LEVEL_LOAD_FRAME a slow job (LEVEL_SLEEP_MS of
 *    "disk I/O" plus a checksum over LEVEL_BYTES of generated level data)
 *    goes to the blocking pool with rt_spawn_blocking; its `done` runs on
 *    the runtime thread, which for a current-thread runtime is the thread
 *    calling rt_run_*: the game thread. Checked: delivered once, on the game
 *    thread, with the right checksum, while the frames kept their pace.
 *  - Bursts: at a few frames the game spawns BURST_TASKS small callbacks
 *    (~BURST_SPIN_US of CPU each, more than one frame's budget in all): the
 *    budget spreads them over several frames ("left" in the stats), and they
 *    must all run exactly once, in FIFO order.
 *  - AI jobs: a multi-thread runtime computes AI_PER_FRAME jobs per frame
 *    on its workers; each result comes back to the game thread through a
 *    completion queue (rt_queue_post on the worker, rt_queue_drain on the
 *    game thread once per frame).
 *  - Between frames the game thread waits in ppoll() on rt_backend_fd and
 *    rt_queue_fd until the frame's deadline, as a host loop embeds libuv
 *    through uv_backend_fd: work that shows up mid-sleep (the echoes of the
 *    packets sent this frame, the level-load completion) runs at once, as
 *    long as the frame's 2 ms budget is not used up; after that the thread
 *    just sleeps until the next frame.
 *
 * Every STATS_EVERY frames a line of stats: frame time, time inside
 * rt_run_budget (avg / max), callbacks run, frames that left work queued,
 * packets echoed. After RUN_FRAMES (~3 s) the client stops sending, the
 * loop runs until the last echoes and completions are in, then everything is
 * shut down. Exit status 0 only if every check passed, including: at most
 * one frame (MAX_OVER_FRAMES) spent more than BUDGET_US + slack inside
 * rt_run_budget (slack: 1000 us, or $GAME_LOOP_SLACK_US, e.g. for valgrind),
 * measured in this thread's CPU time and, for the frames in which the OS did
 * not preempt the game thread there, in wall-clock time (preempted frames are
 * counted and reported). One, not none: on a virtual machine the host can
 * stop the whole guest for milliseconds, and the guest counts that time as
 * the thread's CPU time too. The same promise is also checked by count,
 * which no load can break: no frame runs more burst tasks than its budget
 * has room for (see frame_runtime).
 */
#define _GNU_SOURCE
#include "rt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_HZ 60
#define FRAME_NS (1000000000LL / FRAME_HZ)
#define RUN_FRAMES (3 * FRAME_HZ)  /* ~3 s of sending */
#define DRAIN_MAX_MS 10000          /* then at most this long for the stragglers */
#define BUDGET_US 2000              /* runtime time per frame */
#define MAX_CALLBACKS 64            /* ... and at most this many tasks per call */
#define STATS_EVERY 30

#define PKTS_PER_FRAME 4
#define N_PKTS (RUN_FRAMES * PKTS_PER_FRAME)
#define PKT_PAYLOAD_MAX 512
#define PKT_MAGIC 0x67616d65u  /* "game" */
#define ECHO_MAGIC 0x6563686fu /* "echo" */
#define ECHO_XOR 0xa5
#define READS_PER_CALLBACK 8   /* level-triggered: the rest comes next call */

#define LEVEL_LOAD_FRAME 10
#define LEVEL_SLEEP_MS 180
#define LEVEL_BYTES (4u << 20)

#define BURST_TASKS 120
#define BURST_SPIN_US 40 /* 120 x 40 us = 4.8 ms: more than two frames' budget */
#define N_BURSTS 3
static const int burst_frames[N_BURSTS] = {30, 90, 150};

#define AI_PER_FRAME 2
#define N_AI (RUN_FRAMES * AI_PER_FRAME)

static int failures;
#define EXPECT(cond)                                                              \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "FAILED: %s (line %d)\n", #cond, __LINE__);           \
            failures++;                                                           \
        }                                                                         \
    } while (0)

static pthread_t game_thread;
static int frame_no; /* the frame being run (read by callbacks: same thread) */
static long off_thread_calls; /* game-runtime callbacks not on the game thread */

/* Every callback of the game runtime must run on the game thread. Only
 * that thread writes these counters, so a failure there is a bug in rt. */
#define ON_GAME_THREAD()                                                                     \
    do {                                                                                     \
        if (!pthread_equal(pthread_self(), game_thread)) off_thread_calls++;                 \
    } while (0)

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void spin_us(int us) {
    int64_t end = now_ns() + (int64_t)us * 1000;
    while (now_ns() < end) {}
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}
#define FNV_INIT 1469598103934665603ull

/* ---------------- networking ---------------- */

typedef struct {
    uint32_t magic, seq, frame, len;
    unsigned char payload[PKT_PAYLOAD_MAX];
} packet;
#define PKT_HEADER 16

static uint32_t pkt_len(uint32_t seq) { return 8 + (seq * 37u) % (PKT_PAYLOAD_MAX - 8); }
static unsigned char pkt_byte(uint32_t seq, uint32_t j) { return (unsigned char)(seq * 31u + j * 7u + (j >> 5)); }

typedef struct {
    rt_runtime *rt;
    int fd;
    rt_io_id id;
    struct sockaddr_in addr; /* where it is bound */
    long calls, cancelled, errors;
} udp_end;

static udp_end server, client;
static long pkts_sent, send_errors, server_echoed, server_bad;
static long client_received, client_bad, client_dup;
static int max_rtt_frames;
static long warmup_echoes;
#define WARMUP_SEQ 0xffffffffu
static unsigned char seen[N_PKTS];
static int reentrancy_checked, reentrant_rc;

static int open_udp(udp_end *e) {
    socklen_t alen = sizeof e->addr;
    e->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    memset(&e->addr, 0, sizeof e->addr);
    e->addr.sin_family = AF_INET;
    e->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (e->fd < 0 || bind(e->fd, (struct sockaddr *)&e->addr, sizeof e->addr) ||
        getsockname(e->fd, (struct sockaddr *)&e->addr, &alen)) {
        perror("udp socket");
        return -1;
    }
    return 0;
}

/* Server: echo what arrives, payload XORed, back to the sender. */
static void server_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    udp_end *s = arg;
    int i;
    ON_GAME_THREAD();
    if (status != 0) { s->cancelled++; return; } /* deregistered before shutdown: never */
    s->calls++;
    if (!reentrancy_checked) { /* a runtime callback cannot drive the runtime */
        reentrancy_checked = 1;
        reentrant_rc = rt_run_budget(s->rt, 1000, 1);
    }
    if (events & RT_ERROR) s->errors++;
    for (i = 0; i < READS_PER_CALLBACK; i++) {
        packet p;
        struct sockaddr_in from;
        socklen_t flen = sizeof from;
        uint32_t j;
        ssize_t n = recvfrom(fd, &p, sizeof p, 0, (struct sockaddr *)&from, &flen);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) s->errors++;
            return;
        }
        if (n < PKT_HEADER || p.magic != PKT_MAGIC || p.len != (uint32_t)n - PKT_HEADER ||
            from.sin_port != client.addr.sin_port) {
            server_bad++;
            continue;
        }
        p.magic = ECHO_MAGIC;
        for (j = 0; j < p.len; j++) p.payload[j] ^= ECHO_XOR;
        /* UDP on loopback: a full socket buffer (EAGAIN) is not expected at
         * this rate; counted as an error rather than queued. */
        if (sendto(fd, &p, (size_t)n, 0, (struct sockaddr *)&from, flen) != n) s->errors++;
        else server_echoed++;
    }
}

/* Client: check each echo. */
static void client_cb(void *arg, rt_fd fd, uint32_t events, int status) {
    udp_end *c = arg;
    int i;
    ON_GAME_THREAD();
    if (status != 0) { c->cancelled++; return; }
    c->calls++;
    if (events & RT_ERROR) c->errors++;
    for (i = 0; i < READS_PER_CALLBACK; i++) {
        packet p;
        uint32_t j;
        ssize_t n = recv(fd, &p, sizeof p, 0);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) c->errors++;
            return;
        }
        if (n >= PKT_HEADER && p.magic == ECHO_MAGIC && p.seq == WARMUP_SEQ) { warmup_echoes++; continue; }
        if (n < PKT_HEADER || p.magic != ECHO_MAGIC || p.seq >= N_PKTS || p.len != pkt_len(p.seq) ||
            (uint32_t)n != PKT_HEADER + p.len) {
            client_bad++;
            continue;
        }
        for (j = 0; j < p.len && p.payload[j] == (pkt_byte(p.seq, j) ^ ECHO_XOR); j++) {}
        if (j < p.len) { client_bad++; continue; }
        if (seen[p.seq]++) { client_dup++; continue; }
        client_received++;
        if (frame_no - (int)p.frame > max_rtt_frames) max_rtt_frames = frame_no - (int)p.frame;
    }
}

static int send_packet(uint32_t seq) {
    packet p;
    uint32_t j;
    p.magic = PKT_MAGIC;
    p.seq = seq;
    p.frame = (uint32_t)frame_no;
    p.len = pkt_len(seq);
    for (j = 0; j < p.len; j++) p.payload[j] = pkt_byte(seq, j);
    if (sendto(client.fd, &p, PKT_HEADER + p.len, 0, (struct sockaddr *)&server.addr, sizeof server.addr) !=
        (ssize_t)(PKT_HEADER + p.len)) {
        perror("client sendto");
        return -1;
    }
    return 0;
}

/* Game logic: this frame's packets, straight from the game thread. */
static void send_packets(void) {
    int k;
    for (k = 0; k < PKTS_PER_FRAME; k++) {
        if (send_packet((uint32_t)pkts_sent) != 0) send_errors++;
        pkts_sent++;
    }
}

/* ---------------- the level load (blocking pool) ---------------- */

typedef struct {
    int requested_frame, delivered_frame, done_calls, done_status;
    int64_t requested_ns, delivered_ns;
    pthread_t work_thread;
    atomic_int work_runs;
    uint64_t checksum;
} level_load;

static level_load level;

static void level_data(unsigned char *buf, size_t n) {
    size_t k;
    for (k = 0; k < n; k++) buf[k] = (unsigned char)(k * 2654435761u >> 13);
}

static void level_work(void *arg) { /* on a blocking-pool thread */
    level_load *l = arg;
    unsigned char *buf = malloc(LEVEL_BYTES);
    struct timespec ts = {0, LEVEL_SLEEP_MS * 1000000L};
    l->work_thread = pthread_self();
    atomic_fetch_add(&l->work_runs, 1);
    nanosleep(&ts, NULL); /* the "disk" */
    if (!buf) return;     /* checksum stays 0: the check fails */
    level_data(buf, LEVEL_BYTES);
    l->checksum = fnv1a(FNV_INIT, buf, LEVEL_BYTES);
    free(buf);
}

static void level_done(void *arg, int status) { /* on the game thread */
    level_load *l = arg;
    ON_GAME_THREAD();
    l->done_calls++;
    l->done_status = status;
    l->delivered_frame = frame_no;
    l->delivered_ns = now_ns();
}

/* ---------------- bursts of small tasks ---------------- */

typedef struct {
    int order; /* rank in which it ran, -1 until then */
    int calls, status;
} burst_task;

static burst_task bursts[N_BURSTS][BURST_TASKS];
static int burst_ran; /* across all bursts */

static void burst_cb(void *arg, int status) {
    burst_task *t = arg;
    ON_GAME_THREAD();
    t->calls++;
    t->status = status;
    t->order = burst_ran++;
    spin_us(BURST_SPIN_US); /* an entity update, say */
}

/* ---------------- AI jobs on a multi-thread runtime ---------------- */

typedef struct {
    uint32_t input;
    uint64_t result;
    int delivered, status, frame_posted;
} ai_job;

static ai_job ai[N_AI];
static rt_queue *ai_queue;
static atomic_long ai_posted, ai_post_errors;
static long ai_delivered, ai_cancelled, ai_bad;

static uint64_t ai_compute(uint32_t input) {
    uint64_t h = FNV_INIT;
    uint32_t k;
    for (k = 0; k < 2000; k++) h = (h ^ (input + k)) * 1099511628211ull;
    return h;
}

static void ai_deliver(void *arg, int status) { /* in rt_queue_drain: game thread */
    ai_job *j = arg;
    if (status != 0) { ai_cancelled++; return; }
    if (!pthread_equal(pthread_self(), game_thread)) off_thread_calls++;
    j->delivered++;
    j->status = status;
    if (j->result != ai_compute(j->input)) ai_bad++;
    ai_delivered++;
}

static void ai_job_cb(void *arg, int status) { /* on a worker of the mt runtime */
    ai_job *j = arg;
    int rc;
    if (status != 0) return; /* the mt runtime is shut down only after all ran */
    j->result = ai_compute(j->input);
    rc = rt_queue_post(ai_queue, ai_deliver, j);
    if (rc != 0) atomic_fetch_add(&ai_post_errors, 1);
    else atomic_fetch_add(&ai_posted, 1);
}

/* ---------------- the frame loop ---------------- */

typedef struct { /* one stats window */
    int frames, left_frames, wakeups;
    long ran;
    int64_t frame_ns_sum, frame_ns_max, rt_ns_sum, rt_ns_max;
} window;

/* Time inside rt_run_budget per frame, wall clock and this thread's CPU
 * time: a frame in which the game thread was preempted (the difference is
 * over PREEMPTED_NS) shows the machine's load, not the runtime's budget. */
#define PREEMPTED_NS 1000000
static int64_t rt_ns_max_all;     /* wall, any frame */
static int64_t rt_ns_max_kept;    /* wall, frames that were not preempted */
static int64_t rt_cpu_ns_max_all; /* CPU time, any frame */
static int64_t frame_budget_max;  /* BUDGET_US + slack, in ns */
/* Frames over frame_budget_max (CPU time, or wall time unless preempted). */
static int over_frames;
#define MAX_OVER_FRAMES 1
/* rt_run_budget calls so far, and the frames in which more burst tasks ran
 * than the budget allows (a count the machine's load can only lower). */
static long budget_calls;
static int overfull_frames;
static int preempted_frames;
static int left_frames_all, spurious_wakeups;
static long ran_all, drained_all;

static int64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int run_budget(rt_runtime *rt, int64_t budget_ns, int64_t *spent_ns, int64_t *cpu_spent_ns) {
    int64_t t0 = now_ns(), c0 = cpu_ns();
    int n = rt_run_budget(rt, (uint64_t)(budget_ns / 1000), MAX_CALLBACKS);
    budget_calls++;
    *cpu_spent_ns += cpu_ns() - c0;
    *spent_ns += now_ns() - t0;
    if (n < 0) {
        fprintf(stderr, "rt_run_budget: %s\n", rt_strerror(n));
        failures++;
        return 0;
    }
    return n;
}

/* One frame's runtime work and the wait until `deadline`. */
static void frame_runtime(rt_runtime *rt, int64_t deadline, window *w) {
    int64_t spent = 0, cpu_spent = 0;
    int ran = 0, left, n, backend_fd = rt_backend_fd(rt), queue_fd = rt_queue_fd(ai_queue);
    int burst0 = burst_ran;
    long calls0 = budget_calls;
    ran += run_budget(rt, BUDGET_US * 1000LL, &spent, &cpu_spent);
    n = rt_queue_drain(ai_queue, 0);
    if (n > 0) drained_all += n;
    /* Sleep until the deadline, but run what arrives meanwhile (echoes,
     * completions) while this frame's budget lasts. */
    for (;;) {
        struct pollfd pfd[2];
        struct timespec ts;
        int64_t remain = deadline - now_ns(), budget_left = BUDGET_US * 1000LL - spent;
        int rc;
        if (remain <= 0) break;
        pfd[0].fd = budget_left > 50000 ? backend_fd : -1; /* budget used up: only sleep */
        pfd[0].events = POLLIN;
        pfd[1].fd = queue_fd;
        pfd[1].events = POLLIN;
        pfd[0].revents = pfd[1].revents = 0;
        ts.tv_sec = remain / 1000000000LL;
        ts.tv_nsec = remain % 1000000000LL;
        rc = ppoll(pfd, 2, &ts, NULL);
        if (rc < 0 && errno != EINTR) { perror("ppoll"); failures++; break; }
        if (rc <= 0) continue;
        w->wakeups++;
        if (pfd[0].revents & POLLIN) {
            n = run_budget(rt, budget_left, &spent, &cpu_spent);
            /* Readable, but nothing to run and nothing due: count it, and
             * stop watching the fd for the rest of this frame (no spinning). */
            if (n == 0 && rt_backend_timeout(rt) != 0) { spurious_wakeups++; backend_fd = -1; }
            ran += n;
        }
        if (pfd[1].revents & POLLIN) {
            n = rt_queue_drain(ai_queue, 0);
            if (n > 0) drained_all += n;
        }
    }
    /* Work left for the next frame (this frame's budget ran out): the
     * runtime says so with a timeout of 0. */
    left = rt_backend_timeout(rt) == 0;
    w->ran += ran;
    ran_all += ran;
    w->left_frames += left;
    left_frames_all += left;
    w->rt_ns_sum += spent;
    if (spent > w->rt_ns_max) w->rt_ns_max = spent;
    if (spent > rt_ns_max_all) rt_ns_max_all = spent;
    if (cpu_spent > rt_cpu_ns_max_all) rt_cpu_ns_max_all = cpu_spent;
    if (spent - cpu_spent > PREEMPTED_NS) preempted_frames++;
    else if (spent > rt_ns_max_kept) rt_ns_max_kept = spent;
    if (cpu_spent > frame_budget_max || (spent - cpu_spent <= PREEMPTED_NS && spent > frame_budget_max))
        over_frames++;
    /* The same promise counted, not timed: a burst task spins BURST_SPIN_US
     * of wall time, each call starts callbacks only within its budget (the
     * calls' budgets add up to at most BUDGET_US) plus at most one past it,
     * so a frame runs at most BUDGET_US / BURST_SPIN_US + calls of them. A
     * stalled machine makes each take longer, so fewer run, never more. */
    if (burst_ran - burst0 > BUDGET_US / BURST_SPIN_US + (budget_calls - calls0)) overfull_frames++;
}

/* Warm-up, before the first frame: each code path the frames use runs once
 * (a packet's round trip, a task, a blocking job's completion, an AI job
 * through the queue). Natively it takes about a millisecond; under valgrind,
 * where the first run of any code is slow, it keeps that out of the frames'
 * budget check. */
static void warm_cb(void *arg, int status) { /* on the game thread */
    ON_GAME_THREAD();
    if (status == 0) (*(int *)arg)++;
}
static void warm_work(void *arg) { (void)arg; }
static void warm_ai(void *arg, int status) { /* on a worker */
    if (status == 0 && rt_queue_post(ai_queue, warm_cb, arg) != 0) atomic_fetch_add(&ai_post_errors, 1);
}

static int warm_up(rt_runtime *rt, rt_runtime *mt) {
    static int warm; /* callbacks run: 3 expected */
    int64_t until = now_ns() + 10000000000LL;
    if (send_packet(WARMUP_SEQ) || rt_spawn(rt, warm_cb, &warm, NULL) ||
        rt_spawn_blocking(rt, warm_work, warm_cb, &warm, NULL) || rt_spawn(mt, warm_ai, &warm, NULL))
        return -1;
    while ((warm < 3 || warmup_echoes < 1) && now_ns() < until) {
        struct pollfd pfd[2] = {{rt_backend_fd(rt), POLLIN, 0}, {rt_queue_fd(ai_queue), POLLIN, 0}};
        if (rt_run_budget(rt, BUDGET_US, MAX_CALLBACKS) < 0) return -1;
        rt_queue_drain(ai_queue, 0);
        poll(pfd, 2, rt_backend_timeout(rt) == 0 ? 0 : 10);
    }
    return warm == 3 && warmup_echoes == 1 ? 0 : -1;
}

static int all_done(void) {
    return client_received + client_dup + client_bad >= pkts_sent && level.done_calls > 0 &&
           burst_ran == N_BURSTS * BURST_TASKS && ai_delivered >= N_AI;
}

int main(void) {
    rt_config cfg;
    rt_runtime *rt, *mt;
    rt_metrics m;
    window w = {0};
    int rc, i, b, ai_spawned = 0, bursts_spawned = 0, slack_us = 1000, last_run;
    int64_t last_run_ns, start, deadline, prev_frame = 0, drain_until = 0;
    const char *env = getenv("GAME_LOOP_SLACK_US");
    if (env && atoi(env) > 0) slack_us = atoi(env);
    frame_budget_max = (BUDGET_US + slack_us) * 1000LL;
    game_thread = pthread_self();

    rt_config_init(&cfg);
    cfg.flavor = RT_FLAVOR_CURRENT_THREAD;
    if ((rc = rt_runtime_new(&cfg, &rt)) != 0) { fprintf(stderr, "rt_runtime_new: %s\n", rt_strerror(rc)); return 1; }
    rt_config_init(&cfg);
    cfg.worker_threads = 2;
    if ((rc = rt_runtime_new(&cfg, &mt)) != 0) { fprintf(stderr, "rt_runtime_new(mt): %s\n", rt_strerror(rc)); return 1; }
    if ((rc = rt_queue_new(mt, &ai_queue)) != 0) { fprintf(stderr, "rt_queue_new: %s\n", rt_strerror(rc)); return 1; }

    server.rt = client.rt = rt;
    if (open_udp(&server) || open_udp(&client)) return 1;
    EXPECT(rt_io_register(rt, server.fd, RT_READABLE, server_cb, &server, &server.id) == 0);
    EXPECT(rt_io_register(rt, client.fd, RT_READABLE, client_cb, &client, &client.id) == 0);
    printf("game loop: %d Hz, %d us of runtime work per frame (max %d callbacks), server 127.0.0.1:%d, "
           "client 127.0.0.1:%d\n", FRAME_HZ, BUDGET_US, MAX_CALLBACKS, ntohs(server.addr.sin_port),
           ntohs(client.addr.sin_port));
    start = now_ns();
    if (warm_up(rt, mt) != 0) { fprintf(stderr, "warm-up failed\n"); return 1; }
    printf("warm-up (one run of each code path) took %.1f ms\n", (now_ns() - start) / 1e6);
    printf("%6s %15s %20s %6s %5s %8s %6s %7s\n", "frame", "frame ms avg/max", "in runtime ms avg/max", "ran",
           "left", "echoed", "wakes", "ai");

    start = deadline = now_ns();
    for (frame_no = 0;; frame_no++) {
        int64_t t = now_ns();
        if (frame_no > 0) { /* the previous frame's length */
            int64_t len = t - prev_frame;
            w.frame_ns_sum += len;
            if (len > w.frame_ns_max) w.frame_ns_max = len;
        }
        prev_frame = t;
        deadline += FRAME_NS;
        if (deadline < t) deadline = t + FRAME_NS; /* fell behind: do not try to catch up */

        /* ---- game logic ---- */
        if (frame_no < RUN_FRAMES) {
            send_packets();
            for (i = 0; i < AI_PER_FRAME; i++, ai_spawned++) {
                ai[ai_spawned].input = (uint32_t)ai_spawned;
                ai[ai_spawned].frame_posted = frame_no;
                EXPECT(rt_spawn(mt, ai_job_cb, &ai[ai_spawned], NULL) == 0);
            }
        }
        if (frame_no == LEVEL_LOAD_FRAME) {
            level.requested_frame = frame_no;
            level.requested_ns = now_ns();
            EXPECT(rt_spawn_blocking(rt, level_work, level_done, &level, NULL) == 0);
        }
        if (bursts_spawned < N_BURSTS && frame_no == burst_frames[bursts_spawned]) {
            for (i = 0; i < BURST_TASKS; i++) {
                bursts[bursts_spawned][i].order = -1;
                EXPECT(rt_spawn(rt, burst_cb, &bursts[bursts_spawned][i], NULL) == 0);
            }
            bursts_spawned++;
        }

        /* ---- the runtime's share of the frame, then the wait ---- */
        frame_runtime(rt, deadline, &w);
        w.frames++;

        if (w.frames == STATS_EVERY) {
            printf("%6d %7.2f /%6.2f %10.3f /%8.3f %6ld %5d %4ld/%-4ld %5d %3ld/%ld\n", frame_no,
                   w.frame_ns_sum / 1e6 / (frame_no < STATS_EVERY ? STATS_EVERY - 1 : STATS_EVERY),
                   w.frame_ns_max / 1e6, w.rt_ns_sum / 1e6 / STATS_EVERY, w.rt_ns_max / 1e6, w.ran,
                   w.left_frames, client_received, pkts_sent, w.wakeups, ai_delivered, (long)ai_spawned);
            memset(&w, 0, sizeof w);
        }
        if (frame_no + 1 >= RUN_FRAMES) {
            if (!drain_until) drain_until = now_ns() + DRAIN_MAX_MS * 1000000LL;
            if (all_done() || now_ns() > drain_until) break;
        }
    }
    printf("%d frames in %.2f s; the last %d only to collect what was in flight\n", frame_no + 1,
           (now_ns() - start) / 1e9, frame_no + 1 - RUN_FRAMES);

    /* ---- shutdown ---- */
    EXPECT(rt_io_deregister(rt, server.id) == 0);
    EXPECT(rt_io_deregister(rt, client.id) == 0);
    close(server.fd);
    close(client.fd);
    /* Nothing is left (no task, timer, fd or blocking job): rt_run(DEFAULT)
     * only reaps the two deregistered fd tasks and returns at once. */
    start = now_ns();
    last_run = rt_run(rt, RT_RUN_DEFAULT);
    last_run_ns = now_ns() - start;
    EXPECT(rt_runtime_metrics(rt, &m) == 0);
    EXPECT(rt_runtime_shutdown(rt, 5000) == 0);
    rt_runtime_free(rt);
    EXPECT(rt_runtime_shutdown(mt, 5000) == 0); /* every AI job ran (checked below) */
    rc = rt_queue_drain(ai_queue, 0);
    if (rc > 0) drained_all += rc;
    rt_queue_free(ai_queue);
    rt_runtime_free(mt);

    /* ---- the checks ---- */
    printf("network: %ld packets sent, %ld echoed by the server, %ld echoes verified by the client "
           "(%ld bad, %ld duplicate, %ld send errors); round trip at most %d frame(s)\n",
           pkts_sent, server_echoed, client_received, client_bad + server_bad, client_dup, send_errors,
           max_rtt_frames);
    printf("         server callbacks %ld, client callbacks %ld\n", server.calls, client.calls);
    EXPECT(pkts_sent == N_PKTS && send_errors == 0);
    EXPECT(server_echoed == N_PKTS + warmup_echoes && client_received == N_PKTS);
    EXPECT(server_bad == 0 && client_bad == 0 && client_dup == 0);
    EXPECT(server.errors == 0 && client.errors == 0 && server.cancelled == 0 && client.cancelled == 0);
    for (i = 0; i < N_PKTS; i++) EXPECT(seen[i] == 1);

    {
        unsigned char *buf = malloc(LEVEL_BYTES);
        uint64_t want = 0;
        if (buf) {
            level_data(buf, LEVEL_BYTES);
            want = fnv1a(FNV_INIT, buf, LEVEL_BYTES);
            free(buf);
        }
        printf("level load: requested in frame %d, delivered in frame %d (%.1f ms later, %d frame(s)), "
               "%d done call(s), status %s, checksum %016llx (%s)\n",
               level.requested_frame, level.delivered_frame, (level.delivered_ns - level.requested_ns) / 1e6,
               level.delivered_frame - level.requested_frame, level.done_calls,
               rt_err_name(level.done_status), (unsigned long long)level.checksum,
               level.checksum == want ? "right" : "WRONG");
        EXPECT(level.done_calls == 1 && level.done_status == 0 && atomic_load(&level.work_runs) == 1);
        EXPECT(level.checksum == want && want != 0);
        EXPECT(!pthread_equal(level.work_thread, game_thread)); /* the work ran on the pool */
        EXPECT(level.delivered_ns - level.requested_ns >= LEVEL_SLEEP_MS * 1000000LL);
        EXPECT(level.delivered_frame > level.requested_frame);
    }

    for (b = 0; b < N_BURSTS; b++)
        for (i = 0; i < BURST_TASKS; i++) {
            burst_task *t = &bursts[b][i];
            EXPECT(t->calls == 1 && t->status == 0);
            EXPECT(t->order == b * BURST_TASKS + i); /* FIFO, across frames */
        }
    printf("bursts: %d x %d tasks of %d us, all run once in order; %d frame(s) left work for the next\n",
           N_BURSTS, BURST_TASKS, BURST_SPIN_US, left_frames_all);
    EXPECT(left_frames_all > 0); /* the bursts cannot fit in one frame */

    printf("AI jobs: %d spawned on the multi-thread runtime, %ld posted, %ld delivered on the game thread "
           "(%ld bad, %ld cancelled, %ld post errors), %ld drained in all\n",
           ai_spawned, atomic_load(&ai_posted), ai_delivered, ai_bad, ai_cancelled, atomic_load(&ai_post_errors),
           drained_all);
    EXPECT(ai_spawned == N_AI && atomic_load(&ai_posted) == N_AI && ai_delivered == N_AI);
    EXPECT(ai_bad == 0 && ai_cancelled == 0 && atomic_load(&ai_post_errors) == 0 && drained_all == N_AI);
    for (i = 0; i < N_AI; i++) EXPECT(ai[i].delivered == 1);

    printf("runtime: %ld tasks run by rt_run_budget; time inside it in one frame at most %.3f ms (wall), "
           "%.3f ms (CPU); budget %d us + slack %d us\n", ran_all, rt_ns_max_all / 1e6, rt_cpu_ns_max_all / 1e6,
           BUDGET_US, slack_us);
    printf("         %d frame(s) preempted inside it (excluded from the wall-clock check; at most %.3f ms "
           "in the others), %d spurious backend-fd wakeup(s)\n", preempted_frames, rt_ns_max_kept / 1e6,
           spurious_wakeups);
    printf("         %d frame(s) over budget + slack (at most %d allowed: a host's hiccup), %d frame(s) that "
           "ran more %d us burst tasks than the budget allows\n", over_frames, MAX_OVER_FRAMES, overfull_frames,
           BURST_SPIN_US);
    printf("shutdown: with the fds deregistered, rt_run(RT_RUN_DEFAULT) returned %d after %.2f ms; then %llu "
           "task(s) alive (of %llu spawned), %llu fd registration(s), %llu timer(s)\n", last_run,
           last_run_ns / 1e6, (unsigned long long)m.tasks_alive, (unsigned long long)m.tasks_spawned,
           (unsigned long long)m.io_registrations, (unsigned long long)m.timers);
    EXPECT(last_run >= 0 && last_run_ns < 1000000000LL);
    EXPECT(m.tasks_alive == 0 && m.io_registrations == 0 && m.timers == 0);
    EXPECT(over_frames <= MAX_OVER_FRAMES && overfull_frames == 0);
    EXPECT(reentrancy_checked && reentrant_rc == RT_EDEADLK);
    EXPECT(off_thread_calls == 0);
    printf("game_loop: %s\n", failures ? "FAILED" : "OK");
    return failures ? 1 : 0;
}
