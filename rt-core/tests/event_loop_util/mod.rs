//! Shared helpers of the `event_loop_*` integration tests: closure handles
//! with a cancel flag, and a runner that counts and can fail.
#![allow(dead_code)]

use rt_core::event_loop::{EventLoop, Limits, LoopHandle, Runner};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A handle: an id, a cancel flag and a closure.
#[derive(Clone)]
pub struct Cb(pub Arc<CbInner>);

pub struct CbInner {
    pub id: u32,
    pub cancelled: AtomicBool,
    pub f: Box<dyn Fn(u32) + Send + Sync>,
}

impl LoopHandle for Cb {
    fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for Cb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cb({})", self.0.id)
    }
}

impl Cb {
    pub fn new(id: u32, f: impl Fn(u32) + Send + Sync + 'static) -> Cb {
        Cb(Arc::new(CbInner {
            id,
            cancelled: AtomicBool::new(false),
            f: Box::new(f),
        }))
    }

    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
    }

    pub fn id(&self) -> u32 {
        self.0.id
    }
}

pub type Log = Arc<Mutex<Vec<u32>>>;

pub fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

/// A handle that appends its id to `log`.
pub fn rec(log: &Log, id: u32) -> Cb {
    let log = log.clone();
    Cb::new(id, move |id| log.lock().unwrap().push(id))
}

pub fn taken(log: &Log) -> Vec<u32> {
    std::mem::take(&mut *log.lock().unwrap())
}

/// Runs handles; fails (after running it) on the handle `fail_on`.
#[derive(Default)]
pub struct Run {
    pub fail_on: Option<u32>,
    pub parks: usize,
    pub ran: Vec<u32>,
}

impl Runner<Cb> for Run {
    type Error = u32;

    fn run(&mut self, h: Cb) -> Result<(), u32> {
        (h.0.f)(h.0.id);
        self.ran.push(h.0.id);
        if self.fail_on == Some(h.0.id) {
            return Err(h.0.id);
        }
        Ok(())
    }

    fn park(&mut self, wait: &mut dyn FnMut()) {
        self.parks += 1;
        wait()
    }
}

pub fn new_loop() -> Arc<EventLoop<Cb>> {
    Arc::new(EventLoop::new().expect("EventLoop::new"))
}

pub fn now() -> u64 {
    EventLoop::<Cb>::now_ns()
}

pub const MS: u64 = 1_000_000;

/// Limits with only a deadline `ms` from now.
pub fn within(ms: u64) -> Limits {
    Limits {
        deadline: Some(now() + ms * MS),
        max_callbacks: None,
        busy_poll: None,
    }
}

/// Runs iterations until `done()` or `secs` seconds pass (then panics).
pub fn run_until(lp: &EventLoop<Cb>, run: &mut Run, secs: u64, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "condition not reached in {secs} s"
        );
        lp.run_once(run, false, within(100)).unwrap();
    }
}
