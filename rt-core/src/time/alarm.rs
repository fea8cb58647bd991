//! `Alarms`: timers named by a token, reported to a target.

use super::driver::{Entry, Handle};
use super::entry::Fired;
use super::wheel::TimerKey;
use super::Instant;
use std::fmt;
use std::sync::{Arc, Weak};

/// Where due alarms are reported: an embedder's own timer table.
pub trait AlarmTarget: Send + Sync + 'static {
    /// Alarm `token` is due (`shutdown` false), or the runtime's time
    /// driver shut down while it was armed (`shutdown` true). Called on a
    /// runtime thread while the driver processes timers (in deadline order;
    /// alarms due at the same millisecond tick in arming order), with no
    /// lock of the wheel held: it should only schedule work.
    fn fire(self: Arc<Self>, token: u64, shutdown: bool);
}

/// Arms and disarms alarms on a runtime's timer wheel: timers with no
/// future, no task and no allocation of their own, for embedders that keep
/// many timers in their own table and name them by a `u64` token (the C
/// API's `rt_timer_start` keeps its timers this way). The wheel stores the
/// token and a reference to this set, nothing else.
///
/// The set holds its target weakly, so the target may own the set: once
/// the target is dropped, alarms still armed fire into nothing.
///
/// Unlike [`WakeAt`](super::WakeAt), arming never calls the target: a
/// deadline already due comes back as an error, so the caller may hold its
/// own lock while it arms (the target takes that lock when it fires).
#[derive(Clone)]
pub struct Alarms {
    handle: Handle,
    set: Arc<AlarmSet>,
}

/// What a wheel entry of an alarm refers to (a thin pointer: the entry
/// stays two words).
pub(crate) struct AlarmSet {
    target: Weak<dyn AlarmTarget>,
}

impl AlarmSet {
    /// Reports alarm `token` to the target, if it is still alive.
    pub(crate) fn fire(&self, token: u64, shutdown: bool) {
        if let Some(target) = self.target.upgrade() {
            target.fire(token, shutdown);
        }
    }
}

/// An armed alarm, for [`Alarms::disarm`]. Only meaningful for the
/// `Alarms` (runtime) that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmKey(TimerKey);

/// [`Alarms::arm`] did not arm: the deadline is already due, or the time
/// driver shut down. The target was not called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmDue {
    /// True if the time driver shut down (no alarm will ever fire).
    pub shutdown: bool,
}

impl Alarms {
    /// A set of alarms on `runtime`'s timer wheel, reported to `target`
    /// (held weakly).
    ///
    /// # Panics
    /// If the runtime was built without `enable_time`.
    #[track_caller]
    pub fn new(runtime: &crate::runtime::Handle, target: Weak<dyn AlarmTarget>) -> Alarms {
        let handle = runtime.inner.driver().time.clone().unwrap_or_else(|| {
            panic!("the rt runtime was built without its timer: call `enable_time()` (or `enable_all()`) on the runtime Builder")
        });
        Alarms {
            handle,
            set: Arc::new(AlarmSet { target }),
        }
    }

    /// Arms an alarm: `fire(token, false)` runs at `deadline` (never
    /// before; ticks are 1 ms), unless it is disarmed first; if the runtime
    /// shuts down first, `fire(token, true)` runs then. Fails, and never
    /// calls the target, if the deadline's tick was already processed or
    /// the driver shut down.
    pub fn arm(&self, deadline: Instant, token: u64) -> Result<AlarmKey, AlarmDue> {
        let tick = self.handle.deadline_to_tick(deadline.into_std());
        match self
            .handle
            .try_register(tick, Entry::Alarm(self.set.clone(), token))
        {
            Ok(key) => Ok(AlarmKey(key)),
            Err((_, how)) => Err(AlarmDue {
                shutdown: matches!(how, Fired::Shutdown),
            }),
        }
    }

