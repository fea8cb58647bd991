//! `ScheduledIo`: the driver-side state of one registered I/O resource.
//!
//! A readiness word packs the readiness bits, the driver tick of the event
//! that last set them, and a shutdown bit. A task that got `WouldBlock`
//! clears readiness only if the tick still matches the one it saw, so an
//! edge the driver recorded meanwhile is never lost.
//!
//! Two kinds of waiters, per direction (read, write):
//! - the `poll_*` API (`poll_read`, `poll_read_ready`, `poll_accept`, ...)
//!   keeps one waker slot: the last task to poll is the one woken, as with
//!   Tokio's `poll_*` methods;
//! - the async API (`accept`, `readable`, `recv`, `AsyncFd::readable`, ...)
//!   goes through [`Readiness`], which takes a place in a waiter list, so
//!   any number of tasks can wait on one resource at once. A wake takes
//!   every waiter of its direction out of the list and wakes them all; a
//!   dropped `Readiness` leaves the list.
//!
//! No wakeup is lost between a waiter's readiness check and its
//! registration: the driver stores readiness before it takes the waiters
//! lock, and a waiter checks readiness again under that lock before it
//! registers. Wakers are woken, and replaced wakers dropped, only after the
//! lock is released (a waker may run any code, even code that comes back
//! to this resource).

use super::waiter_list::{WaiterKey, WaiterList, WakeList};
use super::Ready;
use crate::loom::{AtomicUsize, Mutex, MutexGuard};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::{AcqRel, Acquire};
use std::task::{Context, Poll, Waker};

const READINESS_MASK: usize = 0xFFFF;
const TICK_SHIFT: usize = 16;
const TICK_MASK: usize = 0xFF << TICK_SHIFT;
const SHUTDOWN: usize = 1 << 24;

/// Which half of the resource a task waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    /// The readiness that wakes this direction (errors wake both).
    pub(crate) fn mask(self) -> Ready {
        match self {
            Direction::Read => Ready::READABLE | Ready::READ_CLOSED | Ready::ERROR,
            Direction::Write => Ready::WRITABLE | Ready::WRITE_CLOSED | Ready::ERROR,
        }
    }
}

/// Readiness observed by a task, with the tick to clear it by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadyEvent {
    pub(crate) tick: u8,
    pub(crate) ready: Ready,
    pub(crate) is_shutdown: bool,
}

impl ReadyEvent {
    /// The wait is over: ready in the direction, or shut down.
    fn ends_wait(&self) -> bool {
        !self.ready.is_empty() || self.is_shutdown
    }
}

/// The shared state of one registration.
#[derive(Debug, Default)]
pub(crate) struct ScheduledIo {
    readiness: AtomicUsize,
    waiters: Mutex<Waiters>,
}

#[derive(Debug, Default)]
struct Waiters {
    /// The `poll_*` API's slots.
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// The async API's waiters.
    readers: WaiterList,
    writers: WaiterList,
}

impl Waiters {
    fn list(&mut self, direction: Direction) -> &mut WaiterList {
        match direction {
            Direction::Read => &mut self.readers,
            Direction::Write => &mut self.writers,
        }
    }

    fn slot(&mut self, direction: Direction) -> &mut Option<Waker> {
        match direction {
            Direction::Read => &mut self.reader,
            Direction::Write => &mut self.writer,
        }
    }
}

fn unpack(word: usize) -> (Ready, u8, bool) {
    (
        Ready::from_usize(word & READINESS_MASK),
        ((word & TICK_MASK) >> TICK_SHIFT) as u8,
        word & SHUTDOWN != 0,
    )
}

/// Stores `cx`'s waker in `slot` unless the one there already wakes the
/// same task; returns the replaced waker, for the caller to drop once it
/// released the lock.
fn register(slot: &mut Waker, cx: &Context<'_>) -> Option<Waker> {
    if slot.will_wake(cx.waker()) {
        None
    } else {
        Some(std::mem::replace(slot, cx.waker().clone()))
    }
}

