//! Signals (Ctrl-C first) while a host thread blocks in `Runtime.run()`.
//!
//! The GIL is released while `run` waits in `epoll_wait`; Python's C signal
//! handler only sets a flag there, and the runtime goes back to waiting
//! after the `EINTR`, so the Python handler (`KeyboardInterrupt` for
//! SIGINT) would not run until the run ends. So for the time of a blocking
//! run on the main thread (where Python runs its signal handlers), the
//! action of each asynchronous signal that has a handler is chained: the
//! handler found there runs first (Python's: the signal is seen by Python
//! as usual), then the run is stopped (`Handle::stop`: an atomic swap and
//! an eventfd write, async-signal-safe). `run` then takes the GIL back and
//! calls `PyErr_CheckSignals`, which runs the Python handlers: an exception
//! they raise (`KeyboardInterrupt`) comes out of `run`; otherwise the run
//! goes on. A `KeyboardInterrupt` raised inside a callback of such a run
//! (the handler ran there first) ends it through `escape.rs`.

use rt_core::runtime::Handle;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::SeqCst};

/// The asynchronous signals whose handlers a blocking run lets run
/// promptly (not the synchronous ones: SIGSEGV, SIGBUS, ...).
const SIGNALS: [libc::c_int; 9] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGALRM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGCHLD,
    libc::SIGWINCH,
];

/// Room for every signal number (Linux: below 65).
const NSIG: usize = 65;

/// The runtime a blocking run on the main thread drives (null: none).
static HOSTED: AtomicPtr<Handle> = AtomicPtr::new(std::ptr::null_mut());
/// Calls of `stop_hosted` that may be using the handle HOSTED points to
/// (signal handlers run on any thread): the guard that clears HOSTED waits
/// until none is.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Set by a chained handler: the run
/// returned because of a signal, not a `stop()`.
static SIGNALLED: AtomicBool = AtomicBool::new(false);
/// Per signal, the handler found when the run started (its address).
static PREV_HANDLER: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];
/// Per signal, whether that handler takes `(sig, info, context)`.
static PREV_SIGINFO: [AtomicBool; NSIG] = [const { AtomicBool::new(false) }; NSIG];

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // A handler must leave errno as it found it (the interrupted code may
    // be about to read it); the eventfd write of `stop_hosted` may set it.
    // SAFETY: `__errno_location` returns this thread's errno, always valid.
    let errno = unsafe { *libc::__errno_location() };
    chain(sig, info, context);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// The work of `on_signal`: the handler found when the run started, then
/// the stop of the run.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(slot) = usize::try_from(sig).ok().filter(|&s| s < NSIG) else {
        return;
    };
    let prev = PREV_HANDLER[slot].load(SeqCst);
    if prev != libc::SIG_DFL && prev != libc::SIG_IGN {
        if PREV_SIGINFO[slot].load(SeqCst) {
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

/// Marks the run signalled and stops it (async-signal-safe: atomics and
/// `Handle::stop`).
fn stop_hosted() {
    SIGNALLED.store(true, SeqCst);
    // Counted before the load (SeqCst, a Dekker pair with `Chain::drop`'s
    // store of null then load of the count): either this load sees null,
    // or the guard sees this call in flight and waits for it.
    IN_FLIGHT.fetch_add(1, SeqCst);
    let hosted = HOSTED.load(SeqCst);
    // SAFETY: HOSTED points to the handle of the runtime a `Chain` guard's
    // run drives, which the guard borrows; the guard clears it (after
    // restoring the actions) and then waits until no call of this function
    // is in flight before that borrow ends: a non-null pointer loaded here
    // stays valid until the decrement below.
    if let Some(handle) = unsafe { hosted.as_ref() } {
        handle.stop();
    }
    IN_FLIGHT.fetch_sub(1, SeqCst);
}

/// True on the process's main thread (where Python runs signal handlers).
pub(crate) fn is_main_thread() -> bool {
    // SAFETY: plain syscalls without arguments.
    unsafe { libc::gettid() == libc::getpid() }
}

/// The chained signal actions, for the time of one blocking run.
pub(crate) struct Chain {
    /// The signals chained and their previous actions.
    old: Vec<(libc::c_int, libc::sigaction)>,
    /// This guard set HOSTED.
    hosting: bool,
}

impl Chain {
    /// Chains the actions (see the module) if this is the main thread and
    /// no other run has them chained. `handle` must outlive the guard.
    pub(crate) fn install(handle: &Handle) -> Chain {
        let mut chain = Chain {
            old: Vec::new(),
            hosting: false,
        };
        if !is_main_thread()
            || HOSTED
                .compare_exchange(
                    std::ptr::null_mut(),
                    handle as *const Handle as *mut Handle,
                    SeqCst,
                    SeqCst,
                )
                .is_err()
        {
            return chain;
        }
        chain.hosting = true;
        SIGNALLED.store(false, SeqCst);
        for sig in SIGNALS {
            // SAFETY: a plain C struct, valid all zero.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: with a null new action, sigaction only reads the
            // current one into `old`.
            if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0
                || old.sa_sigaction == libc::SIG_DFL
                || old.sa_sigaction == libc::SIG_IGN
            {
                continue; // no handler to run: nothing to chain
            }
            let slot = sig as usize;
            PREV_HANDLER[slot].store(old.sa_sigaction, SeqCst);
            PREV_SIGINFO[slot].store(old.sa_flags & libc::SA_SIGINFO != 0, SeqCst);
            // SAFETY: a plain C struct, valid all zero; filled below with a
            // handler of the SA_SIGINFO signature, the old mask and flags.
            let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
            new.sa_sigaction = on_signal as *const () as usize;
            new.sa_mask = old.sa_mask;
            new.sa_flags = (old.sa_flags & !libc::SA_RESETHAND) | libc::SA_SIGINFO;
            // SAFETY: installs a valid action.
            if unsafe { libc::sigaction(sig, &new, std::ptr::null_mut()) } == 0 {
                chain.old.push((sig, old));
            }
        }
        chain
    }

    /// True (once) if a signal stopped the run.
    pub(crate) fn take_interrupted(&self) -> bool {
        self.hosting && SIGNALLED.swap(false, SeqCst)
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        for (sig, old) in self.old.drain(..) {
            // Put the old action back, unless someone replaced ours
            // meanwhile (`signal.signal` from a callback): theirs stays.
            // SAFETY: reads the current action into a zeroed struct, then
            // restores the saved one; both are valid sigaction structs.
            unsafe {
                let mut current: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut current) == 0
                    && current.sa_sigaction == on_signal as *const () as usize
                {
                    libc::sigaction(sig, &old, std::ptr::null_mut());
                }
            }
        }
        if self.hosting {
            HOSTED.store(std::ptr::null_mut(), SeqCst);
            // A handler on another thread may still be using the handle
            // (see `stop_hosted`): a few instructions, async-signal-safe
            // (an atomic swap, an eventfd write). A handler interrupting
            // this thread's spin finishes before the spin resumes.
            while IN_FLIGHT.load(SeqCst) != 0 {
                std::hint::spin_loop();
            }
        }
    }
}
