// rt.hpp - header-only C++17 RAII wrappers over librt's C API (rt.h).
//
//   rt::Runtime          owns an rt_runtime (move-only); its destructor shuts
//                        the runtime down and frees it.
//   rt::Task             an rt_task handle (copy = rt_task_clone; destructor
//                        releases it; the task itself is not cancelled).
//   rt::Timer            an armed timer; stop() or the destructor stops it.
//   rt::IoRegistration   an fd watched by the reactor; deregister() or the
//                        destructor deregisters it (the fd stays yours).
//   rt::CompletionQueue  rt_queue_*: post from any thread, drain on yours.
//
// Callbacks are any callables (lambdas with captures included), stored in a
// heap-allocated std::function that the C callback gets as its `arg`. It is
// freed exactly once, by whoever is last to know it will not be called
// again: the trampoline after the library's final call (the only call of a
// task / one-shot timer / blocking job / queued callback, or the
// RT_ECANCELED call at shutdown or rt_queue_free); or the handle, after a
// successful stop/deregister (the library then guarantees no further call).
// A stop/deregister made from inside the callback itself defers the free
// until that call returns. RT_EDEADLK from a stop (the callback is still
// finishing on another thread) parks the function object with the runtime,
// which frees it when it is destroyed.
//
// Errors: functions that create something (constructors, spawn, timer,
// watch, spawn_blocking) throw rt::Error; the others return librt's int
// code (0 / count, or a negative RT_E* value) and never throw. A callback
// must not throw: an exception cannot cross librt's C frames, so it ends the
// program (std::terminate).
//
// Lifetimes: Timer and IoRegistration belong to one runtime and are best
// destroyed before it; one destroyed after it finds the runtime gone and does
// nothing (its callback already got its final call). Destroying a handle and
// its runtime concurrently on two threads is not supported. Task handles and
// CompletionQueues may outlive the runtime (as in the C API).
#ifndef RT_HPP
#define RT_HPP

#include <rt.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace rt {

class Error : public std::runtime_error {
public:
    Error(int code, const char *what)
        : std::runtime_error(std::string(what) + ": " + rt_strerror(code) + " (" + rt_err_name(code) + ")"),
          code_(code) {}
    int code() const noexcept { return code_; }

private:
    int code_;
};

inline int check(int rc, const char *what) {
    if (rc < 0) throw Error(rc, what);
    return rc;
}

namespace detail {

// A callback's heap-allocated state. `free_after_call` is only touched by
// the thread running the callback (a stop from inside it).
struct Thunk {
    virtual ~Thunk() = default;
    bool free_after_call = false;
};

// The callbacks running on this thread, innermost first (more than one when
// a callback drains a CompletionQueue, or a C++ callback runs a nested one).
struct Running;
inline thread_local Running *running_top = nullptr;

struct Running {
    Thunk *thunk;
    Running *outer;
    explicit Running(Thunk *t) noexcept : thunk(t), outer(running_top) { running_top = this; }
    ~Running() { running_top = outer; }
    Running(const Running &) = delete;
    Running &operator=(const Running &) = delete;
};

inline bool running_here(const Thunk *t) noexcept {
    for (Running *r = running_top; r; r = r->outer)
        if (r->thunk == t) return true;
    return false;
}

// State shared by a Runtime and its handles, at a stable address.
struct Core {
    rt_runtime *rt = nullptr;
    std::mutex mu;
    std::vector<std::unique_ptr<Thunk>> parked; // stopped with RT_EDEADLK

