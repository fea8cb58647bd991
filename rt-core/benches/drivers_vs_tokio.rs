//! rt-core vs Tokio on the drivers: the timer wheel, the I/O reactor and the
//! blocking pool.
//!
//! - `timers/1m_sleeps`: inside `block_on`, spawn 1,000,000 tasks, each
//!   sleeping until `start + (i % 1000) ms` (deadlines spread uniformly over
//!   one second), and wait for the last one. An iteration takes at least one
//!   second by construction. `timers/10m_sleeps` is the same with
//!   10,000,000 tasks; it only runs with `RT_BENCH_10M=1` in the environment
//!   (10-15 s an iteration, about 2-3 minutes per runtime on a 2-CPU
//!   machine), so the default `make bench` stays short. Memory is no limit:
//!   spawning takes about 1 s per million tasks, longer than the spread, so
//!   the early tasks finish while the later ones are spawned and only about
//!   a second's worth of tasks is alive at once (peak RSS measured with
//!   10M: 0.25 GiB on rt-core, 0.7 GiB on Tokio; with 1M: 0.14 / 0.28 GiB).
//!   The same holds for 1M: its time is mostly spawning, not the wheel.
//! - `tcp/ping_pong_1`, `tcp/ping_pong_100`: N loopback TCP connections
//!   (`set_nodelay`), each client writes a 1 KiB message and reads the 1 KiB
//!   echo back, `ROUND_TRIPS` times. An iteration is N x `ROUND_TRIPS` round
//!   trips. The connections and the server's echo tasks are set up once,
//!   before the measurement, and reused by every iteration.
//! - `blocking/spawn_blocking`: Tokio's `benches/spawn_blocking.rs` at
//!   concurrency 16: 16 tasks, each awaiting 100 batches of 16
//!   `spawn_blocking(|| black_box(0))`, on a runtime with Tokio's defaults
//!   (one worker per CPU, 512 blocking threads). Tokio's bench collects the
//!   handles in a `JoinSet`; rt-core has none, so both await a `Vec` of
//!   `JoinHandle`s.
//!
//! As in `rt_vs_tokio.rs`: every workload is one criterion group with two
//! functions, `rt` and `tokio`, so `scripts/bench_table.py` prints the
//! rt/tokio ratio; each runtime is built once per group, outside `b.iter`,
//! and dropped before the other one is built; the workload bodies are
//! written once, in the `workloads!` macro, for both crates.
//!
//! The TCP helpers use `readable` / `try_read` and `writable` / `try_write`,
//! not `read_exact` / `write_all`: Tokio has those only in `AsyncReadExt` /
//! `AsyncWriteExt` (feature `io-util`), and the same code on both sides
//! keeps the comparison about the reactor.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode};
use std::time::Duration;

/// Worker threads of the multi-thread runtimes of the timer and TCP
/// workloads.
const NUM_WORKERS: usize = 4;
/// `timers/*`: the deadlines are spread over this many milliseconds.
const SPREAD_MS: usize = 1_000;
/// `tcp/*`: bytes per message.
const MSG_LEN: usize = 1024;
/// `tcp/*`: round trips per connection per iteration.
const ROUND_TRIPS: usize = 100;
/// `blocking/spawn_blocking`: async tasks per iteration (Tokio's
/// concurrency level 16).
const BLOCKING_TASKS: usize = 16;
/// `blocking/spawn_blocking`: batches per task (Tokio: `NUM_BATCHES`).
const NUM_BATCHES: usize = 100;
/// `blocking/spawn_blocking`: `spawn_blocking` calls per batch (Tokio:
/// `BATCH_SIZE`).
const BATCH_SIZE: usize = 16;
/// The environment variable that enables `timers/10m_sleeps`.
const ENV_10M: &str = "RT_BENCH_10M";

fn rt_core_multi_thread() -> rt_core::runtime::Runtime {
    rt_core::runtime::Builder::new_multi_thread()
        .worker_threads(NUM_WORKERS)
        .enable_all()
        .build()
        .expect("build rt-core multi-thread runtime")
}

/// Tokio's `spawn_blocking` bench runtime: default worker and blocking
/// thread counts.
fn rt_core_default_multi_thread() -> rt_core::runtime::Runtime {
    rt_core::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("build rt-core multi-thread runtime")
}

fn tokio_multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(NUM_WORKERS)
        .enable_all()
        .build()
        .expect("build Tokio multi-thread runtime")
}

fn tokio_default_multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("build Tokio multi-thread runtime")
}

