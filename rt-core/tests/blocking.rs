//! The blocking pool: `spawn_blocking`, `block_in_place`, the thread cap,
//! the keep-alive, and aborting queued closures.
//!
//! Tests that read the pool's thread counts or check timing run one at a
//! time (`serial()`). Each body runs under a watchdog (`with_deadline`), so
//! a closure that never runs fails the test instead of hanging it.

mod support;

use rt_core::runtime::{Builder, Handle, Runtime};
use rt_core::task::{block_in_place, spawn_blocking, yield_now};
use rt_core::time::sleep;
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use support::{one_worker_one_blocking_thread, serial, wait_until, with_deadline};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------
// spawn_blocking
// ---------------------------------------------------------------------------

/// A closure sleeping 500 ms in the pool does not hold up the async tasks.
#[test]
fn sleeping_blocking_closure_does_not_stall_tasks() {
    let _s = serial();
    let flavors: Vec<(&str, Runtime)> = vec![
        (
            "current_thread",
            Builder::new_current_thread().enable_all().build().unwrap(),
        ),
        (
            "multi_thread",
            Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        ),
        (
            "multi_thread_1_worker",
            Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
        ),
    ];
    for (name, rt) in flavors {
        with_deadline(name, 20, move || {
            rt.block_on(async {
                let start = Instant::now();
                let blocking = spawn_blocking(move || {
                    std::thread::sleep(ms(500));
                    Instant::now()
                });
                // Tasks spawned after it, with timers, yields and joins.
                let tasks: Vec<_> = (0..100u64)
                    .map(|i| {
                        rt_core::spawn(async move {
                            for _ in 0..10 {
                                yield_now().await;
                            }
                            sleep(ms(i % 10)).await;
                            Instant::now()
                        })
                    })
                    .collect();
                let mut last = start;
                for t in tasks {
                    last = last.max(t.await.unwrap());
                }
                assert!(
                    !blocking.is_finished(),
                    "{name}: tasks waited for the blocking closure ({:?})",
                    last.duration_since(start)
                );
                let blocking_done = blocking.await.unwrap();
                assert!(last < blocking_done, "{name}");
                assert!(blocking_done.duration_since(start) >= ms(500), "{name}");
            });
        });
    }
}

#[test]
fn spawn_blocking_results_and_panics() {
    for (name, rt) in [
        (
            "current_thread",
            Builder::new_current_thread().build().unwrap(),
        ),
        (
            "multi_thread",
            Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap(),
        ),
    ] {
        with_deadline(name, 20, move || {
            rt.block_on(async {
                assert_eq!(spawn_blocking(|| 6 * 7).await.unwrap(), 42, "{name}");
                let s = spawn_blocking(|| String::from("owned")).await.unwrap();
                assert_eq!(s, "owned");
                let err = spawn_blocking(|| -> u32 { panic!("blocking boom") })
                    .await
                    .unwrap_err();
                assert!(err.is_panic(), "{name}: {err:?}");
                assert!(!err.is_cancelled(), "{name}");
                assert_eq!(panic_message(&*err.into_panic()), "blocking boom");
                // The pool survives a panicking closure.
                assert_eq!(spawn_blocking(|| 1).await.unwrap(), 1, "{name}");
                // A closure may enter the runtime through a handle.
                let h = Handle::current();
                let v = spawn_blocking(move || h.block_on(async { 5 }))
                    .await
                    .unwrap();
                assert_eq!(v, 5, "{name}");
            });
            // Through a Handle, from outside the runtime.
            let h = rt.handle().clone();
            let j = std::thread::spawn(move || h.spawn_blocking(|| 9))
                .join()
                .unwrap();
            assert_eq!(rt.block_on(j).unwrap(), 9, "{name}");
        });
    }
    let r = catch_unwind(|| drop(spawn_blocking(|| ())));
    assert!(r.is_err(), "spawn_blocking outside a runtime panics");
}

