//! A process that forks while a multi-thread runtime's workers are starting
//! must leave its child able to build and run a runtime of its own. The
//! hazard is process-wide lazy state (crossbeam-epoch's collector, first
//! touched by a worker's steal): a child forked while a worker is inside
//! its `Once` inherits it mid-initialization and waits on it forever.
//!
//! The window exists once per process (the first runtime), so the test
//! re-runs itself as fresh processes: each builds its first runtime, forks
//! at once while the workers start, and its child builds another runtime
//! under a 10 s alarm.

use rt_core::runtime::Builder;
use std::process::Command;

const PROBE_ENV: &str = "RT_FORK_CHILD_PROBE";
const PROBES: usize = 20;
const FORKS: usize = 8;

#[test]
fn a_child_forked_while_workers_start_can_run_its_own_runtime() {
    if std::env::var_os(PROBE_ENV).is_some() {
        probe();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for i in 0..PROBES {
        let out = Command::new(&exe)
            .args([
                "--exact",
                "a_child_forked_while_workers_start_can_run_its_own_runtime",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(PROBE_ENV, "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "probe {i}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One fresh process: its first runtime, forks right away, and a runtime
/// in each child.
fn probe() {
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for _ in 0..8 {
        rt.spawn(async {});
    }
    // Forks in a row span the workers' start: each child is a chance to
    // catch one inside the lazy initialization.
    let children: Vec<libc::pid_t> = (0..FORKS).map(|_| fork_child()).collect();
    for pid in children {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "a child did not finish its runtime's work (wait status {status:#x}; \
             SIGALRM = 14 means it hung)"
        );
    }
    drop(rt);
}

/// Forks a child that builds and runs a runtime, then exits; returns its pid.
fn fork_child() -> libc::pid_t {
    // SAFETY: the child calls only `alarm`, builds a runtime (allocation
    // and thread creation, both fork-safe in glibc) and leaves by `_exit`,
    // never touching the parent's runtime.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain system calls; `_exit` skips the parent's atexit
        // handlers and destructors, which must not run in the child.
        unsafe {
            libc::alarm(10);
            let ok = std::panic::catch_unwind(child_runtime).unwrap_or(false);
            libc::_exit(if ok { 0 } else { 3 });
        }
    }
    pid
}

fn child_runtime() -> bool {
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(async { rt_core::spawn(async { 42 }).await.unwrap() });
    got == 42
}
