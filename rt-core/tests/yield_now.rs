//! `yield_now` (and an exhausted coop budget) lets the drivers in: a task
//! yielding in a loop while a timer is due or a datagram is pending lets
//! the task waiting for it run after at most one yield round, on both
//! schedulers and in every host-run mode.

mod support;

use rt_core::runtime::{Builder, RunMode, Runtime};
use rt_core::task::yield_now;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// What the waiting task waits for.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// A 1 ms sleep (due by the time the yielder starts yielding).
    Timer,
    /// A UDP datagram (sent before the yielder starts yielding).
    Datagram,
}

/// Yields counted before giving up (a yielder that never lets the driver
/// in would stop here; the test then fails on the count).
const MAX_YIELDS: usize = 1_000;

/// The task under test: spawns a task waiting for `event`, makes the event
/// happen (a due timer, a datagram in the socket's buffer), then yields
/// until the waiter ran. Returns how many yields that took.
async fn yields_until_the_waiter_runs(event: Event) -> usize {
    let polled = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let (p, d) = (polled.clone(), done.clone());
    let mut sender = None;
    match event {
        Event::Timer => {
            rt_core::spawn(async move {
                p.store(true, SeqCst);
                rt_core::time::sleep(Duration::from_millis(1)).await;
                d.store(true, SeqCst);
            });
        }
        Event::Datagram => {
            let recv = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let send = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            send.connect(recv.local_addr().unwrap()).unwrap();
            sender = Some(send);
            let sock = rt_core::net::UdpSocket::from_std(recv).unwrap();
            rt_core::spawn(async move {
                p.store(true, SeqCst);
                let mut buf = [0u8; 8];
                sock.recv(&mut buf).await.unwrap();
                d.store(true, SeqCst);
            });
        }
    }
    // Let the waiter run up to its wait (one thread runs both).
    while !polled.load(SeqCst) {
        yield_now().await;
    }
    match event {
        // Blocks the thread past the deadline: the timer is due.
        Event::Timer => std::thread::sleep(Duration::from_millis(20)),
        Event::Datagram => {
            sender.as_ref().unwrap().send(b"ping").unwrap();
        }
    }
    let mut yields = 0;
    while !done.load(SeqCst) && yields < MAX_YIELDS {
        yield_now().await;
        yields += 1;
    }
    yields
}

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

/// Spawns the scenario and drives the runtime with `drive` until it ends.
fn hosted(event: Event, drive: impl Fn(&Runtime)) -> usize {
    let rt = current_thread();
    let yields = Arc::new(AtomicUsize::new(usize::MAX));
    let y = yields.clone();
    rt.spawn(async move { y.store(yields_until_the_waiter_runs(event).await, SeqCst) });
    for _ in 0..100_000 {
        if yields.load(SeqCst) != usize::MAX {
            break;
        }
        drive(&rt);
    }
    yields.load(SeqCst)
}

/// How a host drives its current-thread runtime.
type HostDrive = fn(&Runtime);

/// (scheduler or mode, event) -> yields it took.
fn every_case(event: Event) -> Vec<(&'static str, usize)> {
    let mut out = Vec::new();
    let rt = current_thread();
    out.push((
        "current_thread block_on",
        rt.block_on(async move {
            rt_core::spawn(yields_until_the_waiter_runs(event))
                .await
                .unwrap()
        }),
    ));
    // One worker: the yielder's own worker must poll the driver.
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    out.push((
        "multi_thread",
        rt.block_on(rt.spawn(yields_until_the_waiter_runs(event)))
            .unwrap(),
    ));
    let host_modes: [(&'static str, HostDrive); 4] = [
        ("run(Default)", |rt| {
            rt.run(RunMode::Default);
        }),
        ("run_for", |rt| {
            rt.run_for(Duration::from_secs(5), usize::MAX);
        }),
        ("run(Once)", |rt| {
            rt.run(RunMode::Once);
        }),
        ("run(NoWait)", |rt| {
            rt.run(RunMode::NoWait);
        }),
    ];
    for (name, drive) in host_modes {
        out.push((name, hosted(event, drive)));
    }
    out
}

fn check(event: Event) {
    let cases = every_case(event);
    for (name, yields) in &cases {
        assert!(
            *yields <= 2,
            "{event:?}, {name}: the waiter ran after {yields} yields (cases: {cases:?})"
        );
    }
}

#[test]
fn a_yield_lets_a_due_timer_in() {
    support::with_deadline("timer", 60, || check(Event::Timer));
}

#[test]
fn a_yield_lets_a_pending_datagram_in() {
    support::with_deadline("datagram", 60, || check(Event::Datagram));
}

/// A yielded task is woken even if nothing else ever happens: a runtime
/// with only yielding tasks never blocks in its driver.
#[test]
fn yielding_tasks_alone_keep_running() {
    support::with_deadline("yield only", 60, || {
        for (name, rt) in support::flavors_with_drivers(2) {
            let n = rt.block_on(async {
                let hs: Vec<_> = (0..4)
                    .map(|_| {
                        rt_core::spawn(async {
                            for _ in 0..1_000 {
                                yield_now().await;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
                // The `block_on` future itself yields too.
                for _ in 0..100 {
                    yield_now().await;
                }
                4
            });
            assert_eq!(n, 4, "{name}");
        }
        // Host-run: a run_for budget is spent on a yielder, not cut short.
        let rt = current_thread();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        rt.spawn(async move {
            loop {
                c.fetch_add(1, SeqCst);
                yield_now().await;
            }
        });
        assert_eq!(rt.run_for(Duration::from_secs(5), 100), 100);
        assert_eq!(count.load(SeqCst), 100);
    });
}

/// A task that runs out of its cooperative budget is set aside like a
/// yield (as in Tokio): a due timer's task runs after at most a couple of
/// budget rounds (128 units each), not after `event_interval` of them.
#[test]
fn an_exhausted_budget_lets_a_due_timer_in() {
    support::with_deadline("budget", 60, || {
        for (name, rt) in [
            ("current_thread", current_thread()),
            (
                "multi_thread",
                Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .unwrap(),
            ),
        ] {
            let spent = rt.block_on(async {
                rt_core::spawn(async {
                    let polled = Arc::new(AtomicBool::new(false));
                    let done = Arc::new(AtomicBool::new(false));
                    let (p, d) = (polled.clone(), done.clone());
                    rt_core::spawn(async move {
                        p.store(true, SeqCst);
                        rt_core::time::sleep(Duration::from_millis(1)).await;
                        d.store(true, SeqCst);
                    });
                    while !polled.load(SeqCst) {
                        yield_now().await;
                    }
                    // The timer is due once this returns.
                    std::thread::sleep(Duration::from_millis(20));
                    let mut units = 0;
                    while !done.load(SeqCst) && units < 100_000 {
                        rt_core::task::consume_budget().await;
                        units += 1;
                    }
                    units
                })
                .await
                .unwrap()
            });
            assert!(
                spent <= 3 * 128,
                "{name}: the timer's task ran after {spent} budget units"
            );
        }
    });
}
