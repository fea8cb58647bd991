//! Timers on the runtime's wheel: `rt_timer_start`, `rt_timer_stop`.
//!
//! A runtime's timers live in one table (`Timers`), as libuv keeps a timer
//! inside its `uv_timer_t`: a slot holds the callback, the period, the
//! deadline and where the timer is in its life; the wheel holds only an
//! alarm naming the slot by id (`rt_core::time::Alarms`). Starting a timer
//! allocates nothing of its own and takes two locks (the table's, then the
//! wheel's). When the alarm fires, the slot's id is queued for a call: on a
//! current-thread runtime one caller task makes the calls in firing order
//! (deadline order; ties in start order), one per poll; a multi-thread
//! runtime spawns a task per expiry, so calls spread over the workers.

use crate::callback::rt_callback;
use crate::calls::this_thread;
use crate::error::*;
use crate::guard::ffi_guard;
use crate::runtime::{live_runtime_ref, rt_runtime, runtime_ref};
use rt_core::runtime::{Handle, RuntimeFlavor};
use rt_core::time::{AlarmKey, AlarmTarget, Alarms, Instant};
use rt_core::util::Chunked;
use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::num::NonZeroUsize;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// A timer id: generational, so a stale id is refused with `RT_ENOENT`.
pub type rt_timer_id = u64;

/// The C callback and its argument.
#[derive(Clone, Copy)]
struct Cb {
    f: unsafe extern "C" fn(*mut c_void, c_int),
    arg: *mut c_void,
}

// SAFETY: the API documents that `arg` may be used from any thread; we
// only copy the pointer around and hand it back to C.
unsafe impl Send for Cb {}

impl Cb {
    fn call(self, status: c_int) {
        // SAFETY: a C function pointer with the documented signature.
        crate::callback::in_callback(|| unsafe { (self.f)(self.arg, status) })
    }
}

/// A runtime's timers, and the calls of the ones that fired.
pub(crate) struct Timers {
    runtime: Handle,
    alarms: Alarms,
    table: Mutex<Table>,
    /// Signalled when a call that a stopper waits for ends.
    call_ended: Condvar,
}

struct Table {
    /// Chunked: starting a timer never stalls on a copy of the table.
    slots: Chunked<Slot>,
    /// Head of the free slots' list (`NIL`: none).
    free: u32,
    /// Fired timers waiting for the caller task (current-thread runtime).
    fired: VecDeque<u64>,
    /// A caller task is spawned and will take what is queued.
    caller: bool,
    /// Stoppers waiting on `call_ended`.
    waiters: u32,
}

const NIL: u32 = u32::MAX;

/// One timer. Its id is `generation << 32 | (index + 1)`; the generation
/// moves on when the id dies (stop, a one-shot's call), so a stale id
/// never names a later timer.
struct Slot {
    generation: u32,
    state: State,
    cb: Option<Cb>,
    /// Repeat period in ms; zero for a one-shot timer.
    period_ms: u64,
    deadline: Instant,
}

#[derive(Clone, Copy)]
enum State {
    /// Not a timer; the next free slot.
    Free { next: u32 },
    /// Waiting in the wheel.
    Armed(AlarmKey),
    /// Fired; its call is queued (or its call task spawned).
    Queued,
    /// Its callback runs on thread `on`. `done`: no re-arm follows (a
    /// one-shot's call, a final call, or a stop came): the slot is freed
    /// when the call returns.
    Running { on: NonZeroUsize, done: bool },
}

/// Work to start once the table lock is released.
#[must_use]
enum Spawn {
    Nothing,
    /// The caller task of a current-thread runtime.
    Caller,
    /// The call task of one expiry (multi-thread runtime).
    Call(u64),
    /// The final `RT_ECANCELED` call of a timer armed at shutdown, made
    /// right here (no task can start any more).
    Cancel(u64),
}

impl Table {
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

