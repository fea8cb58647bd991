//! A hierarchical hashed timing wheel (after Tokio's timer wheel).
//!
//! The wheel stores values of type `T`, each with a deadline expressed in
//! ticks (1 tick = 1 ms by the runtime's convention; the wheel itself only
//! counts ticks), and hands them back through [`Wheel::poll`] once
//! time has reached their deadline. It is a plain single-threaded data
//! structure: it knows nothing of clocks, wakers or threads; the time driver
//! owns one, translates instants into ticks and calls it.
//!
//! # Layout
//!
//! There are [`NUM_LEVELS`] levels of [`LEVEL_MULT`] slots each. A slot of
//! level `n` covers `64^n` ticks, so the levels cover:
//!
//! | level | slot        | whole level            |
//! |-------|-------------|------------------------|
//! | 0     | 1 ms        | 64 ms                  |
//! | 1     | 64 ms       | ~4 s (4,096 ms)        |
//! | 2     | ~4 s        | ~4.5 min (2^18 ms)     |
//! | 3     | ~4.5 min    | ~4.7 h (2^24 ms)       |
//! | 4     | ~4.7 h      | ~12 days (2^30 ms)     |
//! | 5     | ~12 days    | ~2 years (2^36 ms)     |
//!
//! A timer due at `deadline` goes to the level of the highest 6-bit group in
//! which `deadline` differs from [`Wheel::elapsed`] (the tick up to which time
//! has been processed), into slot `(deadline >> (6 * level)) % 64` of it. Each
//! level keeps a 64-bit `occupied` mask, so the next slot with work is found
//! with a rotate and a `trailing_zeros`, however far away it is. When time
//! reaches the first tick of a slot, the slot is emptied: entries whose
//! deadline has come are handed out, the others *cascade*, i.e. are
//! re-inserted at a lower level relative to the new `elapsed`. An entry thus
//! moves down at most [`NUM_LEVELS`] - 1 times before firing.
//!
//! Entries live in a slab (a `Vec` plus a free list); slots are doubly linked
//! lists threaded through the slab by `u32` indexes, so insert and remove are
//! O(1) and, once the slab has grown to its working size, do not allocate.
//! Every slab cell carries a generation, and a [`TimerKey`] names both cell
//! and generation, so a key whose timer has fired or been removed never
//! reaches the cell's next occupant.
//!
//! # Guarantees
//!
//! - A timer never fires early: `poll(now)` only returns entries whose
//!   (possibly clamped, see below) deadline is `<= now`.
//! - Nor late: once `poll(now)` has returned `None`, no entry with a deadline
//!   `<= now` is left in the wheel.
//! - Entries come out in nondecreasing deadline order, and entries with the
//!   same deadline come out in insertion order.
//! - Deadlines more than [`MAX_DURATION`] ticks after `elapsed` are clamped to
//!   `elapsed + MAX_DURATION` at insertion (about 2.2 years at 1 ms a tick);
//!   [`Wheel::deadline`] and [`Wheel::poll`] report the clamped value.
//!
//! # The earliest deadline
//!
//! [`Wheel::next_expiration`] is the next tick at which `poll` has work,
//! which may be a cascade point before any deadline. A sleeper that wants to
//! wake once per deadline (a host waiting on the backend fd) asks
//! [`Wheel::next_deadline`] instead: the earliest stored deadline, exactly.
//! It lies in the slot `next_expiration` names (every entry of a lower
//! level, or of an earlier slot, would come first), so it is found by
//! scanning that one slot, and a level-0 slot needs no scan (all its
//! entries share one deadline). The result is cached: an insert lowers the
//! cache in O(1), and only removing or firing an entry that carries the
//! cached deadline forgets it; cascading moves entries without changing the
//! set of deadlines. Insert, remove and poll stay O(1) per entry.

mod level;
mod slab;

use self::level::{level_for, slot_for, untag, Expiration, Level};
use self::slab::Slab;
use std::fmt;

/// Number of levels in the wheel.
pub(crate) const NUM_LEVELS: usize = 6;

/// Number of slots per level (each level's slot is 64 times coarser than the
/// one below).
pub(crate) const LEVEL_MULT: u64 = 64;

/// The farthest a deadline may be from [`Wheel::elapsed`], in ticks: one full
/// rotation of the top level, `2^36 - 1` ticks (~2.2 years at 1 ms). Farther
/// deadlines are clamped to `elapsed + MAX_DURATION`.
pub(crate) const MAX_DURATION: u64 = (1 << 36) - 1;

/// Names a timer stored in a [`Wheel`]: a slab index plus the generation of
/// that slab cell. Once the timer fires or is removed the key is stale, and
/// every operation taking it treats it as absent. (Generations are 32 bits
/// and wrap: a key kept while its cell is reused 2^32 times could alias the
/// 2^32nd occupant.) A key is only meaningful for the wheel that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TimerKey {
    /// Index of the entry in the slab.
    index: u32,
    /// Generation of the slab cell when the timer was stored in it.
    generation: u32,
}

/// A hierarchical hashed timing wheel holding values of type `T`; see the
/// [module documentation](self).
///
/// Invariant: the level-0 slot of `elapsed` (slot `elapsed % 64`) holds
/// exactly the entries that are due but not yet returned by `poll`, all with
/// deadline `elapsed`; every other entry has a deadline after `elapsed` and
/// sits at `level_for(elapsed, deadline)`.
pub(crate) struct Wheel<T> {
    /// The tick up to which time has been processed.
    elapsed: u64,
    /// The levels, finest first.
    levels: Box<[Level; NUM_LEVELS]>,
    /// Storage for all entries.
    slab: Slab<T>,
    /// The earliest stored deadline if known (`None`: unknown, computed by
    /// the next `next_deadline`).
    min_deadline: Option<u64>,
}

