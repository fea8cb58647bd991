//! `rtpy.Runtime`: create, configure, inspect and shut down a runtime. The
//! services (tasks, timers, watches, host mode, queues) are methods of it,
//! translated in their own files.

use crate::call::{Int, Reporter, Seconds};
use crate::errors::{shutdown_error, to_py, ShutdownError};
use crate::timers::PyTimer;
use crate::watch::PyWatch;
use pyo3::exceptions::PyValueError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyType};
use pyo3::PyTraverseError;
use rt_core::callback::{CallbackRuntime, Error};
use rt_core::runtime::{Builder, RuntimeFlavor};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// The runtime type of the callback layer, with rtpy's timer and watch
/// callbacks.
pub(crate) type Core = CallbackRuntime<PyTimer, PyWatch>;

/// What every rtpy object of a runtime shares: the runtime itself and the
/// reporter of its callbacks' exceptions. Timers, watches and queues hold
/// it, so the runtime outlives them; callbacks hold only the reporter.
pub(crate) struct RuntimeInner {
    core: ManuallyDrop<Core>,
    pub(crate) reporter: Arc<Reporter>,
    /// The fork generation it was created in ([`fork_generation`]): after
    /// `os.fork()` the child has none of its threads, so there it is never
    /// shut down nor dropped (leaked).
    forks: u32,
}

/// Forks this process descends through since the module was loaded: bumped
/// in each child, so "was this made before a fork" is one load, not a
/// `getpid` system call per check (the hot paths check on every call).
static FORKS: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_fork_in_child() {
    FORKS.fetch_add(1, Relaxed);
}

/// Counts forks in their children (called once, at module init).
pub(crate) fn init() {
    // SAFETY: registers a handler for the process's life (a plain `fn`);
    // run in the child right after a fork, it only adds to an atomic.
    unsafe { libc::pthread_atfork(None, None, Some(count_fork_in_child)) };
}

/// This process's fork generation: different from the parent's in a child
/// of `fork()`.
fn fork_generation() -> u32 {
    FORKS.load(Relaxed)
}

impl RuntimeInner {
    pub(crate) fn core(&self) -> &Core {
        if self.forked() {
            // A child of os.fork(): the runtime's threads are the parent's.
            // Refuse work (ShutdownError) rather than accept it silently.
            self.core.abandon_after_fork();
        }
        &self.core
    }

    /// True in a child process forked after the runtime was created.
    pub(crate) fn forked(&self) -> bool {
        self.forks != fork_generation()
    }

    /// `ShutdownError` unless the runtime takes work: once its shutdown
    /// began, and in a child forked after it was created (its threads are
    /// the parent's, so work handed in there would never run; its reactor's
    /// epoll set and timer state are the parent's too: the child must not
    /// touch them).
    pub(crate) fn check_live(&self) -> PyResult<()> {
        // `core()` marks the runtime shut down in such a child.
        if self.core().is_shutdown() {
            return Err(shutdown_error());
        }
        Ok(())
    }
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        if self.forked() {
            // Its threads live in the parent only: waiting for them would
            // never end. Leaked.
            return;
        }
        // SAFETY: `drop` runs once and `core` is not used after this line.
        let core = unsafe { ManuallyDrop::take(&mut self.core) };
        drop_core(core);
    }
}

/// Drops a runtime (which shuts it down first, without a time limit, if
/// nobody did), wherever its last reference goes:
/// - inside one of its callbacks or on a runtime thread (a Python object
///   released there), where waiting for the runtime's threads could wait
///   for itself: on a thread of its own;
/// - on a Python thread: with the GIL released, so the callbacks still
///   running can take it and finish;
/// - during interpreter shutdown (no GIL to release): as is.
fn drop_core(core: Core) {
    if rt_core::runtime::is_runtime_thread() || rt_core::callback::is_in_callback() {
        // If the thread cannot start, the closure is dropped with it:
        // ManuallyDrop leaks the runtime then rather than deadlock here.
        let core = ManuallyDrop::new(core);
        let spawned = std::thread::Builder::new()
            .name("rtpy-drop".into())
            .spawn(move || drop(ManuallyDrop::into_inner(core)));
        if let Ok(thread) = spawned {
            // `_shutdown_all` waits for it: its final calls call Python.
            wait_at_exit(thread);
        }
        return;
    }
    let mut core = Some(core);
    let _ = Python::try_attach(|py| {
        let core = core.take();
        py.detach(move || drop(core));
    });
    drop(core);
}

