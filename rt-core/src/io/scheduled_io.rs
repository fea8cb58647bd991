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

    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use std::task::Wake;

    /// Counts its wakes; `Arc::strong_count` tells whether a waker is held.
    #[derive(Default)]
    struct Tracked(AtomicUsize);

    impl Wake for Tracked {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    fn tracked() -> (Arc<Tracked>, Waker) {
        let t = Arc::new(Tracked::default());
        (t.clone(), Waker::from(t))
    }

    fn poll(wait: &mut Readiness<'_>, waker: &Waker) -> Poll<ReadyEvent> {
        wait.poll_ready(&mut Context::from_waker(waker))
    }

    #[test]
    fn every_async_waiter_is_woken() {
        // More than a wake batch (32).
        let io = ScheduledIo::default();
        let (t, waker) = tracked();
        let mut waits: Vec<_> = (0..100).map(|_| io.readiness(Direction::Read)).collect();
        for w in &mut waits {
            assert!(poll(w, &waker).is_pending());
        }
        assert_eq!(io.num_waiters(Direction::Read), 100);
        io.set_readiness(1, Ready::READABLE);
        io.wake(Ready::READABLE);
        assert_eq!(t.0.load(SeqCst), 100);
        assert_eq!(io.num_waiters(Direction::Read), 0);
        for w in &mut waits {
            assert!(poll(w, &waker).is_ready());
        }
        drop(waits);
        drop(waker);
        assert_eq!(Arc::strong_count(&t), 1, "a waker leaked");
    }

    #[test]
    fn a_wake_concerns_its_direction_only() {
        let io = ScheduledIo::default();
        let (r, rw) = tracked();
        let (w, ww) = tracked();
        let mut read = io.readiness(Direction::Read);
        let mut write = io.readiness(Direction::Write);
        assert!(poll(&mut read, &rw).is_pending());
        assert!(poll(&mut write, &ww).is_pending());
        io.set_readiness(1, Ready::WRITABLE);
        io.wake(Ready::WRITABLE);
        assert_eq!((r.0.load(SeqCst), w.0.load(SeqCst)), (0, 1));
        assert!(poll(&mut write, &ww).is_ready());
        assert!(poll(&mut read, &rw).is_pending());
        // Errors wake both directions.
        let mut write = io.readiness(Direction::Write);
        io.clear_readiness(io.ready_event(Direction::Write));
        assert!(poll(&mut write, &ww).is_pending());
        io.set_readiness(2, Ready::ERROR);
        io.wake(Ready::ERROR);
        assert_eq!((r.0.load(SeqCst), w.0.load(SeqCst)), (1, 2));
    }

    #[test]
    fn a_dropped_waiter_leaves_and_releases_its_waker() {
        let io = ScheduledIo::default();
        let (t, waker) = tracked();
        let mut wait = io.readiness(Direction::Read);
        assert!(poll(&mut wait, &waker).is_pending());
        // Polled again with another waker: the first is released.
        let (t2, waker2) = tracked();
        assert!(poll(&mut wait, &waker2).is_pending());
        drop(waker);
        assert_eq!(Arc::strong_count(&t), 1);
        drop(wait);
        drop(waker2);
        assert_eq!(Arc::strong_count(&t2), 1);
        assert_eq!(io.num_waiters(Direction::Read), 0);
        io.set_readiness(1, Ready::READABLE);
        io.wake(Ready::READABLE);
        assert_eq!(t2.0.load(SeqCst), 0);
    }

    #[test]
    fn a_woken_waiter_waits_again_when_the_readiness_is_gone() {
        let io = ScheduledIo::default();
        let (t, waker) = tracked();
        let mut wait = io.readiness(Direction::Read);
        assert!(poll(&mut wait, &waker).is_pending());
        io.set_readiness(1, Ready::READABLE);
        io.wake(Ready::READABLE);
        assert_eq!(t.0.load(SeqCst), 1);
        // Another task consumed it (read until WouldBlock) first.
        io.clear_readiness(io.ready_event(Direction::Read));
        assert!(poll(&mut wait, &waker).is_pending());
        assert_eq!(io.num_waiters(Direction::Read), 1);
        io.set_readiness(2, Ready::READABLE);
        io.wake(Ready::READABLE);
        assert_eq!(t.0.load(SeqCst), 2);
        assert!(poll(&mut wait, &waker).is_ready());
    }

    #[test]
    fn shutdown_wakes_slots_and_lists() {
        let io = ScheduledIo::default();
        let (t, waker) = tracked();
        let mut cx = Context::from_waker(&waker);
        assert!(io.poll_readiness(&mut cx, Direction::Read).is_pending());
        assert!(io.poll_readiness(&mut cx, Direction::Write).is_pending());
        let mut waits: Vec<_> = [Direction::Read, Direction::Write]
            .into_iter()
            .cycle()
            .take(10)
            .map(|d| io.readiness(d))
            .collect();
        for w in &mut waits {
            assert!(poll(w, &waker).is_pending());
        }
        io.shutdown();
        assert_eq!(t.0.load(SeqCst), 12);
        for w in &mut waits {
            assert!(matches!(poll(w, &waker), Poll::Ready(ev) if ev.is_shutdown));
        }
        // A wait that starts after shutdown resolves at once.
        assert!(matches!(
            poll(&mut io.readiness(Direction::Read), &waker),
            Poll::Ready(ev) if ev.is_shutdown
        ));
    }

    #[test]
    fn clear_wakers_releases_without_waking() {
        let io = ScheduledIo::default();
        let (t, waker) = tracked();
        assert!(io
            .poll_readiness(&mut Context::from_waker(&waker), Direction::Read)
            .is_pending());
        let mut wait = io.readiness(Direction::Write);
        assert!(poll(&mut wait, &waker).is_pending());
        drop(waker);
        io.clear_wakers();
        assert_eq!(Arc::strong_count(&t), 1);
        assert_eq!(t.0.load(SeqCst), 0);
        drop(wait);
    }

    #[test]
    fn a_waker_may_come_back_to_the_resource() {
        // Woken outside the lock: a waker that polls or drops a wait on the
        // same resource must not deadlock.
        struct Reenter(Arc<ScheduledIo>);
        impl Wake for Reenter {
            fn wake(self: Arc<Self>) {
                let mut wait = self.0.readiness(Direction::Read);
                let _ = wait.poll_ready(&mut Context::from_waker(Waker::noop()));
                drop(wait);
                let _ = self
                    .0
                    .poll_readiness(&mut Context::from_waker(Waker::noop()), Direction::Write);
            }
        }
        let io = Arc::new(ScheduledIo::default());
        let waker = Waker::from(Arc::new(Reenter(io.clone())));
        let mut cx = Context::from_waker(&waker);
        assert!(io.poll_readiness(&mut cx, Direction::Read).is_pending());
        let mut waits: Vec<_> = (0..40).map(|_| io.readiness(Direction::Read)).collect();
        for w in &mut waits {
            assert!(poll(w, &waker).is_pending());
        }
        io.set_readiness(1, Ready::READABLE);
        io.wake(Ready::READABLE);
        assert_eq!(io.num_waiters(Direction::Read), 0);
    }

    #[test]
    fn directions_are_separate() {
        let io = ScheduledIo::default();
        io.set_readiness(1, Ready::WRITABLE);
        assert!(io.ready_event(Direction::Read).ready.is_empty());
        assert!(io.ready_event(Direction::Write).ready.is_writable());
    }
}

