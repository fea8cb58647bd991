//! Builder settings at their extremes: out of range is an `InvalidInput`
//! error from `build()` (never a panic or an abort), the limits themselves
//! work, and a thread the OS refuses comes back as an error.

use rt_core::runtime::{Builder, MAX_THREAD_STACK_SIZE, MAX_WORKER_THREADS};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

fn builders() -> [(&'static str, Builder); 2] {
    [
        ("current_thread", Builder::new_current_thread()),
        ("multi_thread", Builder::new_multi_thread()),
    ]
}

fn refused(name: &str, setting: &str, b: &mut Builder) {
    match b.build() {
        Ok(_) => panic!("{name}: {setting} was accepted"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name}: {setting}: {e}"),
    }
}

#[test]
fn out_of_range_settings_are_invalid_input() {
    for (name, _) in builders() {
        let make = || match name {
            "current_thread" => Builder::new_current_thread(),
            _ => Builder::new_multi_thread(),
        };
        for n in [
            0,
            MAX_WORKER_THREADS + 1,
            65_535,
            u32::MAX as usize,
            usize::MAX,
        ] {
            refused(
                name,
                &format!("worker_threads({n})"),
                make().worker_threads(n),
            );
        }
        refused(
            name,
            "max_blocking_threads(0)",
            make().max_blocking_threads(0),
        );
        refused(
            name,
            "global_queue_interval(0)",
            make().global_queue_interval(0),
        );
        refused(name, "event_interval(0)", make().event_interval(0));
        for size in [MAX_THREAD_STACK_SIZE + 1, usize::MAX] {
            refused(
                name,
                &format!("thread_stack_size({size})"),
                make().thread_stack_size(size),
            );
        }
    }
}

/// Spawns, blocks and sleeps on the runtime; checks it all completes.
fn exercise(name: &str, b: &mut Builder) {
    let rt = b
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let sum = rt.block_on(async {
        let tasks: Vec<_> = (0..20u64)
            .map(|i| rt_core::spawn(async move { i }))
            .collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap();
        }
        sum += rt_core::task::spawn_blocking(|| 1).await.unwrap();
        rt_core::time::sleep(Duration::from_millis(1)).await;
        sum
    });
    assert_eq!(sum, 191, "{name}");
    rt.shutdown_timeout(Duration::from_secs(10));
}

#[test]
fn extreme_settings_in_range_work() {
    for (name, _) in builders() {
        let make = || match name {
            "current_thread" => Builder::new_current_thread(),
            _ => Builder::new_multi_thread(),
        };
        exercise(name, make().worker_threads(1));
        exercise(name, make().max_blocking_threads(1));
        exercise(name, make().max_blocking_threads(usize::MAX));
        exercise(name, make().global_queue_interval(1));
        exercise(name, make().global_queue_interval(u32::MAX));
        exercise(name, make().event_interval(1));
        exercise(name, make().event_interval(u32::MAX));
        exercise(name, make().thread_keep_alive(Duration::ZERO));
        exercise(name, make().thread_keep_alive(Duration::MAX));
        // Small stacks work (the runtime's own frames are shallow); the
        // tasks' polls must fit (an overflow aborts, as on any thread).
        exercise(name, make().thread_stack_size(256 << 10));
        exercise(
            name,
            make()
                .worker_threads(2)
                .thread_stack_size(MAX_THREAD_STACK_SIZE),
        );
    }
}

/// The child half of `a_refused_thread_is_an_error`: in an address space
/// too small for the workers' stacks, `build()` returns the OS error.
#[test]
fn refused_thread_child() {
    if std::env::var_os("RT_REFUSED_THREAD_CHILD").is_none() {
        return;
    }
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    // Room for two 1 GiB stacks, not for eight.
    let limit = pages * page + (2 << 30) + (512 << 20);
    let lim = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: a valid rlimit on the stack.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    let err = Builder::new_multi_thread()
        .worker_threads(8)
        .thread_stack_size(MAX_THREAD_STACK_SIZE)
        .enable_all()
        .build()
        .expect_err("eight 1 GiB stacks fit in 2.5 GiB");
    assert!(err.raw_os_error().is_some(), "not the OS error: {err}");
    println!("REFUSED_THREAD_OK {err}");
}

/// A thread the OS refuses: `build()` returns the error, after shutting
/// down the workers that did start (run in a child process: the address
/// space limit must not touch the other tests).
#[test]
fn a_refused_thread_is_an_error() {
    run_child(
        "refused_thread_child",
        "RT_REFUSED_THREAD_CHILD",
        "REFUSED_THREAD_OK",
    );
}

/// Runs the test `name` of this binary in a child process with `env` set
/// (its resource limits must not touch the other tests) and checks that it
/// passed and printed `ok_marker`.
fn run_child(name: &str, env: &str, ok_marker: &str) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(ok_marker),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The child half of `a_refused_pool_thread_is_reported`: a current-thread
/// runtime (no worker threads) whose pool has no thread yet, in an address
/// space too small for a 1 GiB stack. `try_spawn_blocking` gives the closure
/// back unrun with the OS error, `spawn_blocking` panics (as Tokio does);
/// once the limit is lifted, both work.
#[test]
fn refused_pool_thread_child() {
    if std::env::var_os("RT_REFUSED_POOL_THREAD_CHILD").is_none() {
        return;
    }
    let rt = Builder::new_current_thread()
        .thread_stack_size(MAX_THREAD_STACK_SIZE)
        .enable_all()
        .build()
        .unwrap();
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid, writable rlimit on the stack.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut old) }, 0);
    // Room for the test, not for a 1 GiB stack. Only the soft limit: it
    // is raised again below.
    let lim = libc::rlimit {
        rlim_cur: pages * page + (256 << 20),
        rlim_max: old.rlim_max,
    };
    // SAFETY: a valid rlimit on the stack.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);

    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let (err, job) = rt
        .handle()
        .try_spawn_blocking(move || r.fetch_add(1, SeqCst))
        .expect_err("a 1 GiB stack fits in 256 MiB");
    assert!(err.raw_os_error().is_some(), "not the OS error: {err}");
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.handle().spawn_blocking(|| ());
    }))
    .expect_err("spawn_blocking without a thread must panic");
    let msg = panicked
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        msg.contains("OS can't spawn a blocking pool thread"),
        "{msg}"
    );
    // The closure came back unrun: calling it runs it here.
    assert_eq!(ran.load(SeqCst), 0);
    job();
    assert_eq!(ran.load(SeqCst), 1);

    // SAFETY: a valid rlimit on the stack.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &old) }, 0);
    let r = ran.clone();
    let join = rt
        .handle()
        .try_spawn_blocking(move || r.fetch_add(1, SeqCst))
        .map_err(|(e, _)| e)
        .unwrap();
    assert_eq!(rt.block_on(join).unwrap(), 1);
    assert_eq!(ran.load(SeqCst), 2);
    println!("REFUSED_POOL_THREAD_OK {err}");
}

/// A blocking closure no thread can run is reported, never queued forever
/// (run in a child process: the address space limit must not touch the
/// other tests).
#[test]
fn a_refused_pool_thread_is_reported() {
    run_child(
        "refused_pool_thread_child",
        "RT_REFUSED_POOL_THREAD_CHILD",
        "REFUSED_POOL_THREAD_OK",
    );
}