/// 1,000 closures with max_blocking_threads(4): all complete, never more
/// than 4 at a time, never more than workers + 4 pool threads.
#[test]
fn thousand_closures_capped_at_four_threads() {
    let _s = serial();
    for (name, workers) in [("multi_thread", 2usize), ("current_thread", 0)] {
        with_deadline(name, 30, move || {
            let rt = if workers == 0 {
                Builder::new_current_thread()
                    .max_blocking_threads(4)
                    .build()
                    .unwrap()
            } else {
                Builder::new_multi_thread()
                    .worker_threads(workers)
                    .max_blocking_threads(4)
                    .build()
                    .unwrap()
            };
            let metrics = rt.metrics();
            let stop = Arc::new(AtomicBool::new(false));
            let sampler = {
                let (stop, metrics) = (stop.clone(), metrics.clone());
                std::thread::spawn(move || {
                    let mut max_threads = 0;
                    let mut max_queue = 0;
                    while !stop.load(SeqCst) {
                        max_threads = max_threads.max(metrics.num_blocking_threads());
                        max_queue = max_queue.max(metrics.blocking_queue_depth());
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    (max_threads, max_queue)
                })
            };
            let active = Arc::new(AtomicUsize::new(0));
            let max_active = Arc::new(AtomicUsize::new(0));
            let thread_ids = Arc::new(Mutex::new(HashSet::new()));
            let sum = rt.block_on(async {
                let handles: Vec<_> = (0..1000u64)
                    .map(|i| {
                        let (active, max_active, ids) =
                            (active.clone(), max_active.clone(), thread_ids.clone());
                        spawn_blocking(move || {
                            let now = active.fetch_add(1, SeqCst) + 1;
                            max_active.fetch_max(now, SeqCst);
                            ids.lock().unwrap().insert(std::thread::current().id());
                            std::thread::sleep(Duration::from_micros(500));
                            active.fetch_sub(1, SeqCst);
                            i
                        })
                    })
                    .collect();
                let mut sum = 0;
                for h in handles {
                    sum += h.await.unwrap();
                }
                sum
            });
            stop.store(true, SeqCst);
            let (max_threads, max_queue) = sampler.join().unwrap();
            assert_eq!(sum, 999 * 1000 / 2, "{name}: every result came back");
            let max_active = max_active.load(SeqCst);
            let distinct = thread_ids.lock().unwrap().len();
            eprintln!(
                "{name}: max active {max_active}, distinct threads {distinct}, \
                 max pool threads {max_threads}, max queue {max_queue}"
            );
            assert!(max_active <= 4, "{name}: {max_active} closures at once");
            assert!(distinct <= 4, "{name}: closures ran on {distinct} threads");
            assert!(
                max_threads <= workers + 4,
                "{name}: {max_threads} pool threads (workers {workers})"
            );
            assert!(max_queue > 0, "{name}: closures should have queued");
            assert_eq!(metrics.blocking_queue_depth(), 0, "{name}");
        });
    }
}

/// Idle pool threads exit after thread_keep_alive; new work still runs.
#[test]
fn idle_blocking_threads_exit_after_keep_alive() {
    let _s = serial();
    for (name, workers) in [("multi_thread", 2usize), ("current_thread", 0)] {
        with_deadline(name, 20, move || {
            let rt = if workers == 0 {
                Builder::new_current_thread()
                    .thread_keep_alive(ms(100))
                    .build()
                    .unwrap()
            } else {
                Builder::new_multi_thread()
                    .worker_threads(workers)
                    .thread_keep_alive(ms(100))
                    .build()
                    .unwrap()
            };
            let m = rt.metrics();
            assert!(
                wait_until(Duration::from_secs(2), || m.num_blocking_threads()
                    == workers),
                "{name}: workers only at start ({})",
                m.num_blocking_threads()
            );
            let barrier = Arc::new(Barrier::new(5));
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let b = barrier.clone();
                    rt.handle().spawn_blocking(move || {
                        b.wait();
                        std::thread::sleep(ms(20));
                    })
                })
                .collect();
            barrier.wait();
            assert_eq!(
                m.num_blocking_threads(),
                workers + 4,
                "{name}: 4 closures at once"
            );
            rt.block_on(async {
                for h in handles {
                    h.await.unwrap();
                }
            });
            let done = Instant::now();
            assert!(
                wait_until(Duration::from_secs(2), || m.num_blocking_threads()
                    == workers),
                "{name}: idle threads still alive {:?} after the work: {} threads, {} idle",
                done.elapsed(),
                m.num_blocking_threads(),
                m.num_idle_blocking_threads()
            );
            eprintln!(
                "{name}: idle threads gone {:?} after the work",
                done.elapsed()
            );
            assert_eq!(m.num_idle_blocking_threads(), 0, "{name}");
            // The pool grows again on demand.
            let v = rt.block_on(async { spawn_blocking(|| 3).await.unwrap() });
            assert_eq!(v, 3, "{name}");
        });
    }
}

