//! [`CompletionQueue`]: any thread (or runtime callback) posts callbacks
//! to it; the host drains it on its own thread (the game thread), so work
//! can run on a multi-thread runtime's workers while its results land
//! where the host wants them.
//!
//! A mutex-protected FIFO (one order for all posts, hence per-producer
//! order) and an eventfd that is readable exactly while the FIFO is
//! non-empty: written when a post finds it empty, reset when a drain
//! empties it, both under the mutex.

use super::once::Once;
use super::{OnceCallback, Status};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};

/// A completion queue: [`post`](Self::post) from any thread,
/// [`drain`](Self::drain) on the host's thread; [`fd`](Self::fd) is
/// readable while it holds callbacks. Its entries are not a runtime's:
/// a runtime's shutdown leaves them queued. Dropped (or
/// [`cancel_all`](Self::cancel_all)), every entry still queued gets its
/// final `Cancelled` call, in order.
pub struct CompletionQueue<C: OnceCallback> {
    entries: Mutex<VecDeque<Once<C>>>,
    /// Readable while `entries` is non-empty.
    ready: OwnedFd,
}

impl<C: OnceCallback> fmt::Debug for CompletionQueue<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompletionQueue")
            .field("len", &self.len())
            .field("fd", &self.fd())
            .finish()
    }
}

impl<C: OnceCallback> CompletionQueue<C> {
    /// An empty queue. `Err` if the OS refuses the eventfd.
    pub fn new() -> io::Result<CompletionQueue<C>> {
        // SAFETY: plain syscall with constant, valid flags.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(CompletionQueue {
            entries: Mutex::new(VecDeque::new()),
            // SAFETY: `fd` was just created and is owned by nothing else.
            ready: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Once<C>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: `ready` is an open eventfd owned by the queue; the buffer
        // is 8 readable bytes on the stack. It cannot fail with EAGAIN: the
        // counter is reset to 0 whenever the queue empties.
        unsafe { libc::write(self.ready.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn reset(&self) {
        let mut count: u64 = 0;
        // SAFETY: as in `signal`; 8 writable bytes. EAGAIN (already 0) is
        // fine: reset means "not readable".
        unsafe { libc::read(self.ready.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }

    /// Takes the oldest entry, resetting the fd if that empties the queue.
    fn pop(&self) -> Option<Once<C>> {
        let mut entries = self.lock();
        let entry = entries.pop_front()?;
        if entries.is_empty() {
            self.reset();
        }
        Some(entry)
    }

    /// Posts `cb`: `cb(Ok)` runs in a later [`drain`](Self::drain), or
    /// `cb(Cancelled)` when the queue is dropped first. Callbacks posted by
    /// one thread run in the order they were posted. Any thread: runtime
    /// callbacks and the queue's own drained callbacks included.
    pub fn post(&self, cb: C) {
        let mut entries = self.lock();
        if entries.is_empty() {
            self.signal();
        }
        entries.push_back(Once::new(cb));
    }

    /// Runs queued callbacks on the calling thread, oldest first, each with
    /// `Ok`: at most `max` of them, or with `max` 0 the ones queued when the
    /// call started (callbacks they post run on a later drain). Never
    /// blocks. Returns how many ran.
    ///
    /// The calls are not marked as runtime callbacks: made on the host's
    /// thread, they may block or drive a runtime. A callback may post to or
    /// drain the same queue. With several threads draining at once, each
    /// takes entries in queue order but they run concurrently.
    pub fn drain(&self, max: usize) -> usize {
        let limit = if max == 0 { self.len() } else { max };
        let mut ran: usize = 0;
        while ran < limit {
            let Some(entry) = self.pop() else { break };
            entry.call_unmarked(Status::Ok);
            ran += 1;
        }
        ran
    }

    /// A file descriptor readable exactly while the queue holds callbacks,
    /// for the host's `poll` / `epoll` set. The queue owns it: do not read
    /// from it or close it. Valid while the queue lives.
    pub fn fd(&self) -> RawFd {
        self.ready.as_raw_fd()
    }

    /// How many callbacks are queued.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no callback is queued.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Gives every callback queued its final `Cancelled` call, on the
    /// calling thread, oldest first (entries posted meanwhile, by these
    /// calls too, included), the way drains make theirs (not marked as
    /// runtime callbacks). Returns how many were called.
    pub fn cancel_all(&self) -> usize {
        let mut n = 0;
        // Final calls outside the lock, in order.
        while let Some(entry) = self.pop() {
            entry.call_unmarked(Status::Cancelled);
            n += 1;
        }
        n
    }
}

impl<C: OnceCallback> Drop for CompletionQueue<C> {
    fn drop(&mut self) {
        self.cancel_all();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn readable(fd: RawFd) -> bool {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
    }

    #[test]
    fn fifo_fd_readable_while_non_empty_and_drop_cancels_in_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let q = CompletionQueue::<Box<dyn FnOnce(Status) + Send>>::new().unwrap();
        assert!(!readable(q.fd()));
        for i in 0..5 {
            let l = log.clone();
            q.post(Box::new(move |s| l.lock().unwrap().push((i, s))));
        }
        assert!(readable(q.fd()));
        assert_eq!(q.len(), 5);
        assert_eq!(q.drain(2), 2);
        assert!(readable(q.fd()));
        assert_eq!(q.drain(0), 3);
        assert!(!readable(q.fd()));
        assert!(q.is_empty());
        for i in 5..7 {
            let l = log.clone();
            q.post(Box::new(move |s| l.lock().unwrap().push((i, s))));
        }
        drop(q);
        let log = log.lock().unwrap();
        let expect: Vec<_> = (0..7)
            .map(|i| (i, if i < 5 { Status::Ok } else { Status::Cancelled }))
            .collect();
        assert_eq!(*log, expect);
    }
}
