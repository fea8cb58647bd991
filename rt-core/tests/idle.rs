//! An idle runtime does not burn CPU: its threads block in the driver
//! (`epoll_wait` / a condvar) until there is work or a timer is due.
//!
//! CPU time is the process's (utime + stime from /proc/self/stat, in clock
//! ticks), so the tests of this file run one at a time (`serial()`) and
//! nothing else of the process runs while one measures. On failure the
//! per-thread CPU time (/proc/self/task/*/schedstat) says which thread
//! spun.

#![cfg(target_os = "linux")]

mod support;

use rt_core::net::{TcpListener, TcpStream, UdpSocket};
use rt_core::runtime::{Builder, Runtime};
use rt_core::time::{interval, sleep};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::{serial, with_deadline};

/// Budget of CPU time for 1 s of idling: 5 % of one core.
const BUDGET: Duration = Duration::from_millis(50);
const WINDOW: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Clock ticks per second (AT_CLKTCK from the aux vector; 100 if absent).
fn clock_ticks_per_sec() -> u64 {
    const AT_CLKTCK: u64 = 17;
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 100;
    };
    for pair in auxv.chunks_exact(16) {
        let key = u64::from_ne_bytes(pair[..8].try_into().unwrap());
        let val = u64::from_ne_bytes(pair[8..].try_into().unwrap());
        if key == AT_CLKTCK && val > 0 {
            return val;
        }
    }
    100
}

/// CPU time (user + system) of the whole process so far.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The command name may contain spaces and parens: fields start after
    // the last ')'. Then: state(3) ... utime(14) stime(15).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields[11].parse().unwrap();
    let stime: u64 = fields[12].parse().unwrap();
    let hz = clock_ticks_per_sec();
    Duration::from_nanos((utime + stime) * 1_000_000_000 / hz)
}

/// Per live thread: (name, CPU ns) from schedstat.
fn thread_cpu() -> HashMap<u64, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let path = entry.path();
        let name = std::fs::read_to_string(path.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let ns = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        out.insert(tid, (name, ns));
    }
    out
}

/// Runs `idle` (which should take about WINDOW) and returns the CPU the
/// process used meanwhile, with a per-thread breakdown for messages.
fn measure(idle: impl FnOnce()) -> (Duration, String) {
    let threads_before = thread_cpu();
    let before = process_cpu();
    let start = Instant::now();
    idle();
    let wall = start.elapsed();
    let used = process_cpu().saturating_sub(before);
    let threads_after = thread_cpu();
    let mut busy: Vec<(u64, String)> = threads_after
        .iter()
        .map(|(tid, (name, ns))| {
            let prev = threads_before.get(tid).map_or(0, |t| t.1);
            (ns.saturating_sub(prev), format!("{name}[{tid}]"))
        })
        .filter(|(ns, _)| *ns > 0)
        .collect();
    busy.sort_by_key(|b| std::cmp::Reverse(b.0));
    let detail = busy
        .iter()
        .take(8)
        .map(|(ns, name)| format!("{name}: {:.1} ms", *ns as f64 / 1e6))
        .collect::<Vec<_>>()
        .join(", ");
    (used, format!("wall {wall:?}; per thread: {detail}"))
}

fn assert_idle(name: &str, used: Duration, detail: &str) {
    eprintln!("{name}: {used:?} CPU over {WINDOW:?} ({detail})");
    assert!(
        used < BUDGET,
        "{name}: idle runtime used {used:?} of CPU in {WINDOW:?} (budget {BUDGET:?}); {detail}"
    );
}