impl<T> Wheel<T> {
    /// An empty wheel with `elapsed == 0`. Allocates the (fixed-size) level
    /// array; the entry slab grows on demand.
    pub(crate) fn new() -> Wheel<T> {
        Wheel {
            elapsed: 0,
            levels: Box::new(std::array::from_fn(Level::new)),
            slab: Slab::new(),
            min_deadline: None,
        }
    }

    /// The tick up to which time has been processed. It never goes backwards;
    /// [`poll`](Self::poll) advances it.
    // Part of the wheel's API; the driver does not need it today.
    #[allow(dead_code)]
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Number of timers stored (not yet returned by `poll` nor removed).
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// Calls `f` with every stored value (any order).
    // Used by the event loop (a garbage collector's traversal of its handles).
    #[allow(dead_code)]
    pub(crate) fn for_each(&self, f: impl FnMut(&T)) {
        self.slab.for_each_value(f);
    }

    /// Whether no timer is stored.
    // Part of the wheel's API; the driver does not need it today.
    #[allow(dead_code)]
    pub(crate) fn is_empty(&self) -> bool {
        self.slab.len() == 0
    }

    /// Inserts a timer due at tick `deadline` and returns its key.
    ///
    /// Returns `Err(value)` if `deadline <= self.elapsed()`: the timer has
    /// already expired and the caller fires it itself. A deadline more than
    /// [`MAX_DURATION`] ticks after `elapsed` is clamped to
    /// `elapsed + MAX_DURATION`.
    ///
    /// O(1); allocates only when the slab has no free cell and its `Vec` must
    /// grow.
    ///
    /// # Panics
    ///
    /// If `u32::MAX` timers are already stored.
    pub(crate) fn insert(&mut self, deadline: u64, value: T) -> Result<TimerKey, T> {
        if deadline <= self.elapsed {
            return Err(value);
        }
        let deadline = deadline.min(self.elapsed.saturating_add(MAX_DURATION));
        let idx = self.slab.alloc(deadline, value);
        self.link(idx, deadline);
        self.min_deadline = match self.min_deadline {
            Some(min) => Some(min.min(deadline)),
            // The only entry: its deadline is the earliest.
            None if self.slab.len() == 1 => Some(deadline),
            None => None,
        };
        Ok(self.slab.key(idx))
    }

    /// Removes a timer that has not been returned by `poll` yet (it may be due
    /// already) and gives its value back; `None` if `key` is stale (the timer
    /// fired or was removed). O(1).
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<T> {
        let idx = self.slab.lookup(key)?;
        let (level, slot) = untag(self.slab.get(idx).list);
        self.levels[level].remove(&mut self.slab, idx, slot);
        let (_, deadline, value) = self.slab.release(idx);
        self.forget_min_if(deadline);
        Some(value)
    }

    /// The deadline stored for `key` (clamped as described in
    /// [`insert`](Self::insert)), if the timer is still in the wheel.
    // Part of the wheel's API; the driver does not need it today.
    #[allow(dead_code)]
    pub(crate) fn deadline(&self, key: TimerKey) -> Option<u64> {
        let idx = self.slab.lookup(key)?;
        Some(self.slab.get(idx).deadline)
    }

    /// The earliest tick at which [`poll`](Self::poll) has work: a timer to
    /// return or a slot to cascade. `None` if the wheel is empty.
    ///
    /// It is never after the earliest stored deadline, and it is after
    /// `elapsed` unless due timers are waiting to be returned (then it is
    /// `elapsed`, their deadline). Polling with any `now` below it only moves
    /// `elapsed` to `now`. O(number of levels).
    pub(crate) fn next_expiration(&self) -> Option<u64> {
        if self.levels[0].is_occupied(self.due_slot()) {
            return Some(self.elapsed);
        }
        self.next_slot().map(|exp| exp.deadline)
    }

    /// The earliest stored deadline (clamped as described in
    /// [`insert`](Self::insert)), exactly; `None` if the wheel is empty. Not
    /// before [`next_expiration`](Self::next_expiration): polling with any
    /// `now` below it returns nothing.
    ///
    /// Cached; when the cache was forgotten (the entry carrying it left),
    /// scans the one slot `next_expiration` names: O(entries in that slot)
    /// at a level above 0, O(number of levels) otherwise.
    pub(crate) fn next_deadline(&mut self) -> Option<u64> {
        if self.slab.len() == 0 {
            return None;
        }
        if let Some(min) = self.min_deadline {
            return Some(min);
        }
        let min = if self.levels[0].is_occupied(self.due_slot()) {
            self.elapsed
        } else {
            let exp = self.next_slot()?;
            if exp.level == 0 {
                // One tick per slot: every entry is due at its first tick.
                exp.deadline
            } else {
                let mut min = u64::MAX;
                let mut cur = self.levels[exp.level].slot_head(exp.slot);
                while cur != slab::NIL {
                    let entry = self.slab.get(cur);
                    min = min.min(entry.deadline);
                    cur = entry.next;
                }
                min
            }
        };
        self.min_deadline = Some(min);
        Some(min)
    }

