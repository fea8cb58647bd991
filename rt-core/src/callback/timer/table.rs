//! The timer table: one slot per timer, and the rules of a stop racing an
//! expiry and its call. No runtime in here: the wheel is reached through
//! the closures the caller passes, and the tasks to start come back as
//! [`Then`], so loom can model the table on its own.
//!
//! A slot's life: `Armed` (in the wheel) -> `Queued` (fired; its call is
//! queued) -> `Running` (the callback runs) -> `Armed` again for a repeat,
//! or `Free`. A stop frees an `Armed` or `Queued` slot at once; a stop of a
//! repeat whose callback runs marks it `done` and waits until the call
//! returns (unless it comes from inside that callback, or from another
//! callback: `StillRunning`). Ids are `generation << 32 | (index + 1)`; the
//! generation moves on when an id dies (a stop, a one-shot's call), so a
//! stale id never names a later timer.

use crate::callback::{Error, Status, Stopped};
use crate::loom::{Condvar, Mutex, MutexGuard};
use crate::time::Instant;
use crate::util::Chunked;
use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::time::Duration;

/// The table, with the condvar a stop waits on for a running call. `K` is
/// the wheel's key of an armed timer, `C` the callback (cheap to clone: a
/// call gets a copy, made under the lock).
pub(crate) struct TimerTable<K, C> {
    table: Mutex<Table<K, C>>,
    call_ended: Condvar,
}

struct Table<K, C> {
    /// Chunked: starting a timer never stalls on a copy of the table.
    slots: Chunked<Slot<K, C>>,
    /// Head of the free slots' list (`NIL`: none).
    free: u32,
    /// Fired timers waiting for the caller task (current-thread runtime).
    fired: VecDeque<u64>,
    /// A caller task is spawned and will take what is queued.
    caller: bool,
    /// Stoppers waiting on `call_ended`.
    waiters: u32,
    /// Calls get a task each (multi-thread runtime) instead of the queue.
    task_per_call: bool,
    /// Set by [`TimerTable::close`] (shutdown): no timer starts or re-arms.
    closed: bool,
}

const NIL: u32 = u32::MAX;

struct Slot<K, C> {
    generation: u32,
    state: State<K>,
    cb: Option<C>,
    /// Repeat period in ns; zero for a one-shot timer (a `u64`, not an
    /// `Option<Duration>`: a slot stays as small as it was with ms).
    period_ns: u64,
    deadline: Instant,
}

#[derive(Clone, Copy)]
enum State<K> {
    /// Not a timer; the next free slot.
    Free { next: u32 },
    /// Waiting in the wheel.
    Armed(K),
    /// Fired; its call is queued (or its call task spawned).
    Queued,
    /// Its callback runs on thread `on`. `done`: no re-arm follows (a
    /// one-shot's call, a final call, or a stop came): the slot is freed
    /// when the call returns.
    Running { on: NonZeroUsize, done: bool },
}

/// What to start once the table's lock is released.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Then {
    Nothing,
    /// The caller task of a current-thread runtime.
    Caller,
    /// The call task of one expiry (multi-thread runtime).
    Call(u64),
    /// The final `Cancelled` call of a timer armed at shutdown, to make
    /// right away (no task can start any more).
    Cancel(u64),
}

/// A call claimed by [`TimerTable::claim`]: make it, then
/// [`TimerTable::finish`] it.
pub(crate) struct Claimed<C> {
    index: usize,
    pub(crate) cb: C,
}

impl<K, C> Table<K, C> {
    fn index_of(&self, id: u64) -> Option<usize> {
        let index = ((id & 0xFFFF_FFFF) as u32).checked_sub(1)? as usize;
        let slot = self.slots.get(index)?;
        let live =
            slot.generation == (id >> 32) as u32 && !matches!(slot.state, State::Free { .. });
        live.then_some(index)
    }

    fn id_of(&self, index: usize) -> u64 {
        (u64::from(self.slots[index].generation) << 32) | (index as u64 + 1)
    }

