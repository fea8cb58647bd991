//! Worker parking for the multi-thread scheduler.
//!
//! All workers share one driver. An idle worker that can take the driver's
//! lock parks *in the driver* (later: blocks in `epoll_wait` with the next
//! timer deadline as timeout); the others park on their own condvar. An
//! unpark goes through whichever the worker is parked in.
//!
//! The worker that watches the others (see `worker.rs`, "Stuck workers")
//! parks on its condvar while the driver is being turned by others, and in
//! the driver once nobody has turned it for one of its parks: a worker that
//! left the driver to run a task which then blocked its thread leaves the
//! timers and fds unattended otherwise.

use crate::loom::{AtomicUsize, Condvar, Mutex};
use crate::runtime::park::{Park, Unpark};
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::Duration;

const EMPTY: usize = 0;
const PARKED_CONDVAR: usize = 1;
const PARKED_DRIVER: usize = 2;
const NOTIFIED: usize = 3;

/// A worker's parker.
pub(super) struct Parker {
    inner: Arc<Inner>,
    /// `Shared::turns` after this worker's last watching park.
    turns_seen: u32,
}

/// Wakes one worker's parker.
#[derive(Clone)]
pub(super) struct Unparker {
    inner: Arc<Inner>,
}

struct Inner {
    state: AtomicUsize,
    mutex: Mutex<()>,
    condvar: Condvar,
    shared: Arc<Shared>,
}

/// The driver, shared by all the workers' parkers.
struct Shared {
    driver: Mutex<Box<dyn Park>>,
    unpark: Arc<dyn Unpark>,
    /// Bumped at each turn of the driver (parks in it and zero-timeout
    /// polls), by the holder of its lock: unchanged over a watching park
    /// means nobody attends the driver.
    turns: AtomicU32,
}

/// One parker per worker, all sharing `driver`.
pub(super) fn parkers(driver: Box<dyn Park>, n: usize) -> Vec<Parker> {
    let unpark = driver.unparker();
    let shared = Arc::new(Shared {
        driver: Mutex::new(driver),
        unpark,
        turns: AtomicU32::new(0),
    });
    (0..n)
        .map(|_| Parker {
            inner: Arc::new(Inner {
                state: AtomicUsize::new(EMPTY),
                mutex: Mutex::new(()),
                condvar: Condvar::new(),
                shared: shared.clone(),
            }),
            turns_seen: 0,
        })
        .collect()
}

impl Parker {
    pub(super) fn unparker(&self) -> Unparker {
        Unparker {
            inner: self.inner.clone(),
        }
    }

    /// Blocks until unparked.
    pub(super) fn park(&mut self) {
        self.inner.park(None, true);
    }

    /// The watching worker's park: blocks until unparked or until `timeout`
    /// passed, on the condvar while other workers turn the driver, in the
    /// driver (if its lock is free) when nobody else turned it since this
    /// worker's previous watching park started.
    pub(super) fn park_watching(&mut self, timeout: Duration) {
        let turns = self.inner.shared.turns.load(Relaxed);
        let unattended = turns == self.turns_seen;
        let own = self.inner.park(Some(timeout), unattended);
        // The count as this park started, plus its own turn: the others'
        // turns during the park show at the next look.
        self.turns_seen = turns.wrapping_add(u32::from(own));
    }

    /// Polls the driver with `duration` as timeout, if no other worker holds
    /// it. Used with zero for the periodic driver turn of busy workers.
    pub(super) fn park_timeout(&mut self, duration: Duration) {
        if let Ok(mut driver) = self.inner.shared.driver.try_lock() {
            self.inner.shared.turned();
            driver.park_timeout(duration);
        }
    }

    /// Shuts the driver down (called once, by the last worker to stop).
    pub(super) fn shutdown(&mut self) {
        if let Ok(mut driver) = self.inner.shared.driver.try_lock() {
            driver.shutdown();
        }
        self.inner.condvar.notify_all();
    }
}

impl Unparker {
    pub(super) fn unpark(&self) {
        self.inner.unpark();
    }
}

impl Shared {
    /// The driver's lock holder starts a turn.
    fn turned(&self) {
        // Only the lock holder writes: no read-modify-write needed.
        self.turns
            .store(self.turns.load(Relaxed).wrapping_add(1), Relaxed);
    }
}

impl Inner {
    /// Parks in the driver if `try_driver` and its lock is free, otherwise
    /// on the condvar. True if it parked in the driver.
    fn park(&self, timeout: Option<Duration>, try_driver: bool) -> bool {
        // A few spins first: the notification often comes right away.
        for _ in 0..3 {
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
                .is_ok()
            {
                return false;
            }
            crate::loom::spin_loop();
        }
        let driver = if try_driver {
            self.shared.driver.try_lock().ok()
        } else {
            None
        };
        if let Some(mut driver) = driver {
            self.shared.turned();
            self.park_driver(&mut **driver, timeout);
            true
        } else {
            self.park_condvar(timeout);
            false
        }
    }

    fn park_condvar(&self, timeout: Option<Duration>) {
        let mut guard = self.mutex.lock().unwrap();
        match self
            .state
            .compare_exchange(EMPTY, PARKED_CONDVAR, SeqCst, SeqCst)
        {
            Ok(_) => {}
            Err(NOTIFIED) => {
                let old = self.state.swap(EMPTY, SeqCst);
                debug_assert_eq!(old, NOTIFIED);
                return;
            }
            Err(actual) => panic!("inconsistent park state: {actual}"),
        }
        let Some(timeout) = timeout else {
            loop {
                guard = self.condvar.wait(guard).unwrap();
                if self
                    .state
                    .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
                    .is_ok()
                {
                    return;
                }
            }
        };
        // Timed: one wait (a spurious wakeup only ends it early). Then back
        // to EMPTY, taking a notification that came meanwhile with it.
        let (guard, _) = self.condvar.wait_timeout(guard, timeout).unwrap();
        drop(guard);
        match self.state.swap(EMPTY, SeqCst) {
            NOTIFIED | PARKED_CONDVAR => {}
            n => panic!("inconsistent park_condvar state: {n}"),
        }
    }