    /// An entry with `deadline` left the wheel: if it carried the cached
    /// earliest deadline, forget it.
    #[inline]
    fn forget_min_if(&mut self, deadline: u64) {
        if self.min_deadline == Some(deadline) {
            self.min_deadline = None;
        }
    }

    /// Returns one expired timer (deadline `<= now`) with its key and
    /// deadline, advancing `elapsed` and cascading slots as needed; call it
    /// until it returns `None`.
    ///
    /// It returns `None` once every timer with a deadline `<= now` has been
    /// returned, and then `elapsed() == now`. `elapsed` never goes backwards:
    /// a `now` smaller than `elapsed` is treated as `elapsed`. Timers come out
    /// in nondecreasing deadline order, ties in insertion order.
    ///
    /// Empty slots and levels are skipped through the occupancy masks, so the
    /// cost is independent of how far `now` jumps: O(number of levels) per
    /// slot reached, plus O(1) per entry returned or cascaded.
    pub(crate) fn poll(&mut self, now: u64) -> Option<(TimerKey, u64, T)> {
        let now = now.max(self.elapsed);
        loop {
            let due = self.due_slot();
            if let Some(idx) = self.levels[0].pop(&mut self.slab, due) {
                debug_assert_eq!(self.slab.get(idx).deadline, self.elapsed);
                let fired = self.slab.release(idx);
                self.forget_min_if(fired.1);
                return Some(fired);
            }
            match self.next_slot() {
                Some(exp) if exp.deadline <= now => {
                    // A level-0 slot holds the timers due at exactly that
                    // tick: moving `elapsed` there makes it the due slot.
                    // A higher slot must be emptied first.
                    self.elapsed = exp.deadline;
                    if exp.level > 0 {
                        self.cascade(exp);
                    }
                }
                _ => {
                    self.elapsed = now;
                    return None;
                }
            }
        }
    }

    /// The level-0 slot of `elapsed`, which holds the due entries.
    #[inline]
    fn due_slot(&self) -> usize {
        slot_for(self.elapsed, 0)
    }

    /// The earliest non-empty slot, scanning levels from the finest: every
    /// deadline at level `n` lies in `elapsed`'s own slot of level `n + 1`, so
    /// before anything stored at a higher level. Must not be called while the
    /// due slot holds entries.
    #[inline]
    fn next_slot(&self) -> Option<Expiration> {
        self.levels
            .iter()
            .find_map(|level| level.next_expiration(self.elapsed))
    }

    /// Links the live entry `idx`, on no list and due at or after `elapsed`,
    /// into its slot (the due slot if `deadline == elapsed`).
    #[inline]
    fn link(&mut self, idx: u32, deadline: u64) {
        debug_assert!(deadline >= self.elapsed);
        let level = level_for(self.elapsed, deadline);
        let slot = slot_for(deadline, level);
        self.levels[level].push(&mut self.slab, idx, slot);
    }

    /// Empties the slot `exp` (above level 0), `elapsed` having just reached
    /// its first tick: each entry moves to the lower level where it now
    /// belongs, those due right now to the due slot.
    fn cascade(&mut self, exp: Expiration) {
        debug_assert_eq!(self.elapsed, exp.deadline);
        let list = self.levels[exp.level].take_slot(exp.slot);
        let mut cur = list.head;
        while cur != slab::NIL {
            let entry = self.slab.get(cur);
            let (next, deadline) = (entry.next, entry.deadline);
            debug_assert!(level_for(self.elapsed, deadline) < exp.level);
            self.link(cur, deadline);
            cur = next;
        }
    }
}

impl<T> Default for Wheel<T> {
    fn default() -> Wheel<T> {
        Wheel::new()
    }
}

