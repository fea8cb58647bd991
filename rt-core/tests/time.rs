//! Timers: `sleep`, `Sleep::reset`, `timeout`, `interval` and the time
//! driver, on both flavors.
//!
//! The invariant checked throughout: a timer never completes before its
//! deadline (deadlines are rounded up to the driver's 1 ms tick), and every
//! timer completes exactly once.
//!
//! The tests of this file run one at a time (`serial()`): most of them
//! check timing, and the big ones would otherwise load the (2-core) machine
//! under the small ones. Each body runs under a watchdog (`with_deadline`),
//! so a lost wakeup fails the test instead of hanging it.

mod support;

use rt_core::runtime::{Builder, Runtime};
use rt_core::time::{
    interval, interval_at, sleep, sleep_until, timeout, timeout_at, Elapsed, Instant,
    MissedTickBehavior, Sleep,
};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use support::{serial, with_deadline};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread(workers: usize) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// Both flavors, named.
fn flavors() -> Vec<(&'static str, Runtime)> {
    vec![
        ("current_thread", current_thread()),
        ("multi_thread", multi_thread(2)),
    ]
}

/// A waker that counts its wakes.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl CountingWaker {
    fn count(&self) -> usize {
        self.0.load(SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn poll_with<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// Polls `fut` once from inside a task.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------
// Many sleeps
// ---------------------------------------------------------------------------

/// Spawns `n` tasks, task `i` sleeping until `its start + (i % 1000) ms`,
/// plus one task per entry of `long` (a delay in ms, for timers that start
/// in the upper levels of the wheel and cascade down while the others
/// churn); checks each completes exactly once and never before its
/// deadline.
fn many_sleeps(name: &str, rt: Runtime, n: usize, long: &'static [u64]) {
    let start = std::time::Instant::now();
    let n = n + long.len();
    let fired: Arc<Vec<AtomicU8>> = Arc::new((0..n).map(|_| AtomicU8::new(0)).collect());
    let early = Arc::new(AtomicUsize::new(0));
    let max_late_us = Arc::new(AtomicU64::new(0));
    let handle = rt.handle().clone();
    {
        let (fired, early, max_late_us) = (fired.clone(), early.clone(), max_late_us.clone());
        rt.block_on(async move {
            let mut handles = Vec::with_capacity(n);
            for i in 0..n {
                let (fired, early, max_late_us) =
                    (fired.clone(), early.clone(), max_late_us.clone());
                handles.push(rt_core::spawn(async move {
                    // Taken at the first poll: every deadline is in the
                    // future when the timer registers (but 0 ms ones).
                    // The long ones first: they start right away.
                    let delay = if i < long.len() {
                        long[i]
                    } else {
                        ((i - long.len()) % 1000) as u64
                    };
                    let deadline = Instant::now() + ms(delay);
                    sleep_until(deadline).await;
                    let now = Instant::now();
                    if now < deadline {
                        early.fetch_add(1, SeqCst);
                    }
                    let late = now.duration_since(deadline).as_micros() as u64;
                    max_late_us.fetch_max(late, SeqCst);
                    fired[i].fetch_add(1, SeqCst);
                }));
            }
            for h in handles {
                h.await.unwrap();
            }
        });
    }
    let elapsed = start.elapsed();
    let counts: Vec<u8> = fired.iter().map(|c| c.load(SeqCst)).collect();
    let never = counts.iter().filter(|&&c| c == 0).count();
    let twice = counts.iter().filter(|&&c| c > 1).count();
    eprintln!(
        "{name}: {n} sleeps in {elapsed:?}, max lateness {} ms",
        max_late_us.load(SeqCst) / 1000
    );
    assert_eq!(
        early.load(SeqCst),
        0,
        "{name}: timers fired before their deadline"
    );
    assert_eq!(never, 0, "{name}: timers that never fired");
    assert_eq!(twice, 0, "{name}: timers that completed twice");
    assert_eq!(
        handle.metrics().num_timers(),
        0,
        "{name}: timers left in the wheel"
    );
    assert_eq!(handle.metrics().num_alive_tasks(), 0, "{name}");
    drop(rt);
}

/// Delays (ms) at and around the wheel's level boundaries (64 ms and
/// 4,096 ms from now) and past them.
const LONG: &[u64] = &[
    63, 64, 65, 127, 128, 4_000, 4_095, 4_096, 4_097, 4_160, 5_000,
];

/// 1,000,000 sleeps spread over 1 s on a multi-thread runtime, with a few
/// long ones. A debug build runs 500,000 (about 5 s on 2 cores): 1M takes
/// about 9 s there, which would put this file over its 20 s budget.
#[test]
fn million_sleeps_multi_thread() {
    let _s = serial();
    let n = if cfg!(debug_assertions) {
        500_000
    } else {
        1_000_000
    };
    with_deadline("million_sleeps_multi_thread", 90, move || {
        many_sleeps("multi_thread", multi_thread(4), n, LONG)
    });
}

/// 100,000 sleeps spread over 1 s on a current-thread runtime.
#[test]
fn hundred_thousand_sleeps_current_thread() {
    let _s = serial();
    with_deadline("hundred_thousand_sleeps_current_thread", 60, || {
        many_sleeps("current_thread", current_thread(), 100_000, &[])
    });
}

// ---------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------

/// 10,000 registered sleeps; half are dropped: the wheel forgets them at
/// once, their wakers are never woken, and the other half fire once each.
#[test]
fn dropped_sleeps_never_fire() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            const N: usize = 10_000;
            let base = Instant::now() + ms(250);
            let last = base + ms(((N - 1) % 200) as u64);
            let mut sleeps: Vec<Option<(Sleep, Arc<CountingWaker>)>> = {
                let _enter = rt.enter();
                (0..N)
                    .map(|i| {
                        let mut s = sleep_until(base + ms((i % 200) as u64));
                        let w = Arc::new(CountingWaker::default());
                        // Registers with the wheel.
                        assert!(poll_with(&mut s, &Waker::from(w.clone())).is_pending());
                        Some((s, w))
                    })
                    .collect()
            };
            assert_eq!(rt.metrics().num_timers(), N, "{name}: all registered");
            let mut dropped_wakers = Vec::new();
            for (i, slot) in sleeps.iter_mut().enumerate() {
                if i % 2 == 0 {
                    let (s, w) = slot.take().unwrap();
                    drop(s);
                    dropped_wakers.push(w);
                }
            }
            // Conclusive only if every drop came before the first deadline
            // (always, unless the machine stalled for 250 ms).
            let dropped_in_time = Instant::now() < base;
            assert_eq!(
                rt.metrics().num_timers(),
                N / 2,
                "{name}: dropping a Sleep removes it from the wheel"
            );
            // Drive the runtime well past the last deadline.
            rt.block_on(async { sleep_until(last + ms(100)).await });
            // Wait (bounded) for every kept one to be woken.
            let kept: Vec<(Sleep, Arc<CountingWaker>)> = sleeps.into_iter().flatten().collect();
            let give_up = std::time::Instant::now() + Duration::from_secs(5);
            while kept.iter().any(|(_, w)| w.count() == 0) && std::time::Instant::now() < give_up {
                rt.block_on(async { sleep(ms(10)).await });
            }
            let unwoken = kept.iter().filter(|(_, w)| w.count() == 0).count();
            let multi = kept.iter().filter(|(_, w)| w.count() > 1).count();
            assert_eq!(unwoken, 0, "{name}: kept sleeps never woken");
            assert_eq!(multi, 0, "{name}: kept sleeps woken more than once");
            let woken_dropped = dropped_wakers.iter().filter(|w| w.count() > 0).count();
            if dropped_in_time {
                assert_eq!(woken_dropped, 0, "{name}: dropped sleeps woke their task");
            } else {
                eprintln!("{name}: too slow to drop before the deadlines; not checked");
            }
            let noop = Waker::noop();
            for (mut s, _) in kept {
                assert!(s.is_elapsed(), "{name}");
                assert!(Instant::now() >= s.deadline(), "{name}");
                assert!(poll_with(&mut s, noop).is_ready(), "{name}");
            }
            assert_eq!(
                rt.metrics().num_timers(),
                0,
                "{name}: wheel empty at the end"
            );
        });
    }
}

