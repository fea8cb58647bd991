//! The time driver: owns the timer wheel, parks the runtime until the next
//! deadline, and fires what expired.
//!
//! It wraps the next driver in the stack (the I/O driver, or a thread
//! parker without I/O): its park computes the time to the wheel's next
//! expiration, parks the inner driver at most that long, then fires the
//! expired timers in batches of 32 with the wheel lock released while the
//! wakers run.

use super::entry::{Fired, TimerShared};
use super::wheel::{TimerKey, Wheel};
use crate::runtime::park::{Park, Unpark};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

/// Wakers fired per batch (the wheel lock is released between batches).
const FIRE_BATCH: usize = 32;

/// The time driver (owned by whichever thread parks in it).
pub(crate) struct Driver {
    park: Box<dyn Park>,
    handle: Handle,
}

/// The shared half: register and cancel timers from any thread.
#[derive(Clone)]
pub(crate) struct Handle {
    inner: Arc<Inner>,
}

struct Inner {
    /// Tick 0 of the wheel.
    start: Instant,
    state: Mutex<State>,
    /// The tick the driver parks until: never later than the wheel's next
    /// expiration (cascade points included), u64::MAX for no timer. Kept
    /// by registers (which lower it and unpark the driver) and by
    /// processing (which recomputes it), so parking needs no lock.
    next_wake: AtomicU64,
    unpark: Arc<dyn Unpark>,
}

/// What the wheel holds for one timer.
pub(crate) enum Entry {
    /// A `Sleep`: the state its task polls.
    Sleep(Arc<TimerShared>),
    /// A `WakeAt`: the waker itself (no shared state to allocate).
    Wake(Waker),
    /// An alarm (`Alarms`): its set and token.
    Alarm(Arc<super::alarm::AlarmSet>, u64),
}

impl Entry {
    fn fire(self, how: Fired) {
        match self {
            Entry::Sleep(shared) => shared.fire(how),
            Entry::Wake(waker) => waker.wake(),
            Entry::Alarm(set, token) => set.fire(token, matches!(how, Fired::Shutdown)),
        }
    }
}

struct State {
    wheel: Wheel<Entry>,
    is_shutdown: bool,
}

impl Driver {
    /// Stacks a time driver on `park`.
    pub(crate) fn new(park: Box<dyn Park>) -> Driver {
        let unpark = park.unparker();
        Driver {
            park,
            handle: Handle {
                inner: Arc::new(Inner {
                    start: Instant::now(),
                    state: Mutex::new(State {
                        wheel: Wheel::new(),
                        is_shutdown: false,
                    }),
                    next_wake: AtomicU64::new(u64::MAX),
                    unpark,
                }),
            },
        }
    }

    pub(crate) fn handle(&self) -> Handle {
        self.handle.clone()
    }

    fn park_internal(&mut self, limit: Option<Duration>) {
        // `next_wake` is never later than the wheel's next expiration: a
        // register lowers it under the wheel lock (then unparks us), and
        // processing recomputes it. A timer registered after this load
        // unparks us if it is due earlier; one registered before lowered
        // it already. (A cancelled timer may leave it early: the turn then
        // finds nothing due and recomputes it.) No lock per park.
        let next = match self.handle.inner.next_wake.load(SeqCst) {
            u64::MAX => None,
            tick => Some(tick),
        };
        let until_next = next.map(|tick| {
            self.handle
                .tick_to_instant(tick)
                .saturating_duration_since(Instant::now())
        });
        let timeout = match (until_next, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match timeout {
            Some(d) => self.park.park_timeout(d),
            None => self.park.park(),
        }
        self.handle.process();
    }
}

impl Park for Driver {
    fn park(&mut self) {
        self.park_internal(None);
    }

    fn park_timeout(&mut self, duration: Duration) {
        self.park_internal(Some(duration));
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        self.handle.inner.unpark.clone()
    }

    fn shutdown(&mut self) {
        self.handle.shutdown();
        self.park.shutdown();
    }
}

impl Handle {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The wheel tick of `deadline`, rounded up: a timer is never due
    /// before its deadline.
    pub(crate) fn deadline_to_tick(&self, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(self.inner.start);
        let ms = since.as_millis();
        let ms = if since > Duration::from_millis(ms as u64) {
            ms + 1
        } else {
            ms
        };
        u64::try_from(ms).unwrap_or(u64::MAX)
    }

    /// The tick that has fully passed now (rounded down).
    fn now_tick(&self) -> u64 {
        let ms = Instant::now()
            .saturating_duration_since(self.inner.start)
            .as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX)
    }