    fn alloc(&mut self, cb: C, period_ns: u64, deadline: Instant) -> Result<usize, Error> {
        let slot = Slot {
            generation: 0,
            state: State::Queued,
            cb: Some(cb),
            period_ns,
            deadline,
        };
        if self.free == NIL {
            if self.slots.len() >= (NIL - 1) as usize {
                return Err(Error::Os(std::io::ErrorKind::OutOfMemory.into()));
            }
            return Ok(self.slots.push(slot));
        }
        let index = self.free as usize;
        let old = &mut self.slots[index];
        let State::Free { next } = old.state else {
            unreachable!("the free list holds free slots");
        };
        self.free = next;
        *old = Slot {
            generation: old.generation,
            ..slot
        };
        Ok(index)
    }

    /// Frees a slot; its id dies (if it was not dead yet).
    fn release(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.generation = slot.generation.wrapping_add(1);
        slot.state = State::Free { next: self.free };
        slot.cb = None;
        self.free = index as u32;
    }

    /// Queues the call of a fired timer.
    fn enqueue(&mut self, index: usize) -> Then {
        self.slots[index].state = State::Queued;
        let id = self.id_of(index);
        if self.task_per_call {
            return Then::Call(id);
        }
        self.fired.push_back(id);
        if std::mem::replace(&mut self.caller, true) {
            Then::Nothing
        } else {
            Then::Caller
        }
    }

    /// Puts the timer in `index` in the wheel (`arm` gives its key, or
    /// `None` if its deadline is already due or the wheel shut down: then
    /// its call is queued at once).
    fn arm(&mut self, index: usize, arm: impl FnOnce(Instant, u64) -> Option<K>) -> Then {
        match arm(self.slots[index].deadline, self.id_of(index)) {
            Some(key) => {
                self.slots[index].state = State::Armed(key);
                Then::Nothing
            }
            None => self.enqueue(index),
        }
    }
}