    /// A new slot for a timer; its id.
    fn alloc(&mut self, cb: Cb, period_ms: u64, deadline: Instant) -> Result<usize, c_int> {
        let slot = Slot {
            generation: 0,
            state: State::Queued,
            cb: Some(cb),
            period_ms,
            deadline,
        };
        if self.free == NIL {
            if self.slots.len() >= (NIL - 1) as usize {
                return Err(RT_ENOMEM);
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
    fn enqueue(&mut self, index: usize, flavor: RuntimeFlavor) -> Spawn {
        self.slots[index].state = State::Queued;
        let id = self.id_of(index);
        if flavor == RuntimeFlavor::MultiThread {
            return Spawn::Call(id);
        }
        self.fired.push_back(id);
        if std::mem::replace(&mut self.caller, true) {
            Spawn::Nothing
        } else {
            Spawn::Caller
        }
    }
}

impl Timers {
    pub(crate) fn new(runtime: Handle) -> Arc<Timers> {
        Arc::new_cyclic(|me| Timers {
            alarms: Alarms::new(&runtime, me.clone() as Weak<dyn AlarmTarget>),
            runtime,
            table: Mutex::new(Table {
                slots: Chunked::new(),
                free: NIL,
                fired: VecDeque::new(),
                caller: false,
                waiters: 0,
            }),
            call_ended: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts the timer in `index` in the wheel for its deadline, or queues
    /// its call if that is already due (or the runtime shut down: the call
    /// task is refused then, which makes the final `RT_ECANCELED` call).
    fn arm(self: &Arc<Self>, t: &mut Table, index: usize) -> Spawn {
        let id = t.id_of(index);
        match self.alarms.arm(t.slots[index].deadline, id) {
            Ok(key) => {
                t.slots[index].state = State::Armed(key);
                Spawn::Nothing
            }
            Err(_) => t.enqueue(index, self.runtime.runtime_flavor()),
        }
    }

    fn spawn(self: &Arc<Self>, what: Spawn) {
        match what {
            Spawn::Nothing => {}
            Spawn::Caller => {
                let caller = Caller {
                    timers: self.clone(),
                    finished: false,
                };
                // Refused after shutdown: dropping `caller` gives what is
                // queued its final call.
                drop(self.runtime.spawn(caller.run()));
            }
            Spawn::Call(id) => {
                let call = QueuedCall {
                    timers: self.clone(),
                    id,
                    called: false,
                };
                // Refused after shutdown: dropping `call` makes the final
                // RT_ECANCELED call.
                drop(self.runtime.spawn(async move { call.run() }));
            }
            Spawn::Cancel(id) => self.make_call(id, RT_ECANCELED),
        }
    }

    /// Makes the call of a queued timer: `status` 0 for an expiry (then
    /// re-arms a repeating timer), `RT_ECANCELED` for the final call of a
    /// timer whose call was dropped at shutdown. A timer stopped since it
    /// was queued is skipped.
    fn make_call(self: &Arc<Self>, id: u64, status: c_int) {
        let (index, cb) = {
            let mut t = self.lock();
            let Some(index) = t.index_of(id) else {
                return;
            };
            let slot = &mut t.slots[index];
            let State::Queued = slot.state else {
                return;
            };
            let done = slot.period_ms == 0 || status != 0;
            slot.state = State::Running {
                on: this_thread(),
                done,
            };
            if done {
                // The id dies now: a racing rt_timer_stop reports RT_ENOENT.
                slot.generation = slot.generation.wrapping_add(1);
            }
            (index, slot.cb.expect("a live timer has a callback"))
        };
        cb.call(status);
        let spawn = {
            let mut t = self.lock();
            let State::Running { done, .. } = t.slots[index].state else {
                unreachable!("a running call's slot stays running until it ends");
            };
            let spawn = if done {
                t.release(index);
                Spawn::Nothing
            } else {
                t.slots[index].deadline = next_deadline(&t.slots[index]);
                self.arm(&mut t, index)
            };
            if t.waiters > 0 {
                self.call_ended.notify_all();
            }
            spawn
        };
        self.spawn(spawn);
    }

    /// Starts a timer; its id. `out` is written under the table lock,
    /// before any call can run (its first call may stop it).
    fn start(
        self: &Arc<Self>,
        cb: Cb,
        deadline: Instant,
        period_ms: u64,
        out: impl FnOnce(u64),
    ) -> c_int {
        let spawn = {
            let mut t = self.lock();
            let index = match t.alloc(cb, period_ms, deadline) {
                Ok(i) => i,
                Err(e) => return e,
            };
            out(t.id_of(index));
            self.arm(&mut t, index)
        };
        self.spawn(spawn);
        0
    }

    /// `rt_timer_stop`.
    fn stop(&self, id: u64) -> c_int {
        let mut t = self.lock();
        let Some(index) = t.index_of(id) else {
            return RT_ENOENT;
        };
        match t.slots[index].state {
            State::Free { .. } => RT_ENOENT,
            State::Armed(key) => {
                // Fired meanwhile but not queued yet: `fire` finds the id
                // dead and drops it.
                self.alarms.disarm(key);
                t.release(index);
                0
            }
            State::Queued => {
                // The queued id is dead now: the caller skips it.
                t.release(index);
                0
            }
            State::Running { done: true, .. } => RT_ENOENT,
            State::Running { on, done: false } => {
                // A repeating timer's call runs: no re-arm after it, and
                // its id dies now.
                let slot = &mut t.slots[index];
                slot.state = State::Running { on, done: true };
                slot.generation = slot.generation.wrapping_add(1);
                let dead = slot.generation;
                if on == this_thread() {
                    // From inside its own callback: it returns right after.
                    return 0;
                }
                if crate::callback::is_in_callback() {
                    // Two callbacks stopping each other would wait forever.
                    return RT_EDEADLK;
                }
                t.waiters += 1;
                // The call's end frees the slot (the generation moves on).
                while t.slots[index].generation == dead {
                    t = self.call_ended.wait(t).unwrap_or_else(|e| e.into_inner());
                }
                t.waiters -= 1;
                0
            }
        }
    }

    /// Gives every queued call its final `RT_ECANCELED` (the caller task was
    /// dropped: shutdown).
    fn cancel_queued(self: &Arc<Self>) {
        loop {
            let id = {
                let mut t = self.lock();
                match t.fired.pop_front() {
                    Some(id) => id,
                    None => {
                        t.caller = false;
                        return;
                    }
                }
            };
            self.make_call(id, RT_ECANCELED);
        }
    }
}

/// The wheel fired a timer (or the runtime shut down): queue its call.
impl AlarmTarget for Timers {
    fn fire(self: Arc<Self>, id: u64, shutdown: bool) {
        let spawn = {
            let mut t = self.lock();
            match t.index_of(id) {
                Some(index) if matches!(t.slots[index].state, State::Armed(_)) => {
                    if shutdown {
                        t.slots[index].state = State::Queued;
                        Spawn::Cancel(id)
                    } else {
                        t.enqueue(index, self.runtime.runtime_flavor())
                    }
                }
                // Stopped after the wheel took it out.
                _ => Spawn::Nothing,
            }
        };
        self.spawn(spawn);
    }
}

/// `deadline + period`, skipping the periods the timer fell behind (no
/// burst).
fn next_deadline(slot: &Slot) -> Instant {
    let period = Duration::from_millis(slot.period_ms);
    let mut deadline = later(slot.deadline, period);
    let now = Instant::now();
    if deadline <= now {
        let behind = now.duration_since(deadline).as_nanos();
        let skip = behind / period.as_nanos() + 1;
        let skip = u32::try_from(skip).unwrap_or(u32::MAX);
        deadline = later(deadline, period.saturating_mul(skip));
    }
    deadline
}

/// `t + d`, or 30 years on for a `d` too large to add (the wheel clamps
/// far deadlines to its horizon anyway).
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .unwrap_or_else(|| t + Duration::from_secs(86_400 * 365 * 30))
}

/// The task that makes queued calls on a current-thread runtime.
struct Caller {
    timers: Arc<Timers>,
    /// Set when it returns normally: a new caller may own the queue then.
    finished: bool,
}

impl Caller {
    async fn run(mut self) {
        loop {
            let next = {
                let mut t = self.timers.lock();
                match t.fired.pop_front() {
                    Some(id) => id,
                    None => {
                        t.caller = false;
                        self.finished = true;
                        return;
                    }
                }
            };
            self.timers.make_call(next, 0);
            rt_core::task::yield_now().await;
        }
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        if !self.finished {
            self.timers.cancel_queued();
        }
    }
}

/// One expiry's call on a multi-thread runtime. Dropped before it ran
/// (shutdown), it makes the final `RT_ECANCELED` call.
struct QueuedCall {
    timers: Arc<Timers>,
    id: u64,
    called: bool,
}

impl QueuedCall {
    fn run(mut self) {
        self.called = true;
        self.timers.make_call(self.id, 0);
    }
}

impl Drop for QueuedCall {
    fn drop(&mut self) {
        if !self.called {
            self.timers.make_call(self.id, RT_ECANCELED);
        }
    }
}

/// Arms a timer: `cb(arg, 0)` runs on a runtime thread once `timeout_ms`
/// has passed (never earlier), then every `repeat_ms` if that is not 0.
/// Ticks are 1 ms; a repeating timer that falls behind skips to the next
/// period instead of firing in a burst. On a current-thread runtime the
/// calls run in deadline order, timers due in the same millisecond in the
/// order they were started. A waiting timer costs no task: its call is
/// scheduled when it fires.
///
/// `*out` receives the timer's id (for `rt_timer_stop`). A one-shot timer
/// is done after its call (its id then gives `RT_ENOENT`). A timer still
/// armed at shutdown gets one final call with `RT_ECANCELED`; a stopped
/// one gets none. `arg` must stay valid until the final call or a
/// successful stop, and may be used from any thread.
///
/// Returns 0; `RT_EINVAL` for a NULL `rt`, `cb` or `out`; `RT_ESHUTDOWN`.
/// On error `cb` is never called. Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rt_timer_start(
    rt: *const rt_runtime,
    timeout_ms: u64,
    repeat_ms: u64,
    cb: rt_callback,
    arg: *mut c_void,
    out: *mut rt_timer_id,
) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        let (Some(f), false) = (cb, out.is_null()) else {
            return RT_EINVAL;
        };
        if let Err(e) = rt.handle() {
            return e;
        }
        let deadline = later(Instant::now(), Duration::from_millis(timeout_ms));
        // (After a shutdown racing with this call the timer's call is
        // refused and the final RT_ECANCELED call is made; still a success.)
        rt.timers().start(Cb { f, arg }, deadline, repeat_ms, |id| {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { out.write(id) }
        })
    })
}

/// Stops a timer. After it returns 0 the callback is not running on any
/// other thread and will not be called again (not even with
/// `RT_ECANCELED`), so `arg` may be freed; called from inside the timer's
/// own callback it returns at once and no further call happens.
///
/// Returns 0; `RT_ENOENT` if the timer already fired (one-shot, including
/// one whose final call is running now), was stopped, or the id is
/// unknown; `RT_EDEADLK` when called from inside another runtime callback
/// while this timer's callback runs on another thread: the timer is
/// stopped (no further call starts) but that call may still be finishing,
/// so `arg` must not be freed yet (waiting there could deadlock two
/// callbacks stopping each other); `RT_EINVAL` for NULL; `RT_ESHUTDOWN`
/// after shutdown. Thread-safe.
///
/// # Safety
/// `rt` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn rt_timer_stop(rt: *const rt_runtime, id: rt_timer_id) -> c_int {
    ffi_guard(|| {
        // SAFETY: forwarded from the caller.
        let rt = match unsafe { live_runtime_ref(rt) } {
            Ok(rt) => rt,
            Err(e) => return e,
        };
        rt.timers().stop(id)
    })
}
