// main.cpp - librt from C++17 through the RAII wrappers of rt.hpp.
//
//  1. callback tasks: lambdas with captures on a current-thread runtime,
//     rt_run(RT_RUN_DEFAULT) until no work is left; an abort before the run;
//  2. timers: one-shots fire in order, a destroyed Timer never fires, a
//     repeating one stops itself from inside its callback, another is
//     stopped by a queued callback that its own callback drains;
//  3. an fd: one end of a socketpair watched (level-triggered) while a
//     thread writes a pattern into the other; the callback checks it and
//     deregisters itself at EOF, which ends rt_run(RT_RUN_DEFAULT);
//  4. blocking work: spawn_blocking, its done delivered on this thread
//     by rt_run(RT_RUN_ONCE);
//  5. run modes: NOWAIT never blocks, rt_wake ends a blocking ONCE, rt_stop
//     ends DEFAULT, a host poll()s rt_backend_fd with rt_backend_timeout,
//     a cross-thread spawn wakes it, rt_run_budget, re-entrancy refused, and
//     a timer still armed at shutdown gets its final RT_ECANCELED call;
//  6. a multi-thread runtime computing on its workers and delivering the
//     results to this thread through a CompletionQueue drained when its fd
//     is readable; a queue destroyed with entries cancels them.
// Every callback captures a shared_ptr token: once everything is destroyed
// its use count must be back to 1, i.e. every std::function was freed
// exactly once (valgrind checks the "exactly"). Exit status 0 only if every
// check passed.
#include "rt.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

static std::atomic<int> failures{0};
#define EXPECT(cond)                                                                   \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            std::fprintf(stderr, "FAILED: %s (line %d)\n", #cond, __LINE__);           \
            failures++;                                                                \
        }                                                                              \
    } while (0)

using Clock = std::chrono::steady_clock;
static double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}
static void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

static unsigned char pattern(size_t k) { return static_cast<unsigned char>(k * 7 + (k >> 9)); }

static uint64_t compute(uint64_t i) { // a job for the workers
    uint64_t h = 1469598103934665603ull ^ i;
    for (int k = 0; k < 5000; k++) h = (h ^ static_cast<uint64_t>(k)) * 1099511628211ull;
    return h;
}