/// Model checks (`RUSTFLAGS="--cfg loom" cargo test --lib loom_`): the
/// waiter list's register / wake / drop races.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::loom::Arc;
    use ::loom::thread;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use crate::loom::block_on;

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = ::loom::model::Builder::new();
        builder.preemption_bound.get_or_insert(3);
        builder.check(f);
    }

    /// The driver's side of an event.
    fn event(io: &ScheduledIo, ready: Ready) {
        io.set_readiness(1, ready);
        io.wake(ready);
    }

    #[test]
    fn loom_async_waiter_never_misses_a_wake() {
        model(|| {
            let io = Arc::new(ScheduledIo::default());
            let driver = {
                let io = io.clone();
                thread::spawn(move || event(&io, Ready::READABLE))
            };
            let ev = block_on(io.readiness(Direction::Read));
            assert!(ev.ready.is_readable());
            driver.join().unwrap();
        });
    }

    #[test]
    fn loom_two_async_waiters_both_woken() {
        model(|| {
            let io = Arc::new(ScheduledIo::default());
            let other = {
                let io = io.clone();
                thread::spawn(move || block_on(io.readiness(Direction::Read)).ready)
            };
            let driver = {
                let io = io.clone();
                thread::spawn(move || event(&io, Ready::READABLE))
            };
            assert!(block_on(io.readiness(Direction::Read)).ready.is_readable());
            assert!(other.join().unwrap().is_readable());
            driver.join().unwrap();
        });
    }

    #[test]
    fn loom_woken_waiter_whose_readiness_was_consumed_waits_again() {
        // Woken by a first event whose readiness another consumer cleared
        // before the waiter looked: it registers again and the second
        // event reaches it.
        model(|| {
            let io = Arc::new(ScheduledIo::default());
            let driver = {
                let io = io.clone();
                thread::spawn(move || {
                    io.set_readiness(1, Ready::READABLE);
                    io.wake(Ready::READABLE);
                    io.clear_readiness(io.ready_event(Direction::Read));
                    io.set_readiness(2, Ready::READABLE);
                    io.wake(Ready::READABLE);
                })
            };
            assert!(block_on(io.readiness(Direction::Read)).ready.is_readable());
            driver.join().unwrap();
        });
    }

    #[test]
    fn loom_poll_slot_never_misses_a_wake() {
        model(|| {
            let io = Arc::new(ScheduledIo::default());
            let driver = {
                let io = io.clone();
                thread::spawn(move || event(&io, Ready::WRITABLE))
            };
            let ev = block_on(std::future::poll_fn(|cx| {
                io.poll_readiness(cx, Direction::Write)
            }));
            assert!(ev.ready.is_writable());
            driver.join().unwrap();
        });
    }

    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl std::task::Wake for Counting {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn loom_dropped_waiter_races_a_wake() {
        // Waiters register then are dropped while the driver wakes: the
        // lists end empty and the wakers are released, whoever wins. The
        // write waiter is not concerned by the (read) wake: only its own
        // unlinking takes it out.
        model(|| {
            let io = Arc::new(ScheduledIo::default());
            let counting = std::sync::Arc::new(Counting::default());
            let waiter = {
                let io = io.clone();
                let waker = Waker::from(counting.clone());
                thread::spawn(move || {
                    let mut cx = Context::from_waker(&waker);
                    let mut write = io.readiness(Direction::Write);
                    assert!(write.poll_ready(&mut cx).is_pending());
                    let mut read = io.readiness(Direction::Read);
                    let first = read.poll_ready(&mut cx);
                    drop(read);
                    drop(write);
                    first.is_ready()
                })
            };
            event(&io, Ready::READABLE);
            let was_ready = waiter.join().unwrap();
            assert_eq!(io.num_waiters(Direction::Read), 0);
            assert_eq!(io.num_waiters(Direction::Write), 0);
            assert_eq!(std::sync::Arc::strong_count(&counting), 1, "waker kept");
            if was_ready {
                assert_eq!(counting.0.load(SeqCst), 0);
            }
        });
    }

    #[test]
    fn loom_shutdown_races_registration() {
        model(|| {
            let io = Arc::new(ScheduledIo::default());
            let waiter = {
                let io = io.clone();
                thread::spawn(move || block_on(io.readiness(Direction::Write)))
            };
            io.shutdown();
            assert!(waiter.join().unwrap().is_shutdown);
            assert_eq!(io.num_waiters(Direction::Write), 0);
        });
    }
}
