//! `rt_core::event_loop`: busy iterations (handles ready in every one)
//! with `Limits::busy_poll`: after a poll that found nothing, at most
//! `max_skips` iterations in a row skip theirs, within `interval_ns`; a poll
//! that found events makes the next iteration poll too.

mod event_loop_util;

use event_loop_util::*;
use rt_core::event_loop::{BusyPoll, EventLoop, Limits};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

const SPIN: u32 = 2;
const READER: u32 = 1;

/// An interval long enough for skips limited by their count only.
const HOUR: u64 = 3_600_000 * MS;

/// Limits of a busy iteration that may skip `max_skips` polls in a row
/// within `interval_ns` of a poll that found nothing.
fn busy(max_skips: u32, interval_ns: u64) -> Limits {
    Limits {
        busy_poll: Some(BusyPoll {
            max_skips,
            max_skips_after_events: 0,
            interval_ns,
        }),
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
/// socket holds data) and a spinning chain; its last iteration polled and
/// found nothing (it returned after the instant returned), then data came
/// for the reader.
fn busy_loop_with_a_pending_reader() -> (Arc<EventLoop<Cb>>, Log, UnixStream, UnixStream, Instant) {
    let lp = new_loop();
    let log = log();
    let (a, b) = UnixStream::pair().unwrap();
    lp.add_reader(a.as_raw_fd(), rec(&log, READER)).unwrap();
    lp.call_soon(spin(&lp, &log)).unwrap();
    let mut run = Run::default();
    let before = Instant::now();
    assert_eq!(lp.run_once(&mut run, false, Limits::default()), Ok(1));
    assert_eq!(taken(&log), vec![SPIN]);
    assert_eq!(lp.metrics().io_events, 0);
    (&b).write_all(b"x").unwrap();
    (lp, log, a, b, before)
}

#[test]
fn at_most_max_skips_iterations_skip_then_a_poll_with_events_is_followed_by_one() {
    let (lp, log, _a, _b, _) = busy_loop_with_a_pending_reader();
    let mut run = Run::default();
    for _ in 0..5 {
        assert_eq!(lp.run_once(&mut run, false, busy(5, HOUR)), Ok(1));
    }
    assert_eq!(taken(&log), vec![SPIN; 5]);
    // The sixth polls: the reader joins the batch after the handle ready.
    assert_eq!(lp.run_once(&mut run, false, busy(5, HOUR)), Ok(2));
    assert_eq!(taken(&log), vec![SPIN, READER]);
    // That poll found an event: so does every following iteration's.
    for _ in 0..5 {
        assert_eq!(lp.run_once(&mut run, false, busy(5, HOUR)), Ok(2));
    }
    assert_eq!(taken(&log), [SPIN, READER].repeat(5));
    assert_eq!(run.parks, 0);
}

#[test]
fn a_poll_with_events_lets_max_skips_after_events_iterations_skip() {
    let (lp, log, _a, _b, _) = busy_loop_with_a_pending_reader();
    let mut run = Run::default();
    let mut limits = busy(5, HOUR);
    if let Some(bp) = &mut limits.busy_poll {
        bp.max_skips_after_events = 1;
    }
    // Skips until max_skips, then the poll finds the reader's data.
    for _ in 0..5 {
        assert_eq!(lp.run_once(&mut run, false, limits), Ok(1));
    }
    assert_eq!(lp.run_once(&mut run, false, limits), Ok(2));
    assert_eq!(
        taken(&log),
        [[SPIN; 5].as_slice(), &[SPIN, READER]].concat()
    );
    // The data stays (level-triggered): from now on every other iteration
    // polls, and one skips after it.
    for _ in 0..3 {
        assert_eq!(lp.run_once(&mut run, false, limits), Ok(1));
        assert_eq!(lp.run_once(&mut run, false, limits), Ok(2));
    }
    assert_eq!(taken(&log), [SPIN, SPIN, READER].repeat(3));
    // Never more skips than max_skips.
    if let Some(bp) = &mut limits.busy_poll {
        bp.max_skips = 0;
        bp.max_skips_after_events = 3;
    }
    assert_eq!(lp.run_once(&mut run, false, limits), Ok(2));
    assert_eq!(taken(&log), vec![SPIN, READER]);
}

#[test]
fn without_busy_poll_every_iteration_polls() {
    let (lp, log, _a, _b, _) = busy_loop_with_a_pending_reader();
    let mut run = Run::default();
    assert_eq!(lp.run_once(&mut run, false, Limits::default()), Ok(2));
    assert_eq!(taken(&log), vec![SPIN, READER]);
    // No skip allowed: the same.
    let (lp, log, _a, _b, _) = busy_loop_with_a_pending_reader();
    assert_eq!(lp.run_once(&mut run, false, busy(0, HOUR)), Ok(2));
    assert_eq!(taken(&log), vec![SPIN, READER]);
}

#[test]
fn a_busy_loop_polls_once_the_interval_passed() {
    let (lp, log, _a, _b, polled) = busy_loop_with_a_pending_reader();
    let interval = Duration::from_millis(5);
    let limits = busy(u32::MAX, interval.as_nanos() as u64);
    let mut run = Run::default();
    let mut iterations = 0;
    while !log.lock().unwrap().contains(&READER) {
        assert!(polled.elapsed() < Duration::from_secs(10), "reader starved");
        lp.run_once(&mut run, false, limits).unwrap();
        iterations += 1;
    }
    // Not before the interval, and then at once.
    let seen = polled.elapsed();
    assert!(seen >= interval, "polled after {seen:?}");
    assert!(iterations > 1);
}

#[test]
fn a_slow_handle_after_fast_ones_ends_the_skipping() {
    // A chain whose first handle is fast and the others take 2 ms: the
    // interval (1 ms) passes during the first slow one, and the iteration
    // after it polls (the time is read in every skipping iteration).
    let lp = new_loop();
    let log = log();
    let (a, b) = UnixStream::pair().unwrap();
    lp.add_reader(a.as_raw_fd(), rec(&log, READER)).unwrap();
    fn chain(lp: Weak<EventLoop<Cb>>, log: Log, slow: bool) -> Cb {
        Cb::new(SPIN, move |id| {
            if slow {
                std::thread::sleep(Duration::from_millis(2));
            }
            log.lock().unwrap().push(id);
            if let Some(l) = lp.upgrade() {
                let _ = l.call_soon(chain(lp.clone(), log.clone(), true));
            }
        })
    }
    let fast = chain(Arc::downgrade(&lp), log.clone(), false);
    lp.call_soon(fast).unwrap();
    let mut run = Run::default();
    // Polls (finding nothing), then runs the fast handle.
    assert_eq!(lp.run_once(&mut run, false, Limits::default()), Ok(1));
    (&b).write_all(b"x").unwrap();
    let limits = busy(u32::MAX, MS);
    let mut iterations = 0;
    while !log.lock().unwrap().contains(&READER) {
        assert!(iterations < 1000, "reader starved");
        lp.run_once(&mut run, false, limits).unwrap();
        iterations += 1;
    }
    // At most one skip (before the first slow handle), then the poll.
    assert!(iterations <= 2, "{iterations} iterations");
}

#[test]
fn stopping_and_idle_iterations_always_poll() {
    let (lp, log, _a, _b, _) = busy_loop_with_a_pending_reader();
    let mut run = Run::default();
    // Stopping: the last iteration of a run sees the I/O ready by then.
    assert_eq!(lp.run_once(&mut run, true, busy(u32::MAX, HOUR)), Ok(2));
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
        ..busy(u32::MAX, HOUR)
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
    assert_eq!(lp.run_once(&mut run, false, busy(u32::MAX, HOUR)), Ok(3));
    assert_eq!(taken(&log), vec![SPIN, 3, 4]);
    assert_eq!(lp.metrics().io_events, 0);
}
