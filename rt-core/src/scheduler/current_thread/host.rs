//! What a host loop needs to drive a current-thread runtime from outside:
//! the stop and wake requests, and the wait source (`backend_fd` and
//! `backend_timeout`) for a host that blocks in its own `poll`/`epoll`.
//!
//! Both requests are one atomic flag plus an unpark of the driver (a write
//! to the reactor's eventfd), so they are safe from any thread, and `wake`
//! from a signal handler: no lock, no allocation. A request made while a
//! wake is still pending adds nothing (coalescing).

use crate::io::host_timer::HostTimer;
use crate::loom::AtomicBool;
use crate::runtime::park::Unpark;
use std::sync::atomic::Ordering::{AcqRel, Acquire};
use std::sync::OnceLock;

/// How a host-driven `run` call behaves (see `Handle::run` in `runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Run until [`stop`](crate::runtime::Handle::stop) is requested or no
    /// work is left: no live task, no armed timer and no blocking job in
    /// flight. Blocks in the driver while tasks wait for I/O or timers.
    Default,
    /// Run what is ready; if nothing is, block until something ran, or
    /// until a `wake` or `stop` request.
    Once,
    /// Run what is ready now (what the driver reports without waiting, and
    /// the tasks queued at that point); never block.
    NoWait,
}

/// Stop and wake requests, and the host timer once asked for.
#[derive(Debug)]
pub(super) struct HostState {
    stop: AtomicBool,
    wake: AtomicBool,
    /// Armed to the next timer deadline whenever the host gets control back,
    /// once a host asked for the backend fd.
    timer: OnceLock<HostTimer>,
}

impl HostState {
    pub(super) fn new() -> HostState {
        HostState {
            stop: AtomicBool::new(false),
            wake: AtomicBool::new(false),
            timer: OnceLock::new(),
        }
    }

    /// Asks the running (or next) `run` call to return.
    pub(super) fn request_stop(&self, unpark: &dyn Unpark) {
        if !self.stop.swap(true, AcqRel) {
            unpark.unpark();
        }
    }

    /// Interrupts a blocking wait of `run` (or the host's wait on the
    /// backend fd). Async-signal-safe when the driver's unpark is (the I/O
    /// driver's eventfd write).
    pub(super) fn request_wake(&self, unpark: &dyn Unpark) {
        if !self.wake.swap(true, AcqRel) {
            unpark.unpark();
        }
    }

    pub(super) fn stop_requested(&self) -> bool {
        self.stop.load(Acquire)
    }

    pub(super) fn take_stop(&self) -> bool {
        self.stop.swap(false, AcqRel)
    }

    pub(super) fn take_wake(&self) -> bool {
        self.wake.swap(false, AcqRel)
    }

    pub(super) fn timer(&self) -> Option<&HostTimer> {
        self.timer.get()
    }

    /// Installs the host timer (a racing second one is dropped: closing
    /// its fd removes it from the epoll set).
    pub(super) fn set_timer(&self, timer: HostTimer) {
        let _ = self.timer.set(timer);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::runtime::park::{Park, ParkThread};

    /// A wake racing with a host loop that checks the flag and then parks
    /// is never lost: the loop always ends.
    #[test]
    fn wake_vs_run_once_no_lost_wakeup() {
        loom::model(|| {
            let host = crate::loom::Arc::new(HostState::new());
            let mut park = ParkThread::new();
            let unpark = park.unparker();
            let h = host.clone();
            let t = loom::thread::spawn(move || h.request_wake(&*unpark));
            while !host.take_wake() {
                park.park();
            }
            t.join().unwrap();
        });
    }

    /// A stop and a wake from two threads: each is seen, although either
    /// may find the other's unpark already pending.
    #[test]
    fn stop_and_wake_from_two_threads_are_both_seen() {
        loom::model(|| {
            let host = crate::loom::Arc::new(HostState::new());
            let mut park = ParkThread::new();
            let (u1, u2) = (park.unparker(), park.unparker());
            let (h1, h2) = (host.clone(), host.clone());
            let t1 = loom::thread::spawn(move || h1.request_stop(&*u1));
            let t2 = loom::thread::spawn(move || h2.request_wake(&*u2));
            let (mut stopped, mut woken) = (false, false);
            loop {
                stopped |= host.take_stop();
                woken |= host.take_wake();
                if stopped && woken {
                    break;
                }
                park.park();
            }
            t1.join().unwrap();
            t2.join().unwrap();
        });
    }
}