impl<K: Copy, C: Clone> TimerTable<K, C> {
    pub(crate) fn new(task_per_call: bool) -> TimerTable<K, C> {
        TimerTable {
            table: Mutex::new(Table {
                slots: Chunked::new(),
                free: NIL,
                fired: VecDeque::new(),
                caller: false,
                waiters: 0,
                task_per_call,
                closed: false,
            }),
            call_ended: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table<K, C>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a timer: `out` gets its id, then `arm` puts it in the wheel,
    /// both under the lock (no call can run before `out` has the id: the
    /// first call may stop the timer). `Shutdown` once closed. `period_ns`
    /// 0: a one-shot timer.
    pub(crate) fn start(
        &self,
        cb: C,
        deadline: Instant,
        period_ns: u64,
        out: impl FnOnce(u64),
        arm: impl FnOnce(Instant, u64) -> Option<K>,
    ) -> Result<Then, Error> {
        let mut t = self.lock();
        if t.closed {
            return Err(Error::Shutdown);
        }
        let index = t.alloc(cb, period_ns, deadline)?;
        out(t.id_of(index));
        Ok(t.arm(index, arm))
    }

    /// The wheel fired timer `id` (`shutdown`: the runtime shut down with
    /// it armed). A timer stopped meanwhile is left alone.
    pub(crate) fn fired(&self, id: u64, shutdown: bool) -> Then {
        let mut t = self.lock();
        match t.index_of(id) {
            Some(index) if matches!(t.slots[index].state, State::Armed(_)) => {
                if shutdown {
                    t.slots[index].state = State::Queued;
                    Then::Cancel(id)
                } else {
                    t.enqueue(index)
                }
            }
            _ => Then::Nothing,
        }
    }

    /// The next queued call for the caller task; `None` (and the caller
    /// role given up) when the queue is empty.
    pub(crate) fn next_queued(&self) -> Option<u64> {
        let mut t = self.lock();
        let next = t.fired.pop_front();
        if next.is_none() {
            t.caller = false;
        }
        next
    }

    /// Claims the call of queued timer `id` for thread `on`: `status` Ok for
    /// an expiry, `Cancelled` for a final call. `None` if the timer was
    /// stopped since it was queued.
    pub(crate) fn claim(&self, id: u64, status: Status, on: NonZeroUsize) -> Option<Claimed<C>> {
        let mut t = self.lock();
        let index = t.index_of(id)?;
        let slot = &mut t.slots[index];
        let State::Queued = slot.state else {
            return None;
        };
        let done = slot.period_ns == 0 || status != Status::Ok;
        slot.state = State::Running { on, done };
        if done {
            // The id dies now: a racing stop reports NotFound.
            slot.generation = slot.generation.wrapping_add(1);
        }
        let cb = slot.cb.clone().expect("a live timer has a callback");
        Some(Claimed { index, cb })
    }

    /// Ends a claimed call: frees the slot of a finished timer, or moves a
    /// repeat's deadline one period on (skipping the periods it fell
    /// behind) and re-arms it through `arm`; once the table is closed, a
    /// repeat is not re-armed but queued for its final call
    /// ([`Then::Cancel`]). Wakes the stoppers waiting.
    pub(crate) fn finish(
        &self,
        call: Claimed<C>,
        arm: impl FnOnce(Instant, u64) -> Option<K>,
    ) -> Then {
        let mut t = self.lock();
        let index = call.index;
        let State::Running { done, .. } = t.slots[index].state else {
            unreachable!("a running call's slot stays running until it ends");
        };
        let then = if done {
            t.release(index);
            Then::Nothing
        } else if t.closed {
            // Shut down while its call ran: the final call follows at once.
            t.slots[index].state = State::Queued;
            Then::Cancel(t.id_of(index))
        } else {
            let slot = &mut t.slots[index];
            slot.deadline = next_deadline(slot.deadline, slot.period_ns);
            t.arm(index, arm)
        };
        if t.waiters > 0 {
            self.call_ended.notify_all();
        }
        then
    }

    /// A timer stop from thread `me` (`in_callback`: inside a runtime
    /// callback). `disarm` takes an armed timer off the wheel. `None`: the
    /// id names no live timer (stale, stopped, or a one-shot / final call
    /// already claimed).
    pub(crate) fn stop(
        &self,
        id: u64,
        me: NonZeroUsize,
        in_callback: bool,
        disarm: impl FnOnce(K),
    ) -> Option<Stopped> {
        let mut t = self.lock();
        let index = t.index_of(id)?;
        match t.slots[index].state {
            State::Free { .. } | State::Running { done: true, .. } => None,
            State::Armed(key) => {
                // Fired meanwhile but not queued yet: `fired` finds the id
                // dead and leaves it.
                disarm(key);
                t.release(index);
                Some(Stopped::Done)
            }
            State::Queued => {
                // The queued id is dead now: its call is skipped.
                t.release(index);
                Some(Stopped::Done)
            }
            State::Running { on, done: false } => {
                // A repeat's call runs: no re-arm after it, and its id dies.
                let slot = &mut t.slots[index];
                slot.state = State::Running { on, done: true };
                slot.generation = slot.generation.wrapping_add(1);
                let dead = slot.generation;
                if on == me {
                    // From inside its own callback: it returns right after.
                    return Some(Stopped::Done);
                }
                if in_callback {
                    // Two callbacks stopping each other would wait forever.
                    return Some(Stopped::StillRunning);
                }
                t.waiters += 1;
                // The call's end frees the slot (the generation moves on).
                while t.slots[index].generation == dead {
                    t = self.call_ended.wait(t).unwrap_or_else(|e| e.into_inner());
                }
                t.waiters -= 1;
                Some(Stopped::Done)
            }
        }
    }

    /// The deadline of live timer `id` (armed: its next expiry; queued or
    /// running: the expiry being called), `None` for a dead id.
    pub(crate) fn deadline(&self, id: u64) -> Option<Instant> {
        let t = self.lock();
        let index = t.index_of(id)?;
        match t.slots[index].state {
            State::Free { .. } | State::Running { done: true, .. } => None,
            _ => Some(t.slots[index].deadline),
        }
    }

    /// Closes the table (runtime shutdown): no timer starts or re-arms any
    /// more; every timer armed (taken off the wheel through `disarm`) or
    /// queued is freed, and their callbacks are returned for their final
    /// `Cancelled` calls, to make outside the lock. A call running now
    /// is left to end: a repeat's final call follows it ([`Self::finish`]).
    pub(crate) fn close(&self, mut disarm: impl FnMut(K)) -> Vec<C> {
        let mut t = self.lock();
        t.closed = true;
        let mut pending = Vec::new();
        for index in 0..t.slots.len() {
            match t.slots[index].state {
                State::Armed(key) => disarm(key),
                State::Queued => {}
                State::Free { .. } | State::Running { .. } => continue,
            }
            pending.extend(t.slots[index].cb.take());
            t.release(index);
        }
        // Their queued ids are dead now: the caller skips them.
        pending
    }

    /// Frees every timer still armed or queued and returns their
    /// callbacks, for their final `Cancelled` calls: the table is being
    /// dropped, and alarms still in the wheel can no longer reach it. (A
    /// running call holds the table, so none is running.)
    pub(crate) fn take_pending(&self) -> Vec<C> {
        let mut t = self.lock();
        let pending: Vec<usize> = t
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.state, State::Armed(_) | State::Queued))
            .map(|(i, _)| i)
            .collect();
        pending
            .into_iter()
            .filter_map(|i| {
                let cb = t.slots[i].cb.take();
                t.release(i);
                cb
            })
            .collect()
    }