/// A task awaiting a sleep that is aborted: the timer leaves the wheel and
/// the task's code after the sleep never runs.
#[test]
fn aborted_sleeping_tasks_cancel_their_timers() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            let ran_after = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..1000)
                .map(|_| {
                    let ran_after = ran_after.clone();
                    rt.spawn(async move {
                        sleep(ms(200)).await;
                        ran_after.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            // Let every task register its timer.
            rt.block_on(async {
                let give_up = Instant::now() + Duration::from_secs(5);
                while rt_core::runtime::Handle::current().metrics().num_timers() < 1000
                    && Instant::now() < give_up
                {
                    sleep(ms(1)).await;
                }
            });
            assert_eq!(rt.metrics().num_timers(), 1000, "{name}");
            for h in &handles {
                h.abort();
            }
            rt.block_on(async {
                for h in handles {
                    assert!(h.await.unwrap_err().is_cancelled());
                }
            });
            assert_eq!(rt.metrics().num_timers(), 0, "{name}: aborted timers left");
            rt.block_on(async { sleep(ms(300)).await });
            assert_eq!(ran_after.load(SeqCst), 0, "{name}");
        });
    }
}

// ---------------------------------------------------------------------------
// timeout
// ---------------------------------------------------------------------------

#[test]
fn timeout_of_fast_future_is_ok() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            rt.block_on(async {
                assert_eq!(timeout(ms(500), async { 7 }).await, Ok(7), "{name}");
                // A ready future wins over an already expired deadline.
                assert_eq!(timeout(Duration::ZERO, async { 6 }).await, Ok(6), "{name}");
                let start = Instant::now();
                let r = timeout(Duration::from_secs(5), async {
                    sleep(ms(20)).await;
                    8
                })
                .await;
                assert_eq!(r, Ok(8), "{name}");
                assert!(start.elapsed() < Duration::from_secs(4), "{name}");
                // The deadline's timer is gone once the timeout completed.
                assert_eq!(
                    rt_core::runtime::Handle::current().metrics().num_timers(),
                    0,
                    "{name}"
                );
                let r = timeout_at(Instant::now() + ms(500), async { 9 }).await;
                assert_eq!(r, Ok(9), "{name}");
            });
        });
    }
}

