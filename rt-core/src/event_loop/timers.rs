//! The loop's timers: `call_at` handles on rt's hierarchical wheel
//! ([`crate::time::wheel::Wheel`]) with 1 tick = 1 µs.
//!
//! A timer due at `when_ns` is stored at tick `ceil(when_ns / 1000)` and
//! handed out by a poll at `now_ns` only once that tick has begun
//! (`tick * 1000 <= now_ns`), so never before `when_ns`, and at most 1 µs of
//! wheel granularity after it. Timers of one tick come out in insertion
//! order (the wheel's guarantee).
//!
//! Deadlines the wheel would clamp (more than [`MAX_DURATION`] ticks, about
//! 19 hours, past the tick the wheel has reached) are kept out of it instead,
//! in a small ordered map ("far" timers), so no timer is ever fired early
//! and no key ever changes; a poll merges the two sources in
//! (tick, insertion) order. Far timers are rare: their removal is
//! O(log far), every other operation O(1) per timer.
//!
//! A timer given a deadline the wheel has already passed (`call_at` in the
//! past) goes to the wheel's next tick: it is due at the next poll. Every
//! entry keeps its exact deadline, and the timers one poll hands out are
//! ordered by (deadline, insertion), so past deadlines keep asyncio's order
//! among themselves and with the others due at that poll.

use super::clock::{tick_ceil, tick_floor};
use crate::time::wheel::{self, Wheel, MAX_DURATION};
use std::collections::BTreeMap;

/// Names a stored timer (wheel or far).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// In the wheel.
    Wheel(wheel::TimerKey),
    /// In the far map, under (tick, sequence number).
    Far(u64, u64),
}

/// A stored timer.
struct Entry<H> {
    /// The exact deadline (the wheel knows only its µs tick).
    when_ns: u64,
    seq: u64,
    handle: H,
}

/// The timer store of one loop.
pub(crate) struct Timers<H> {
    wheel: Wheel<Entry<H>>,
    far: BTreeMap<(u64, u64), (u64, H)>,
    /// A poll's due timers (a buffer kept between polls).
    due: Vec<(u64, u64, H)>,
    /// Insertion counter (ties between the wheel and the far map).
    seq: u64,
}

impl<H> Timers<H> {
    /// An empty store whose wheel starts at `now_ns`.
    pub(crate) fn new(now_ns: u64) -> Timers<H> {
        let mut wheel = Wheel::new();
        // Start the wheel at the current tick, so deadlines are relative to
        // now rather than to the boot (and are not clamped).
        let fired = wheel.poll(tick_floor(now_ns));
        debug_assert!(fired.is_none());
        Timers {
            wheel,
            far: BTreeMap::new(),
            due: Vec::new(),
            seq: 0,
        }
    }

    /// Number of timers stored.
    pub(crate) fn len(&self) -> usize {
        self.wheel.len() + self.far.len()
    }

    /// Stores `handle`, due at `when_ns`.
    pub(crate) fn insert(&mut self, when_ns: u64, handle: H) -> Key {
        let seq = self.seq;
        self.seq += 1;
        let elapsed = self.wheel.elapsed();
        // A deadline the wheel has passed is due at its next tick.
        let tick = tick_ceil(when_ns).max(elapsed + 1);
        if tick - elapsed > MAX_DURATION {
            self.far.insert((tick, seq), (when_ns, handle));
            return Key::Far(tick, seq);
        }
        match self.wheel.insert(
            tick,
            Entry {
                when_ns,
                seq,
                handle,
            },
        ) {
            Ok(key) => Key::Wheel(key),
            // `tick > elapsed` and within MAX_DURATION: the wheel takes it.
            Err(_) => unreachable!("wheel refused tick {tick} (elapsed {elapsed})"),
        }
    }

    /// Removes a timer not yet handed out; `None` if it fired or was
    /// removed.
    pub(crate) fn remove(&mut self, key: Key) -> Option<H> {
        match key {
            Key::Wheel(k) => self.wheel.remove(k).map(|e| e.handle),
            Key::Far(tick, seq) => self.far.remove(&(tick, seq)).map(|(_, h)| h),
        }
    }