    /// Timers alive (armed, queued or running).
    #[cfg(test)]
    fn live(&self) -> usize {
        let t = self.lock();
        t.slots
            .iter()
            .filter(|s| !matches!(s.state, State::Free { .. }))
            .count()
    }
}

/// `deadline + period`, skipping the periods that already passed (no
/// burst after a late call).
fn next_deadline(deadline: Instant, period_ns: u64) -> Instant {
    let period = Duration::from_nanos(period_ns);
    let mut next = later(deadline, period);
    let now = Instant::now();
    if next <= now {
        let behind = now.duration_since(next).as_nanos();
        let skip = behind / period.as_nanos() + 1;
        let skip = u32::try_from(skip).unwrap_or(u32::MAX);
        next = later(next, period.saturating_mul(skip));
    }
    next
}

/// `t + d`, or 30 years on for a `d` too large to add (the wheel clamps
/// far deadlines to its horizon anyway).
pub(crate) fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .unwrap_or_else(|| t + Duration::from_secs(86_400 * 365 * 30))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables under test hold `()` as their callback: the table never
    /// calls it (the timers do), it only hands it back.
    pub(super) type Table = TimerTable<u32, ()>;

    pub(super) fn cb() {}

    pub(super) fn thread(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    /// Starts a timer armed under key 1; its id.
    pub(super) fn armed(t: &Table, period: u64) -> u64 {
        let mut id = 0;
        let then = t.start(cb(), Instant::now(), period, |i| id = i, |_, _| Some(1));
        assert!(matches!(then, Ok(Then::Nothing)));
        id
    }

    #[cfg(not(loom))]
    #[test]
    fn ids_die_and_slots_are_reused_under_new_ids() {
        let t = Table::new(false);
        let a = armed(&t, 0);
        let mut disarmed = None;
        assert_eq!(
            t.stop(a, thread(1), false, |k| disarmed = Some(k)),
            Some(Stopped::Done)
        );
        assert_eq!(disarmed, Some(1));
        assert_eq!(t.stop(a, thread(1), false, |_| {}), None);
        let b = armed(&t, 0);
        assert_ne!(a, b, "a reused slot gets a new id");
        assert_eq!(a & 0xFFFF_FFFF, b & 0xFFFF_FFFF);
        assert_eq!(t.fired(a, false), Then::Nothing, "a stale id fires nothing");
        assert_eq!(t.stop(0, thread(1), false, |_| {}), None);
        assert_eq!(t.stop(u64::MAX, thread(1), false, |_| {}), None);
        assert_eq!(t.live(), 1);
    }

    #[cfg(not(loom))]
    #[test]
    fn calls_queue_in_firing_order_for_one_caller() {
        let t = Table::new(false);
        let ids: Vec<u64> = (0..3).map(|_| armed(&t, 0)).collect();
        assert_eq!(t.fired(ids[2], false), Then::Caller);
        assert_eq!(
            t.fired(ids[0], false),
            Then::Nothing,
            "the caller is spawned"
        );
        assert_eq!(t.fired(ids[1], true), Then::Cancel(ids[1]));
        assert_eq!(t.next_queued(), Some(ids[2]));
        assert_eq!(t.next_queued(), Some(ids[0]));
        assert_eq!(t.next_queued(), None);
        // The caller role was given up: the next fire spawns one again.
        let d = armed(&t, 0);
        assert_eq!(t.fired(d, false), Then::Caller);
    }

    #[cfg(not(loom))]
    #[test]
    fn a_repeat_rearms_and_its_stop_inside_the_call_ends_it() {
        let t = Table::new(true);
        let id = armed(&t, 5_000_000);
        assert_eq!(t.fired(id, false), Then::Call(id));
        let call = t.claim(id, Status::Ok, thread(1)).unwrap();
        assert!(
            t.claim(id, Status::Ok, thread(2)).is_none(),
            "claimed twice"
        );
        let mut rearmed = None;
        assert_eq!(
            t.finish(call, |d, i| {
                rearmed = Some((d, i));
                Some(2)
            }),
            Then::Nothing
        );
        assert_eq!(rearmed.map(|r| r.1), Some(id), "same id after a repeat");
        assert_eq!(t.fired(id, false), Then::Call(id));
        let call = t.claim(id, Status::Ok, thread(1)).unwrap();
        assert_eq!(
            t.stop(id, thread(1), false, |_| {}),
            Some(Stopped::Done),
            "own callback"
        );
        assert_eq!(
            t.finish(call, |_, _| panic!("re-armed after a stop")),
            Then::Nothing
        );
        assert_eq!(t.live(), 0);
    }

    #[cfg(not(loom))]
    #[test]
    fn a_stop_from_another_callback_does_not_wait() {
        let t = Table::new(true);
        let id = armed(&t, 5_000_000);
        let _ = t.fired(id, false);
        let call = t.claim(id, Status::Ok, thread(1)).unwrap();
        assert_eq!(
            t.stop(id, thread(2), true, |_| {}),
            Some(Stopped::StillRunning)
        );
        assert_eq!(t.stop(id, thread(2), true, |_| {}), None);
        let _ = t.finish(call, |_, _| panic!("re-armed after a stop"));
        assert_eq!(t.live(), 0);
    }

    #[cfg(not(loom))]
    #[test]
    fn pending_timers_are_handed_back_once() {
        let t = Table::new(false);
        let armed_id = armed(&t, 0);
        let queued = armed(&t, 5_000_000);
        let stopped = armed(&t, 0);
        assert_eq!(t.fired(queued, false), Then::Caller);
        assert_eq!(
            t.stop(stopped, thread(1), false, |_| {}),
            Some(Stopped::Done)
        );
        assert_eq!(t.take_pending().len(), 2, "the armed and the queued one");
        assert_eq!(t.live(), 0);
        assert!(t.take_pending().is_empty());
        assert_eq!(t.stop(armed_id, thread(1), false, |_| {}), None);
    }

    #[cfg(not(loom))]
    #[test]
    fn close_hands_back_pending_timers_and_ends_a_running_repeat() {
        let t = Table::new(true);
        let armed_id = armed(&t, 0);
        let queued = armed(&t, 0);
        let running = armed(&t, 5_000_000);
        assert_eq!(t.fired(queued, false), Then::Call(queued));
        assert_eq!(t.fired(running, false), Then::Call(running));
        let call = t.claim(running, Status::Ok, thread(1)).unwrap();
        let mut disarmed = Vec::new();
        assert_eq!(
            t.close(|k| disarmed.push(k)).len(),
            2,
            "the armed and the queued one"
        );
        assert_eq!(disarmed, vec![1], "the armed one left the wheel");
        assert!(
            t.claim(queued, Status::Ok, thread(1)).is_none(),
            "its queued call is skipped"
        );
        assert_eq!(t.stop(armed_id, thread(1), false, |_| {}), None);
        // The running repeat is not re-armed: its final call follows.
        assert_eq!(
            t.finish(call, |_, _| panic!("re-armed after close")),
            Then::Cancel(running)
        );
        let last = t.claim(running, Status::Cancelled, thread(1)).unwrap();
        assert_eq!(t.finish(last, |_, _| panic!("re-armed")), Then::Nothing);
        assert_eq!(t.live(), 0);
        let mut id = 0;
        let started = t.start(cb(), Instant::now(), 0, |i| id = i, |_, _| Some(1));
        assert!(
            matches!(started, Err(Error::Shutdown)),
            "no start once closed"
        );
        assert!(t.close(|_| {}).is_empty());
    }

    #[cfg(not(loom))]
    #[test]
    fn a_one_shot_is_gone_once_its_call_is_claimed() {
        let t = Table::new(true);
        let id = armed(&t, 0);
        let _ = t.fired(id, false);
        let call = t.claim(id, Status::Ok, thread(1)).unwrap();
        assert_eq!(t.stop(id, thread(2), false, |_| {}), None);
        let _ = t.finish(call, |_, _| panic!("a one-shot re-armed"));
        assert_eq!(t.live(), 0);
    }
}