/// Every live runtime, for `_shutdown_all` at interpreter exit: no
/// callback may run while the interpreter finalizes.
static LIVE: Mutex<Vec<Weak<RuntimeInner>>> = Mutex::new(Vec::new());

/// The threads dropping runtimes whose last reference went inside a
/// callback (`drop_core`), and shutdowns left running by a Ctrl-C
/// (`shutdown_interruptibly`): `_shutdown_all` waits for them too (those
/// of its own fork generation: a parent's are not in a child).
static DROPPING: Mutex<Vec<(u32, std::thread::JoinHandle<()>)>> = Mutex::new(Vec::new());

/// Has `_shutdown_all` wait for `thread`.
fn wait_at_exit(thread: std::thread::JoinHandle<()>) {
    let mut dropping = DROPPING.lock().unwrap_or_else(|e| e.into_inner());
    dropping.retain(|(_, t)| !t.is_finished());
    dropping.push((fork_generation(), thread));
}

fn register(inner: &Arc<RuntimeInner>) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.retain(|w| w.strong_count() > 0);
    live.push(Arc::downgrade(inner));
}

/// Shuts every live runtime down (no time limit). Registered with `atexit`
/// by `rtpy/__init__.py`.
#[pyfunction]
pub(crate) fn _shutdown_all(py: Python<'_>) {
    let live: Vec<Arc<RuntimeInner>> = {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let strong = live.iter().filter_map(Weak::upgrade).collect();
        live.clear();
        strong
    };
    for inner in live.iter().filter(|inner| !inner.forked()) {
        // As `Runtime.shutdown()` without a limit: no Python call of a
        // callback starts from now on, and the calls a shutdown that timed
        // out left running are waited for too (the interpreter must not
        // finalize under them).
        py.detach(|| {
            let _ = shutdown_outcome(inner, None, true);
        });
    }
    let dropping = std::mem::take(&mut *DROPPING.lock().unwrap_or_else(|e| e.into_inner()));
    py.detach(|| {
        for (forks, thread) in dropping {
            if forks == fork_generation() {
                let _ = thread.join();
            } else {
                // A thread of a parent (os.fork): not in this process.
                std::mem::forget(thread);
            }
        }
    });
    // The loops' pool jobs (`LoopCore._run_in_pool`) end first too.
    crate::event_loop::pool::wait_jobs_at_exit(py);
    crate::gil::set_exiting(py);
}

/// `Runtime.shutdown`'s work: the layer's shutdown, which closes the
/// reporter's gate and, when the runtime was shut down already (a first
/// shutdown timed out), waits for the callbacks' Python calls still
/// running, up to `timeout`, if `may_wait`.
fn shutdown_outcome(
    inner: &RuntimeInner,
    timeout: Option<Duration>,
    may_wait: bool,
) -> Result<(), Error> {
    inner
        .core()
        .shutdown_with_calls(&inner.reporter.calls, timeout, may_wait)
}

/// `shutdown_outcome` on a thread of its own while the main thread waits
/// for it in slices, running Python's signal handlers between them: Ctrl-C
/// interrupts the wait with `KeyboardInterrupt` (the shutdown goes on; a
/// later `shutdown()`, or interpreter exit, waits for it).
fn shutdown_interruptibly(
    py: Python<'_>,
    inner: &Arc<RuntimeInner>,
    timeout: Option<Duration>,
) -> PyResult<Result<(), Error>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let runtime = inner.clone();
    let spawned = std::thread::Builder::new()
        .name("rtpy-shutdown".into())
        .spawn(move || {
            let _ = tx.send(shutdown_outcome(&runtime, timeout, true));
        });
    let Ok(thread) = spawned else {
        return Ok(py.detach(|| shutdown_outcome(inner, timeout, true)));
    };
    // (A Mutex makes the receiver Sync, as `detach` needs.)
    let rx = Mutex::new(rx);
    loop {
        let next = py.detach(|| {
            rx.lock()
                .unwrap_or_else(|e| e.into_inner())
                .recv_timeout(Duration::from_millis(50))
        });
        match next {
            Ok(outcome) => {
                py.detach(|| thread.join()).ok();
                return Ok(outcome);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    // It may drop the last reference to the runtime:
                    // interpreter exit waits for it.
                    wait_at_exit(thread);
                    return Err(e);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "shutdown: the thread running it ended early",
                ));
            }
        }
    }
}