    /// The earliest time (ns) at which a poll hands out a timer (the
    /// earliest deadline rounded up to its tick); `None` if there is none.
    pub(crate) fn next_due_ns(&mut self) -> Option<u64> {
        let wheel = self.wheel.next_deadline();
        let far = self.far.keys().next().map(|&(tick, _)| tick);
        let tick = match (wheel, far) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(tick.saturating_mul(1_000))
    }

    /// [`poll`](Self::poll) at `now()`, unless no timer is stored: a busy
    /// loop with no timers reads no clock. The wheel then stays at its last
    /// poll; [`insert_at`](Self::insert_at) brings it to now first.
    pub(crate) fn poll_if_any(&mut self, now: impl FnOnce() -> u64, out: impl FnMut(H)) -> usize {
        if self.len() == 0 {
            return 0;
        }
        self.poll(now(), out)
    }

    /// [`insert`](Self::insert), after bringing an empty set's wheel to
    /// `now()` (see [`poll_if_any`](Self::poll_if_any)), so the deadline
    /// is placed relative to now rather than to the last poll.
    pub(crate) fn insert_at(&mut self, now: impl FnOnce() -> u64, when_ns: u64, handle: H) -> Key {
        if self.len() == 0 {
            let fired = self.poll(now(), |_| {});
            debug_assert_eq!(fired, 0);
        }
        self.insert(when_ns, handle)
    }

    /// Hands every timer due at `now_ns` to `out`, by (deadline tick,
    /// insertion order). Returns how many.
    pub(crate) fn poll(&mut self, now_ns: u64, mut out: impl FnMut(H)) -> usize {
        let now_tick = tick_floor(now_ns);
        let mut due = std::mem::take(&mut self.due);
        while let Some((_, _, e)) = self.wheel.poll(now_tick) {
            due.push((e.when_ns, e.seq, e.handle));
        }
        while let Some(entry) = self.far.first_entry() {
            if entry.key().0 > now_tick {
                break;
            }
            let ((_, seq), (when_ns, h)) = entry.remove_entry();
            due.push((when_ns, seq, h));
        }
        // The wheel hands a poll's timers out by (tick, insertion); timers
        // given past deadlines share one tick, and far ones come last: put
        // them in (exact deadline, insertion) order. Usually sorted already
        // (a linear check).
        if !due.is_sorted_by_key(|&(when, seq, _)| (when, seq)) {
            due.sort_by_key(|&(when, seq, _)| (when, seq));
        }
        let n = due.len();
        for (_, _, h) in due.drain(..) {
            out(h);
        }
        self.due = due;
        n
    }

    /// Calls `f` with every stored handle (any order).
    pub(crate) fn for_each(&self, f: &mut dyn FnMut(&H)) {
        self.wheel.for_each(|e| f(&e.handle));
        self.far.values().for_each(|(_, h)| f(h));
    }

    /// Removes every timer (closing the loop).
    pub(crate) fn drain_all(&mut self, out: &mut Vec<H>) {
        while let Some((_, _, e)) = self.wheel.poll(u64::MAX) {
            out.push(e.handle);
        }
        out.extend(std::mem::take(&mut self.far).into_values().map(|(_, h)| h));
    }
}

