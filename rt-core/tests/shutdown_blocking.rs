//! A blocking job that already runs when its runtime shuts down finishes,
//! and its `JoinHandle` gets its result (Tokio); only jobs still queued
//! are cancelled. Holds for `shutdown_timeout`, `shutdown_background` and
//! drop.

mod support;

use rt_core::runtime::{Builder, Runtime};
use std::sync::mpsc;
use std::time::Duration;
use support::with_deadline;

fn rt(workers: Option<usize>, max_blocking: usize) -> Runtime {
    let mut b = match workers {
        Some(n) => {
            let mut b = Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => Builder::new_current_thread(),
    };
    b.max_blocking_threads(max_blocking).build().unwrap()
}

/// Starts a job that runs for `ms` and returns 42, plus a queued one behind
/// it (the pool has one thread); returns both handles once the first runs.
fn start_jobs(
    rt: &Runtime,
    ms: u64,
) -> (
    rt_core::task::JoinHandle<u32>,
    rt_core::task::JoinHandle<u32>,
) {
    let (tx, rx) = mpsc::channel();
    let running = rt.handle().spawn_blocking(move || {
        tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        42
    });
    rx.recv().unwrap();
    let queued = rt.handle().spawn_blocking(|| 7);
    (running, queued)
}

fn outcome(join: rt_core::task::JoinHandle<u32>) -> Result<u32, rt_core::task::JoinError> {
    let other = Builder::new_current_thread().build().unwrap();
    other.block_on(join)
}

#[test]
fn running_job_result_survives_shutdown_timeout() {
    with_deadline("shutdown_timeout_running_job", 30, || {
        for workers in [None, Some(1)] {
            let rt = rt(workers, 1);
            let (running, queued) = start_jobs(&rt, 200);
            rt.shutdown_timeout(Duration::from_secs(10));
            assert_eq!(outcome(running).unwrap(), 42, "{workers:?}");
            assert!(outcome(queued).unwrap_err().is_cancelled(), "{workers:?}");
        }
    });
}

#[test]
fn running_job_result_survives_a_short_shutdown_timeout() {
    with_deadline("short_shutdown_timeout_running_job", 30, || {
        for workers in [None, Some(1)] {
            let rt = rt(workers, 1);
            let (running, queued) = start_jobs(&rt, 300);
            // Times out while the job still runs: it finishes in the
            // background and still delivers.
            rt.shutdown_timeout(Duration::from_millis(10));
            assert_eq!(outcome(running).unwrap(), 42, "{workers:?}");
            assert!(outcome(queued).unwrap_err().is_cancelled(), "{workers:?}");
        }
    });
}

#[test]
fn running_job_result_survives_shutdown_background() {
    with_deadline("shutdown_background_running_job", 30, || {
        for workers in [None, Some(1)] {
            let rt = rt(workers, 1);
            let (running, queued) = start_jobs(&rt, 200);
            rt.shutdown_background();
            assert_eq!(outcome(running).unwrap(), 42, "{workers:?}");
            assert!(outcome(queued).unwrap_err().is_cancelled(), "{workers:?}");
        }
    });
}

#[test]
fn running_job_result_survives_drop() {
    with_deadline("drop_running_job", 30, || {
        for workers in [None, Some(1)] {
            let rt = rt(workers, 1);
            let (running, queued) = start_jobs(&rt, 100);
            drop(rt);
            assert_eq!(outcome(running).unwrap(), 42, "{workers:?}");
            assert!(outcome(queued).unwrap_err().is_cancelled(), "{workers:?}");
        }
    });
}

/// Tokio's `spawn_blocking_started_before_shutdown_continues`: a job
/// submitted right before the shutdown, that got a thread of its own (the
/// pool is below its cap), runs and delivers, even if that thread had not
/// picked it up yet when the shutdown came. Repeated to hit that window.
#[test]
fn job_submitted_right_before_shutdown_runs() {
    with_deadline("job_right_before_shutdown", 60, || {
        for workers in [None, Some(1), Some(4)] {
            for _ in 0..20 {
                let rt = rt(workers, 512);
                let _enter = rt.enter();
                let join = rt_core::task::spawn_blocking(|| {
                    std::thread::sleep(Duration::from_millis(5));
                    42
                });
                rt.shutdown_timeout(Duration::from_secs(1000));
                assert_eq!(outcome(join).unwrap(), 42, "{workers:?}");
            }
        }
    });
}

/// A job submitted after the shutdown is refused (cancelled), as in Tokio's
/// `spawn_blocking_after_shutdown_fails`.
#[test]
fn job_submitted_after_shutdown_is_cancelled() {
    for workers in [None, Some(1)] {
        let rt = rt(workers, 4);
        let handle = rt.handle().clone();
        rt.shutdown_timeout(Duration::from_secs(1000));
        let join = handle.spawn_blocking(|| 42);
        assert!(outcome(join).unwrap_err().is_cancelled(), "{workers:?}");
    }
}