#[test]
fn timeout_of_slow_future_elapses_not_before_deadline() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            rt.block_on(async {
                for d in [1u64, 7, 50, 120] {
                    let start = Instant::now();
                    let r: Result<(), Elapsed> =
                        timeout(ms(d), sleep(Duration::from_secs(10))).await;
                    let now = Instant::now();
                    assert!(r.is_err(), "{name}");
                    assert!(now >= start + ms(d), "{name}: timeout({d} ms) early");
                    assert!(now < start + Duration::from_secs(5), "{name}: far too late");
                }
                let deadline = Instant::now() + ms(60);
                let r = timeout_at(deadline, std::future::pending::<()>()).await;
                assert!(r.is_err(), "{name}");
                assert!(Instant::now() >= deadline, "{name}: timeout_at early");
                let e = r.unwrap_err();
                assert_eq!(e.to_string(), "deadline has elapsed");
                let io: std::io::Error = e.into();
                assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
                // Both timers (the deadline and the inner sleep) are gone.
                assert_eq!(
                    rt_core::runtime::Handle::current().metrics().num_timers(),
                    0,
                    "{name}"
                );
            });
        });
    }
}

/// The inner future spends the whole cooperative budget at every poll (it
/// is always ready until the budget forces it to yield): the deadline
/// still fires.
#[test]
fn timeout_fires_around_budget_exhausting_future() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            let r = rt.block_on(rt.spawn(async {
                let start = Instant::now();
                let spins = Arc::new(AtomicU64::new(0));
                let s2 = spins.clone();
                let r = timeout(ms(100), async move {
                    loop {
                        rt_core::task::consume_budget().await;
                        s2.fetch_add(1, SeqCst);
                    }
                })
                .await;
                (r.is_err(), start.elapsed(), spins.load(SeqCst))
            }));
            let (elapsed_err, took, spins) = r.unwrap();
            assert!(elapsed_err, "{name}");
            assert!(took >= ms(100), "{name}: early");
            assert!(took < Duration::from_secs(5), "{name}: {took:?}");
            assert!(spins > 128, "{name}: the inner future did run ({spins})");
        });
    }
}

/// A future that always wakes itself and returns Pending (a busy task):
/// the scheduler keeps turning the driver, so the deadline fires.
#[test]
fn timeout_fires_around_self_waking_future() {
    struct Spin;
    impl Future for Spin {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            let took = rt
                .block_on(rt.spawn(async {
                    let start = Instant::now();
                    assert!(timeout(ms(50), Spin).await.is_err());
                    start.elapsed()
                }))
                .unwrap();
            assert!(took >= ms(50), "{name}: early");
            assert!(took < Duration::from_secs(5), "{name}: {took:?}");
        });
    }
}

