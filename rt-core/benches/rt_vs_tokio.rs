//! rt-core vs Tokio on the workloads of Tokio's own scheduler benchmarks
//! (`benches/rt_multi_threaded.rs` and `benches/rt_current_thread.rs` in
//! tokio-rs/tokio), with the same constants and the same shapes.
//!
//! Every workload is one criterion group with two functions, `rt` and
//! `tokio`, so `scripts/bench_table.py` can print the rt/tokio ratio.
//! Each runtime is built once per group, outside `b.iter`, and dropped
//! before the other one is built, so idle workers of one runtime never
//! share the CPU with the one being measured.
//!
//! The workload bodies are written once, in the `workloads!` macro, and
//! instantiated for both crates: rt-core mirrors Tokio's names
//! (`spawn`, `task::yield_now`, `sync::oneshot`, `runtime::Runtime`), so the
//! code is token-for-token the same for both.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use std::time::Duration;

/// Worker threads of the multi-thread runtimes (Tokio: `NUM_WORKERS`).
const NUM_WORKERS: usize = 4;
/// Tasks spawned per iteration on the multi-thread runtime.
const MT_NUM_SPAWN: usize = 10_000;
/// Tasks spawned per iteration on the current-thread runtime.
const CT_NUM_SPAWN: usize = 1_000;
/// `ping_pong`: ping tasks per iteration.
const NUM_PINGS: usize = 1_000;
/// `yield_many`: yields per task.
const NUM_YIELD: usize = 1_000;
/// `yield_many`: tasks per iteration.
const TASKS: usize = 200;
/// `chained_spawn`: length of the chain.
const ITER: usize = 1_000;

fn rt_core_multi_thread() -> rt_core::runtime::Runtime {
    rt_core::runtime::Builder::new_multi_thread()
        .worker_threads(NUM_WORKERS)
        .build()
        .expect("build rt-core multi-thread runtime")
}

fn rt_core_current_thread() -> rt_core::runtime::Runtime {
    rt_core::runtime::Builder::new_current_thread()
        .build()
        .expect("build rt-core current-thread runtime")
}

fn tokio_multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(NUM_WORKERS)
        .enable_all()
        .build()
        .expect("build Tokio multi-thread runtime")
}

fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("build Tokio current-thread runtime")
}