impl ScheduledIo {
    fn lock(&self) -> MutexGuard<'_, Waiters> {
        // Only a waker's clone (or `Vec` growth) can panic under the lock,
        // and the waiters are consistent at those points.
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds readiness from a driver event of turn `tick`.
    pub(crate) fn set_readiness(&self, tick: u8, ready: Ready) {
        let _ = self.readiness.fetch_update(AcqRel, Acquire, |curr| {
            let new_ready = Ready::from_usize(curr & READINESS_MASK) | ready;
            Some((curr & SHUTDOWN) | (usize::from(tick) << TICK_SHIFT) | new_ready.as_usize())
        });
    }

    /// Wakes the tasks waiting for `ready`: the `poll_*` slot and every
    /// async waiter of each direction `ready` concerns. Wakes in batches,
    /// releasing the lock to wake each; waiters that arrive meanwhile saw
    /// the readiness (it was stored before) and are not waited for.
    pub(crate) fn wake(&self, ready: Ready) {
        let read = !ready_for(ready, Direction::Read).is_empty();
        let write = !ready_for(ready, Direction::Write).is_empty();
        let mut wakers = WakeList::new();
        let mut waiters = self.lock();
        if read {
            if let Some(w) = waiters.reader.take() {
                wakers.push(w);
            }
        }
        if write {
            if let Some(w) = waiters.writer.take() {
                wakers.push(w);
            }
        }
        let read_limit = waiters.readers.next_id();
        let write_limit = waiters.writers.next_id();
        let (mut read_cursor, mut write_cursor) = (0, 0);
        loop {
            let more_readers = read
                && waiters
                    .readers
                    .take_batch(&mut read_cursor, read_limit, &mut wakers);
            let more_writers = write
                && waiters
                    .writers
                    .take_batch(&mut write_cursor, write_limit, &mut wakers);
            if !more_readers && !more_writers {
                break;
            }
            drop(waiters);
            wakers.wake_all();
            waiters = self.lock();
        }
        drop(waiters);
        wakers.wake_all();
    }

    /// Drops the stored wakers without waking them (the resource was
    /// deregistered: a stored waker must not keep its task alive). Async
    /// waiters still pending lose their place; polled again, they wait
    /// anew.
    pub(crate) fn clear_wakers(&self) {
        let (slots, readers, writers) = {
            let mut waiters = self.lock();
            let slots = (waiters.reader.take(), waiters.writer.take());
            (
                slots,
                waiters.readers.take_all(),
                waiters.writers.take_all(),
            )
        };
        drop((slots, readers, writers));
    }

    /// The driver shuts down: every waiter resolves (with an error).
    pub(crate) fn shutdown(&self) {
        self.readiness.fetch_or(SHUTDOWN, AcqRel);
        self.wake(Ready::ALL);
    }

    /// The readiness now, for `direction`.
    pub(crate) fn ready_event(&self, direction: Direction) -> ReadyEvent {
        let (ready, tick, is_shutdown) = unpack(self.readiness.load(Acquire));
        ReadyEvent {
            tick,
            ready: ready_for(ready, direction),
            is_shutdown,
        }
    }

    /// The `poll_*` API: ready once the resource is ready in `direction`
    /// (or the driver shut down); otherwise stores the task's waker in the
    /// direction's single slot (replacing the previous poller's).
    pub(crate) fn poll_readiness(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<ReadyEvent> {
        let ev = self.ready_event(direction);
        if ev.ends_wait() {
            return Poll::Ready(ev);
        }
        let mut waiters = self.lock();
        // Checked again under the lock: the driver stores readiness before
        // it takes the lock, so either we see the readiness now or the
        // driver sees our waker.
        let ev = self.ready_event(direction);
        if ev.ends_wait() {
            return Poll::Ready(ev);
        }
        let replaced = match waiters.slot(direction) {
            Some(w) => register(w, cx),
            slot @ None => {
                *slot = Some(cx.waker().clone());
                None
            }
        };
        drop(waiters);
        drop(replaced);
        Poll::Pending
    }

    /// The async API: a wait for readiness in `direction` that any number
    /// of tasks can do at once.
    pub(crate) fn readiness(&self, direction: Direction) -> Readiness<'_> {
        Readiness {
            io: self,
            direction,
            key: None,
        }
    }

