//! The queue of `call_soon_threadsafe` and the wake protocol between other
//! threads and the loop thread waiting in epoll.
//!
//! Other threads push handles under a mutex; the loop drains them into its
//! ready queue at the start of each iteration. The eventfd is written only
//! when the loop may be waiting, Dekker-style:
//!
//! - the loop, before a wait that may block, stores `parked = true` and
//!   then looks, under the queue's mutex, at the queue and at a pending
//!   [`wake`](Remote::wake): if there is work it does not block;
//! - a pusher (or waker) records its handle (or wake) under the mutex and
//!   then loads `parked`: if set, it notifies (writes the eventfd), unless a
//!   notification is already pending (`notified`), so a burst of pushes
//!   costs one write.
//!
//! Either the loop's look at the queue comes after the push in the mutex's
//! order (it sees the handle), or before it: then the loop's `parked = true`
//! happens before the pusher's load, which sees it. (The mutex provides the
//! ordering; a pair of plain flags would need `SeqCst` on both sides, which
//! loom does not model.) `notified` is cleared only after the loop has read
//! the eventfd, so while it is set the eventfd is readable or the loop is
//! not blocked. The loom models below check that no push or wake is lost.

use crate::loom::{AtomicBool, Mutex};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// Something that makes a blocked wait return (the eventfd).
pub(crate) trait Notify {
    /// Makes the wait return (or the next one not block).
    fn notify(&self);
}

struct Queue<H> {
    handles: Vec<H>,
    closed: bool,
    /// A [`wake`](Remote::wake) came and no wait has consumed it.
    wake: bool,
}

/// The cross-thread side of a loop.
pub(crate) struct Remote<H> {
    queue: Mutex<Queue<H>>,
    /// The loop may be blocked in a wait.
    parked: AtomicBool,
    /// The eventfd was written and not yet read.
    notified: AtomicBool,
    /// `push` calls accepted (metrics).
    calls: AtomicU64,
    /// The queue may hold handles (set under the mutex by `push`, cleared
    /// by `drain_into`): lets the loop thread's `call_soon` skip the mutex.
    pending: AtomicBool,
}