    fn park_driver(&self, driver: &mut dyn Park, timeout: Option<Duration>) {
        match self
            .state
            .compare_exchange(EMPTY, PARKED_DRIVER, SeqCst, SeqCst)
        {
            Ok(_) => {}
            Err(NOTIFIED) => {
                let old = self.state.swap(EMPTY, SeqCst);
                debug_assert_eq!(old, NOTIFIED);
                return;
            }
            Err(actual) => panic!("inconsistent park state: {actual}"),
        }
        match timeout {
            Some(timeout) => driver.park_timeout(timeout),
            None => driver.park(),
        }
        match self.state.swap(EMPTY, SeqCst) {
            NOTIFIED | PARKED_DRIVER => {}
            n => panic!("inconsistent park_driver state: {n}"),
        }
    }

    fn unpark(&self) {
        match self.state.swap(NOTIFIED, SeqCst) {
            EMPTY | NOTIFIED => {}
            PARKED_CONDVAR => {
                drop(self.mutex.lock().unwrap());
                self.condvar.notify_one();
            }
            PARKED_DRIVER => self.shared.unpark.unpark(),
            actual => panic!("inconsistent state in unpark: {actual}"),
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::runtime::park::ParkThread;

    /// Two workers' parkers sharing one driver (a `ParkThread`), with their
    /// unparkers: `(p0, u0, p1, u1)`.
    fn two_parkers() -> (Parker, Unparker, Parker, Unparker) {
        let mut ps = parkers(Box::new(ParkThread::new()), 2);
        let p1 = ps.pop().unwrap();
        let p0 = ps.pop().unwrap();
        let (u0, u1) = (p0.unparker(), p1.unparker());
        (p0, u0, p1, u1)
    }

    /// Two workers share a driver; each is unparked by another thread. Both
    /// parks return, whichever of them holds the driver.
    #[test]
    fn unpark_reaches_driver_or_condvar_parker() {
        loom::model(|| {
            let (mut p0, u0, mut p1, u1) = two_parkers();
            let t = loom::thread::spawn(move || {
                u0.unpark();
                u1.unpark();
            });
            let t1 = loom::thread::spawn(move || p1.park());
            p0.park();
            t1.join().unwrap();
            t.join().unwrap();
        });
    }

    /// A watching park (timed, in the driver or, when the driver was
    /// turned since its last look, on the condvar) racing an unpark: the
    /// park returns, and the state is left consistent whether the
    /// notification came before, during or after it: a later untimed park
    /// still returns once unparked again.
    #[test]
    fn timed_park_vs_unpark() {
        for driver_turned in [false, true] {
            loom::model(move || {
                let (mut p0, u0, mut p1, u1) = two_parkers();
                if driver_turned {
                    p1.turns_seen = p1.turns_seen.wrapping_sub(1);
                }
                let t = loom::thread::spawn(move || {
                    u1.unpark();
                    u0.unpark();
                });
                p1.park_watching(Duration::from_millis(1));
                p0.park();
                t.join().unwrap();
                // After the unpark thread is done, one more round trip.
                let u1 = p1.unparker();
                u1.unpark();
                p1.park();
            });
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::runtime::park::ParkThread;
    use std::sync::atomic::{AtomicBool, AtomicU32};

    fn two() -> (Parker, Parker) {
        let mut ps = parkers(Box::new(ParkThread::new()), 2);
        let p1 = ps.pop().unwrap();
        (ps.pop().unwrap(), p1)
    }

    /// Nobody else turns the driver (its last turner blocks): every
    /// watching park is in the driver.
    #[test]
    fn the_watcher_takes_an_unturned_driver() {
        let (mut watcher, _blocked) = two();
        let shared = watcher.inner.shared.clone();
        let before = shared.turns.load(Relaxed);
        for _ in 0..3 {
            watcher.park_watching(Duration::from_millis(1));
        }
        assert_eq!(shared.turns.load(Relaxed), before + 3);
    }

    /// A busy worker turns the driver every 200 µs (its zero-timeout
    /// turns): the watcher parks on its condvar and leaves the driver to
    /// it, apart from its first park (nothing seen yet).
    #[test]
    fn the_watcher_leaves_a_turned_driver_to_its_turner() {
        let (mut watcher, mut busy) = two();
        let stop = Arc::new(AtomicBool::new(false));
        let got = Arc::new(AtomicU32::new(0));
        let refused = Arc::new(AtomicU32::new(0));
        let shared = busy.inner.shared.clone();
        let turner = {
            let (stop, got, refused) = (stop.clone(), got.clone(), refused.clone());
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    let before = shared.turns.load(Relaxed);
                    busy.park_timeout(Duration::ZERO);
                    let counter = if shared.turns.load(Relaxed) == before {
                        &refused
                    } else {
                        &got
                    };
                    counter.fetch_add(1, SeqCst);
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        };
        std::thread::sleep(Duration::from_millis(5));
        for _ in 0..40 {
            watcher.park_watching(Duration::from_millis(5));
        }
        stop.store(true, SeqCst);
        turner.join().unwrap();
        let (got, refused) = (got.load(SeqCst), refused.load(SeqCst));
        // Holding the driver for 40 parks would refuse nearly every turn.
        assert!(
            refused < (got + refused) / 4,
            "the busy worker found the driver held in {refused} of {} turns",
            got + refused
        );
    }
}