// ---------------------------------------------------------------------------
// interval
// ---------------------------------------------------------------------------

#[test]
fn interval_first_tick_immediate_then_spaced_by_period() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            rt.block_on(async {
                let period = ms(100);
                let start = Instant::now();
                let mut iv = interval(period);
                assert_eq!(iv.period(), period);
                assert_eq!(iv.missed_tick_behavior(), MissedTickBehavior::Burst);
                let t0 = iv.tick().await;
                assert!(t0 >= start && t0 <= Instant::now(), "{name}");
                assert!(
                    start.elapsed() < period / 2,
                    "{name}: the first tick is immediate ({:?})",
                    start.elapsed()
                );
                for k in 1..=3u32 {
                    let scheduled = iv.tick().await;
                    let now = Instant::now();
                    assert_eq!(scheduled, t0 + period * k, "{name}: tick {k} schedule");
                    assert!(now >= scheduled, "{name}: tick {k} early");
                }
            });
        });
    }
}

#[test]
fn interval_at_future_start_waits() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            rt.block_on(async {
                let start = Instant::now() + ms(80);
                let mut iv = interval_at(start, ms(30));
                assert_eq!(iv.tick().await, start);
                assert!(Instant::now() >= start, "{name}: first tick early");
                assert_eq!(iv.tick().await, start + ms(30));
                assert!(Instant::now() >= start + ms(30), "{name}");
            });
        });
    }
}

#[test]
fn interval_reset_restarts_the_period() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            rt.block_on(async {
                let period = ms(60);
                let mut iv = interval(period);
                iv.tick().await;
                sleep(ms(30)).await;
                let reset_at = Instant::now();
                iv.reset();
                let t = iv.tick().await;
                assert!(t >= reset_at + period, "{name}: reset tick scheduled early");
                assert!(Instant::now() >= reset_at + period, "{name}");
            });
        });
    }
}

#[test]
#[should_panic(expected = "period")]
fn interval_zero_period_panics() {
    let rt = current_thread();
    let _e = rt.enter();
    let _ = interval(Duration::ZERO);
}

/// Ticks the interval once, stalls the thread for 3.5 periods, then returns
/// the next `n` ticks (scheduled instant, completion instant).
fn stalled_ticks(
    behavior: MissedTickBehavior,
    period: Duration,
    n: usize,
) -> (Instant, Instant, Vec<(Instant, Instant)>) {
    let rt = current_thread();
    rt.block_on(async move {
        let mut iv = interval(period);
        iv.set_missed_tick_behavior(behavior);
        assert_eq!(iv.missed_tick_behavior(), behavior);
        let t0 = iv.tick().await;
        // A deliberate stall of 3.5 periods (blocks the only thread).
        std::thread::sleep(period * 7 / 2);
        let stall_end = Instant::now();
        let mut ticks = Vec::new();
        for _ in 0..n {
            let s = iv.tick().await;
            ticks.push((s, Instant::now()));
        }
        (t0, stall_end, ticks)
    })
}

#[test]
fn interval_missed_ticks_burst() {
    let _s = serial();
    with_deadline("burst", 20, || {
        let p = ms(150);
        let (t0, stall_end, ticks) = stalled_ticks(MissedTickBehavior::Burst, p, 5);
        let scheduled: Vec<Instant> = ticks.iter().map(|t| t.0).collect();
        // Every tick of the grid, the missed ones back to back.
        assert_eq!(
            scheduled,
            (1..=5u32).map(|k| t0 + p * k).collect::<Vec<_>>(),
            "burst keeps the original schedule"
        );
        for (k, (s, actual)) in ticks.iter().enumerate() {
            assert!(actual >= s, "burst tick {} early", k + 1);
        }
        // The 3 missed ticks come at once, before the 4th is even due.
        assert!(
            ticks[2].1 < t0 + p * 4,
            "missed ticks were not fired back to back: 3rd came {:?} after the stall",
            ticks[2].1.duration_since(stall_end)
        );
    });
}