int main() {
    auto token = std::make_shared<int>(0); // captured by every callback
    const auto main_id = std::this_thread::get_id();
    int far_calls = 0, far_status = 0;
    {
        rt::Runtime ct = rt::Runtime::current_thread();

        // ---- 1. callback tasks ----
        {
            std::vector<int> order;
            std::vector<rt::Task> tasks;
            int nested = 0, wrong_thread = 0;
            for (int i = 0; i < 10; i++)
                tasks.push_back(ct.spawn([&, i, token, msg = "task " + std::to_string(i)](int st) {
                    EXPECT(st == 0 && msg == "task " + std::to_string(i));
                    wrong_thread += std::this_thread::get_id() != main_id;
                    order.push_back(i);
                    if (i == 9) // spawned from inside a callback: runs in the same rt_run
                        ct.spawn_detached([&nested, token](int s) { nested += s == 0; });
                }));
            int aborted_status = 1, aborted_calls = 0;
            rt::Task doomed = ct.spawn([&aborted_status, &aborted_calls, token](int st) {
                aborted_status = st;
                aborted_calls++;
            });
            EXPECT(doomed.abort() == 0); // not started: it gets RT_ECANCELED instead
            int n = ct.run(RT_RUN_DEFAULT);
            EXPECT(aborted_calls == 1 && aborted_status == RT_ECANCELED && doomed.finished());
            bool in_order = order.size() == 10;
            for (int i = 0; in_order && i < 10; i++) in_order = order[static_cast<size_t>(i)] == i;
            std::printf("tasks: run(DEFAULT) ran %d callbacks; order %s; nested spawn ran %d; abort -> %s\n", n,
                        in_order ? "0..9" : "WRONG", nested, rt_err_name(aborted_status));
            EXPECT(in_order && nested == 1 && wrong_thread == 0 && n >= 11);
            for (auto &t : tasks) EXPECT(t.finished() && t.join(0) == 0);
            rt::Task copy = tasks[0]; // rt_task_clone; both released
            EXPECT(copy.finished() && tasks[0].abort() == RT_EALREADY);
        }

        // ---- 2. timers ----
        {
            std::vector<int> fired;
            bool never_called = false;
            int ticks = 0, self_stop_rc = 1;
            auto t0 = Clock::now();
            rt::Timer a = ct.timer(30, 0, [&fired, token](int st) { if (st == 0) fired.push_back(30); });
            rt::Timer b = ct.timer(10, 0, [&fired, token](int st) { if (st == 0) fired.push_back(10); });
            rt::Timer c = ct.timer(20, 0, [&fired, token](int st) { if (st == 0) fired.push_back(20); });
            { rt::Timer never = ct.timer(15, 0, [&never_called, token](int) { never_called = true; }); }
            rt::Timer rep;
            rep = ct.timer(5, 5, [&, token](int st) {
                if (st == 0 && ++ticks == 4) self_stop_rc = rep.stop(); // from inside: freed after this call
            });
            int n = ct.run(RT_RUN_DEFAULT); // returns when no timer is left
            double el = ms_since(t0);
            std::printf("timers: run(DEFAULT) returned after %.1f ms, %d callbacks; fired", el, n);
            for (int f : fired) std::printf(" %d", f);
            std::printf(" ms; repeater stopped itself after %d ticks (%s); destroyed timer called: %s\n", ticks,
                        rt_err_name(self_stop_rc), never_called ? "yes" : "no");
            EXPECT((fired == std::vector<int>{10, 20, 30}) && el >= 30);
            EXPECT(!never_called && ticks == 4 && self_stop_rc == 0 && !rep);
            EXPECT(a.stop() == RT_ENOENT); // fired one-shot: its call freed it

            // Stopped from a queued callback that the timer's own callback
            // drains: the timer's call is still on the stack, so its function
            // is freed once that call returns, not during it.
            rt::CompletionQueue cq(ct);
            int qticks = 0, qstop_rc = 1;
            rt::Timer qt;
            qt = ct.timer(3, 3, [&, token](int st) {
                if (st != 0) return;
                if (++qticks == 2) cq.post([&, token](int) { qstop_rc = qt.stop(); });
                cq.drain();
            });
            n = ct.run(RT_RUN_DEFAULT);
            std::printf("timers: a repeater stopped from a queued callback it drained itself: %d ticks, stop -> %s\n",
                        qticks, rt_err_name(qstop_rc));
            EXPECT(qticks == 2 && qstop_rc == 0 && !qt);
        }

        // ---- 3. an fd ----
        {
            int sv[2];
            EXPECT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
            EXPECT(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) == 0);
            const size_t total = 1 << 20;
            size_t got = 0, bad = 0;
            int calls = 0, cancelled = 0, dereg_rc = 1;
            bool eof = false;
            rt::IoRegistration reg;
            reg = ct.watch(sv[0], RT_READABLE, [&, token](rt_fd fd, uint32_t, int st) {
                if (st != 0) { cancelled++; return; }
                calls++;
                unsigned char buf[8192];
                ssize_t r = read(fd, buf, sizeof buf); // one read per call: level-triggered brings us back
                for (ssize_t k = 0; k < r; k++) bad += buf[k] != pattern(got + static_cast<size_t>(k));
                if (r > 0) got += static_cast<size_t>(r);
                if (r == 0) { // EOF: deregister from inside; rt_run(DEFAULT) then has nothing left
                    eof = true;
                    dereg_rc = reg.deregister();
                }
            });
            std::thread writer([&] {
                std::vector<unsigned char> chunk(10000);
                for (size_t off = 0; off < total;) {
                    size_t n = std::min(chunk.size(), total - off);
                    for (size_t k = 0; k < n; k++) chunk[k] = pattern(off + k);
                    ssize_t w = write(sv[1], chunk.data(), n);
                    if (w <= 0) { failures++; break; }
                    off += static_cast<size_t>(w);
                    if (off % 100000 < 10000) sleep_ms(1);
                }
                close(sv[1]);
            });
            auto t0 = Clock::now();
            int n = ct.run(RT_RUN_DEFAULT);
            writer.join();
            std::printf("fd: %zu bytes over a socketpair in %.1f ms, %d callbacks (%d tasks run), %zu bad, EOF %s, "
                        "deregister from inside -> %s\n", got, ms_since(t0), calls, n, bad, eof ? "yes" : "no",
                        rt_err_name(dereg_rc));
            EXPECT(got == total && bad == 0 && eof && dereg_rc == 0 && cancelled == 0 && !reg);
            close(sv[0]);
        }

        // ---- 4. blocking work ----
        {
            uint64_t result = 0;
            std::thread::id work_tid, done_tid;
            int done_status = 1, loops = 0;
            auto t0 = Clock::now();
            rt::Task job = ct.spawn_blocking(
                [&] {
                    work_tid = std::this_thread::get_id();
                    sleep_ms(50);
                    for (uint64_t k = 1; k <= 1000000; k++) result += k;
                },
                [&, token](int st) {
                    done_tid = std::this_thread::get_id();
                    done_status = st;
                });
            while (done_status == 1 && loops < 100) {
                int n = ct.run(RT_RUN_ONCE); // blocks until the completion arrives
                EXPECT(n >= 0);
                loops++;
            }
            std::printf("blocking: result %llu after %.1f ms, done on the %s thread after %d run(ONCE) call(s)\n",
                        static_cast<unsigned long long>(result), ms_since(t0),
                        done_tid == main_id ? "main" : "WRONG", loops);
            EXPECT(done_status == 0 && result == 500000500000ull && done_tid == main_id && work_tid != main_id);
            EXPECT(loops <= 3 && job.finished());
        }

        // ---- 5. run modes ----
        {
            auto t0 = Clock::now();
            int n = ct.run(RT_RUN_NOWAIT);
            double el = ms_since(t0);
            std::printf("run(NOWAIT) with nothing ready: %d in %.2f ms\n", n, el);
            EXPECT(n == 0 && el < 500);

            // A timer far in the future keeps work alive; left armed until shutdown.
            rt::Timer far = ct.timer(60000, 0, [&far_calls, &far_status, token](int st) {
                far_calls++;
                far_status = st;
            });
            // Arming it left internal work (the timer's task) ready: run it, so
            // that nothing is ready and run(ONCE) below really has to wait.
            n = ct.run(RT_RUN_NOWAIT);
            int far_timeout = ct.backend_timeout();
            std::printf("armed a 60 s timer: run(NOWAIT) then ran %d, backend timeout now %d ms\n", n, far_timeout);
            // (Not necessarily 60000: the wheel may want to run earlier, to move
            // the timer to a finer level; it still fires on time.)
            EXPECT(far_timeout > 1000);

            std::thread waker([&] { sleep_ms(50); ct.wake(); });
            t0 = Clock::now();
            n = ct.run(RT_RUN_ONCE);
            el = ms_since(t0);
            waker.join();
            std::printf("run(ONCE) ended by rt_wake from another thread: %d callbacks, after %.1f ms\n", n, el);
            EXPECT(n == 0 && el >= 40 && el < 5000);

            int ticks = 0, stop_rc = 1;
            rt::Timer rep = ct.timer(2, 2, [&, token](int st) {
                if (st == 0 && ++ticks == 3) stop_rc = ct.stop();
            });
            n = ct.run(RT_RUN_DEFAULT); // would run 60 s: rt_stop ends it
            std::printf("run(DEFAULT) ended by rt_stop from a callback after %d ticks (%d callbacks)\n", ticks, n);
            EXPECT(ticks == 3 && stop_rc == 0 && rep.stop() == 0);

            // The host's own loop: poll() the backend fd with the backend
            // timeout, then run(NOWAIT), until the 30 ms timer fired.
            bool fired = false;
            int fd = ct.backend_fd(), iterations = 0, pr = 0, timeouts[8] = {0};
            pollfd p{fd, POLLIN, 0};
            t0 = Clock::now();
            rt::Timer soon = ct.timer(30, 0, [&fired, token](int st) { fired = st == 0; });
            while (!fired && iterations < 1000) {
                int to = ct.backend_timeout();
                if (iterations < 8) timeouts[iterations] = to;
                p.revents = 0;
                pr = poll(&p, 1, to);
                EXPECT(ct.run(RT_RUN_NOWAIT) >= 0);
                iterations++;
            }
            el = ms_since(t0);
            std::printf("host poll loop on backend fd %d: the 30 ms timer fired after %.1f ms in %d iteration(s), "
                        "timeouts", fd, el, iterations);
            for (int k = 0; k < iterations && k < 8; k++) std::printf(" %d", timeouts[k]);
            std::printf(" ms, last poll -> %d\n", pr); // 1: woken by the fd; 0: its timeout ran out first
            EXPECT(fd >= 0 && fired && el >= 30 && iterations <= 10 && pr >= 0);

            // A spawn from another thread makes the backend fd readable.
            bool remote_ran = false;
            std::thread spawner([&] { sleep_ms(20); ct.spawn_detached([&remote_ran, token](int st) { remote_ran = st == 0; }); });
            p.revents = 0;
            t0 = Clock::now();
            pr = poll(&p, 1, 5000);
            el = ms_since(t0);
            spawner.join();
            int timeout_then = ct.backend_timeout();
            n = ct.run_budget(2000, 64);
            std::printf("cross-thread spawn: backend fd readable after %.1f ms (timeout then %d), run_budget ran %d\n",
                        el, timeout_then, n);
            EXPECT(pr == 1 && timeout_then == 0 && remote_ran && n >= 1 && el < 4000);

            // Re-entrancy is refused.
            int inner_run = 1, inner_budget = 1;
            ct.spawn_detached([&, token](int) {
                inner_run = ct.run(RT_RUN_NOWAIT);
                inner_budget = ct.run_budget(100, 1);
            });
            EXPECT(ct.run(RT_RUN_NOWAIT) == 1);
            std::printf("rt_run / rt_run_budget from inside a callback: %s / %s\n", rt_err_name(inner_run),
                        rt_err_name(inner_budget));
            EXPECT(inner_run == RT_EDEADLK && inner_budget == RT_EDEADLK);

            // `far` is still armed: shutdown makes its final call (and frees its
            // function); the Timer's destructor then finds the runtime shut down.
            EXPECT(ct.shutdown(5000) == 0);
            EXPECT(far.stop() == RT_ESHUTDOWN);
            std::printf("shutdown with a 60 s timer armed: %d final call(s), status %s\n", far_calls,
                        rt_err_name(far_status));
            EXPECT(far_calls == 1 && far_status == RT_ECANCELED);
            EXPECT(ct.run(RT_RUN_NOWAIT) == RT_ESHUTDOWN);
        }
    }

    // ---- 6. a multi-thread runtime and a completion queue ----
    {
        rt::Runtime mt = rt::Runtime::multi_thread(4);
        EXPECT(mt.run(RT_RUN_NOWAIT) == RT_EINVAL && mt.backend_fd() == RT_EINVAL);
        rt::CompletionQueue q(mt);
        constexpr int N = 1000;
        std::vector<uint64_t> results(N, 0);
        std::atomic<int> posted{0};
        int delivered = 0, off_main = 0;
        std::mutex mu;
        std::set<std::thread::id> workers;
        auto t0 = Clock::now();
        for (int i = 0; i < N; i++)
            mt.spawn_detached([&, i, token](int st) {
                if (st != 0) return;
                uint64_t r = compute(static_cast<uint64_t>(i));
                {
                    std::lock_guard<std::mutex> g(mu);
                    workers.insert(std::this_thread::get_id());
                }
                int rc = q.post([&, i, r, token](int st2) { // runs on the draining thread
                    off_main += std::this_thread::get_id() != main_id;
                    if (st2 == 0) {
                        results[static_cast<size_t>(i)] = r;
                        delivered++;
                    }
                });
                if (rc == 0) posted++;
            });
        int drains = 0;
        while (delivered < N && ms_since(t0) < 10000) {
            pollfd p{q.fd(), POLLIN, 0};
            if (poll(&p, 1, 100) == 1) {
                EXPECT(q.drain() > 0);
                drains++;
            }
        }
        int bad = 0;
        for (int i = 0; i < N; i++) bad += results[static_cast<size_t>(i)] != compute(static_cast<uint64_t>(i));
        pollfd p{q.fd(), POLLIN, 0};
        int readable_after = poll(&p, 1, 0);
        std::printf("completion queue: %d jobs on %zu worker thread(s), %d posted, %d delivered on the main thread "
                    "in %d drains (%.1f ms), %d wrong, queue fd readable after: %d\n", N, workers.size(),
                    posted.load(), delivered, drains, ms_since(t0), bad, readable_after);
        EXPECT(posted == N && delivered == N && bad == 0 && off_main == 0 && readable_after == 0);
        EXPECT(workers.count(main_id) == 0);

        // Blocking work on the multi-thread runtime, joined from here.
        std::thread::id done_tid;
        rt::Task job = mt.spawn_blocking([] { sleep_ms(20); }, [&done_tid, token](int) { done_tid = std::this_thread::get_id(); });
        rt::Task job2 = job;
        EXPECT(job2.join(5000) == 0 && done_tid != main_id);

        // A queue destroyed with entries: each gets RT_ECANCELED, in order.
        std::vector<int> cancelled;
        {
            rt::CompletionQueue q2(mt);
            for (int i = 0; i < 3; i++)
                EXPECT(q2.post([&cancelled, i, token](int st) { if (st == RT_ECANCELED) cancelled.push_back(i); }) == 0);
        }
        std::printf("queue destroyed with 3 entries: %zu cancelled\n", cancelled.size());
        EXPECT((cancelled == std::vector<int>{0, 1, 2}));
    }

    std::printf("function objects still alive: %ld\n", token.use_count() - 1);
    EXPECT(token.use_count() == 1);
    std::printf("cpp example: %s\n", failures ? "FAILED" : "OK");
    return failures ? 1 : 0;
}