/// The default keep-alive (10 s) keeps idle threads around: the control for
/// the test above.
#[test]
fn idle_blocking_threads_stay_with_long_keep_alive() {
    let _s = serial();
    with_deadline("long_keep_alive", 20, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let m = rt.metrics();
        rt.block_on(async {
            let hs: Vec<_> = (0..3)
                .map(|_| spawn_blocking(|| std::thread::sleep(ms(30))))
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        });
        std::thread::sleep(ms(300));
        assert!(
            m.num_blocking_threads() >= 3,
            "{}",
            m.num_blocking_threads()
        );
        assert!(m.num_idle_blocking_threads() >= 1);
    });
}

// ---------------------------------------------------------------------------
// Aborting queued closures
// ---------------------------------------------------------------------------

/// With the only blocking thread busy, a queued closure that is aborted
/// never runs and its handle reports cancellation; one queued after it
/// still runs.
#[test]
fn abort_queued_spawn_blocking() {
    let _s = serial();
    for (name, rt) in [
        (
            "current_thread",
            Builder::new_current_thread()
                .max_blocking_threads(1)
                .build()
                .unwrap(),
        ),
        (
            "multi_thread",
            Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(1)
                .build()
                .unwrap(),
        ),
    ] {
        with_deadline(name, 20, move || {
            let m = rt.metrics();
            let (release_tx, release_rx) = mpsc::channel::<()>();
            let (started_tx, started_rx) = mpsc::channel::<()>();
            let busy = rt.handle().spawn_blocking(move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                "busy done"
            });
            started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
            let ran = Arc::new(AtomicBool::new(false));
            let drops = Arc::new(AtomicUsize::new(0));
            let aborted = {
                let (ran, guard) = (ran.clone(), DropCounter(drops.clone()));
                rt.handle().spawn_blocking(move || {
                    let _g = guard;
                    ran.store(true, SeqCst);
                })
            };
            let later = rt.handle().spawn_blocking(|| 11);
            assert_eq!(m.blocking_queue_depth(), 2, "{name}: both queued");
            aborted.abort();
            release_tx.send(()).unwrap();
            rt.block_on(async {
                assert_eq!(busy.await.unwrap(), "busy done");
                let err = aborted.await.unwrap_err();
                assert!(err.is_cancelled(), "{name}: {err:?}");
                assert_eq!(later.await.unwrap(), 11, "{name}");
            });
            assert!(!ran.load(SeqCst), "{name}: the aborted closure ran");
            assert_eq!(drops.load(SeqCst), 1, "{name}: closure dropped once");
        });
    }
}

/// Abort through an AbortHandle after the JoinHandle was dropped: the
/// closure still never runs.
#[test]
fn abort_queued_spawn_blocking_detached() {
    let _s = serial();
    with_deadline("detached", 20, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let busy = rt.handle().spawn_blocking(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        });
        started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let drops = Arc::new(AtomicUsize::new(0));
        let abort = {
            let (ran, guard) = (ran.clone(), DropCounter(drops.clone()));
            let h = rt.handle().spawn_blocking(move || {
                let _g = guard;
                ran.store(true, SeqCst);
            });
            h.abort_handle()
        };
        abort.abort();
        release_tx.send(()).unwrap();
        rt.block_on(busy).unwrap();
        assert!(wait_until(Duration::from_secs(5), || abort.is_finished()));
        assert!(wait_until(Duration::from_secs(5), || drops.load(SeqCst) == 1));
        assert!(!ran.load(SeqCst), "the aborted closure ran");
    });
}