#[test]
fn interval_missed_ticks_delay() {
    let _s = serial();
    with_deadline("delay", 20, || {
        let p = ms(150);
        let (t0, stall_end, ticks) = stalled_ticks(MissedTickBehavior::Delay, p, 3);
        // The late tick fires at once, then the period restarts from it.
        assert_eq!(ticks[0].0, t0 + p, "the late tick reports its schedule");
        assert!(ticks[0].1 >= t0 + p);
        let second = ticks[1].0;
        assert!(
            second >= stall_end + p,
            "delay: next tick {:?} after the stall, expected >= one period",
            second.duration_since(stall_end)
        );
        assert!(
            second <= ticks[0].1 + p,
            "delay: the next tick is one period after the late tick was taken"
        );
        assert!(ticks[1].1 >= second, "delay tick early");
        assert_eq!(ticks[2].0, second + p, "then on a period again");
        assert!(ticks[2].1 >= ticks[2].0, "delay tick early");
    });
}

#[test]
fn interval_missed_ticks_skip() {
    let _s = serial();
    with_deadline("skip", 20, || {
        let p = ms(150);
        let (t0, _stall_end, ticks) = stalled_ticks(MissedTickBehavior::Skip, p, 3);
        // The late tick fires at once; the missed ones are dropped and the
        // grid goes on at the next multiple of the period (t0 + 4p).
        assert_eq!(ticks[0].0, t0 + p, "the late tick reports its schedule");
        assert_eq!(ticks[1].0, t0 + p * 4, "skip: next tick on the grid");
        assert_eq!(ticks[2].0, t0 + p * 5);
        for (k, (s, actual)) in ticks.iter().enumerate() {
            assert!(actual >= s, "skip tick {} early", k + 1);
        }
    });
}

// ---------------------------------------------------------------------------
// Sleep
// ---------------------------------------------------------------------------

#[test]
fn sleep_reset_earlier() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            rt.block_on(async {
                let start = Instant::now();
                let mut s = sleep(Duration::from_secs(30));
                assert!(poll_once(&mut s).await.is_pending());
                let m = rt_core::runtime::Handle::current().metrics();
                assert_eq!(m.num_timers(), 1, "{name}");
                let new_deadline = Instant::now() + ms(50);
                s.reset(new_deadline);
                assert_eq!(s.deadline(), new_deadline);
                assert_eq!(m.num_timers(), 0, "{name}: the old timer is cancelled");
                (&mut s).await;
                assert!(Instant::now() >= new_deadline, "{name}: early");
                assert!(start.elapsed() < Duration::from_secs(10), "{name}");
                assert!(s.is_elapsed());
                assert_eq!(m.num_timers(), 0, "{name}");
            });
        });
    }
}

#[test]
fn sleep_reset_later() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            rt.block_on(async {
                let mut s = sleep(ms(30));
                assert!(poll_once(&mut s).await.is_pending());
                let new_deadline = Instant::now() + ms(250);
                s.reset(new_deadline);
                // Past the original deadline: still pending.
                sleep(ms(80)).await;
                assert!(
                    poll_once(&mut s).await.is_pending(),
                    "{name}: old deadline fired"
                );
                assert!(!s.is_elapsed(), "{name}");
                (&mut s).await;
                assert!(Instant::now() >= new_deadline, "{name}: early");
                // Re-arming a fired sleep works too.
                let again = Instant::now() + ms(40);
                s.reset(again);
                assert!(!s.is_elapsed(), "{name}");
                (&mut s).await;
                assert!(Instant::now() >= again, "{name}: re-armed sleep early");
            });
        });
    }
}

/// Reset many times in a row while registered: only the last deadline
/// counts and the wheel holds a single entry.
#[test]
fn sleep_reset_repeatedly() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            rt.block_on(async {
                let m = rt_core::runtime::Handle::current().metrics();
                let mut s = sleep(ms(5));
                for i in 0..1000u64 {
                    s.reset(Instant::now() + ms(20 + i % 7));
                    assert!(poll_once(&mut s).await.is_pending(), "{name}");
                }
                assert_eq!(m.num_timers(), 1, "{name}: one entry per Sleep");
                let d = s.deadline();
                (&mut s).await;
                assert!(Instant::now() >= d, "{name}");
                assert_eq!(m.num_timers(), 0, "{name}");
            });
        });
    }
}

#[test]
fn sleep_zero_and_past_deadlines_complete() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..100 {
                    sleep(Duration::ZERO).await;
                }
                sleep_until(start).await;
                sleep_until(start - ms(10)).await;
                let mut s = sleep(Duration::ZERO);
                (&mut s).await;
                assert!(s.is_elapsed());
                assert!(start.elapsed() < Duration::from_secs(5), "{name}");
                assert_eq!(
                    rt_core::runtime::Handle::current().metrics().num_timers(),
                    0,
                    "{name}"
                );
            });
        });
    }
}