    void park(Thunk *t) {
        std::lock_guard<std::mutex> g(mu);
        parked.emplace_back(t);
    }
};

// After a stop/deregister returned 0: no further call will start.
inline void release_stopped(Thunk *t) noexcept {
    if (running_here(t)) t->free_after_call = true; // its own call is on our stack
    else delete t;
}

// Outcome of a stop/deregister for the thunk's ownership.
inline void after_stop(int rc, Thunk *t, Core &core) {
    if (rc == 0) release_stopped(t);
    else if (rc == RT_EDEADLK) core.park(t); // still finishing elsewhere: free with the runtime
    // RT_ENOENT / RT_ESHUTDOWN: the final call was made (or is being made); it frees.
}

template <class Sig>
struct Fn : Thunk {
    std::function<Sig> fn;
    explicit Fn(std::function<Sig> f) : fn(std::move(f)) {}
};

// Calls made by the library. noexcept: a throwing callback terminates.
inline void call_once(void *arg, int status) noexcept {
    auto *t = static_cast<Fn<void(int)> *>(arg);
    {
        Running r(t);
        t->fn(status);
    }
    delete t;
}

struct TimerFn : Fn<void(int)> {
    bool repeating;
    TimerFn(std::function<void(int)> f, bool rep) : Fn(std::move(f)), repeating(rep) {}
};

inline void call_timer(void *arg, int status) noexcept {
    auto *t = static_cast<TimerFn *>(arg);
    {
        Running r(t);
        t->fn(status);
    }
    if (status != 0 || !t->repeating || t->free_after_call) delete t;
}

using IoFn = Fn<void(rt_fd, uint32_t, int)>;

inline void call_io(void *arg, rt_fd fd, uint32_t events, int status) noexcept {
    auto *t = static_cast<IoFn *>(arg);
    {
        Running r(t);
        t->fn(fd, events, status);
    }
    if (status != 0 || t->free_after_call) delete t;
}

struct BlockingFn : Thunk {
    std::function<void()> work;
    std::function<void(int)> done;
};

inline void call_work(void *arg) noexcept { static_cast<BlockingFn *>(arg)->work(); }

inline void call_done(void *arg, int status) noexcept {
    auto *t = static_cast<BlockingFn *>(arg);
    {
        Running r(t);
        t->done(status);
    }
    delete t;
}

} // namespace detail

// ---------------------------------------------------------------- Task

class Task {
public:
    Task() noexcept = default;
    explicit Task(rt_task *t) noexcept : t_(t) {} // adopts the reference
    Task(const Task &o) noexcept : t_(o.t_ ? rt_task_clone(o.t_) : nullptr) {}
    Task(Task &&o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
    Task &operator=(Task o) noexcept {
        std::swap(t_, o.t_);
        return *this;
    }
    ~Task() { rt_task_release(t_); }

    // 0 if the abort took effect, RT_EALREADY if it started or finished.
    int abort() const noexcept { return rt_task_abort(t_); }
    // Waits (at most timeout_ms, negative: forever) for the final call to return.
    int join(int64_t timeout_ms = -1) const noexcept { return rt_task_join(t_, timeout_ms); }
    bool finished() const noexcept { return rt_task_is_finished(t_) == 1; }
    explicit operator bool() const noexcept { return t_ != nullptr; }
    rt_task *get() const noexcept { return t_; }

private:
    rt_task *t_ = nullptr;
};

// ---------------------------------------------------------------- Timer

class Timer {
public:
    Timer() noexcept = default;
    Timer(Timer &&o) noexcept
        : core_(std::move(o.core_)), id_(o.id_), thunk_(std::exchange(o.thunk_, nullptr)) {}
    Timer &operator=(Timer &&o) noexcept {
        if (this != &o) {
            stop();
            core_ = std::move(o.core_);
            id_ = o.id_;
            thunk_ = std::exchange(o.thunk_, nullptr);
        }
        return *this;
    }
    ~Timer() { stop(); }

    // 0: stopped, the callback is not running (unless this is called from
    // inside it) and never runs again. RT_ENOENT: it already fired (one-shot)
    // or was stopped. RT_EDEADLK: stopped, but its call on another thread may
    // still be finishing. RT_ESHUTDOWN: the runtime is shut down.
    int stop() noexcept {
        if (!thunk_) return RT_ENOENT;
        detail::Thunk *t = std::exchange(thunk_, nullptr);
        if (!core_->rt) return RT_ESHUTDOWN; // runtime destroyed: the final call freed it
        int rc = rt_timer_stop(core_->rt, id_);
        detail::after_stop(rc, t, *core_);
        return rc;
    }
    explicit operator bool() const noexcept { return thunk_ != nullptr; }
    rt_timer_id id() const noexcept { return id_; }

private:
    friend class Runtime;
    Timer(std::shared_ptr<detail::Core> c, rt_timer_id id, detail::Thunk *t) noexcept
        : core_(std::move(c)), id_(id), thunk_(t) {}
    std::shared_ptr<detail::Core> core_;
    rt_timer_id id_ = 0;
    detail::Thunk *thunk_ = nullptr; // non-null while we may still have to free it
};

// ---------------------------------------------------------------- IoRegistration

class IoRegistration {
public:
    IoRegistration() noexcept = default;
    IoRegistration(IoRegistration &&o) noexcept
        : core_(std::move(o.core_)), id_(o.id_), fd_(o.fd_), thunk_(std::exchange(o.thunk_, nullptr)) {}
    IoRegistration &operator=(IoRegistration &&o) noexcept {
        if (this != &o) {
            deregister();
            core_ = std::move(o.core_);
            id_ = o.id_;
            fd_ = o.fd_;
            thunk_ = std::exchange(o.thunk_, nullptr);
        }
        return *this;
    }
    ~IoRegistration() { deregister(); }