    /// Disarms an alarm. True if it was still armed (it will not fire);
    /// false if it fired already (or its `fire` call is on its way).
    pub fn disarm(&self, key: AlarmKey) -> bool {
        self.handle.cancel(key.0)
    }
}

impl fmt::Debug for Alarms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alarms").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::runtime::{Builder, RunMode};
    use std::sync::Mutex;
    use std::time::Duration;

    #[derive(Default)]
    struct Log(Mutex<Vec<(u64, bool)>>);

    impl AlarmTarget for Log {
        fn fire(self: Arc<Self>, token: u64, shutdown: bool) {
            self.0.lock().unwrap().push((token, shutdown));
        }
    }

    #[test]
    fn fires_in_deadline_order_disarmed_never_and_shutdown_last() {
        let rt = Builder::new_current_thread().enable_all().build().unwrap();
        let log = Arc::new(Log::default());
        let alarms = Alarms::new(rt.handle(), Arc::downgrade(&log) as Weak<dyn AlarmTarget>);
        let now = Instant::now();
        let mut keys = Vec::new();
        for (token, ms) in [(1u64, 20u64), (2, 5), (3, 20), (4, 10), (5, 3_600_000)] {
            let key = alarms.arm(now + Duration::from_millis(ms), token).unwrap();
            keys.push(key);
        }
        assert!(alarms.disarm(keys[3]), "token 4 was armed");
        assert!(!alarms.disarm(keys[3]), "disarmed twice");
        let start = std::time::Instant::now();
        while log.0.lock().unwrap().len() < 3 {
            std::thread::sleep(Duration::from_millis(1));
            rt.run(RunMode::NoWait);
            assert!(start.elapsed() < Duration::from_secs(5));
        }
        assert!(start.elapsed() >= Duration::from_millis(15));
        assert!(!alarms.disarm(keys[0]), "token 1 fired already");
        drop(rt);
        let fired = log.0.lock().unwrap().clone();
        assert_eq!(fired, vec![(2, false), (1, false), (3, false), (5, true)]);
    }

    #[test]
    fn a_processed_tick_or_a_shut_down_driver_is_refused() {
        let rt = Builder::new_current_thread().enable_all().build().unwrap();
        let log = Arc::new(Log::default());
        let alarms = Alarms::new(rt.handle(), Arc::downgrade(&log) as Weak<dyn AlarmTarget>);
        // Let the wheel process a few ticks (it only does with a timer due).
        alarms
            .arm(Instant::now() + Duration::from_millis(4), 6)
            .unwrap();
        let start = std::time::Instant::now();
        while log.0.lock().unwrap().is_empty() {
            std::thread::sleep(Duration::from_millis(1));
            rt.run(RunMode::NoWait);
            assert!(start.elapsed() < Duration::from_secs(5));
        }
        let past = Instant::now() - Duration::from_millis(3);
        let due = alarms.arm(past, 7).unwrap_err();
        assert!(!due.shutdown);
        drop(rt);
        let due = alarms
            .arm(Instant::now() + Duration::from_secs(1), 8)
            .unwrap_err();
        assert!(due.shutdown);
        let fired = log.0.lock().unwrap().clone();
        assert_eq!(fired, vec![(6, false)], "arm never calls the target");
    }

    #[test]
    fn a_dropped_target_gets_nothing_and_entries_stay_small() {
        let rt = Builder::new_current_thread().enable_all().build().unwrap();
        let log = Arc::new(Log::default());
        let alarms = Alarms::new(rt.handle(), Arc::downgrade(&log) as Weak<dyn AlarmTarget>);
        alarms
            .arm(Instant::now() + Duration::from_secs(60), 1)
            .unwrap();
        let weak = Arc::downgrade(&log);
        drop(log);
        drop(rt); // fires the armed alarm as "shutdown": into nothing
        assert!(weak.upgrade().is_none());
        // A wheel entry is two words plus its tag, whatever it holds.
        assert_eq!(
            std::mem::size_of::<Option<crate::time::driver::Entry>>(),
            24
        );
    }
}