impl<H> Remote<H> {
    pub(crate) fn new() -> Remote<H> {
        Remote {
            queue: Mutex::new(Queue {
                handles: Vec::new(),
                closed: false,
                wake: false,
            }),
            parked: AtomicBool::new(false),
            notified: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            pending: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> crate::loom::MutexGuard<'_, Queue<H>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `h` from any thread and wakes the loop if it may be waiting.
    /// `Err(h)` once closed (the caller drops it, outside any lock).
    pub(crate) fn push(&self, h: H, n: &impl Notify) -> Result<(), H> {
        {
            let mut q = self.lock();
            if q.closed {
                return Err(h);
            }
            q.handles.push(h);
            self.pending.store(true, SeqCst);
        }
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.signal(n);
        Ok(())
    }

    /// Makes a waiting loop return, or its next wait not block.
    pub(crate) fn wake(&self, n: &impl Notify) {
        self.lock().wake = true;
        self.signal(n);
    }

    fn signal(&self, n: &impl Notify) {
        if self.parked.load(SeqCst) && !self.notified.swap(true, SeqCst) {
            n.notify();
        }
    }

    /// Loop thread, before a wait that may block: true if it may block
    /// (then [`after_park`](Self::after_park) must follow the wait); false
    /// if work is pending (wait without blocking).
    pub(crate) fn before_park(&self) -> bool {
        self.parked.store(true, SeqCst);
        let pending = {
            let mut q = self.lock();
            std::mem::take(&mut q.wake) || !q.handles.is_empty()
        };
        if pending {
            self.parked.store(false, SeqCst);
        }
        !pending
    }

    /// Loop thread, after a wait that [`before_park`](Self::before_park)
    /// allowed to block. A wake that came meanwhile is consumed.
    pub(crate) fn after_park(&self) {
        self.parked.store(false, SeqCst);
        self.lock().wake = false;
    }

    /// Loop thread, after it reset the eventfd (it was reported readable).
    pub(crate) fn clear_notified(&self) {
        self.notified.store(false, SeqCst);
    }

    /// Moves the queued handles to the back of `out`.
    pub(crate) fn drain_into(&self, out: &mut VecDeque<H>) {
        let mut q = self.lock();
        if !q.handles.is_empty() {
            out.extend(q.handles.drain(..));
        }
        self.pending.store(false, SeqCst);
    }

    /// True if a push may be queued. A push that happened before this call
    /// (through any synchronisation) is seen.
    pub(crate) fn may_have_pending(&self) -> bool {
        self.pending.load(SeqCst)
    }

    /// Calls `f` with every queued handle, unless the queue is locked
    /// elsewhere right now (then nothing: the caller must not wait).
    pub(crate) fn try_for_each(&self, f: &mut dyn FnMut(&H)) {
        let q = match self.queue.try_lock() {
            Ok(q) => q,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        q.handles.iter().for_each(f);
    }

    /// Refuses further pushes and returns what is queued.
    pub(crate) fn close(&self) -> Vec<H> {
        let mut q = self.lock();
        q.closed = true;
        std::mem::take(&mut q.handles)
    }

    /// Pushes accepted so far.
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl<H> std::fmt::Debug for Remote<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("parked", &self.parked.load(SeqCst))
            .field("notified", &self.notified.load(SeqCst))
            .finish()
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::{Arc, Condvar, Mutex};
    use loom::thread;

    /// The eventfd: a counter, and a wait that blocks while it is zero.
    #[derive(Default)]
    struct EventFd {
        count: Mutex<u64>,
        cv: Condvar,
    }

    impl Notify for EventFd {
        fn notify(&self) {
            *self.count.lock().unwrap() += 1;
            self.cv.notify_all();
        }
    }

    impl EventFd {
        /// `epoll_wait` on the eventfd alone: `block` with no timeout, else
        /// a poll. Returns whether it was readable.
        fn wait(&self, block: bool) -> bool {
            let mut c = self.count.lock().unwrap();
            while block && *c == 0 {
                c = self.cv.wait(c).unwrap();
            }
            *c > 0
        }

        fn drain(&self) {
            *self.count.lock().unwrap() = 0;
        }
    }

    /// The loop thread: iterations as run_once does them, until `done`
    /// says the expected work arrived. A lost wake leaves it blocked
    /// forever, which loom reports as a deadlock.
    fn run_loop(
        remote: &Remote<u32>,
        ev: &EventFd,
        mut done: impl FnMut(&mut VecDeque<u32>) -> bool,
    ) {
        let mut ready = VecDeque::new();
        loop {
            remote.drain_into(&mut ready);
            if done(&mut ready) {
                return;
            }
            let block = remote.before_park();
            let readable = ev.wait(block);
            if block {
                remote.after_park();
            }
            if readable {
                ev.drain();
                remote.clear_notified();
            }
        }
    }

    #[test]
    fn loom_event_loop_remote_pushes_are_never_lost() {
        loom::model(|| {
            let remote = Arc::new(Remote::new());
            let ev = Arc::new(EventFd::default());
            let pushers: Vec<_> = (0..2u32)
                .map(|i| {
                    let (remote, ev) = (remote.clone(), ev.clone());
                    thread::spawn(move || remote.push(i, &*ev).unwrap())
                })
                .collect();
            let mut got = Vec::new();
            run_loop(&remote, &ev, |ready| {
                got.extend(ready.drain(..));
                got.len() == 2
            });
            for p in pushers {
                p.join().unwrap();
            }
            got.sort();
            assert_eq!(got, vec![0, 1]);
        });
    }

    #[test]
    fn loom_event_loop_remote_wake_is_never_lost() {
        loom::model(|| {
            let remote = Arc::new(Remote::<u32>::new());
            let ev = Arc::new(EventFd::default());
            let woken = Arc::new(AtomicBool::new(false));
            let waker = {
                let (remote, ev, woken) = (remote.clone(), ev.clone(), woken.clone());
                thread::spawn(move || {
                    // The "work" the wake announces (as stop() sets a flag).
                    woken.store(true, SeqCst);
                    remote.wake(&*ev);
                })
            };
            run_loop(&remote, &ev, |_| woken.load(SeqCst));
            waker.join().unwrap();
        });
    }

    #[test]
    fn loom_event_loop_remote_push_after_close_is_refused() {
        loom::model(|| {
            let remote = Arc::new(Remote::new());
            let ev = Arc::new(EventFd::default());
            let pusher = {
                let (remote, ev) = (remote.clone(), ev.clone());
                thread::spawn(move || remote.push(7u32, &*ev).is_ok())
            };
            let closed = remote.close();
            let accepted = pusher.join().unwrap();
            // Either the close returned it, or the push was refused.
            assert_eq!(closed == vec![7], accepted);
        });
    }
}