/// Seconds (int or float, >= 0, finite) as a Duration; `what` names the
/// argument in the error.
pub(crate) fn duration(seconds: f64, what: &str) -> PyResult<Duration> {
    if seconds.is_nan() || seconds < 0.0 {
        return Err(PyValueError::new_err(format!(
            "{what} must be a number >= 0, not {seconds}"
        )));
    }
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| PyValueError::new_err(format!("{what} is too large: {seconds:e} s")))
}

/// The blocking pool's default cap: `concurrent.futures.ThreadPoolExecutor`'s
/// (`min(32, os.cpu_count() + 4)`), not rt-core's 512. Python work holds
/// the GIL, so hundreds of threads mostly contend for it (50,000 trivial
/// `run_blocking` calls started 514 threads and ran 1.6 times slower than
/// with 6).
fn default_blocking_threads() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus + 4).min(32)
}

/// The stack size of the runtime's threads: a Python thread's
/// (`threading.stack_size()` if set, else the pthread default glibc takes
/// from `RLIMIT_STACK`, 8 MiB when unlimited), not Rust's 2 MiB: Python code
/// that recurses deep enough for a `threading.Thread` must not overflow a
/// runtime thread.
fn thread_stack_size(py: Python<'_>) -> PyResult<usize> {
    let set: usize = py
        .import("threading")?
        .getattr("stack_size")?
        .call0()?
        .extract()?;
    if set > 0 {
        return Ok(set.min(rt_core::runtime::MAX_THREAD_STACK_SIZE));
    }
    const UNLIMITED_DEFAULT: usize = 8 << 20;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-pointer for a plain query.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } == 0;
    let size = if !ok || limit.rlim_cur == libc::RLIM_INFINITY || limit.rlim_cur == 0 {
        UNLIMITED_DEFAULT
    } else {
        usize::try_from(limit.rlim_cur).unwrap_or(UNLIMITED_DEFAULT)
    };
    Ok(size.clamp(2 << 20, rt_core::runtime::MAX_THREAD_STACK_SIZE))
}

/// A count argument that must be >= `min`.
fn count(value: i64, min: i64, what: &str) -> PyResult<usize> {
    if value < min {
        return Err(PyValueError::new_err(format!(
            "{what} must be >= {min}, not {value}"
        )));
    }
    usize::try_from(value).map_err(|_| PyValueError::new_err(format!("{what} is too large")))
}

/// An rt runtime: worker threads (flavor `"multi_thread"`) or none
/// (`"current_thread"`: the thread calling `run` / `run_budget` runs the
/// callbacks), an I/O reactor, a timer wheel and a blocking pool.
///
/// `workers`: worker threads of a multi-thread runtime (None: one per CPU;
/// 1 to 4096). `blocking_threads`: cap on the blocking pool's threads
/// (None: `min(32, os.cpu_count() + 4)`, as `ThreadPoolExecutor`).
///
/// A context manager: leaving the `with` block shuts it down.
#[pyclass(module = "rtpy", name = "Runtime", frozen, weakref)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

impl Runtime {
    pub(crate) fn core(&self) -> &Core {
        self.inner.core()
    }

    pub(crate) fn reporter(&self) -> &Arc<Reporter> {
        &self.inner.reporter
    }

    /// `ShutdownError` before any work is handed in (see
    /// [`RuntimeInner::check_live`]).
    pub(crate) fn check_live(&self) -> PyResult<()> {
        self.inner.check_live()
    }
}