fn multi_thread(workers: usize) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// Some work first, so every worker ran, stole, parked and the drivers
/// turned; then a short settle.
fn warm_up(rt: &Runtime) {
    rt.block_on(async {
        let hs: Vec<_> = (0..200u64)
            .map(|i| {
                rt_core::spawn(async move {
                    rt_core::task::yield_now().await;
                    sleep(Duration::from_millis(i % 5)).await;
                    i
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
        rt_core::task::spawn_blocking(|| ()).await.unwrap();
    });
    std::thread::sleep(Duration::from_millis(200));
}

/// Registers what an idle server has pending: an accept, connected streams
/// waiting to read, a UDP receive, sleeps of an hour and an hourly interval.
/// Returns once everything has been polled (the listener's address).
async fn spawn_pending_io_and_timers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept 4 connections, then keep a pending accept.
    let (conn_tx, conn_rx) = rt_core::sync::oneshot::channel();
    rt_core::spawn(async move {
        let mut served = Vec::new();
        for _ in 0..4 {
            served.push(listener.accept().await.unwrap().0);
        }
        let _ = conn_tx.send(());
        for mut s in served {
            rt_core::spawn(async move {
                let mut buf = [0u8; 16];
                let _ = s.read(&mut buf).await;
            });
        }
        let _ = listener.accept().await;
    });
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        rt_core::spawn(async move {
            let mut buf = [0u8; 16];
            let _ = s.read(&mut buf).await;
        });
    }
    conn_rx.await.unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    rt_core::spawn(async move {
        let mut buf = [0u8; 16];
        let _ = udp.recv_from(&mut buf).await;
    });
    for i in 0..100u64 {
        rt_core::spawn(sleep(Duration::from_secs(3600 + i)));
    }
    for i in 0..10u64 {
        rt_core::spawn(sleep(Duration::from_secs(10 + i)));
    }
    rt_core::spawn(async {
        let mut iv = interval(Duration::from_secs(3600));
        loop {
            iv.tick().await;
        }
    });
    // Let everything register.
    sleep(Duration::from_millis(50)).await;
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// The measurement itself: a thread spinning for 300 ms is seen (so the
/// tests below can fail).
#[test]
fn cpu_measurement_sees_a_busy_thread() {
    let _s = serial();
    let (used, detail) = measure(|| {
        let t = std::thread::spawn(|| {
            let end = Instant::now() + Duration::from_millis(300);
            let mut x = 0u64;
            while Instant::now() < end {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        });
        std::thread::sleep(WINDOW);
        t.join().unwrap();
    });
    eprintln!("busy thread: {used:?} ({detail})");
    assert!(
        used >= Duration::from_millis(200),
        "a 300 ms spin measured as {used:?}; {detail}"
    );
}

/// 4 workers with I/O and time enabled, nothing to do; the test thread
/// sleeps outside the runtime.
#[test]
fn idle_multi_thread_runtime() {
    let _s = serial();
    with_deadline("idle_multi_thread_runtime", 20, || {
        let rt = multi_thread(4);
        warm_up(&rt);
        let (used, detail) = measure(|| std::thread::sleep(WINDOW));
        assert_idle("multi_thread(4), enable_all", used, &detail);
    });
}

/// Same, without any driver (workers park on condvars) and with time only
/// (the time driver parks a condvar with a timeout).
#[test]
fn idle_multi_thread_runtime_without_io() {
    let _s = serial();
    with_deadline("idle_multi_thread_runtime_without_io", 20, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(4)
            .enable_time()
            .build()
            .unwrap();
        warm_up(&rt);
        let (used, detail) = measure(|| std::thread::sleep(WINDOW));
        assert_idle("multi_thread(4), enable_time", used, &detail);
        drop(rt);
        let rt = Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .unwrap();
        rt.block_on(async {
            for _ in 0..100 {
                rt_core::spawn(async {}).await.unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        let (used, detail) = measure(|| std::thread::sleep(WINDOW));
        assert_idle("multi_thread(4), no drivers", used, &detail);
    });
}

/// The test thread blocks in the multi-thread runtime's block_on(sleep).
#[test]
fn idle_multi_thread_block_on_sleep() {
    let _s = serial();
    with_deadline("idle_multi_thread_block_on_sleep", 20, || {
        let rt = multi_thread(4);
        warm_up(&rt);
        let (used, detail) = measure(|| rt.block_on(async { sleep(WINDOW).await }));
        assert_idle("multi_thread(4), block_on(sleep(1s))", used, &detail);
    });
}

/// A current-thread runtime blocked in block_on(sleep(1 s)), with all the
/// drivers and with the timer alone.
#[test]
fn idle_current_thread_block_on_sleep() {
    let _s = serial();
    with_deadline("idle_current_thread_block_on_sleep", 20, || {
        for (name, rt) in [
            (
                "current_thread, enable_all",
                Builder::new_current_thread().enable_all().build().unwrap(),
            ),
            (
                "current_thread, enable_time",
                Builder::new_current_thread().enable_time().build().unwrap(),
            ),
        ] {
            warm_up(&rt);
            let (used, detail) = measure(|| rt.block_on(async { sleep(WINDOW).await }));
            assert_idle(name, used, &detail);
        }
    });
}

/// Pending accept, reads, a UDP receive and long timers on a multi-thread
/// runtime: still idle.
#[test]
fn idle_multi_thread_with_pending_io_and_timers() {
    let _s = serial();
    with_deadline("idle_multi_thread_with_pending_io_and_timers", 20, || {
        let rt = multi_thread(4);
        warm_up(&rt);
        rt.block_on(spawn_pending_io_and_timers());
        assert!(
            rt.metrics().num_timers() >= 111,
            "{}",
            rt.metrics().num_timers()
        );
        assert!(rt.metrics().num_io_registrations() >= 10);
        std::thread::sleep(Duration::from_millis(100));
        let (used, detail) = measure(|| std::thread::sleep(WINDOW));
        assert_idle("multi_thread(4), pending io + timers", used, &detail);
        // Everything is still pending (nothing spun its way to completion).
        assert!(rt.metrics().num_timers() >= 111);
        assert!(rt.metrics().num_alive_tasks() >= 120);
    });
}

/// The same on a current-thread runtime blocked in block_on(sleep(1 s)).
#[test]
fn idle_current_thread_with_pending_io_and_timers() {
    let _s = serial();
    with_deadline("idle_current_thread_with_pending_io_and_timers", 20, || {
        let rt = Builder::new_current_thread().enable_all().build().unwrap();
        warm_up(&rt);
        rt.block_on(spawn_pending_io_and_timers());
        assert!(rt.metrics().num_timers() >= 111);
        let (used, detail) = measure(|| rt.block_on(async { sleep(WINDOW).await }));
        assert_idle("current_thread, pending io + timers", used, &detail);
        assert!(rt.metrics().num_alive_tasks() >= 120);
    });
}
