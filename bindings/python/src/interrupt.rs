//! Ctrl-C while a host thread blocks in `Runtime.run()`.
//!
//! The GIL is released while `run` waits in `epoll_wait`; Python's SIGINT
//! handler only sets a flag there, and the runtime goes back to waiting
//! after the `EINTR`. So for the time of a blocking run on the main thread
//! (where Python runs its signal handlers), the SIGINT action is chained:
//! Python's C handler runs first (so the signal is seen by Python as
//! usual), then the run is stopped (`Handle::stop`: an atomic swap and an
//! eventfd write, async-signal-safe). `run` then takes the GIL back and
//! calls `PyErr_CheckSignals`, which raises `KeyboardInterrupt` (or runs
//! whatever Python handler is installed; if that does not raise, the run
//! goes on). A `KeyboardInterrupt` raised inside a callback of such a run
//! (the handler ran there first) does the same (`interrupt_from_callback`).

use rt_core::runtime::Handle;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::SeqCst};

/// The runtime a blocking run on the main thread drives (null: none).
static HOSTED: AtomicPtr<Handle> = AtomicPtr::new(std::ptr::null_mut());
/// Set by the chained handler (or a callback's KeyboardInterrupt): the run
/// returned because of a signal, not a `stop()`.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The SIGINT action found when the run started (its handler address).
static PREV_HANDLER: AtomicUsize = AtomicUsize::new(0);
/// Whether that handler takes `(sig, info, context)` (SA_SIGINFO).
static PREV_SIGINFO: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let prev = PREV_HANDLER.load(SeqCst);
    if prev != libc::SIG_DFL && prev != libc::SIG_IGN {
        if PREV_SIGINFO.load(SeqCst) {
            // SAFETY: the address was the `sa_sigaction` of an action with
            // SA_SIGINFO, so it has this signature; called as the kernel
            // would, with the kernel's own arguments.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(prev) };
            f(sig, info, context);
        } else {
            // SAFETY: the address was the `sa_handler` of an action without
            // SA_SIGINFO, so it takes the signal number only.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev) };
            f(sig);
        }
    }
    stop_hosted();
}

/// Marks the run interrupted and stops it (async-signal-safe: atomics and
/// `Handle::stop`).
fn stop_hosted() {
    INTERRUPTED.store(true, SeqCst);
    let hosted = HOSTED.load(SeqCst);
    // SAFETY: HOSTED points to the handle of the runtime a `Chain` guard's
    // run drives; the guard clears it before that run (and the runtime
    // reference it borrows) ends.
    if let Some(handle) = unsafe { hosted.as_ref() } {
        handle.stop();
    }
}

/// A callback of a blocking run on the main thread raised
/// `KeyboardInterrupt`: ends the run as the signal would have. False if no
/// such run is under way (the exception is then reported as any other).
pub(crate) fn interrupt_from_callback() -> bool {
    if HOSTED.load(SeqCst).is_null() || !is_main_thread() {
        return false;
    }
    stop_hosted();
    true
}

fn is_main_thread() -> bool {
    // SAFETY: plain syscalls without arguments.
    unsafe { libc::gettid() == libc::getpid() }
}

/// The chained SIGINT action, for the time of one blocking run.
pub(crate) struct Chain {
    old: Option<libc::sigaction>,
}

impl Chain {
    /// Chains the SIGINT action if this is the main thread, the action is a
    /// handler (not SIG_DFL / SIG_IGN: then the signal needs no help) and no
    /// other run has it chained. `handle` must outlive the guard.
    pub(crate) fn install(handle: &Handle) -> Chain {
        let none = Chain { old: None };
        if !is_main_thread() || !HOSTED.load(SeqCst).is_null() {
            return none;
        }
        // SAFETY: sigaction with a null new action only reads the current
        // one into a zeroed struct.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        if unsafe { libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old) } != 0 {
            return none;
        }
        if old.sa_sigaction == libc::SIG_DFL || old.sa_sigaction == libc::SIG_IGN {
            return none;
        }
        PREV_HANDLER.store(old.sa_sigaction, SeqCst);
        PREV_SIGINFO.store(old.sa_flags & libc::SA_SIGINFO != 0, SeqCst);
        INTERRUPTED.store(false, SeqCst);
        HOSTED.store(handle as *const Handle as *mut Handle, SeqCst);
        // SAFETY: a zeroed sigaction filled with a valid handler, the old
        // mask and flags (plus SA_SIGINFO for our signature).
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = on_sigint as *const () as usize;
        new.sa_mask = old.sa_mask;
        new.sa_flags = (old.sa_flags & !libc::SA_RESETHAND) | libc::SA_SIGINFO;
        if unsafe { libc::sigaction(libc::SIGINT, &new, std::ptr::null_mut()) } != 0 {
            HOSTED.store(std::ptr::null_mut(), SeqCst);
            return none;
        }
        Chain { old: Some(old) }
    }

    /// True (once) if a SIGINT or a callback's KeyboardInterrupt stopped
    /// the run.
    pub(crate) fn take_interrupted(&self) -> bool {
        self.old.is_some() && INTERRUPTED.swap(false, SeqCst)
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        let Some(old) = self.old.take() else { return };
        // Put the old action back, unless someone replaced ours meanwhile
        // (`signal.signal` from a callback): theirs stays.
        // SAFETY: reads the current action into a zeroed struct, then
        // restores the saved one; both are valid sigaction structs.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGINT, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction == on_sigint as *const () as usize
            {
                libc::sigaction(libc::SIGINT, &old, std::ptr::null_mut());
            }
        }
        HOSTED.store(std::ptr::null_mut(), SeqCst);
    }
}