    int modify(uint32_t interest) const noexcept {
        if (!thunk_) return RT_ENOENT;
        if (!core_->rt) return RT_ESHUTDOWN;
        return rt_io_modify(core_->rt, id_, interest);
    }
    // 0: the callback is not running (unless called from inside it) and is
    // never called again: the fd may be closed. Other codes as Timer::stop.
    int deregister() noexcept {
        if (!thunk_) return RT_ENOENT;
        detail::Thunk *t = std::exchange(thunk_, nullptr);
        if (!core_->rt) return RT_ESHUTDOWN;
        int rc = rt_io_deregister(core_->rt, id_);
        detail::after_stop(rc, t, *core_);
        return rc;
    }
    explicit operator bool() const noexcept { return thunk_ != nullptr; }
    rt_fd fd() const noexcept { return fd_; }

private:
    friend class Runtime;
    IoRegistration(std::shared_ptr<detail::Core> c, rt_io_id id, rt_fd fd, detail::Thunk *t) noexcept
        : core_(std::move(c)), id_(id), fd_(fd), thunk_(t) {}
    std::shared_ptr<detail::Core> core_;
    rt_io_id id_ = 0;
    rt_fd fd_ = -1;
    detail::Thunk *thunk_ = nullptr;
};

// ---------------------------------------------------------------- Runtime

class Runtime {
public:
    explicit Runtime(const rt_config &cfg) : core_(std::make_shared<detail::Core>()) {
        check(rt_runtime_new(&cfg, &core_->rt), "rt_runtime_new");
    }
    static Runtime current_thread() {
        rt_config c;
        rt_config_init(&c);
        c.flavor = RT_FLAVOR_CURRENT_THREAD;
        return Runtime(c);
    }
    static Runtime multi_thread(uint32_t workers = 0) {
        rt_config c;
        rt_config_init(&c);
        c.worker_threads = workers;
        return Runtime(c);
    }

    Runtime(Runtime &&o) noexcept = default;
    Runtime &operator=(Runtime &&o) noexcept {
        if (this != &o) {
            destroy();
            core_ = std::move(o.core_);
        }
        return *this;
    }
    Runtime(const Runtime &) = delete;
    Runtime &operator=(const Runtime &) = delete;
    ~Runtime() { destroy(); }

    rt_runtime *get() const noexcept { return core_ ? core_->rt : nullptr; }

    // Every pending callback gets its final call (RT_ECANCELED); waits at
    // most timeout_ms (negative: no limit) for running work.
    int shutdown(int64_t timeout_ms = -1) noexcept { return rt_runtime_shutdown(get(), timeout_ms); }

    rt_metrics metrics() const noexcept {
        rt_metrics m{};
        rt_runtime_metrics(get(), &m);
        return m;
    }

    // ---- callbacks: f(int status), status 0 or RT_ECANCELED ----

    template <class F>
    Task spawn(F &&f) const {
        rt_task *t = nullptr;
        spawn_impl(std::forward<F>(f), &t);
        return Task(t);
    }
    template <class F>
    void spawn_detached(F &&f) const {
        spawn_impl(std::forward<F>(f), nullptr);
    }

    // f(int status) after timeout_ms, then every repeat_ms (0: once).
    template <class F>
    Timer timer(uint64_t timeout_ms, uint64_t repeat_ms, F &&f) const {
        auto th = std::make_unique<detail::TimerFn>(std::function<void(int)>(std::forward<F>(f)), repeat_ms != 0);
        rt_timer_id id = 0;
        check(rt_timer_start(get(), timeout_ms, repeat_ms, detail::call_timer, th.get(), &id), "rt_timer_start");
        return Timer(core_, id, th.release());
    }

