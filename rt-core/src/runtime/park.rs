//! The one parking abstraction every scheduler blocks through.
//!
//! [`Park`] is what an idle thread blocks in; [`Unpark`] is the thread-safe
//! half that wakes it. Today the only implementation is [`ParkThread`], a
//! mutex + condvar; the I/O + timer driver plugs in as another `Park` whose
//! `park_timeout` is `epoll_wait` with the next timer deadline as the
//! timeout and whose `Unpark` is a `mio::Waker`.
//!
//! Unparks are never lost: an `unpark` that comes before `park` makes the
//! next `park` return at once (a "token", as in `std::thread::park`).
//!
//! [`CachedParker`] is the same parker, one cached per thread, for a
//! `block_on` that does not drive a scheduler: the runtime never waits in
//! `std::thread::park`, whose token belongs to user code.

use crate::loom::{AtomicUsize, Condvar, Mutex};
use std::future::Future;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// An idle thread blocks here.
pub(crate) trait Park: Send {
    /// Blocks until unparked (or a driver event arrives).
    fn park(&mut self);
    /// Blocks at most `duration`; zero polls the driver without blocking.
    fn park_timeout(&mut self, duration: Duration);
    /// The handle that wakes this parker from any thread.
    fn unparker(&self) -> Arc<dyn Unpark>;
    /// The runtime is shutting down: release the driver's resources and
    /// tell everything registered with it.
    fn shutdown(&mut self);
}

/// Wakes a [`Park`] from any thread.
pub(crate) trait Unpark: Send + Sync {
    /// Makes the parked thread return (or the next `park` return at once).
    fn unpark(&self);
}

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

/// A parker on a mutex + condvar.
#[derive(Clone)]
pub(crate) struct ParkThread {
    inner: Arc<Inner>,
}

struct Inner {
    state: AtomicUsize,
    lock: Mutex<()>,
    cvar: Condvar,
}

impl ParkThread {
    pub(crate) fn new() -> ParkThread {
        ParkThread {
            inner: Arc::new(Inner {
                state: AtomicUsize::new(EMPTY),
                lock: Mutex::new(()),
                cvar: Condvar::new(),
            }),
        }
    }
}

impl Default for ParkThread {
    fn default() -> Self {
        Self::new()
    }
}

impl Inner {
    fn park(&self, timeout: Option<Duration>) {
        // Fast path: consume a pending notification.
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
            .is_ok()
        {
            return;
        }
        if timeout == Some(Duration::ZERO) {
            return;
        }
        let mut guard = self.lock.lock().unwrap();
        match self.state.compare_exchange(EMPTY, PARKED, SeqCst, SeqCst) {
            Ok(_) => {}
            Err(NOTIFIED) => {
                // Notified between the fast path and taking the lock.
                let old = self.state.swap(EMPTY, SeqCst);
                debug_assert_eq!(old, NOTIFIED);
                return;
            }
            Err(actual) => panic!("inconsistent park state: {actual}"),
        }
        match timeout {
            None => loop {
                guard = self.cvar.wait(guard).unwrap();
                if self
                    .state
                    .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
                    .is_ok()
                {
                    return;
                }
                // Spurious wakeup: wait again.
            },
            Some(timeout) => {
                #[cfg(not(loom))]
                {
                    let (_guard, _) = self.cvar.wait_timeout(guard, timeout).unwrap();
                }
                #[cfg(loom)]
                {
                    // loom has no timed wait; a timed park may always return
                    // early, so model it as returning at once.
                    let _ = (guard, timeout);
                }
                // Timed out or notified: either way go back to EMPTY,
                // consuming a notification if there was one.
                match self.state.swap(EMPTY, SeqCst) {
                    NOTIFIED | PARKED => {}
                    n => panic!("inconsistent park_timeout state: {n}"),
                }
            }
        }
    }

    fn unpark(&self) {
        match self.state.swap(NOTIFIED, SeqCst) {
            EMPTY | NOTIFIED => {}
            PARKED => {
                // Take the lock so the parked thread is either before its
                // wait (and will see NOTIFIED) or inside it (and gets the
                // signal).
                drop(self.lock.lock().unwrap());
                self.cvar.notify_one();
            }
            actual => panic!("inconsistent state in unpark: {actual}"),
        }
    }
}

impl Park for ParkThread {
    fn park(&mut self) {
        self.inner.park(None);
    }

    fn park_timeout(&mut self, duration: Duration) {
        self.inner.park(Some(duration));
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        self.inner.clone()
    }

    fn shutdown(&mut self) {
        self.inner.unpark();
    }
}

impl Unpark for Inner {
    fn unpark(&self) {
        Inner::unpark(self);
    }
}

impl Wake for Inner {
    fn wake(self: Arc<Self>) {
        self.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.unpark();
    }
}

/// The runtime's own parker for a thread that waits in `block_on` without
/// driving a scheduler. It is not `std::thread::park`: user code that
/// parks or unparks the thread itself can neither consume the runtime's
/// wake-ups nor lose its own tokens to the runtime.
///
/// One parker per thread is cached in a thread-local and lent to one wait
/// at a time: a nested wait on the same thread (a `block_on` inside
/// `block_in_place` inside a `block_on`) gets a fresh one, so a wake of the
/// outer future cannot be consumed by the inner wait. During thread-local
/// teardown every wait gets a fresh parker.
pub(crate) struct CachedParker {
    inner: Arc<Inner>,
}