    /// Clears the readiness a task consumed (it got `WouldBlock`), unless a
    /// newer driver event set it again since. Closed bits stay: a closed
    /// half never becomes open again.
    pub(crate) fn clear_readiness(&self, event: ReadyEvent) {
        let clear = event.ready - Ready::READ_CLOSED - Ready::WRITE_CLOSED;
        let _ = self.readiness.fetch_update(AcqRel, Acquire, |curr| {
            let (_, tick, _) = unpack(curr);
            if tick != event.tick {
                return None;
            }
            Some(curr & !clear.as_usize())
        });
    }

    #[cfg(test)]
    fn num_waiters(&self, direction: Direction) -> usize {
        self.lock().list(direction).len()
    }
}

/// A wait for readiness in one direction, through the resource's waiter
/// list (the async API). Resolves when the resource is ready in that
/// direction or the driver shut down. While pending it holds a place in
/// the list; dropping it gives the place up. It can be polled again after
/// it resolved: it then waits anew.
#[derive(Debug)]
pub(crate) struct Readiness<'a> {
    io: &'a ScheduledIo,
    direction: Direction,
    /// Our place in the list, while registered. The list takes it away
    /// when it wakes us.
    key: Option<WaiterKey>,
}

impl Readiness<'_> {
    /// Polls the wait (`Future::poll` without the pin).
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<ReadyEvent> {
        let ev = self.io.ready_event(self.direction);
        if ev.ends_wait() {
            self.unlink();
            return Poll::Ready(ev);
        }
        let mut waiters = self.io.lock();
        let list = waiters.list(self.direction);
        // Checked again under the lock: see `poll_readiness`.
        let ev = self.io.ready_event(self.direction);
        let unneeded = if ev.ends_wait() {
            self.key.take().and_then(|key| list.remove(key))
        } else {
            match self.key.and_then(|key| list.waker_mut(key)) {
                Some(waker) => register(waker, cx),
                None => {
                    // First poll, or woken (the list took us out) but the
                    // readiness was consumed since: wait again.
                    self.key = Some(list.insert(cx.waker().clone()));
                    None
                }
            }
        };
        drop(waiters);
        drop(unneeded);
        if ev.ends_wait() {
            Poll::Ready(ev)
        } else {
            Poll::Pending
        }
    }

    /// Leaves the list, if still in it.
    fn unlink(&mut self) {
        if let Some(key) = self.key.take() {
            let removed = self.io.lock().list(self.direction).remove(key);
            drop(removed);
        }
    }
}

impl Future for Readiness<'_> {
    type Output = ReadyEvent;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ReadyEvent> {
        self.get_mut().poll_ready(cx)
    }
}

impl Drop for Readiness<'_> {
    fn drop(&mut self) {
        self.unlink();
    }
}

fn ready_for(ready: Ready, direction: Direction) -> Ready {
    Ready::from_usize(ready.as_usize() & direction.mask().as_usize())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn clear_only_if_tick_matches() {
        let io = ScheduledIo::default();
        io.set_readiness(1, Ready::READABLE);
        let ev = io.ready_event(Direction::Read);
        assert!(ev.ready.is_readable());
        // A new edge arrives in turn 2 before the task clears.
        io.set_readiness(2, Ready::READABLE);
        io.clear_readiness(ev);
        assert!(
            io.ready_event(Direction::Read).ready.is_readable(),
            "edge lost"
        );
        let ev = io.ready_event(Direction::Read);
        io.clear_readiness(ev);
        assert!(io.ready_event(Direction::Read).ready.is_empty());
    }

    #[test]
    fn closed_bits_survive_clear() {
        let io = ScheduledIo::default();
        io.set_readiness(1, Ready::READABLE | Ready::READ_CLOSED);
        let ev = io.ready_event(Direction::Read);
        io.clear_readiness(ev);
        assert!(io.ready_event(Direction::Read).ready.is_read_closed());
    }

    #[test]
    fn directions_are_separate() {
        let io = ScheduledIo::default();
        io.set_readiness(1, Ready::WRITABLE);
        assert!(io.ready_event(Direction::Read).ready.is_empty());
        assert!(io.ready_event(Direction::Write).ready.is_writable());
    }
}
