//! `rt_core::event_loop::EventLoop::with_outside_lock`: a loop whose state
//! is guarded by the embedder's own lock (here a mutex standing for
//! Python's GIL), taken by every caller and let go by the runner only
//! around the loop's waits.

mod event_loop_util;

use event_loop_util::*;
use rt_core::event_loop::{EventLoop, Limits, LoopHandle, Runner};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// The embedder's lock.
static GIL: Mutex<()> = Mutex::new(());

fn gil() -> MutexGuard<'static, ()> {
    GIL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs handles holding the lock; lets it go around the waits, as the
/// Python binding lets the GIL go.
struct GilRun<'a> {
    held: Option<MutexGuard<'a, ()>>,
    inner: Run,
}

impl Runner<Cb> for GilRun<'_> {
    type Error = u32;

    fn run(&mut self, h: Cb) -> Result<(), u32> {
        self.inner.run(h)
    }

    fn park(&mut self, wait: &mut dyn FnMut()) {
        self.held = None;
        wait();
        self.held = Some(gil());
    }

    fn poll(&mut self, poll: &mut dyn FnMut()) {
        self.held = None;
        poll();
        self.held = Some(gil());
    }
}

#[test]
fn threads_holding_the_lock_schedule_on_a_running_loop() {
    // SAFETY: every call below holds GIL (the runner lets it go only in
    // park / poll); call_soon_threadsafe is exempt.
    let lp: Arc<EventLoop<Cb>> = Arc::new(unsafe { EventLoop::with_outside_lock() }.unwrap());
    let log = log();
    const N: usize = 2_000;
    let feeders: Vec<_> = (0..2u32)
        .map(|t| {
            let (lp, log) = (lp.clone(), log.clone());
            std::thread::spawn(move || {
                for i in 0..N {
                    if i % 2 == 0 {
                        let _g = gil();
                        if t == 0 {
                            lp.call_soon(rec(&log, t)).unwrap();
                        } else {
                            lp.call_at(now(), rec(&log, t)).unwrap();
                        }
                    } else {
                        lp.call_soon_threadsafe(rec(&log, t)).unwrap();
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    let mut run = GilRun {
        held: Some(gil()),
        inner: Run::default(),
    };
    while run.inner.ran.len() < 2 * N {
        assert!(start.elapsed() < Duration::from_secs(20), "handles lost");
        lp.run_once(&mut run, false, within(5)).unwrap();
        // Let the feeders take the lock between iterations too.
        run.held = None;
        run.held = Some(gil());
    }
    drop(run.held.take());
    for f in feeders {
        f.join().unwrap();
    }
    let _g = gil();
    let ran = taken(&log);
    assert_eq!(ran.iter().filter(|&&t| t == 0).count(), N);
    assert_eq!(ran.iter().filter(|&&t| t == 1).count(), N);
    assert_eq!(lp.ready_len() + lp.timers_len(), 0);
    assert!(lp.close().is_empty());
}

/// A handle whose `is_cancelled` calls its loop, which the documentation
/// forbids.
#[derive(Clone)]
struct Nosy(Weak<EventLoop<Nosy>>);

impl LoopHandle for Nosy {
    fn is_cancelled(&self) -> bool {
        self.0.upgrade().is_some_and(|l| l.ready_len() > 100)
    }
}

struct NoRun;

impl Runner<Nosy> for NoRun {
    type Error = ();
    fn run(&mut self, _h: Nosy) -> Result<(), ()> {
        Ok(())
    }
}

#[test]
fn a_call_from_under_the_state_panics_instead_of_deadlocking() {
    let _g = gil();
    // SAFETY: one thread, holding GIL throughout.
    let lp: Arc<EventLoop<Nosy>> = Arc::new(unsafe { EventLoop::with_outside_lock() }.unwrap());
    lp.call_soon(Nosy(Arc::downgrade(&lp))).unwrap();
    let lp2 = lp.clone();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        lp2.run_once(&mut NoRun, false, Limits::default())
    }));
    let msg = out.expect_err("a re-entrant take panics");
    let msg = msg
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| msg.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(msg.contains("taken twice"), "{msg}");
    // The state was let go while unwinding: the loop still answers.
    assert_eq!(lp.ready_len(), 1);
    let left = lp.close();
    assert_eq!(left.len(), 1);
}
