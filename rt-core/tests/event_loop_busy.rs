//! `rt_core::event_loop`: busy iterations (handles ready in every one)
//! with `Limits::busy_poll_interval_ns`: epoll is polled once per interval,
//! not once per iteration, and never less often than that.

mod event_loop_util;

use event_loop_util::*;
use rt_core::event_loop::{EventLoop, Limits};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

const SPIN: u32 = 2;
const READER: u32 = 1;

/// Limits of a busy iteration that polls at most every `ns`.
fn busy(ns: u64) -> Limits {
    Limits {
        busy_poll_interval_ns: Some(ns),
        ..Limits::default()
    }
}

/// A handle that logs `SPIN` and schedules itself again: the loop stays
/// busy (a chain of `call_soon`s).
fn spin(lp: &Arc<EventLoop<Cb>>, log: &Log) -> Cb {
    fn make(lp: Weak<EventLoop<Cb>>, log: Log) -> Cb {
        Cb::new(SPIN, move |id| {
            log.lock().unwrap().push(id);
            if let Some(l) = lp.upgrade() {
                let _ = l.call_soon(make(lp.clone(), log.clone()));
            }
        })
    }
    make(Arc::downgrade(lp), log.clone())
}

/// A loop with a reader that never reads (it fires at every poll while its
/// socket holds data), data waiting for it, and a spinning chain; the first
/// iteration (a poll, as every first iteration of a run) has run, its poll
/// after the instant returned.
fn busy_loop_with_a_pending_reader() -> (Arc<EventLoop<Cb>>, Log, UnixStream, UnixStream, Instant) {
    let lp = new_loop();
    let log = log();
    let (a, b) = UnixStream::pair().unwrap();
    lp.add_reader(a.as_raw_fd(), rec(&log, READER)).unwrap();
    lp.call_soon(spin(&lp, &log)).unwrap();
    let before = Instant::now();
    assert_eq!(
        lp.run_once(&mut Run::default(), false, Limits::default()),
        Ok(1)
    );
    assert_eq!(taken(&log), vec![SPIN]);
    (&b).write_all(b"x").unwrap();
    (lp, log, a, b, before)
}

#[test]
fn busy_iterations_skip_the_poll_within_the_interval() {
    let (lp, log, _a, _b, _) = busy_loop_with_a_pending_reader();
    let mut run = Run::default();
    for _ in 0..100 {
        assert_eq!(lp.run_once(&mut run, false, busy(60_000 * MS)), Ok(1));
    }
    assert_eq!(taken(&log), vec![SPIN; 100]);
    // Without the interval (asyncio's rule) the next iteration polls: the
    // reader joins the batch after the handle already ready.
    assert_eq!(lp.run_once(&mut run, false, Limits::default()), Ok(2));
    assert_eq!(taken(&log), vec![SPIN, READER]);
    // And so does one with a zero interval.
    assert_eq!(lp.run_once(&mut run, false, busy(0)), Ok(2));
    assert_eq!(taken(&log), vec![SPIN, READER]);
    assert_eq!(run.parks, 0);
}

#[test]
fn a_busy_loop_polls_once_the_interval_passed() {
    let (lp, log, _a, _b, polled) = busy_loop_with_a_pending_reader();
    let interval = Duration::from_millis(5);
    let mut run = Run::default();
    let mut iterations = 0;
    while !log.lock().unwrap().contains(&READER) {
        assert!(polled.elapsed() < Duration::from_secs(10), "reader starved");
        lp.run_once(&mut run, false, busy(interval.as_nanos() as u64))
            .unwrap();
        iterations += 1;
    }
    // Not before the interval, and then at once.
    let seen = polled.elapsed();
    assert!(seen >= interval, "polled after {seen:?}");
    assert!(iterations > 1);
    // The following busy iterations skip again.
    taken(&log);
    for _ in 0..10 {
        lp.run_once(&mut run, false, busy(60_000 * MS)).unwrap();
    }
    assert_eq!(taken(&log), vec![SPIN; 10]);
}

#[test]
fn stopping_and_idle_iterations_always_poll() {
    let (lp, log, _a, _b, _) = busy_loop_with_a_pending_reader();
    let mut run = Run::default();
    // Stopping: the last iteration of a run sees the I/O ready by then.
    assert_eq!(lp.run_once(&mut run, true, busy(60_000 * MS)), Ok(2));
    assert_eq!(taken(&log), vec![SPIN, READER]);

    // Idle (nothing ready): the iteration waits, whatever the interval.
    let lp = new_loop();
    let (a, b) = UnixStream::pair().unwrap();
    lp.add_reader(a.as_raw_fd(), rec(&log, READER)).unwrap();
    lp.call_soon(rec(&log, 7)).unwrap();
    assert_eq!(lp.run_once(&mut run, false, Limits::default()), Ok(1));
    (&b).write_all(b"x").unwrap();
    let idle = Limits {
        deadline: Some(now() + 10_000 * MS),
        ..busy(60_000 * MS)
    };
    assert_eq!(lp.run_once(&mut run, false, idle), Ok(1));
    assert_eq!(taken(&log), vec![7, READER]);
}

#[test]
fn busy_iterations_still_take_threadsafe_calls_and_due_timers() {
    let (lp, log, _a, _b, _) = busy_loop_with_a_pending_reader();
    let mut run = Run::default();
    let lp2 = lp.clone();
    let log2 = log.clone();
    std::thread::spawn(move || lp2.call_soon_threadsafe(rec(&log2, 3)).unwrap())
        .join()
        .unwrap();
    lp.call_at(now(), rec(&log, 4)).unwrap();
    assert_eq!(lp.run_once(&mut run, false, busy(60_000 * MS)), Ok(3));
    assert_eq!(taken(&log), vec![SPIN, 3, 4]);
    assert_eq!(lp.metrics().io_events, 0);
}