/// Defines module `$module` with every workload written against crate
/// `$krate`, whose runtimes come from `$multi` (`NUM_WORKERS` workers) and
/// `$default` (default settings). Each function builds its runtime,
/// registers benchmark `$id` in `g`, then drops the runtime.
macro_rules! workloads {
    ($module:ident, $krate:ident, multi = $multi:path, default = $default:path) => {
        mod $module {
            use super::*;
            use ::$krate as k;
            use k::net::{TcpListener, TcpStream};
            use std::hint::black_box;
            use std::io::ErrorKind::WouldBlock;
            use std::sync::atomic::AtomicUsize;
            use std::sync::atomic::Ordering::Relaxed;
            use std::sync::{mpsc, Arc};

            // ----- timers -----

            /// Inside `block_on`, spawn `num_tasks` tasks; task `i` sleeps
            /// until `start + (i % SPREAD_MS) ms`, then counts down a shared
            /// counter; the last one signals a std channel that `block_on`'s
            /// future waits on with a blocking `recv`.
            fn sleeps(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, num_tasks: usize) {
                let rt = $multi();
                let (tx, rx) = mpsc::sync_channel(1);
                let rem = Arc::new(AtomicUsize::new(0));

                g.bench_function(id, |b| {
                    b.iter(|| {
                        rem.store(num_tasks, Relaxed);

                        rt.block_on(async {
                            let start = k::time::Instant::now();

                            for i in 0..num_tasks {
                                let tx = tx.clone();
                                let rem = rem.clone();
                                let deadline =
                                    start + Duration::from_millis((i % SPREAD_MS) as u64);

                                k::spawn(async move {
                                    k::time::sleep_until(deadline).await;

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

            pub fn timers_1m(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
                sleeps(g, id, 1_000_000);
            }

            pub fn timers_10m(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
                sleeps(g, id, 10_000_000);
            }

            // ----- TCP -----

            /// Fills `buf` from `s`; `false` if the stream ends (or fails)
            /// first.
            async fn read_full(s: &TcpStream, mut buf: &mut [u8]) -> bool {
                while !buf.is_empty() {
                    if s.readable().await.is_err() {
                        return false;
                    }
                    match s.try_read(buf) {
                        Ok(0) => return false,
                        Ok(n) => buf = &mut buf[n..],
                        Err(e) if e.kind() == WouldBlock => {}
                        Err(_) => return false,
                    }
                }
                true
            }

            /// Writes all of `buf` to `s`; `false` if that fails.
            async fn write_full(s: &TcpStream, mut buf: &[u8]) -> bool {
                while !buf.is_empty() {
                    if s.writable().await.is_err() {
                        return false;
                    }
                    match s.try_write(buf) {
                        Ok(n) => buf = &buf[n..],
                        Err(e) if e.kind() == WouldBlock => {}
                        Err(_) => return false,
                    }
                }
                true
            }

            /// Server side: echo every `MSG_LEN` message until the client
            /// closes.
            async fn echo(s: TcpStream) {
                let mut buf = [0u8; MSG_LEN];
                while read_full(&s, &mut buf).await {
                    if !write_full(&s, &buf).await {
                        return;
                    }
                }
            }

            /// Client side: `ROUND_TRIPS` times, send a message and wait for
            /// its full echo. Gives the stream back for the next iteration.
            async fn client(s: TcpStream) -> TcpStream {
                let msg = [0xa5u8; MSG_LEN];
                let mut buf = [0u8; MSG_LEN];
                for _ in 0..ROUND_TRIPS {
                    assert!(write_full(&s, &msg).await, "client write failed");
                    assert!(read_full(&s, &mut buf).await, "client read failed");
                }
                assert_eq!(buf, msg);
                s
            }

            /// `conns` loopback connections, each served by an echo task;
            /// an iteration spawns one `client` task per connection and
            /// awaits them all.
            fn ping_pong(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, conns: usize) {
                let rt = $multi();

                let mut clients = rt.block_on(async {
                    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let addr = listener.local_addr().unwrap();

                    k::spawn(async move {
                        for _ in 0..conns {
                            let (s, _) = listener.accept().await.unwrap();
                            s.set_nodelay(true).unwrap();
                            k::spawn(echo(s));
                        }
                    });

                    let mut clients = Vec::with_capacity(conns);
                    for _ in 0..conns {
                        let s = TcpStream::connect(addr).await.unwrap();
                        s.set_nodelay(true).unwrap();
                        clients.push(s);
                    }
                    clients
                });
                let mut handles = Vec::with_capacity(conns);

                g.bench_function(id, |b| {
                    b.iter(|| {
                        rt.block_on(async {
                            for s in clients.drain(..) {
                                handles.push(k::spawn(client(s)));
                            }

                            for handle in handles.drain(..) {
                                clients.push(handle.await.unwrap());
                            }
                        });
                    })
                });

                // Close the clients inside the runtime; the echo tasks see
                // the end of stream and finish before the runtime drops.
                rt.block_on(async move { drop(clients) });
            }

            pub fn tcp_ping_pong_1(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
                ping_pong(g, id, 1);
            }

            pub fn tcp_ping_pong_100(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
                ping_pong(g, id, 100);
            }

            // ----- blocking pool -----

            /// Tokio's `spawn_blocking` bench at concurrency
            /// `BLOCKING_TASKS`: each task awaits `NUM_BATCHES` batches of
            /// `BATCH_SIZE` no-op `spawn_blocking` calls.
            pub fn blocking_spawn_blocking(g: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
                let rt = $default();

                g.bench_function(id, |b| {
                    b.iter(|| {
                        rt.block_on(async {
                            let mut tasks = Vec::with_capacity(BLOCKING_TASKS);

                            for _ in 0..BLOCKING_TASKS {
                                tasks.push(k::spawn(async {
                                    let mut batch = Vec::with_capacity(BATCH_SIZE);

                                    for _ in 0..NUM_BATCHES {
                                        for _ in 0..BATCH_SIZE {
                                            batch.push(k::task::spawn_blocking(|| black_box(0)));
                                        }

                                        for handle in batch.drain(..) {
                                            handle.await.unwrap();
                                        }
                                    }
                                }));
                            }

                            for task in tasks {
                                task.await.unwrap();
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
    default = rt_core_default_multi_thread
);
workloads!(
    on_tokio,
    tokio,
    multi = tokio_multi_thread,
    default = tokio_default_multi_thread
);

/// Measurement settings of one group.
struct Settings {
    sample_size: usize,
    measurement_secs: u64,
    /// Flat sampling (every sample runs the same number of iterations):
    /// criterion's mode for workloads of a second or so an iteration.
    flat: bool,
}

/// Seconds-long iterations: 10 samples of one iteration each (criterion's
/// minimum), about 15 s per function. Criterion prints "Unable to complete
/// 10 samples" for these groups whenever a sample is one iteration: that is
/// expected.
const LONG: Settings = Settings {
    sample_size: 10,
    measurement_secs: 10,
    flat: true,
};
/// 10M timers: 10-15 s an iteration (opt-in, see `ENV_10M`); one iteration
/// per sample, as `LONG`.
const VERY_LONG: Settings = Settings {
    sample_size: 10,
    measurement_secs: 60,
    flat: true,
};
/// Iterations of tens to hundreds of milliseconds. These workloads are
/// noisy on a small machine (run-to-run swings of 20-40%), hence many
/// samples.
const MEDIUM: Settings = Settings {
    sample_size: 30,
    measurement_secs: 12,
    flat: true,
};
/// Iterations of about a millisecond.
const SHORT: Settings = Settings {
    sample_size: 40,
    measurement_secs: 5,
    flat: false,
};

/// One criterion function per workload: group `$group`, measured on rt-core
/// (`rt`) and then on Tokio (`tokio`), with `$settings`; only when
/// `$enabled()` holds.
macro_rules! compare {
    ($($fn_name:ident => $group:literal, $settings:expr, $enabled:expr;)*) => {
        $(
            fn $fn_name(c: &mut Criterion) {
                if !$enabled() {
                    return;
                }
                let settings: &Settings = &$settings;
                let mut g = c.benchmark_group($group);
                g.sample_size(settings.sample_size);
                g.measurement_time(Duration::from_secs(settings.measurement_secs));
                if settings.flat {
                    g.sampling_mode(SamplingMode::Flat);
                }
                on_rt::$fn_name(&mut g, "rt");
                on_tokio::$fn_name(&mut g, "tokio");
                g.finish();
            }
        )*

        criterion_group! {
            name = drivers_vs_tokio;
            config = Criterion::default().warm_up_time(Duration::from_secs(1));
            targets = $($fn_name),*
        }
    };
}

fn always() -> bool {
    true
}

/// `timers/10m_sleeps` takes 10-15 s an iteration, about 5 minutes for
/// both runtimes, so it is opt-in: `RT_BENCH_10M=1 cargo bench --bench
/// drivers_vs_tokio`.
fn ten_million_enabled() -> bool {
    std::env::var(ENV_10M).is_ok_and(|v| v == "1")
}

compare! {
    timers_1m => "timers/1m_sleeps", LONG, always;
    timers_10m => "timers/10m_sleeps", VERY_LONG, ten_million_enabled;
    tcp_ping_pong_1 => "tcp/ping_pong_1", SHORT, always;
    tcp_ping_pong_100 => "tcp/ping_pong_100", MEDIUM, always;
    blocking_spawn_blocking => "blocking/spawn_blocking", MEDIUM, always;
}

criterion_main!(drivers_vs_tokio);