/// Defines module `$module` with every workload written against crate
/// `$krate`, whose runtimes come from `$multi` / `$current`. Each function
/// builds its runtime, registers benchmark `$id` in `g`, then drops the
/// runtime.
macro_rules! workloads {
    ($module:ident, $krate:ident, multi = $multi:path, current = $current:path) => {
        mod $module {
            use super::*;
            use ::$krate as k;
            use k::sync::oneshot;
            use std::sync::atomic::AtomicUsize;
            use std::sync::atomic::Ordering::Relaxed;
            use std::sync::{mpsc, Arc};

            // ----- multi-thread (Tokio's rt_multi_threaded.rs) -----

            /// Inside `block_on`, spawn `MT_NUM_SPAWN` tasks that count down
            /// a shared counter; the last one signals a std channel that
            /// `block_on`'s future waits on with a blocking `recv`.
            pub fn mt_spawn_many_local(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
                let rt = $multi();
                let (tx, rx) = mpsc::sync_channel(1000);
                let rem = Arc::new(AtomicUsize::new(0));

                g.bench_function(id, |b| {
                    b.iter(|| {
                        rem.store(MT_NUM_SPAWN, Relaxed);

                        rt.block_on(async {
                            for _ in 0..MT_NUM_SPAWN {
                                let tx = tx.clone();
                                let rem = rem.clone();

                                k::spawn(async move {
                                    if rem.fetch_sub(1, Relaxed) == 1 {
                                        tx.send(()).unwrap();
                                    }
                                });
                            }

                            rx.recv().unwrap();
                        });
                    })
                });
            }

            /// From outside the runtime, `rt.spawn` `MT_NUM_SPAWN` empty tasks,
            /// then `block_on` awaits every handle.
            pub fn mt_spawn_many_remote_idle(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
                let rt = $multi();
                let mut handles = Vec::with_capacity(MT_NUM_SPAWN);

                g.bench_function(id, |b| {
                    b.iter(|| {
                        for _ in 0..MT_NUM_SPAWN {
                            handles.push(rt.spawn(async {}));
                        }

                        rt.block_on(async {
                            for handle in handles.drain(..) {
                                handle.await.unwrap();
                            }
                        });
                    })
                });
            }

            /// One task spawns `NUM_PINGS` tasks; each makes two oneshots,
            /// spawns a responder that answers the first with the second,
            /// pings and awaits the pong. The last to finish signals the std
            /// channel `block_on` waits on.
            pub fn mt_ping_pong(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
                let rt = $multi();
                let (done_tx, done_rx) = mpsc::sync_channel(1000);
                let rem = Arc::new(AtomicUsize::new(0));

                g.bench_function(id, |b| {
                    b.iter(|| {
                        let done_tx = done_tx.clone();
                        let rem = rem.clone();
                        rem.store(NUM_PINGS, Relaxed);

                        rt.block_on(async {
                            k::spawn(async move {
                                for _ in 0..NUM_PINGS {
                                    let rem = rem.clone();
                                    let done_tx = done_tx.clone();

                                    k::spawn(async move {
                                        let (tx1, rx1) = oneshot::channel();
                                        let (tx2, rx2) = oneshot::channel();

                                        k::spawn(async move {
                                            rx1.await.unwrap();
                                            tx2.send(()).unwrap();
                                        });

                                        tx1.send(()).unwrap();
                                        rx2.await.unwrap();

                                        if rem.fetch_sub(1, Relaxed) == 1 {
                                            done_tx.send(()).unwrap();
                                        }
                                    });
                                }
                            });

                            done_rx.recv().unwrap();
                        });
                    })
                });
            }

            /// From outside the runtime, spawn `TASKS` tasks that each yield
            /// `NUM_YIELD` times then signal a std channel; wait for all.
            pub fn mt_yield_many(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
                let rt = $multi();
                let (tx, rx) = mpsc::sync_channel(TASKS);

                g.bench_function(id, |b| {
                    b.iter(|| {
                        for _ in 0..TASKS {
                            let tx = tx.clone();

                            rt.spawn(async move {
                                for _ in 0..NUM_YIELD {
                                    k::task::yield_now().await;
                                }

                                tx.send(()).unwrap();
                            });
                        }

                        for _ in 0..TASKS {
                            rx.recv().unwrap();
                        }
                    })
                });
            }

            /// A chain of `ITER` tasks, each spawning the next; the last
            /// signals the std channel `block_on` waits on.
            pub fn mt_chained_spawn(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
                fn iter(done_tx: mpsc::SyncSender<()>, n: usize) {
                    if n == 0 {
                        done_tx.send(()).unwrap();
                    } else {
                        k::spawn(async move {
                            iter(done_tx, n - 1);
                        });
                    }
                }

                let rt = $multi();
                let (done_tx, done_rx) = mpsc::sync_channel(1000);

                g.bench_function(id, |b| {
                    b.iter(|| {
                        let done_tx = done_tx.clone();

                        rt.block_on(async {
                            k::spawn(async move {
                                iter(done_tx, ITER);
                            });

                            done_rx.recv().unwrap();
                        });
                    })
                });
            }

            // ----- current-thread (Tokio's rt_current_thread.rs) -----

            /// Inside `block_on`, spawn `CT_NUM_SPAWN` empty tasks and await
            /// every handle.
            pub fn ct_spawn_many_local(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
                let rt = $current();
                let mut handles = Vec::with_capacity(CT_NUM_SPAWN);

                g.bench_function(id, |b| {
                    b.iter(|| {
                        rt.block_on(async {
                            for _ in 0..CT_NUM_SPAWN {
                                handles.push(k::spawn(async move {}));
                            }

                            for handle in handles.drain(..) {
                                handle.await.unwrap();
                            }
                        });
                    })
                });
            }

            /// Through the handle, from outside the runtime, spawn
            /// `CT_NUM_SPAWN` empty tasks; then `block_on` awaits them all.
            pub fn ct_spawn_many_remote_idle(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
                let rt = $current();
                let rt_handle = rt.handle();
                let mut handles = Vec::with_capacity(CT_NUM_SPAWN);

                g.bench_function(id, |b| {
                    b.iter(|| {
                        for _ in 0..CT_NUM_SPAWN {
                            handles.push(rt_handle.spawn(async {}));
                        }

                        rt.block_on(async {
                            for handle in handles.drain(..) {
                                handle.await.unwrap();
                            }
                        });
                    })
                });
            }

            /// As `ct_spawn_many_remote_idle`, while an endless chain of
            /// tasks (each spawning the next) keeps the runtime busy.
            pub fn ct_spawn_many_remote_busy(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
                fn iter() {
                    k::spawn(async { iter() });
                }

                let rt = $current();
                let rt_handle = rt.handle();
                let mut handles = Vec::with_capacity(CT_NUM_SPAWN);

                rt.spawn(async { iter() });

                g.bench_function(id, |b| {
                    b.iter(|| {
                        for _ in 0..CT_NUM_SPAWN {
                            handles.push(rt_handle.spawn(async {}));
                        }

                        rt.block_on(async {
                            for handle in handles.drain(..) {
                                handle.await.unwrap();
                            }
                        });
                    })
                });
            }
        }
    };
}

workloads!(
    on_rt,
    rt_core,
    multi = rt_core_multi_thread,
    current = rt_core_current_thread
);
workloads!(
    on_tokio,
    tokio,
    multi = tokio_multi_thread,
    current = tokio_current_thread
);

/// One criterion function per workload: group `$group`, measured on rt-core
/// (`rt`) and then on Tokio (`tokio`).
macro_rules! compare {
    ($($fn_name:ident => $group:literal,)*) => {
        $(
            fn $fn_name(c: &mut Criterion) {
                let mut g = c.benchmark_group($group);
                on_rt::$fn_name(&mut g, "rt");
                on_tokio::$fn_name(&mut g, "tokio");
                g.finish();
            }
        )*

        criterion_group! {
            name = rt_vs_tokio;
            config = Criterion::default()
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3))
                .sample_size(25);
            targets = $($fn_name),*
        }
    };
}

compare! {
    mt_spawn_many_local => "mt/spawn_many_local",
    mt_spawn_many_remote_idle => "mt/spawn_many_remote_idle",
    mt_ping_pong => "mt/ping_pong",
    mt_yield_many => "mt/yield_many",
    mt_chained_spawn => "mt/chained_spawn",
    ct_spawn_many_local => "ct/spawn_many_local",
    ct_spawn_many_remote_idle => "ct/spawn_many_remote_idle",
    ct_spawn_many_remote_busy => "ct/spawn_many_remote_busy",
}

criterion_main!(rt_vs_tokio);