impl<H> std::fmt::Debug for Timers<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers")
            .field("wheel", &self.wheel.len())
            .field("far", &self.far.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn poll(t: &mut Timers<u32>, now: u64) -> Vec<u32> {
        let mut v = Vec::new();
        t.poll(now, |h| v.push(h));
        v
    }

    #[test]
    fn never_early_exact_ns() {
        let base = 1_000 * MS;
        let mut t = Timers::new(base);
        t.insert(base + 1_500, 1); // tick ceil -> base + 2 µs
        assert_eq!(t.next_due_ns(), Some(base + 2_000));
        assert!(poll(&mut t, base + 1_499).is_empty());
        assert!(poll(&mut t, base + 1_999).is_empty());
        assert_eq!(poll(&mut t, base + 2_000), vec![1]);
        assert_eq!(t.len(), 0);
        assert_eq!(t.next_due_ns(), None);
    }

    #[test]
    fn ties_in_insertion_order_and_past_deadlines() {
        let base = 5_000 * MS;
        let mut t = Timers::new(base);
        t.insert(base + 3 * MS, 3);
        t.insert(base + MS, 1);
        t.insert(base + MS + 10, 2); // same µs tick as... no: next tick
        t.insert(base + MS, 10);
        t.insert(0, 0); // in the past: next tick
        assert_eq!(poll(&mut t, base + 1_000), vec![0]);
        assert_eq!(poll(&mut t, base + 3 * MS), vec![1, 10, 2, 3]);
    }

    #[test]
    fn past_deadlines_by_deadline_then_insertion() {
        let base = 9_000 * MS;
        let mut t = Timers::new(base);
        t.insert(base - 5 * MS, 1);
        t.insert(base - 10 * MS, 2);
        t.insert(base - 10 * MS, 3);
        t.insert(base + 500, 4); // same next tick as the past ones, later deadline
        t.insert(base + 400, 5);
        assert_eq!(poll(&mut t, base + 1_000), vec![2, 3, 1, 5, 4]);
    }

    #[test]
    fn far_timers_are_not_clamped_and_keep_their_key() {
        let base = 7_000 * MS;
        let mut t = Timers::new(base);
        let far = base + (MAX_DURATION + 10) * 1_000;
        let k = t.insert(far, 1);
        assert!(matches!(k, Key::Far(..)));
        let k2 = t.insert(far, 2);
        let near = t.insert(far - 5_000, 3); // still far from base
        assert!(matches!(near, Key::Far(..)));
        // Advance close to the far deadline: new timers land in the wheel.
        assert!(poll(&mut t, far - 10_000).is_empty());
        let w = t.insert(far, 4);
        assert!(matches!(w, Key::Wheel(_)));
        assert_eq!(t.next_due_ns(), Some(far - 5_000));
        assert_eq!(t.remove(k2), Some(2));
        assert_eq!(t.remove(k2), None);
        assert_eq!(poll(&mut t, far - 1), vec![3]);
        assert_eq!(poll(&mut t, far), vec![1, 4]);
        assert_eq!(t.remove(k), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn an_empty_set_reads_no_clock_and_inserts_relative_to_now() {
        let mut t = Timers::new(MS);
        let clock_read = std::cell::Cell::new(false);
        let now = |at: u64| {
            let read = &clock_read;
            move || {
                read.set(true);
                at
            }
        };
        assert_eq!(t.poll_if_any(now(2 * MS), |_: u32| unreachable!()), 0);
        assert!(!clock_read.get(), "an empty set was polled");
        // Much later than the wheel's span after its last poll: placed
        // relative to now, the timer is in the wheel, not in `far`.
        let later = MS + (MAX_DURATION + 10) * 1_000;
        let k = t.insert_at(now(later), later + 5 * MS, 1);
        assert!(clock_read.get());
        assert!(matches!(k, Key::Wheel(_)));
        assert_eq!(t.poll_if_any(now(later + 5 * MS - 1), |_| {}), 0);
        let mut fired = Vec::new();
        t.poll_if_any(now(later + 5 * MS), |h| fired.push(h));
        assert_eq!(fired, vec![1]);
    }

    #[test]
    fn remove_and_drain() {
        let mut t = Timers::new(MS);
        let a = t.insert(2 * MS, 1);
        t.insert(3 * MS, 2);
        t.insert(u64::MAX, 3);
        assert_eq!(t.remove(a), Some(1));
        assert_eq!(t.remove(a), None);
        let mut out = Vec::new();
        t.drain_all(&mut out);
        out.sort();
        assert_eq!(out, vec![2, 3]);
        assert_eq!(t.len(), 0);
    }
}