// ---------------------------------------------------------------------------
// block_in_place
// ---------------------------------------------------------------------------

/// worker_threads(1): while a task sleeps 300 ms inside block_in_place, the
/// tasks queued on that worker before it (and spawned from outside during
/// it) run to completion.
#[test]
fn block_in_place_lets_other_tasks_run() {
    let _s = serial();
    with_deadline("block_in_place", 20, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (queued_done, returned_at) = rt.block_on(async {
            let h = rt_core::spawn(async {
                // Queued on this (only) worker, behind the current task.
                let queued: Vec<_> = (0..20)
                    .map(|_| {
                        rt_core::spawn(async {
                            yield_now().await;
                            sleep(ms(5)).await;
                            Instant::now()
                        })
                    })
                    .collect();
                let returned_at = block_in_place(|| {
                    std::thread::sleep(ms(300));
                    Instant::now()
                });
                (queued, returned_at)
            });
            let (queued, returned_at) = h.await.unwrap();
            let mut done = Vec::new();
            for q in queued {
                done.push(q.await.unwrap());
            }
            (done, returned_at)
        });
        for (i, d) in queued_done.iter().enumerate() {
            assert!(
                *d < returned_at,
                "task {i} only ran after block_in_place returned"
            );
        }
    });
}

/// block_in_place many times in a row, with other tasks, on 1 and 2
/// workers: the runtime keeps working and every task completes.
#[test]
fn block_in_place_repeatedly() {
    let _s = serial();
    for workers in [1usize, 2] {
        with_deadline("block_in_place_repeatedly", 30, move || {
            let rt = Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
                .unwrap();
            let counter = Arc::new(AtomicUsize::new(0));
            rt.block_on(async {
                let mut hs = Vec::new();
                for i in 0..50u64 {
                    let c = counter.clone();
                    hs.push(rt_core::spawn(async move {
                        for _ in 0..3 {
                            let v = block_in_place(|| {
                                std::thread::sleep(Duration::from_micros(200 * (i % 5)));
                                // Nested: just runs.
                                block_in_place(|| i)
                            });
                            assert_eq!(v, i);
                            yield_now().await;
                        }
                        c.fetch_add(1, SeqCst);
                    }));
                    let c = counter.clone();
                    hs.push(rt_core::spawn(async move {
                        sleep(ms(1)).await;
                        c.fetch_add(1, SeqCst);
                    }));
                }
                for h in hs {
                    h.await.unwrap();
                }
            });
            assert_eq!(counter.load(SeqCst), 100, "workers {workers}");
            // Still healthy afterwards.
            let v = rt.block_on(rt.spawn(async { 1 + 1 })).unwrap();
            assert_eq!(v, 2);
        });
    }
}

#[test]
fn block_in_place_on_current_thread_panics() {
    let rt = Builder::new_current_thread().build().unwrap();
    // From the block_on future.
    let msg = rt.block_on(async {
        let r = catch_unwind(AssertUnwindSafe(|| block_in_place(|| 1)));
        panic_message(&*r.expect_err("block_in_place must panic on current_thread"))
    });
    assert!(
        msg.contains("multi-thread") && msg.contains("spawn_blocking"),
        "unclear message: {msg:?}"
    );
    // From a spawned task.
    let err = rt
        .block_on(rt.spawn(async { block_in_place(|| 1) }))
        .unwrap_err();
    assert!(err.is_panic());
    assert!(panic_message(&*err.into_panic()).contains("multi-thread"));
    // The runtime still works.
    assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
}