    // f(rt_fd fd, uint32_t events, int status); level-triggered.
    template <class F>
    IoRegistration watch(rt_fd fd, uint32_t interest, F &&f) const {
        auto th = std::make_unique<detail::IoFn>(std::function<void(rt_fd, uint32_t, int)>(std::forward<F>(f)));
        rt_io_id id = 0;
        check(rt_io_register(get(), fd, interest, detail::call_io, th.get(), &id), "rt_io_register");
        return IoRegistration(core_, id, fd, th.release());
    }

    // work() on the blocking pool, then done(int status) on a runtime thread.
    template <class W, class D>
    Task spawn_blocking(W &&work, D &&done) const {
        auto th = std::make_unique<detail::BlockingFn>();
        th->work = std::forward<W>(work);
        th->done = std::forward<D>(done);
        rt_task *t = nullptr;
        check(rt_spawn_blocking(get(), detail::call_work, detail::call_done, th.get(), &t), "rt_spawn_blocking");
        th.release();
        return Task(t);
    }

    // ---- driving a current-thread runtime (return librt's codes) ----

    int run(rt_run_mode mode = RT_RUN_DEFAULT) const noexcept { return rt_run(get(), mode); }
    int run_budget(uint64_t budget_us, uint32_t max_callbacks) const noexcept {
        return rt_run_budget(get(), budget_us, max_callbacks);
    }
    int stop() const noexcept { return rt_stop(get()); }
    int wake() const noexcept { return rt_wake(get()); }
    int backend_fd() const noexcept { return rt_backend_fd(get()); }
    int backend_timeout() const noexcept { return rt_backend_timeout(get()); }

private:
    friend class CompletionQueue;

    template <class F>
    void spawn_impl(F &&f, rt_task **out) const {
        auto th = std::make_unique<detail::Fn<void(int)>>(std::function<void(int)>(std::forward<F>(f)));
        check(rt_spawn(get(), detail::call_once, th.get(), out), "rt_spawn");
        th.release(); // the call frees it
    }

    void destroy() noexcept {
        if (!core_ || !core_->rt) return;
        rt_runtime_free(core_->rt); // shutdown: every final call made, threads joined
        core_->rt = nullptr;
        std::lock_guard<std::mutex> g(core_->mu);
        core_->parked.clear();
    }

    std::shared_ptr<detail::Core> core_;
};

// ---------------------------------------------------------------- CompletionQueue

class CompletionQueue {
public:
    explicit CompletionQueue(const Runtime &rt) { check(rt_queue_new(rt.get(), &q_), "rt_queue_new"); }
    CompletionQueue(CompletionQueue &&o) noexcept : q_(std::exchange(o.q_, nullptr)) {}
    CompletionQueue &operator=(CompletionQueue &&o) noexcept {
        std::swap(q_, o.q_);
        return *this;
    }
    CompletionQueue(const CompletionQueue &) = delete;
    CompletionQueue &operator=(const CompletionQueue &) = delete;
    // What is still queued gets f(RT_ECANCELED) here. Producers must be done.
    ~CompletionQueue() { rt_queue_free(q_); }

    // f(int status) runs in a later drain() (status 0), or in the destructor
    // (RT_ECANCELED). Any thread. Returns 0 or a negative code (never throws:
    // it is meant to be called from runtime callbacks).
    template <class F>
    int post(F &&f) const noexcept {
        detail::Fn<void(int)> *th;
        try {
            th = new detail::Fn<void(int)>(std::function<void(int)>(std::forward<F>(f)));
        } catch (...) {
            return RT_ENOMEM;
        }
        int rc = rt_queue_post(q_, detail::call_once, th);
        if (rc != 0) delete th;
        return rc;
    }
    // Runs up to max queued callbacks (0: all queued now) on this thread.
    int drain(uint32_t max = 0) const noexcept { return rt_queue_drain(q_, max); }
    int fd() const noexcept { return rt_queue_fd(q_); }
    rt_queue *get() const noexcept { return q_; }

private:
    rt_queue *q_ = nullptr;
};

} // namespace rt

#endif // RT_HPP