#[pymethods]
impl Runtime {
    #[new]
    #[pyo3(signature = (flavor = "multi_thread", workers = None, blocking_threads = None))]
    fn new(
        py: Python<'_>,
        flavor: &str,
        workers: Option<Int>,
        blocking_threads: Option<Int>,
    ) -> PyResult<Runtime> {
        if crate::gil::is_exiting() {
            // Its callbacks could not call Python any more (see gil.rs):
            // its futures would never complete.
            return Err(ShutdownError::new_err(
                "the interpreter is exiting: no runtime can be created",
            ));
        }
        let mut builder = match flavor {
            "multi_thread" => Builder::new_multi_thread(),
            "current_thread" => Builder::new_current_thread(),
            other => {
                return Err(PyValueError::new_err(format!(
                    "flavor must be \"multi_thread\" or \"current_thread\", not {other:?}"
                )))
            }
        };
        builder
            .enable_all()
            .thread_name("rtpy-worker")
            .thread_stack_size(thread_stack_size(py)?);
        if let Some(Int(n)) = workers {
            builder.worker_threads(count(n, 1, "workers")?);
        }
        let blocking = match blocking_threads {
            Some(Int(n)) => count(n, 1, "blocking_threads")?,
            None => default_blocking_threads(),
        };
        builder.max_blocking_threads(blocking);
        let runtime = builder.build().map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => PyValueError::new_err(e.to_string()),
            _ => crate::errors::os_error(&e),
        })?;
        let inner = Arc::new(RuntimeInner {
            core: ManuallyDrop::new(Core::new(runtime)),
            reporter: Arc::new(Reporter::new()),
            forks: fork_generation(),
        });
        register(&inner);
        Ok(Runtime { inner })
    }

    /// `"multi_thread"` or `"current_thread"`.
    #[getter]
    fn flavor(&self) -> &'static str {
        match self.core().flavor() {
            RuntimeFlavor::CurrentThread => "current_thread",
            _ => "multi_thread",
        }
    }

    /// True once `shutdown` began (and in a child process forked after the
    /// runtime was created: the runtime's threads are the parent's, it
    /// refuses work there).
    #[getter]
    fn is_shutdown(&self) -> bool {
        // `core()` marks it shut down in such a child.
        self.core().is_shutdown()
    }

    /// Called as `handler(exc, context)` for each exception a callback
    /// raises that has no future to go to (timers, watches, queue entries,
    /// a future's own failure); `context` is a dict with "message",
    /// "exception" and "callback". None (the default): reported through
    /// `sys.unraisablehook` (printed to stderr). An exception raised by the
    /// handler goes to `sys.unraisablehook`.
    #[getter]
    fn get_exception_handler(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.reporter().handler(py)
    }

    #[setter]
    fn set_exception_handler(&self, handler: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let handler = match handler {
            Some(h) if h.is_none() => None,
            Some(h) if !h.is_callable() => {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "exception_handler must be callable or None",
                ))
            }
            Some(h) => Some(h.unbind()),
            None => None,
        };
        self.reporter().set_handler(handler);
        Ok(())
    }

    /// How many exceptions callbacks raised that went to the exception
    /// handler (or the default report).
    #[getter]
    fn exceptions_count(&self) -> u64 {
        self.reporter().count()
    }

    /// Shuts the runtime down: no new work is accepted (`ShutdownError`),
    /// every pending callback gets its final call (futures are cancelled),
    /// then it waits up to `timeout` seconds (None: no limit) for the
    /// callbacks running now and the runtime's threads. `TimeoutError` if
    /// they are still running then; `DeadlockError` from inside a callback
    /// when another shutdown is under way. A later call returns once the
    /// first one finished and the callbacks it left running (after a
    /// `TimeoutError`) returned, again up to `timeout`. The GIL is released
    /// while it waits.
    #[pyo3(signature = (timeout = None))]
    fn shutdown(&self, py: Python<'_>, timeout: Option<Seconds>) -> PyResult<()> {
        let timeout = timeout.map(|t| duration(t.0, "timeout")).transpose()?;
        if self.inner.forked() {
            // A child of os.fork(): the runtime's threads are the parent's.
            return Ok(());
        }
        // Inside a callback, blocking work or on a runtime thread the layer
        // does not wait for the runtime's threads: neither does this.
        let may_wait = !(rt_core::callback::is_in_callback()
            || rt_core::callback::is_in_blocking_work()
            || rt_core::runtime::is_runtime_thread());
        let outcome = if may_wait && crate::interrupt::is_main_thread() {
            shutdown_interruptibly(py, &self.inner, timeout)?
        } else {
            py.detach(|| shutdown_outcome(&self.inner, timeout, may_wait))
        };
        outcome.map_err(|e| to_py(e, "shutdown"))
    }

    /// The runtime's counters (`rtpy.Metrics`). Works after shutdown too.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static METRICS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        let m = self.core().metrics();
        let fields = [
            m.workers,
            m.tasks_alive,
            m.tasks_spawned,
            m.polls,
            m.steals,
            m.overflows,
            m.remote_schedules,
            m.parks,
            m.blocking_threads,
            m.blocking_idle_threads,
            m.blocking_queue_depth,
            m.timers,
            m.io_registrations,
            self.reporter().count(),
        ];
        METRICS
            .import(py, "rtpy._types", "Metrics")?
            .call1(PyTuple::new(py, fields)?)
    }

    /// The garbage collector's view of the exception handler: a handler
    /// that refers back to the runtime (a bound method of an object holding
    /// it) makes a cycle through this object. The reporter holds the one
    /// reference to the handler; it is visited only while this object is
    /// the only way to it (no timer, watch, queue or pending callback holds
    /// the runtime or its reporter: those keep the handler in use, so it is
    /// not garbage). The counts only drop while the collector runs: a new
    /// reference needs the GIL.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if Arc::strong_count(&self.inner) == 1 && Arc::strong_count(self.reporter()) == 1 {
            self.reporter().traverse(&visit)?;
        }
        Ok(())
    }

    /// Breaks such a cycle: the handler is let go (nothing else could use
    /// it, see `__traverse__`).
    fn __clear__(&self) {
        self.reporter().set_handler(None);
    }

    /// Returns itself (leaving the `with` block shuts it down).
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Shuts the runtime down (no time limit).
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.shutdown(py, None)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<rtpy.Runtime flavor={} shut_down={}>",
            self.flavor(),
            if self.is_shutdown() { "True" } else { "False" }
        )
    }

    // ---- tasks (tasks.rs) ----

    /// Runs `fn(*args)` once on a runtime thread (current-thread flavor:
    /// inside `run` / `run_budget`). Returns an `rtpy.Future` with its
    /// result or exception; `cancel()` wins if it had not started. At
    /// shutdown a task that never ran has its future cancelled.
    #[pyo3(signature = (func, /, *args))]
    fn spawn<'py>(
        &self,
        py: Python<'py>,
        func: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::tasks::spawn(self, py, func, args)
    }

    /// Runs `fn(*args)` on the blocking pool (a thread that may block).
    /// Returns an `rtpy.Future`; `cancel()` wins while the work waits for a
    /// thread.
    #[pyo3(signature = (func, /, *args))]
    fn run_blocking<'py>(
        &self,
        py: Python<'py>,
        func: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::tasks::run_blocking(self, py, func, args)
    }

    // ---- the completion queue (queue.rs) ----

    /// A new completion queue (`rtpy.Queue`) whose callbacks report their
    /// exceptions to this runtime's exception handler.
    fn queue(&self) -> PyResult<crate::queue::Queue> {
        self.check_live()?;
        crate::queue::Queue::new(self.reporter().clone())
    }

    // ---- timers (timers.rs) ----

    /// Calls `fn(*args)` once, `delay` seconds from now (never earlier), on
    /// a runtime thread. Returns its `rtpy.Timer`.
    #[pyo3(signature = (delay, func, /, *args))]
    fn call_later(
        &self,
        delay: Seconds,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<crate::timers::Timer> {
        crate::timers::start(self, delay.0, None, func, args)
    }

    /// Calls `fn(*args)` every `interval` seconds (> 0; the first call one
    /// interval from now), on a runtime thread, until the timer is
    /// cancelled. Returns its `rtpy.Timer`.
    #[pyo3(signature = (interval, func, /, *args))]
    fn call_every(
        &self,
        interval: Seconds,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<crate::timers::Timer> {
        crate::timers::start(self, interval.0, Some(interval.0), func, args)
    }

    // ---- fd watches (watch.rs) ----

    /// Watches a file descriptor (an int, or an object with `fileno()`)
    /// for `events` (READABLE, WRITABLE or both): `fn(ready)` runs on a
    /// runtime thread whenever it is ready (level-triggered: again while it
    /// stays ready), `ready` holding READABLE / WRITABLE / HUP / ERROR bits.
    /// The fd should be non-blocking; the caller keeps owning it (close the
    /// watch first). `FileExistsError` if the fd is watched already;
    /// `OSError` if the kernel refuses it.
    fn watch(
        &self,
        fd: &Bound<'_, PyAny>,
        events: Int,
        func: &Bound<'_, PyAny>,
    ) -> PyResult<crate::watch::Watch> {
        let none = PyTuple::empty(fd.py());
        crate::watch::watch(self, fd, events, func, &none, true)
    }

    /// Calls `fn(*args)` whenever the fd is readable (a `watch` for
    /// READABLE that does not pass the events).
    #[pyo3(signature = (fd, func, /, *args))]
    fn add_reader(
        &self,
        fd: &Bound<'_, PyAny>,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<crate::watch::Watch> {
        let events = Int(i64::from(rt_core::callback::READABLE));
        crate::watch::watch(self, fd, events, func, args, false)
    }

    /// Calls `fn(*args)` whenever the fd is writable.
    #[pyo3(signature = (fd, func, /, *args))]
    fn add_writer(
        &self,
        fd: &Bound<'_, PyAny>,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<crate::watch::Watch> {
        let events = Int(i64::from(rt_core::callback::WRITABLE));
        crate::watch::watch(self, fd, events, func, args, false)
    }

    // ---- host-driven mode, current-thread runtimes (host.rs) ----

    /// Runs the runtime on this thread, like libuv's `uv_run`:
    /// `"default"` until `stop()` or no work is left, `"once"` until at
    /// least one callback ran (or `wake()`), `"nowait"` what is ready now.
    /// Returns how many callbacks ran. The GIL is released while it waits;
    /// Ctrl-C raises `KeyboardInterrupt`. `DeadlockError` from inside a
    /// callback; `ValueError` on a multi-thread runtime.
    #[pyo3(signature = (mode = "default"))]
    fn run(&self, py: Python<'_>, mode: &str) -> PyResult<usize> {
        crate::host::run(self, py, mode)
    }

    /// Runs ready callbacks on this thread, in FIFO order, for at most
    /// `seconds` and `max_callbacks` (None: no limit); never blocks. The
    /// budget is checked before each task but the first: with work ready
    /// at least one task runs, however small the budget. What is left runs
    /// on the next call. Returns how many callbacks ran.
    #[pyo3(signature = (seconds, max_callbacks = None))]
    fn run_budget(
        &self,
        py: Python<'_>,
        seconds: Seconds,
        max_callbacks: Option<Int>,
    ) -> PyResult<usize> {
        crate::host::run_budget(self, py, seconds.0, max_callbacks)
    }

    /// Makes the running `run()` / `run_budget()` return after the callback
    /// it runs (or the next one return at once). Any thread.
    fn stop(&self) -> PyResult<()> {
        crate::host::stop(self)
    }

    /// Interrupts a blocking `run("once")`; makes `backend_fd()` readable.
    /// Any thread.
    fn wake(&self) -> PyResult<()> {
        crate::host::wake(self)
    }

    /// A file descriptor readable when the runtime has work, for a host
    /// that waits in its own `select` / `poll`: wait at most
    /// `backend_timeout()`, then `run("nowait")` or `run_budget(...)`. The
    /// runtime owns it (do not close it).
    fn backend_fd(&self) -> PyResult<i32> {
        crate::host::backend_fd(self)
    }

    /// Seconds a host may wait on `backend_fd()` before running the
    /// runtime: 0 if callbacks are ready, the time to the next timer, or
    /// None (no timer armed).
    fn backend_timeout(&self) -> PyResult<Option<f64>> {
        crate::host::backend_timeout(self)
    }
}
