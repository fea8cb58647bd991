//! `WakeAt`: a timer without a future or a task.

use super::driver::{Entry, Handle};
use super::wheel::TimerKey;
use super::Instant;
use std::fmt;
use std::task::Waker;

/// A timer that wakes a given [`Waker`] at its deadline (never before),
/// with no future to poll and no task while it waits: for embedders that
/// keep a few timers and start work only when one fires. (For many timers
/// kept in an embedder's own table, [`Alarms`](super::Alarms) stores no
/// waker at all.)
///
/// The time driver calls the waker on a runtime thread, in deadline order
/// (timers due at the same millisecond tick in the order they were armed),
/// while it processes timers: the waker should only schedule work. When
/// the runtime shuts down, every armed `WakeAt` is woken then. The waker
/// is woken at most once; dropping the `WakeAt` first disarms it. The
/// wheel keeps the waker itself: arming allocates nothing but the wheel
/// slot.
pub struct WakeAt {
    handle: Handle,
    key: Option<TimerKey>,
}

impl WakeAt {
    /// Arms a timer on `runtime`'s wheel. A deadline whose tick the wheel
    /// has already processed (or a time driver that shut down) wakes
    /// `waker` right here, before this returns; other passed deadlines
    /// fire at the driver's next timer processing.
    ///
    /// # Panics
    /// If the runtime was built without `enable_time`.
    #[track_caller]
    pub fn new(runtime: &crate::runtime::Handle, deadline: Instant, waker: Waker) -> WakeAt {
        let handle = runtime.inner.driver().time.clone().unwrap_or_else(|| {
            panic!("the rt runtime was built without its timer: call `enable_time()` (or `enable_all()`) on the runtime Builder")
        });
        let tick = handle.deadline_to_tick(deadline.into_std());
        let key = handle.register(tick, Entry::Wake(waker));
        WakeAt { handle, key }
    }
}

impl Drop for WakeAt {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            // A no-op if it fired already.
            self.handle.cancel(key);
        }
    }
}

impl fmt::Debug for WakeAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WakeAt")
            .field("armed", &self.key.is_some())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::runtime::{Builder, RunMode};
    use std::sync::Arc;
    use std::sync::Mutex;
    use std::task::Wake;
    use std::time::Duration;

    struct Record(usize, Arc<Mutex<Vec<usize>>>);

    impl Wake for Record {
        fn wake(self: Arc<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    #[test]
    fn wakes_in_deadline_order_then_ties_in_arming_order() {
        let rt = Builder::new_current_thread().enable_all().build().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let now = Instant::now();
        let deadlines = [30u64, 10, 20, 10, 30, 0];
        let timers: Vec<WakeAt> = deadlines
            .iter()
            .enumerate()
            .map(|(i, ms)| {
                let w = Waker::from(Arc::new(Record(i, order.clone())));
                WakeAt::new(rt.handle(), now + Duration::from_millis(*ms), w)
            })
            .collect();
        let start = std::time::Instant::now();
        while order.lock().unwrap().len() < deadlines.len() {
            // The wakers schedule no task: poll the driver now and then.
            std::thread::sleep(Duration::from_millis(1));
            rt.run(RunMode::NoWait);
            assert!(start.elapsed() < Duration::from_secs(5));
        }
        assert_eq!(*order.lock().unwrap(), vec![5, 1, 3, 2, 0, 4]);
        drop(timers);
        assert!(start.elapsed() >= Duration::from_millis(25));
    }

    #[test]
    fn dropped_never_wakes_and_shutdown_wakes_the_armed_ones() {
        let rt = Builder::new_current_thread().enable_all().build().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let later = Instant::now() + Duration::from_millis(20);
        let a = WakeAt::new(
            rt.handle(),
            later,
            Waker::from(Arc::new(Record(0, order.clone()))),
        );
        let b = WakeAt::new(
            rt.handle(),
            later,
            Waker::from(Arc::new(Record(1, order.clone()))),
        );
        drop(a);
        std::thread::sleep(Duration::from_millis(30));
        rt.run(RunMode::NoWait);
        assert_eq!(*order.lock().unwrap(), vec![1]);
        drop(b);

        let far = WakeAt::new(
            rt.handle(),
            Instant::now() + Duration::from_secs(3600),
            Waker::from(Arc::new(Record(2, order.clone()))),
        );
        drop(rt);
        assert_eq!(*order.lock().unwrap(), vec![1, 2]);
        drop(far);
    }
}