    fn tick_to_instant(&self, tick: u64) -> Instant {
        self.inner
            .start
            .checked_add(Duration::from_millis(tick))
            .unwrap_or_else(|| self.inner.start + Duration::from_secs(86_400 * 365 * 30))
    }

    /// Puts a timer in the wheel. `None` means it is already due (or the
    /// driver shut down): the timer was fired right here.
    pub(crate) fn register(&self, tick: u64, entry: Entry) -> Option<TimerKey> {
        match self.try_register(tick, entry) {
            Ok(key) => Some(key),
            Err((entry, how)) => {
                entry.fire(how);
                None
            }
        }
    }

    /// Puts a timer in the wheel, or hands it back unfired with the reason:
    /// its tick was already processed, or the driver shut down.
    pub(crate) fn try_register(&self, tick: u64, entry: Entry) -> Result<TimerKey, (Entry, Fired)> {
        let mut state = self.lock();
        if state.is_shutdown {
            return Err((entry, Fired::Shutdown));
        }
        match state.wheel.insert(tick, entry) {
            Ok(key) => {
                // Wake the parked driver if this timer is due before it
                // planned to wake, and remember the new wake tick so a burst
                // of later timers does not unpark it again. The wake tick is
                // the wheel's next expiration: this timer's tick, or the
                // cascade point before it, where a timer on a higher level
                // moves down. (A timer due at or after the wake tick never
                // has a cascade point before it.)
                // (`u64::MAX` means no timer: a first timer always sets it,
                // even one clamped from a tick of `u64::MAX`.)
                let current = self.inner.next_wake.load(Relaxed);
                if tick < current || current == u64::MAX {
                    let next = state.wheel.next_expiration().map_or(tick, |n| n.min(tick));
                    if next < current {
                        self.inner.next_wake.store(next, Relaxed);
                        drop(state);
                        self.inner.unpark.unpark();
                    }
                }
                Ok(key)
            }
            Err(entry) => Err((entry, Fired::Elapsed)),
        }
    }

    /// Removes a timer that has not fired (no-op if it already did).
    /// True if it was still in the wheel.
    pub(crate) fn cancel(&self, key: TimerKey) -> bool {
        let removed = self.lock().wheel.remove(key);
        // Dropped outside the lock (an entry may hold the last reference to
        // a target or a waker).
        removed.is_some()
    }

    /// Fires every timer due by now, in batches, with the lock released
    /// while the wakers run.
    pub(crate) fn process(&self) {
        // `next_wake` is never later than the wheel's next expiration (a
        // register lowers it under the lock; processing recomputes it):
        // nothing is due before it, so skip the lock and the batch (and
        // with no timer at all, the clock too).
        let next_wake = self.inner.next_wake.load(SeqCst);
        if next_wake == u64::MAX {
            return;
        }
        let now = self.now_tick();
        if now < next_wake {
            return;
        }
        let mut batch: Vec<Entry> = Vec::with_capacity(FIRE_BATCH);
        loop {
            {
                let mut state = self.lock();
                while batch.len() < FIRE_BATCH {
                    match state.wheel.poll(now) {
                        Some((_, _, entry)) => batch.push(entry),
                        None => break,
                    }
                }
                if batch.is_empty() {
                    let next = state.wheel.next_expiration().unwrap_or(u64::MAX);
                    self.inner.next_wake.store(next, SeqCst);
                    return;
                }
            }
            for entry in batch.drain(..) {
                entry.fire(Fired::Elapsed);
            }
        }
    }

    /// Shuts down: every pending timer fires as "shutdown"; later timers
    /// too.
    pub(crate) fn shutdown(&self) {
        let pending: Vec<Entry> = {
            let mut state = self.lock();
            if state.is_shutdown {
                return;
            }
            state.is_shutdown = true;
            let mut all = Vec::with_capacity(state.wheel.len());
            while let Some((_, _, entry)) = state.wheel.poll(u64::MAX) {
                all.push(entry);
            }
            all
        };
        for entry in pending {
            entry.fire(Fired::Shutdown);
        }
    }

    /// When the earliest timer in the wheel is due (its tick, exactly: not
    /// a cascade point before it), if any; for a host that waits outside
    /// the driver (`Handle::backend_timeout`, the host timer), so it wakes
    /// once per deadline. (The driver itself keeps waking at cascade
    /// points, `next_wake`: finding the exact deadline may scan a slot of
    /// a higher level, too slow for every turn of a busy wheel.)
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let next = self.lock().wheel.next_deadline()?;
        Some(self.tick_to_instant(next))
    }

    /// Timers in the wheel.
    pub(crate) fn num_timers(&self) -> usize {
        self.lock().wheel.len()
    }
}
