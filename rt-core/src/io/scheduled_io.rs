//! `ScheduledIo`: the driver-side state of one registered I/O resource.
//!
//! A readiness word packs the readiness bits, the driver tick of the event
//! that last set them, and a shutdown bit. A task that got `WouldBlock`
//! clears readiness only if the tick still matches the one it saw, so an
//! edge the driver recorded meanwhile is never lost. One waker slot per
//! direction (reader, writer) holds the task to wake.

use super::Ready;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{AcqRel, Acquire};
use std::sync::Mutex;
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

/// The shared state of one registration.
#[derive(Debug, Default)]
pub(crate) struct ScheduledIo {
    readiness: AtomicUsize,
    waiters: Mutex<Waiters>,
}

#[derive(Debug, Default)]
struct Waiters {
    reader: Option<Waker>,
    writer: Option<Waker>,
}

fn unpack(word: usize) -> (Ready, u8, bool) {
    (
        Ready::from_usize(word & READINESS_MASK),
        ((word & TICK_MASK) >> TICK_SHIFT) as u8,
        word & SHUTDOWN != 0,
    )
}

impl ScheduledIo {
    /// Adds readiness from a driver event of turn `tick`.
    pub(crate) fn set_readiness(&self, tick: u8, ready: Ready) {
        let _ = self.readiness.fetch_update(AcqRel, Acquire, |curr| {
            let new_ready = Ready::from_usize(curr & READINESS_MASK) | ready;
            Some((curr & SHUTDOWN) | (usize::from(tick) << TICK_SHIFT) | new_ready.as_usize())
        });
    }

    /// Wakes the tasks waiting for `ready`.
    pub(crate) fn wake(&self, ready: Ready) {
        let (reader, writer) = {
            let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            let reader = if ready.is_readable() || ready.is_error() {
                waiters.reader.take()
            } else {
                None
            };
            let writer = if ready.is_writable() || ready.is_error() {
                waiters.writer.take()
            } else {
                None
            };
            (reader, writer)
        };
        // Woken outside the lock: a waker may run arbitrary code.
        if let Some(w) = reader {
            w.wake();
        }
        if let Some(w) = writer {
            w.wake();
        }
    }

    /// Drops the stored wakers (the resource was deregistered: nobody
    /// waits on it any more, and a stored waker must not keep its task
    /// alive).
    pub(crate) fn clear_wakers(&self) {
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|e| e.into_inner()));
        drop(waiters);
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

    /// Ready once the resource is ready in `direction` (or the driver shut
    /// down); otherwise registers the task's waker for that direction.
    pub(crate) fn poll_readiness(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<ReadyEvent> {
        let ev = self.ready_event(direction);
        if !ev.ready.is_empty() || ev.is_shutdown {
            return Poll::Ready(ev);
        }
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        let slot = match direction {
            Direction::Read => &mut waiters.reader,
            Direction::Write => &mut waiters.writer,
        };
        match slot {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        // Check again with the waker in place: the driver sets readiness
        // before it takes the waiters lock, so either we see the readiness
        // now or the driver sees our waker.
        let ev = self.ready_event(direction);
        if !ev.ready.is_empty() || ev.is_shutdown {
            return Poll::Ready(ev);
        }
        Poll::Pending
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