impl<T> fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("elapsed", &self.elapsed)
            .field("len", &self.len())
            .field("next_expiration", &self.next_expiration())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::level::tag;
    use super::slab::NIL;
    use super::*;
    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::time::{Duration, Instant};

    /// xorshift64* (no extra crates).
    struct Rng(u64);

    impl Rng {
        fn new(seed: u64) -> Rng {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }

        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// A distance in `1..=2^max_bits`, log-uniform over the bit length,
        /// so that every level of the wheel gets used.
        fn spread(&mut self, max_bits: u32) -> u64 {
            let bits = self.below(u64::from(max_bits) + 1);
            1 + self.below(1 << bits)
        }
    }

    /// Deadlines around every level boundary (as distances from `elapsed`).
    const BOUNDARIES: [u64; 19] = [
        1,
        2,
        63,
        64,
        65,
        4095,
        4096,
        4097,
        (1 << 18) - 1,
        1 << 18,
        (1 << 24) - 1,
        1 << 24,
        (1 << 30) - 1,
        1 << 30,
        (1 << 30) + 1,
        (1 << 36) - 2,
        1 << 36,
        (1 << 36) + 1,
        u64::MAX,
    ];

    /// `elapsed` values to run boundary tests from: aligned, unaligned, in
    /// the middle of the top level, past one rotation of it, and close to
    /// the end of the `u64` range.
    const BASES: [u64; 9] = [
        0,
        1,
        63,
        64,
        4095,
        (5 << 30) + 100,
        (63 << 30) + 7,
        (1 << 36) + 12_345,
        u64::MAX - (1 << 37),
    ];

    /// The clamped deadline the wheel should store.
    fn clamp(elapsed: u64, deadline: u64) -> u64 {
        deadline.min(elapsed.saturating_add(MAX_DURATION))
    }

    /// Where `key` is: `Some(Some((level, slot)))` in a slot, `Some(None)`
    /// due (in the due slot), `None` not in the wheel.
    fn position<T>(wheel: &Wheel<T>, key: TimerKey) -> Option<Option<(usize, usize)>> {
        let idx = wheel.slab.lookup(key)?;
        let pos = untag(wheel.slab.get(idx).list);
        Some((pos != (0, wheel.due_slot())).then_some(pos))
    }

    /// Walks every list and checks links, tags, masks, placement and count.
    fn check<T>(wheel: &Wheel<T>) {
        let elapsed = wheel.elapsed;
        let mut count = 0;
        for (l, level) in wheel.levels.iter().enumerate() {
            for s in 0..LEVEL_MULT as usize {
                let list = level.slot_list(s);
                assert_eq!(
                    (level.occupied() >> s) & 1 == 1,
                    !list.is_empty(),
                    "occupied bit of level {l} slot {s}"
                );
                let mut prev = NIL;
                let mut cur = list.head;
                while cur != NIL {
                    let e = wheel.slab.get(cur);
                    assert_eq!(e.prev, prev);
                    assert_eq!(e.list, tag(l, s));
                    assert!(e.value.is_some());
                    if (l, s) == (0, wheel.due_slot()) {
                        assert_eq!(e.deadline, elapsed, "due slot holds an entry not due");
                    } else {
                        assert!(e.deadline > elapsed, "entry due but not in the due slot");
                    }
                    assert!(e.deadline - elapsed <= MAX_DURATION);
                    assert_eq!(level_for(elapsed, e.deadline), l, "entry at wrong level");
                    assert_eq!(slot_for(e.deadline, l), s, "entry in wrong slot");
                    count += 1;
                    prev = cur;
                    cur = e.next;
                }
                assert_eq!(list.tail, prev);
            }
        }
        assert_eq!(count, wheel.len());
        assert_eq!(wheel.is_empty(), count == 0);
    }

    /// Brute-force next expiration: for each stored deadline, the tick at
    /// which its slot is processed, i.e. the deadline rounded down to the
    /// slot size of the first level (found by plain comparisons, not the
    /// wheel's bit trick) at which it agrees with `elapsed` on all higher
    /// bits; a deadline already reached counts as itself.
    fn brute_next(elapsed: u64, deadlines: impl IntoIterator<Item = u64>) -> Option<u64> {
        deadlines
            .into_iter()
            .map(|d| {
                if d <= elapsed {
                    return d;
                }
                let mut level = NUM_LEVELS - 1;
                for l in 0..NUM_LEVELS - 1 {
                    let above = 6 * (l as u32 + 1);
                    if d >> above == elapsed >> above {
                        level = l;
                        break;
                    }
                }
                let unit = 1u64 << (6 * level);
                d / unit * unit
            })
            .min()
    }

    /// Polls until `None`, checking every result is due (`<= now`) and that
    /// results come in nondecreasing deadline order.
    fn drain<T>(wheel: &mut Wheel<T>, now: u64) -> Vec<(TimerKey, u64, T)> {
        let now_eff = now.max(wheel.elapsed());
        let mut out: Vec<(TimerKey, u64, T)> = Vec::new();
        while let Some((key, deadline, value)) = wheel.poll(now) {
            assert!(
                deadline <= now_eff,
                "fired early: deadline {deadline} > now {now_eff}"
            );
            if let Some(last) = out.last() {
                assert!(last.1 <= deadline, "out of order");
            }
            assert_eq!(wheel.deadline(key), None, "fired key still valid");
            out.push((key, deadline, value));
        }
        assert_eq!(wheel.elapsed(), now_eff);
        out
    }

    #[test]
    fn insert_remove_at_every_level_boundary() {
        for base in BASES {
            let mut wheel = Wheel::new();
            assert!(drain(&mut wheel, base).is_empty());
            let keys: Vec<(TimerKey, u64)> = BOUNDARIES
                .iter()
                .enumerate()
                .map(|(i, &dist)| {
                    let d = base.saturating_add(dist);
                    let key = wheel.insert(d, i).unwrap();
                    assert_eq!(wheel.deadline(key), Some(clamp(base, d)));
                    (key, clamp(base, d))
                })
                .collect();
            check(&wheel);
            assert_eq!(wheel.len(), BOUNDARIES.len());
            assert_eq!(
                wheel.next_expiration(),
                brute_next(base, keys.iter().map(|k| k.1))
            );
            // Remove every other one, then the rest in reverse.
            let order = (0..keys.len())
                .step_by(2)
                .chain((0..keys.len()).filter(|i| i % 2 == 1).rev());
            let mut left: HashSet<usize> = (0..keys.len()).collect();
            for i in order {
                assert_eq!(wheel.remove(keys[i].0), Some(i), "base {base} entry {i}");
                assert_eq!(wheel.remove(keys[i].0), None);
                assert_eq!(wheel.deadline(keys[i].0), None);
                left.remove(&i);
                check(&wheel);
                assert_eq!(
                    wheel.next_expiration(),
                    brute_next(base, left.iter().map(|&j| keys[j].1))
                );
            }
            assert!(wheel.is_empty());
            assert_eq!(wheel.next_expiration(), None);
            assert!(drain(&mut wheel, u64::MAX).is_empty());
        }
    }

    #[test]
    fn fires_exactly_at_every_level_boundary() {
        for base in BASES {
            let mut wheel = Wheel::new();
            drain(&mut wheel, base);
            let mut expected: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
            for (i, &dist) in BOUNDARIES.iter().enumerate() {
                let d = base.saturating_add(dist);
                wheel.insert(d, i).unwrap();
                expected.entry(clamp(base, d)).or_default().push(i);
            }
            for (&d, ids) in &expected {
                // One tick before: nothing (earlier ones were drained).
                assert!(
                    drain(&mut wheel, d - 1).is_empty(),
                    "base {base}: early at {d}"
                );
                check(&wheel);
                let fired = drain(&mut wheel, d);
                let got: Vec<usize> = fired.iter().map(|f| f.2).collect();
                assert_eq!(&got, ids, "base {base} deadline {d}");
                assert!(fired.iter().all(|f| f.1 == d));
                check(&wheel);
            }
            assert!(wheel.is_empty());
        }
    }

    #[test]
    fn many_timers_in_one_slot() {
        let mut wheel = Wheel::new();
        // All in level 1, slot 1 (ticks 64..128) relative to elapsed = 0.
        let mut rng = Rng::new(7);
        let mut keys = Vec::new();
        for i in 0..20_000u32 {
            let d = if i % 2 == 0 { 100 } else { 64 + rng.below(64) };
            let key = wheel.insert(d, i).unwrap();
            assert_eq!(position(&wheel, key), Some(Some((1, 1))));
            keys.push((key, d));
        }
        for (i, &(key, _)) in keys.iter().enumerate().step_by(3) {
            assert_eq!(wheel.remove(key), Some(i as u32));
        }
        check(&wheel);
        assert_eq!(wheel.len(), 20_000 - 6_667);
        assert_eq!(wheel.next_expiration(), Some(64));
        let before = drain(&mut wheel, 99);
        let at = drain(&mut wheel, 100);
        let after = drain(&mut wheel, 127);
        check(&wheel);
        assert!(wheel.is_empty());
        // Exactly the survivors, each once, each at the right time.
        let mut expect_before = Vec::new();
        let mut expect_at = Vec::new();
        let mut expect_after = Vec::new();
        for (i, &(_, d)) in keys.iter().enumerate() {
            if i % 3 == 0 {
                continue;
            }
            match d {
                ..=99 => expect_before.push((d, i as u32)),
                100 => expect_at.push((d, i as u32)),
                _ => expect_after.push((d, i as u32)),
            }
        }
        // Stable sort: same deadline keeps insertion order.
        expect_before.sort_by_key(|e| e.0);
        expect_after.sort_by_key(|e| e.0);
        let strip = |v: Vec<(TimerKey, u64, u32)>| -> Vec<(u64, u32)> {
            v.into_iter().map(|(_, d, i)| (d, i)).collect()
        };
        assert_eq!(strip(before), expect_before);
        assert_eq!(strip(at), expect_at);
        assert_eq!(strip(after), expect_after);
    }

    #[test]
    fn fires_in_order_exactly_once_after_cascading_from_top_level() {
        let mut rng = Rng::new(42);
        let mut wheel = Wheel::new();
        let mut deadlines = Vec::new();
        for i in 0..5_000usize {
            // Mostly level 5, some at every other level.
            let d = if i % 4 == 0 {
                rng.spread(30)
            } else {
                (1 << 30) + rng.below((1 << 36) - (1 << 30))
            };
            let key = wheel.insert(d, i).unwrap();
            if d >= 1 << 30 {
                assert_eq!(position(&wheel, key).unwrap().unwrap().0, 5);
            }
            deadlines.push(d);
        }
        let mut fired = vec![false; deadlines.len()];
        let mut now = 0;
        let mut last = 0;
        while !wheel.is_empty() {
            let prev_now = now;
            now += rng.spread(34);
            for (_, d, i) in drain(&mut wheel, now) {
                assert_eq!(d, deadlines[i]);
                assert!(d > prev_now, "fired late: {d} <= previous now {prev_now}");
                assert!(d >= last);
                last = d;
                assert!(!fired[i], "fired twice");
                fired[i] = true;
            }
            check(&wheel);
            assert_eq!(
                wheel.next_expiration(),
                brute_next(
                    now,
                    (0..deadlines.len())
                        .filter(|&i| !fired[i])
                        .map(|i| deadlines[i])
                )
            );
        }
        assert!(fired.iter().all(|&f| f));
    }

    #[test]
    fn remove_cascaded_entry() {
        let mut wheel = Wheel::new();
        let top = 1u64 << 30;
        let a = wheel.insert(top, "a").unwrap();
        let b = wheel.insert(top + 4096 * 3 + 70, "b").unwrap();
        let c = wheel.insert(top + 4096 * 3 + 71, "c").unwrap();
        assert_eq!(position(&wheel, b), Some(Some((5, 1))));
        assert_eq!(wheel.next_expiration(), Some(top));
        // Reaching the slot fires `a` and cascades `b` and `c` to level 2.
        let fired = drain(&mut wheel, top + 5);
        assert_eq!(fired.len(), 1);
        assert_eq!((fired[0].0, fired[0].1, fired[0].2), (a, top, "a"));
        assert_eq!(position(&wheel, b), Some(Some((2, 3))));
        assert_eq!(wheel.next_expiration(), Some(top + 4096 * 3));
        // Cascade once more (to level 1), then remove.
        assert!(drain(&mut wheel, top + 4096 * 3).is_empty());
        assert_eq!(position(&wheel, b), Some(Some((1, 1))));
        assert_eq!(wheel.remove(b), Some("b"));
        assert_eq!(wheel.remove(b), None);
        check(&wheel);
        let fired = drain(&mut wheel, u64::MAX);
        assert_eq!(fired.len(), 1);
        assert_eq!(
            (fired[0].0, fired[0].1, fired[0].2),
            (c, top + 4096 * 3 + 71, "c")
        );
    }

    #[test]
    fn remove_due_entry_during_partial_poll() {
        let mut wheel = Wheel::new();
        let keys: Vec<TimerKey> = (0..4).map(|i| wheel.insert(200, i).unwrap()).collect();
        let other = wheel.insert(300, 9).unwrap();
        let (k, d, v) = wheel.poll(250).unwrap();
        assert_eq!((k, d, v), (keys[0], 200, 0));
        assert_eq!(wheel.elapsed(), 200);
        // The others wait in the due slot; they can still be looked up
        // and removed.
        assert_eq!(position(&wheel, keys[2]), Some(None));
        assert_eq!(wheel.next_expiration(), Some(200));
        assert_eq!(wheel.deadline(keys[2]), Some(200));
        assert_eq!(wheel.remove(keys[2]), Some(2));
        check(&wheel);
        // Inserting behind elapsed is refused even though `now` was 250.
        assert_eq!(wheel.insert(200, 7), Err(7));
        let late = wheel.insert(240, 8).unwrap();
        let rest: Vec<_> = drain(&mut wheel, 250)
            .into_iter()
            .map(|f| (f.0, f.2))
            .collect();
        assert_eq!(rest, vec![(keys[1], 1), (keys[3], 3), (late, 8)]);
        assert_eq!(wheel.len(), 1);
        assert_eq!(wheel.remove(other), Some(9));
    }

    #[test]
    fn stale_keys_do_not_disturb_others() {
        let mut wheel = Wheel::new();
        let a = wheel.insert(10, 'a').unwrap();
        assert_eq!(wheel.remove(a), Some('a'));
        // `b` reuses `a`'s slab cell with a new generation.
        let b = wheel.insert(10, 'b').unwrap();
        assert_eq!(a.index, b.index);
        assert_ne!(a, b);
        assert_eq!(wheel.remove(a), None);
        assert_eq!(wheel.deadline(a), None);
        assert_eq!(wheel.deadline(b), Some(10));
        assert_eq!(wheel.len(), 1);
        // A fired key is stale as well, even once its cell is reused.
        let fired = drain(&mut wheel, 10);
        assert_eq!((fired[0].0, fired[0].2), (b, 'b'));
        let c = wheel.insert(20, 'c').unwrap();
        assert_eq!(c.index, b.index);
        assert_eq!(wheel.remove(b), None);
        assert_eq!(wheel.remove(a), None);
        assert_eq!(wheel.deadline(c), Some(20));
        // A key from another wheel's far larger slab is simply absent.
        let mut big = Wheel::new();
        let far = (0..100).map(|i| big.insert(5, i).unwrap()).last().unwrap();
        assert_eq!(wheel.remove(far), None);
        check(&wheel);
        assert_eq!(drain(&mut wheel, 20).len(), 1);
    }

    #[test]
    fn next_expiration_matches_brute_force_model() {
        for seed in 1..=12u64 {
            let mut rng = Rng::new(seed);
            let mut wheel = Wheel::new();
            // key -> (deadline, id)
            let mut model: HashMap<TimerKey, (u64, u64)> = HashMap::new();
            let mut keys: Vec<TimerKey> = Vec::new();
            let mut stale: Vec<TimerKey> = Vec::new();
            let mut next_id = 0u64;
            for op in 0..4_000 {
                let elapsed = wheel.elapsed();
                match rng.below(10) {
                    0..=4 => {
                        let d = match rng.below(8) {
                            0 => elapsed.saturating_sub(rng.below(3)),
                            1 => {
                                elapsed
                                    + BOUNDARIES[rng.below(BOUNDARIES.len() as u64) as usize]
                                        .min(1 << 40)
                            }
                            2 => elapsed + rng.below(1 << 38),
                            _ => elapsed + rng.spread(36),
                        };
                        match wheel.insert(d, next_id) {
                            Ok(key) => {
                                assert!(d > elapsed);
                                assert_eq!(wheel.deadline(key), Some(clamp(elapsed, d)));
                                model.insert(key, (clamp(elapsed, d), next_id));
                                keys.push(key);
                            }
                            Err(id) => {
                                assert!(d <= elapsed);
                                assert_eq!(id, next_id);
                            }
                        }
                        next_id += 1;
                    }
                    5 | 6 => {
                        if rng.below(4) == 0 && !stale.is_empty() {
                            let key = stale[rng.below(stale.len() as u64) as usize];
                            assert_eq!(wheel.remove(key), None);
                        } else if !keys.is_empty() {
                            let key = keys.swap_remove(rng.below(keys.len() as u64) as usize);
                            match model.remove(&key) {
                                Some((_, id)) => assert_eq!(wheel.remove(key), Some(id)),
                                None => assert_eq!(wheel.remove(key), None),
                            }
                            stale.push(key);
                        }
                    }
                    _ => {
                        let next = wheel.next_expiration();
                        let now = match (rng.below(6), next) {
                            (0, Some(n)) => n,
                            (1, Some(n)) => n.saturating_sub(1),
                            (2, _) => elapsed.saturating_sub(rng.below(100)),
                            (3, _) => elapsed + rng.below(1 << 37),
                            _ => elapsed + rng.spread(30),
                        };
                        let limit = rng.below(4);
                        let now_eff = now.max(elapsed);
                        let mut fired = Vec::new();
                        if limit == 0 {
                            // Partial poll: leave some due entries pending.
                            for _ in 0..rng.below(3) {
                                match wheel.poll(now) {
                                    Some(f) => fired.push(f),
                                    None => break,
                                }
                            }
                        } else {
                            fired = drain(&mut wheel, now);
                            // Nothing due is left.
                            assert!(model
                                .values()
                                .all(|&(d, id)| d > now_eff || fired.iter().any(|f| f.2 == id)));
                        }
                        if let Some(n) = next {
                            if now_eff < n {
                                assert!(fired.is_empty(), "work before next_expiration");
                            }
                        }
                        for (key, d, id) in fired {
                            assert!(d <= now_eff, "fired early");
                            assert_eq!(model.remove(&key), Some((d, id)), "op {op}");
                            stale.push(key);
                        }
                    }
                }
                if op % 16 == 0 {
                    check(&wheel);
                }
                assert_eq!(wheel.len(), model.len());
                let expected = brute_next(wheel.elapsed(), model.values().map(|v| v.0));
                assert_eq!(wheel.next_expiration(), expected, "seed {seed} op {op}");
                let min = model.values().map(|v| v.0).min();
                assert_eq!(wheel.next_deadline(), min, "seed {seed} op {op}");
                if let (Some(n), Some(min)) = (expected, model.values().map(|v| v.0).min()) {
                    assert!(n <= min);
                }
            }
            // Drain everything that is left.
            let rest = drain(&mut wheel, u64::MAX);
            assert_eq!(rest.len(), model.len());
            for (key, d, id) in rest {
                assert_eq!(model.remove(&key), Some((d, id)));
            }
            assert!(wheel.is_empty());
        }
    }

    #[test]
    fn next_deadline_is_exact_past_cascade_points() {
        let mut wheel = Wheel::new();
        assert_eq!(wheel.next_deadline(), None);
        assert_eq!(wheel.poll(40), None);
        // 50 ticks out from 40: level 1, whose slot is processed at 64.
        let a = wheel.insert(90, 'a').unwrap();
        assert_eq!(wheel.next_expiration(), Some(64));
        assert_eq!(wheel.next_deadline(), Some(90));
        // Same slot, earlier: the cache is lowered.
        let b = wheel.insert(70, 'b').unwrap();
        assert_eq!(wheel.next_deadline(), Some(70));
        // Removing the earliest forgets it; the slot is scanned again.
        assert_eq!(wheel.remove(b), Some('b'));
        assert_eq!(wheel.next_deadline(), Some(90));
        let c = wheel.insert(100, 'c').unwrap();
        let far = wheel.insert(1 << 20, 'f').unwrap();
        assert_eq!(wheel.next_deadline(), Some(90));
        // The cascade at 64 changes nothing.
        assert_eq!(wheel.poll(64), None);
        assert_eq!(wheel.next_deadline(), Some(90));
        assert_eq!(wheel.poll(90).map(|f| f.2), Some('a'));
        assert_eq!(wheel.next_deadline(), Some(100));
        assert_eq!(wheel.remove(a), None);
        assert_eq!(wheel.remove(c), Some('c'));
        assert_eq!(wheel.next_deadline(), Some(1 << 20));
        assert_eq!(wheel.remove(far), Some('f'));
        assert_eq!(wheel.next_deadline(), None);
        // A partial poll leaves due entries: their deadline is `elapsed`.
        for t in [200, 200, 300] {
            wheel.insert(t, 'x').unwrap();
        }
        assert!(wheel.poll(250).is_some());
        assert_eq!(wheel.next_deadline(), Some(200));
        assert!(wheel.poll(250).is_some());
        assert_eq!(wheel.next_deadline(), Some(300));
    }

    #[test]
    fn far_future_deadlines_are_clamped() {
        let mut wheel = Wheel::new();
        let a = wheel.insert(u64::MAX, 'a').unwrap();
        let b = wheel.insert(MAX_DURATION + 1, 'b').unwrap();
        let c = wheel.insert(MAX_DURATION, 'c').unwrap();
        for k in [a, b, c] {
            assert_eq!(wheel.deadline(k), Some(MAX_DURATION));
        }
        drain(&mut wheel, 1000);
        let d = wheel.insert(u64::MAX, 'd').unwrap();
        assert_eq!(wheel.deadline(d), Some(1000 + MAX_DURATION));
        check(&wheel);
        assert!(drain(&mut wheel, MAX_DURATION - 1).is_empty());
        let got: Vec<char> = drain(&mut wheel, MAX_DURATION)
            .into_iter()
            .map(|f| f.2)
            .collect();
        assert_eq!(got, vec!['a', 'b', 'c']);
        assert!(drain(&mut wheel, MAX_DURATION + 999).is_empty());
        let got = drain(&mut wheel, u64::MAX);
        assert_eq!((got[0].1, got[0].2), (1000 + MAX_DURATION, 'd'));

        // Close to the end of the u64 range nothing overflows.
        let mut wheel = Wheel::new();
        drain(&mut wheel, u64::MAX - 10);
        let e = wheel.insert(u64::MAX, 'e').unwrap();
        assert_eq!(wheel.deadline(e), Some(u64::MAX));
        assert!(drain(&mut wheel, u64::MAX - 1).is_empty());
        assert_eq!(drain(&mut wheel, u64::MAX)[0].2, 'e');
        assert_eq!(wheel.insert(u64::MAX, 'f'), Err('f'));
    }

    #[test]
    fn top_level_wraps_after_slots_ahead() {
        // elapsed in slot 5 of the top level; one timer a full rotation away
        // (slot 5 again, next rotation) and one in slot 6 of this rotation.
        let elapsed = (5 << 30) + 100;
        let mut wheel = Wheel::new();
        drain(&mut wheel, elapsed);
        let far = wheel.insert(elapsed + MAX_DURATION, "far").unwrap();
        let near = wheel.insert(6 << 30, "near").unwrap();
        let wrapped = wheel.insert((1 << 36) + (2 << 30), "wrapped").unwrap();
        assert_eq!(position(&wheel, far), Some(Some((5, 5))));
        assert_eq!(position(&wheel, near), Some(Some((5, 6))));
        assert_eq!(position(&wheel, wrapped), Some(Some((5, 2))));
        assert_eq!(wheel.next_expiration(), Some(6 << 30));
        let order: Vec<&str> = drain(&mut wheel, u64::MAX)
            .into_iter()
            .map(|f| f.2)
            .collect();
        assert_eq!(order, vec!["near", "wrapped", "far"]);
    }

    #[test]
    fn poll_with_now_before_elapsed() {
        let mut wheel = Wheel::new();
        assert!(drain(&mut wheel, 1000).is_empty());
        assert_eq!(wheel.elapsed(), 1000);
        assert_eq!(wheel.insert(1000, 1), Err(1));
        assert_eq!(wheel.insert(999, 2), Err(2));
        assert_eq!(wheel.insert(0, 3), Err(3));
        let k = wheel.insert(1005, 4).unwrap();
        assert_eq!(wheel.poll(10).map(|f| f.2), None);
        assert_eq!(wheel.elapsed(), 1000, "elapsed went backwards");
        assert_eq!(wheel.deadline(k), Some(1005));
        assert_eq!(wheel.poll(1004).map(|f| f.2), None);
        assert_eq!(wheel.poll(0).map(|f| f.2), None);
        assert_eq!(wheel.elapsed(), 1004);
        assert_eq!(
            wheel.poll(1005).map(|f| (f.0, f.1, f.2)),
            Some((k, 1005, 4))
        );
        assert_eq!(wheel.poll(3).map(|f| f.2), None);
        assert_eq!(wheel.elapsed(), 1005);
    }

    #[test]
    fn insert_at_or_before_elapsed_is_rejected() {
        let mut wheel: Wheel<String> = Wheel::new();
        assert_eq!(wheel.insert(0, "x".into()), Err("x".to_string()));
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_expiration(), None);
        let k = wheel.insert(1, "y".into()).unwrap();
        assert_eq!(wheel.next_expiration(), Some(1));
        assert!(format!("{wheel:?}").contains("len: 1"));
        assert_eq!(wheel.remove(k).as_deref(), Some("y"));
    }

    /// Inserts `n` timers with deadlines spread over every level, polls to
    /// the end in irregular steps, and checks each fires exactly once, never
    /// early and never late. Returns the time spent in the wheel (the
    /// bookkeeping that needs random memory access is done afterwards).
    fn spread_timers(n: usize, seed: u64) -> Duration {
        let mut rng = Rng::new(seed);
        let deadlines: Vec<u64> = (0..n).map(|_| rng.spread(35)).collect();
        let steps: Vec<u64> = (0..4096).map(|_| rng.spread(24)).collect();
        let mut out: Vec<(u32, u64)> = Vec::with_capacity(n);
        let mut wheel = Wheel::new();

        let start = Instant::now();
        for (i, &d) in deadlines.iter().enumerate() {
            wheel.insert(d, i as u32).unwrap();
        }
        let inserted = start.elapsed();
        let start = Instant::now();
        let mut now = 0u64;
        let mut rounds = 0;
        while !wheel.is_empty() {
            let prev_now = now;
            now += steps[rounds % steps.len()];
            rounds += 1;
            while let Some((_, d, i)) = wheel.poll(now) {
                // Not early, and not late: it was not due at the last poll.
                assert!(d <= now && d > prev_now, "{d} not in ({prev_now}, {now}]");
                out.push((i, d));
            }
        }
        let polled = start.elapsed();

        assert_eq!(out.len(), n);
        assert!(out.windows(2).all(|w| w[0].1 <= w[1].1), "out of order");
        let mut fired = vec![false; n];
        for &(i, d) in &out {
            let i = i as usize;
            assert_eq!(d, deadlines[i]);
            assert!(!fired[i], "fired twice");
            fired[i] = true;
        }
        eprintln!("{n} timers: insert {inserted:?}, poll {polled:?} ({rounds} poll rounds)");
        inserted + polled
    }

    #[test]
    fn spread_timers_fire_exactly_once() {
        spread_timers(100_000, 3);
    }

    #[test]
    #[cfg_attr(
        debug_assertions,
        ignore = "release-only: run with `cargo test --release`"
    )]
    fn one_million_spread_timers_fire_exactly_once() {
        let took = spread_timers(1_000_000, 11);
        assert!(took < Duration::from_secs(5), "1M timers took {took:?}");
    }
}