#[test]
fn block_in_place_outside_runtime_or_on_block_on_thread_just_runs() {
    assert_eq!(block_in_place(|| 5), 5);
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let v = rt.block_on(async { block_in_place(|| 6) });
    assert_eq!(v, 6);
    // Inside it a nested block_on is allowed (the thread left the runtime).
    let v =
        rt.block_on(rt.spawn(async { block_in_place(|| Handle::current().block_on(async { 7 })) }));
    assert_eq!(v.unwrap(), 7);
}

// ---------------------------------------------------------------------------
// Interaction of block_in_place with the blocking-thread cap
// ---------------------------------------------------------------------------

/// block_in_place hands the worker's core to a pool thread. The cap of
/// `max_blocking_threads` must still bound the spawn_blocking closures
/// running at once, whichever threads took the worker role.
#[test]
fn cap_holds_after_block_in_place_handoffs() {
    let _s = serial();
    with_deadline("cap_after_handoffs", 30, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            // Several handoffs: each leaves a former worker thread idle.
            for _ in 0..6 {
                rt_core::spawn(async {
                    block_in_place(|| std::thread::sleep(ms(20)));
                })
                .await
                .unwrap();
            }
        });
        let active = Arc::new(AtomicUsize::new(0));
        let max_active = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            let hs: Vec<_> = (0..40)
                .map(|_| {
                    let (a, m) = (active.clone(), max_active.clone());
                    spawn_blocking(move || {
                        let now = a.fetch_add(1, SeqCst) + 1;
                        m.fetch_max(now, SeqCst);
                        std::thread::sleep(ms(5));
                        a.fetch_sub(1, SeqCst);
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        });
        let max_active = max_active.load(SeqCst);
        assert!(
            max_active <= 2,
            "max_blocking_threads(2) but {max_active} closures ran at once after \
             block_in_place handoffs"
        );
    });
}

/// A blocking thread that took a worker's core in a block_in_place handoff
/// still counts against the cap: once the former worker thread has exited
/// (keep-alive), spawn_blocking must still get a thread.
#[test]
fn spawn_blocking_after_handoff_to_former_blocking_thread() {
    let _s = serial();
    with_deadline("handoff_to_blocking_thread", 20, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .thread_keep_alive(ms(250))
            .build()
            .unwrap();
        let m = rt.metrics();
        // 0. The worker is running (so it took its thread before the
        //    blocking thread below exists: a thread spawned for blocking
        //    work may otherwise pick the worker's body from the shared
        //    queue).
        rt.block_on(async { rt_core::spawn(async {}).await.unwrap() });
        // 1. The single blocking thread runs a closure and goes idle.
        rt.block_on(async { spawn_blocking(|| ()).await.unwrap() });
        assert!(
            wait_until(Duration::from_secs(2), || m.num_idle_blocking_threads()
                == 1),
            "the blocking thread went idle"
        );
        // 2. A handoff: the idle blocking thread takes the worker's core
        //    (the closure blocks long enough for it to start).
        rt.block_on(async {
            rt_core::spawn(async {
                block_in_place(|| std::thread::sleep(ms(100)));
            })
            .await
            .unwrap();
        });
        // 3. The former worker thread idles out.
        std::thread::sleep(ms(700));
        eprintln!(
            "pool threads {}, idle {}",
            m.num_blocking_threads(),
            m.num_idle_blocking_threads()
        );
        // 4. spawn_blocking must still run.
        let (tx, rx) = mpsc::channel();
        let h = rt.handle().spawn_blocking(move || {
            let _ = tx.send(42);
        });
        let got = rx.recv_timeout(Duration::from_secs(3));
        assert_eq!(
            got,
            Ok(42),
            "spawn_blocking never ran: {} pool threads, {} idle, queue {}",
            m.num_blocking_threads(),
            m.num_idle_blocking_threads(),
            m.blocking_queue_depth()
        );
        rt.block_on(h).unwrap();
    });
}