/// Loom models: a stop racing an expiry's call on another thread.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::tests::{armed, thread};
    use super::*;
    use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use loom::sync::Arc;

    /// The expiry's call on a runtime thread: claims, "runs" the callback
    /// (counted in `running` and `calls`), finishes (re-arming a repeat).
    fn call_on_worker(t: &Table, id: u64, running: &AtomicUsize, calls: &AtomicUsize) -> bool {
        let Some(call) = t.claim(id, Status::Ok, thread(1)) else {
            return false;
        };
        running.fetch_add(1, SeqCst);
        calls.fetch_add(1, SeqCst);
        running.fetch_sub(1, SeqCst);
        let _ = t.finish(call, |_, _| Some(2));
        true
    }

    #[test]
    fn loom_stop_of_a_repeat_waits_for_its_running_call() {
        loom::model(|| {
            let t = Arc::new(Table::new(true));
            let id = armed(&t, 5_000_000);
            assert_eq!(t.fired(id, false), Then::Call(id));
            let (running, calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let worker = {
                let (t, running, calls) = (t.clone(), running.clone(), calls.clone());
                loom::thread::spawn(move || call_on_worker(&t, id, &running, &calls))
            };
            assert_eq!(t.stop(id, thread(2), false, |_| {}), Some(Stopped::Done));
            // Stopped: the callback is not running, and never runs again.
            assert_eq!(running.load(SeqCst), 0);
            let calls_at_stop = calls.load(SeqCst);
            worker.join().unwrap();
            assert_eq!(calls.load(SeqCst), calls_at_stop);
            assert_eq!(t.live(), 0, "the slot is freed");
        });
    }

    #[test]
    fn loom_close_racing_a_repeats_call_makes_one_final_call() {
        loom::model(|| {
            let t = Arc::new(Table::new(true));
            let id = armed(&t, 5_000_000);
            assert_eq!(t.fired(id, false), Then::Call(id));
            let finals = Arc::new(AtomicUsize::new(0));
            let worker = {
                let (t, finals) = (t.clone(), finals.clone());
                loom::thread::spawn(move || {
                    let Some(call) = t.claim(id, Status::Ok, thread(1)) else {
                        return;
                    };
                    // Closed meanwhile: the final call follows the call.
                    if let Then::Cancel(id) = t.finish(call, |_, _| Some(2)) {
                        let last = t.claim(id, Status::Cancelled, thread(1));
                        let last = last.expect("the final call is claimed once");
                        finals.fetch_add(1, SeqCst);
                        let _ = t.finish(last, |_, _| panic!("re-armed after close"));
                    }
                })
            };
            // Queued, running or re-armed: close makes the final call only
            // when no call runs.
            finals.fetch_add(t.close(|_| {}).len(), SeqCst);
            worker.join().unwrap();
            assert_eq!(finals.load(SeqCst), 1, "exactly one final call");
            assert_eq!(t.live(), 0);
        });
    }

    #[test]
    fn loom_one_shot_stop_or_call_exactly_once() {
        loom::model(|| {
            let t = Arc::new(Table::new(true));
            let id = armed(&t, 0);
            let (running, calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let worker = {
                let (t, running, calls) = (t.clone(), running.clone(), calls.clone());
                loom::thread::spawn(move || {
                    if t.fired(id, false) == Then::Call(id) {
                        call_on_worker(&t, id, &running, &calls);
                    }
                })
            };
            let rc = t.stop(id, thread(2), false, |_| {});
            worker.join().unwrap();
            match rc {
                Some(Stopped::Done) => {
                    assert_eq!(calls.load(SeqCst), 0, "called after a successful stop")
                }
                None => assert_eq!(calls.load(SeqCst), 1, "fired but not called once"),
                other => panic!("stop returned {other:?}"),
            }
            assert_eq!(t.live(), 0);
        });
    }
}