// Not under loom: loom's objects must not outlive one model run.
#[cfg(not(loom))]
thread_local! {
    /// This thread's parker while no wait borrows it.
    static CACHED: std::cell::Cell<Option<Arc<Inner>>> = const { std::cell::Cell::new(None) };
}

impl CachedParker {
    /// Borrows this thread's parker (a fresh one if it is lent already or
    /// the thread-local is gone).
    pub(crate) fn new() -> CachedParker {
        #[cfg(not(loom))]
        let cached = CACHED.try_with(|c| c.take()).ok().flatten();
        #[cfg(loom)]
        let cached = None;
        let inner = cached.unwrap_or_else(|| ParkThread::new().inner);
        CachedParker { inner }
    }

    /// A waker that unparks this parker.
    pub(crate) fn waker(&self) -> Waker {
        Waker::from(self.inner.clone())
    }

    /// Blocks until woken; a wake that came first makes it return at once.
    /// May return spuriously (a stale wake from an earlier wait).
    pub(crate) fn park(&self) {
        self.inner.park(None);
    }
}

#[cfg(not(loom))]
impl Drop for CachedParker {
    fn drop(&mut self) {
        // Hand it back for the next wait, unless the slot was refilled
        // meanwhile (then this one, a nested wait's, is just dropped).
        let inner = self.inner.clone();
        let _ = CACHED.try_with(|c| {
            let kept = c.take().unwrap_or(inner);
            c.set(Some(kept));
        });
    }
}

/// Runs a future to completion on this thread, parking between polls.
/// Used by `block_on` on threads that do not drive the scheduler.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let parker = CachedParker::new();
    let waker = parker.waker();
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(v) = crate::task::coop::budget(|| future.as_mut().poll(&mut cx)) {
            return v;
        }
        // Spurious returns are fine: the loop polls again.
        parker.park();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn unpark_before_park_is_not_lost() {
        let mut p = ParkThread::new();
        p.unparker().unpark();
        p.park(); // returns at once
    }

    #[test]
    fn park_timeout_returns() {
        let mut p = ParkThread::new();
        let start = Instant::now();
        p.park_timeout(Duration::from_millis(20));
        assert!(start.elapsed() >= Duration::from_millis(15));
    }

    #[test]
    fn cached_parker_is_reused_and_nested_waits_get_their_own() {
        let outer = CachedParker::new();
        let inner = CachedParker::new();
        assert!(!Arc::ptr_eq(&outer.inner, &inner.inner));
        let (a, b) = (Arc::as_ptr(&outer.inner), Arc::as_ptr(&inner.inner));
        drop(inner);
        drop(outer);
        // One of the two went back to the cache; the next wait reuses it.
        let again = CachedParker::new();
        let p = Arc::as_ptr(&again.inner);
        assert!(p == a || p == b);
        drop(again);
    }

    #[test]
    fn cached_parker_ignores_thread_unpark() {
        let parker = CachedParker::new();
        // A std token does not wake it, and its wake leaves the std token.
        std::thread::current().unpark();
        let w = parker.waker();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w.wake();
        });
        let start = Instant::now();
        parker.park();
        assert!(start.elapsed() >= Duration::from_millis(10));
        t.join().unwrap();
        let start = Instant::now();
        std::thread::park_timeout(Duration::from_secs(5));
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn unpark_from_other_thread() {
        let mut p = ParkThread::new();
        let u = p.unparker();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            u.unpark();
        });
        p.park();
        t.join().unwrap();
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    /// An unpark racing with park is never lost: park always returns.
    #[test]
    fn park_unpark_no_lost_wakeup() {
        loom::model(|| {
            let mut p = ParkThread::new();
            let u = p.unparker();
            let t = loom::thread::spawn(move || u.unpark());
            p.park();
            t.join().unwrap();
        });
    }

    /// A wake through the `block_on` waker racing with the wait is never
    /// lost, also when the waker is woken twice.
    #[test]
    fn cached_parker_waker_wake_not_lost() {
        loom::model(|| {
            let parker = CachedParker::new();
            let w = parker.waker();
            let flag = Arc::new(crate::loom::AtomicBool::new(false));
            let f2 = flag.clone();
            let t = loom::thread::spawn(move || {
                w.wake_by_ref();
                f2.store(true, SeqCst);
                w.wake();
            });
            while !flag.load(SeqCst) {
                parker.park();
            }
            t.join().unwrap();
        });
    }

    /// Two unparks, two parks in sequence: the second park still returns
    /// (tokens coalesce, so the second unpark must come after the first park).
    #[test]
    fn park_twice() {
        loom::model(|| {
            let mut p = ParkThread::new();
            let u = p.unparker();
            let flag = Arc::new(crate::loom::AtomicBool::new(false));
            let f2 = flag.clone();
            let t = loom::thread::spawn(move || {
                f2.store(true, SeqCst);
                u.unpark();
            });
            while !flag.load(SeqCst) {
                p.park();
            }
            t.join().unwrap();
        });
    }
}