/// Sub-millisecond sleeps round up: never early.
#[test]
fn short_sleeps_never_early() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            rt.block_on(async {
                for us in [1u64, 100, 500, 999, 1000, 1001, 1500, 2999] {
                    let d = Duration::from_micros(us);
                    let start = Instant::now();
                    sleep(d).await;
                    assert!(start.elapsed() >= d, "{name}: sleep({d:?}) early");
                }
            });
        });
    }
}

#[test]
fn far_future_sleep_does_not_fire_and_cancels_cleanly() {
    let _s = serial();
    for (name, rt) in flavors() {
        with_deadline(name, 20, move || {
            rt.block_on(async {
                let m = rt_core::runtime::Handle::current().metrics();
                let ten_years = Duration::from_secs(10 * 365 * 86_400);
                let start = Instant::now();
                let mut s = sleep(ten_years);
                assert!(s.deadline() >= start + ten_years);
                assert!(s.deadline() <= Instant::now() + ten_years);
                assert!(timeout(ms(100), &mut s).await.is_err(), "{name}: fired");
                assert!(!s.is_elapsed(), "{name}");
                assert_eq!(m.num_timers(), 1, "{name}");
                drop(s);
                assert_eq!(m.num_timers(), 0, "{name}: cancelled");
                // Duration::MAX saturates instead of overflowing.
                let mut s = sleep(Duration::MAX);
                assert!(timeout(ms(50), &mut s).await.is_err(), "{name}");
                drop(s);
                // In a task, then aborted.
                let h = rt_core::spawn(sleep(ten_years));
                sleep(ms(20)).await;
                assert_eq!(m.num_timers(), 1, "{name}");
                h.abort();
                assert!(h.await.unwrap_err().is_cancelled());
                assert_eq!(m.num_timers(), 0, "{name}");
            });
        });
    }
}

/// A sleep created on one thread and awaited by a task on another
/// (multi-thread): the registration wakes the parked driver.
#[test]
fn sleep_registered_from_outside_thread_wakes_driver() {
    let _s = serial();
    with_deadline("outside", 20, || {
        let rt = multi_thread(2);
        // Let the workers go idle (one parks in the driver with no timer).
        std::thread::sleep(ms(50));
        for _ in 0..20 {
            let start = Instant::now();
            let took = rt.block_on(async move {
                sleep(ms(10)).await;
                start.elapsed()
            });
            assert!(took >= ms(10));
            assert!(took < Duration::from_secs(2), "{took:?}");
            std::thread::sleep(ms(5));
        }
    });
}

// ---------------------------------------------------------------------------
// Without the time driver
// ---------------------------------------------------------------------------

#[test]
fn time_without_enable_time_panics_with_hint() {
    let _s = serial();
    let builders: Vec<(&str, Runtime)> = vec![
        (
            "current_thread",
            Builder::new_current_thread().enable_io().build().unwrap(),
        ),
        (
            "multi_thread",
            Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap(),
        ),
    ];
    for (name, rt) in builders {
        assert_eq!(rt.metrics().num_timers(), 0);
        type Call = Box<dyn Fn()>;
        let calls: Vec<(&str, Call)> = vec![
            ("sleep", Box::new(|| drop(sleep(ms(1))))),
            (
                "sleep_until",
                Box::new(|| drop(sleep_until(Instant::now()))),
            ),
            ("timeout", Box::new(|| drop(timeout(ms(1), async {})))),
            ("interval", Box::new(|| drop(interval(ms(1))))),
        ];
        for (what, call) in calls {
            let r = catch_unwind(AssertUnwindSafe(|| rt.block_on(async { call() })));
            let msg = panic_message(&*r.expect_err("no panic without enable_time"));
            assert!(
                msg.contains("enable_time"),
                "{name}/{what}: message should name enable_time: {msg:?}"
            );
        }
        // In a spawned task: the task panics, the runtime survives.
        let err = rt
            .block_on(rt.spawn(async { sleep(ms(1)).await }))
            .unwrap_err();
        assert!(err.is_panic(), "{name}");
        assert!(
            panic_message(&*err.into_panic()).contains("enable_time"),
            "{name}"
        );
        assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5, "{name}");
    }
    // Outside any runtime.
    let r = catch_unwind(|| drop(sleep(ms(1))));
    let msg = panic_message(&*r.unwrap_err());
    assert!(msg.contains("runtime"), "outside a runtime: {msg:?}");
}