/// The same accounting problem without block_in_place: pool threads take
/// jobs from one shared queue, so a thread spawned (and counted) for a
/// spawn_blocking closure can pick up a worker's body instead, while the
/// worker's (uncounted) thread runs the closure. Here the worker's thread
/// is held in `on_thread_start` so that order is forced; once the
/// uncounted thread idles out, spawn_blocking must still get a thread.
#[test]
fn spawn_blocking_when_counted_thread_took_the_worker_body() {
    let _s = serial();
    with_deadline("counted_thread_took_worker", 20, || {
        let started = Arc::new(AtomicUsize::new(0));
        let s2 = started.clone();
        let rt = Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .thread_keep_alive(ms(100))
            .on_thread_start(move || {
                // The first pool thread (spawned for the worker) starts late.
                if s2.fetch_add(1, SeqCst) == 0 {
                    std::thread::sleep(ms(300));
                }
            })
            .build()
            .unwrap();
        let m = rt.metrics();
        assert!(wait_until(Duration::from_secs(2), || started.load(SeqCst) == 1));
        // Spawns the one counted blocking thread, which starts first.
        let first = rt.handle().spawn_blocking(|| ());
        rt.block_on(first).unwrap();
        // Whichever thread ran the closure idles out.
        std::thread::sleep(ms(500));
        let (tx, rx) = mpsc::channel();
        let h = rt.handle().spawn_blocking(move || {
            let _ = tx.send(42);
        });
        let got = rx.recv_timeout(Duration::from_secs(3));
        assert_eq!(
            got,
            Ok(42),
            "spawn_blocking never ran: {} pool threads, {} idle, queue {}",
            m.num_blocking_threads(),
            m.num_idle_blocking_threads(),
            m.blocking_queue_depth()
        );
        rt.block_on(h).unwrap();
    });
}

/// block_in_place while spawn_blocking closures are queued (the cap is
/// reached): the handoff of the worker's core must not wait behind them,
/// and the thread started for the handoff must not run them (that would
/// exceed the cap).
#[test]
fn block_in_place_handoff_not_queued_behind_blocking_closures() {
    let _s = serial();
    with_deadline("handoff_behind_queue", 20, || {
        let rt = one_worker_one_blocking_thread();
        let m = rt.metrics();
        let active = Arc::new(AtomicUsize::new(0));
        let max_active = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let busy = {
            let (a, mx) = (active.clone(), max_active.clone());
            rt.handle().spawn_blocking(move || {
                let now = a.fetch_add(1, SeqCst) + 1;
                mx.fetch_max(now, SeqCst);
                started_tx.send(()).unwrap();
                let _ = release_rx.recv_timeout(Duration::from_secs(5));
                a.fetch_sub(1, SeqCst);
            })
        };
        started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let queued: Vec<_> = (0..3)
            .map(|_| {
                let (a, mx) = (active.clone(), max_active.clone());
                rt.handle().spawn_blocking(move || {
                    let now = a.fetch_add(1, SeqCst) + 1;
                    mx.fetch_max(now, SeqCst);
                    std::thread::sleep(ms(200));
                    a.fetch_sub(1, SeqCst);
                })
            })
            .collect();
        assert_eq!(m.blocking_queue_depth(), 3);
        let (done, returned_at) = rt.block_on(async {
            rt_core::spawn(async {
                let others: Vec<_> = (0..5)
                    .map(|_| rt_core::spawn(async { Instant::now() }))
                    .collect();
                let returned_at = block_in_place(|| {
                    std::thread::sleep(ms(300));
                    Instant::now()
                });
                let mut done = Vec::new();
                for o in others {
                    done.push(o.await.unwrap());
                }
                (done, returned_at)
            })
            .await
            .unwrap()
        });
        let max_during = max_active.load(SeqCst);
        release_tx.send(()).unwrap();
        rt.block_on(async {
            busy.await.unwrap();
            for q in queued {
                q.await.unwrap();
            }
        });
        let late = done.iter().filter(|d| **d >= returned_at).count();
        assert_eq!(
            late, 0,
            "{late} of 5 tasks waited for block_in_place to return: the handoff \
             was queued behind blocking closures ({max_during} closures ran at once, \
             cap 1)"
        );
        assert!(
            max_during <= 1,
            "max_blocking_threads(1) but {max_during} closures ran at once"
        );
    });
}
