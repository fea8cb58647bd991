//! Std-only helpers for the channel tests (shared with `oneshot`'s tests):
//! they must not depend on the runtime, which the channels do not need.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long [`block_on`] waits for a wakeup before calling it lost.
const WAKEUP_LIMIT: Duration = Duration::from_secs(20);

struct ThreadWaker {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Runs `future` to completion on the current thread, parking between polls.
///
/// It polls again only after a real wakeup (not after a spurious unpark), and
/// panics if none comes within [`WAKEUP_LIMIT`]: a lost wakeup fails the test
/// instead of hanging it, and a future that would only complete when polled
/// without being woken is not let through.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Arc::new(ThreadWaker {
        thread: thread::current(),
        woken: AtomicBool::new(false),
    });
    let std_waker = Waker::from(waker.clone());
    let mut cx = Context::from_waker(&std_waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        let start = Instant::now();
        while !waker.woken.swap(false, Ordering::SeqCst) {
            let waited = start.elapsed();
            assert!(
                waited < WAKEUP_LIMIT,
                "block_on: no wakeup within {WAKEUP_LIMIT:?} (lost wakeup?)"
            );
            thread::park_timeout(WAKEUP_LIMIT - waited);
        }
    }
}

struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// How many times the waker from [`counting_waker`] (or a clone) was woken.
#[derive(Clone)]
pub(crate) struct WakeCount(Arc<CountingWaker>);

impl WakeCount {
    pub(crate) fn get(&self) -> usize {
        self.0 .0.load(Ordering::SeqCst)
    }

    /// How many wakers from [`counting_waker`] (the original and its
    /// clones) are alive: each keeps the shared state alive.
    pub(crate) fn alive(&self) -> usize {
        Arc::strong_count(&self.0) - 1
    }
}

/// A waker that only counts its wakeups.
pub(crate) fn counting_waker() -> (Waker, WakeCount) {
    let inner = Arc::new(CountingWaker(AtomicUsize::new(0)));
    (Waker::from(inner.clone()), WakeCount(inner))
}

/// Polls `future` once with `waker`.
pub(crate) fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    std::pin::Pin::new(future).poll(&mut Context::from_waker(waker))
}

/// Hands out [`Counted`] values and counts how many were dropped.
#[derive(Clone, Default)]
pub(crate) struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    pub(crate) fn new() -> DropCounter {
        DropCounter::default()
    }

    pub(crate) fn item(&self) -> Counted {
        Counted(self.0.clone())
    }

    pub(crate) fn dropped(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Increments its [`DropCounter`] when dropped.
#[derive(Debug)]
pub(crate) struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs `f` on another thread and panics if it does not finish within
/// `limit` (so a lost wakeup fails the test instead of hanging it).
pub(crate) fn with_timeout<R: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (done_tx, done_rx) = std_mpsc::channel();
    let handle = thread::spawn(move || {
        let result = f();
        let _ = done_tx.send(());
        result
    });
    match done_rx.recv_timeout(limit) {
        // Finished (or panicked, dropping `done_tx`): join to get the result
        // or propagate the panic.
        Ok(()) | Err(std_mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(std_mpsc::RecvTimeoutError::Timeout) => panic!("test did not finish within {limit:?}"),
    }
}
