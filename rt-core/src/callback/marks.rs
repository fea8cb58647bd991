//! Thread marks shared by every caller of the layer (a C callback and a
//! Python callback on the same thread are both "callbacks"): how deep the
//! thread is inside callbacks made by the runtime, how many calls it made,
//! and whether it runs blocking work.

use std::cell::Cell;

thread_local! {
    /// How deep this thread is inside callbacks made by the runtime.
    static IN_CALLBACK: Cell<u32> = const { Cell::new(0) };
    /// Callbacks this thread has made (host runs report the difference).
    static CALLS: Cell<u64> = const { Cell::new(0) };
    /// While this thread runs the `work` of blocking work: the runtime's
    /// identity ([`ShutdownFlag`](super::ShutdownFlag)'s); 0 otherwise.
    static IN_WORK: Cell<usize> = const { Cell::new(0) };
}

/// How many callbacks this thread has made so far (through [`in_callback`]).
pub fn calls_made() -> u64 {
    CALLS.try_with(|c| c.get()).unwrap_or(0)
}

/// Runs `f` (which calls a callback) marked as "inside a callback", so that
/// blocking calls made from it (a task join, a stop that would wait for
/// another callback, a host run) answer [`Error::WouldDeadlock`](super::Error::WouldDeadlock)
/// instead of deadlocking; and counts the call ([`calls_made`]). The layer
/// wraps every call it makes in it; a binding wraps the calls it makes
/// itself for the runtime (the C API's poll functions).
pub fn in_callback<R>(f: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let _ = IN_CALLBACK.try_with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
    IN_CALLBACK.with(|c| c.set(c.get() + 1));
    CALLS.with(|c| c.set(c.get().wrapping_add(1)));
    let _leave = Leave;
    f()
}

/// Makes a call the layer makes itself (a timer's, an fd watch's) as
/// [`in_callback`] does, and contains a panic of the callback: the panic
/// hook has reported it (as it reports a task's panic, which goes nowhere
/// else either), and the caller carries on as if the call had returned. The
/// state machines around such a call (a timer slot "running", a watch's
/// gate) are then never left mid-call, and one callback's panic never
/// takes another's calls with it. (A callback of the C API cannot panic;
/// a binding's may, through a bug of its wrapper.)
pub(crate) fn call_contained(f: impl FnOnce()) {
    // Unwind safety: `f` only makes the call; the layer's state is not
    // touched between the panic and the catch.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| in_callback(f)));
}

/// True while this thread runs a callback for a runtime.
pub fn is_in_callback() -> bool {
    IN_CALLBACK.try_with(|c| c.get() > 0).unwrap_or(false)
}

/// Runs `f` (blocking work of the runtime `owner`, a
/// [`ShutdownFlag`](super::ShutdownFlag) identity) marked as such: blocking
/// calls are fine there, except waiting for a shutdown that waits for this
/// work (the shutdown answers `WouldDeadlock` instead), and a shutdown of
/// `owner` from it counts this work as running.
pub(crate) fn in_blocking_work<R>(owner: usize, f: impl FnOnce() -> R) -> R {
    struct Leave(usize);
    impl Drop for Leave {
        fn drop(&mut self) {
            let _ = IN_WORK.try_with(|c| c.set(self.0));
        }
    }
    let _leave = Leave(IN_WORK.with(|c| c.replace(owner)));
    f()
}

/// True while this thread runs the `work` of blocking work (of any runtime:
/// [`CallbackRuntime::spawn_blocking`](super::CallbackRuntime::spawn_blocking)).
pub fn is_in_blocking_work() -> bool {
    IN_WORK.try_with(|c| c.get() != 0).unwrap_or(false)
}

/// True while this thread runs blocking work of the runtime `owner` (a
/// [`ShutdownFlag`](super::ShutdownFlag) identity).
pub(crate) fn is_in_blocking_work_of(owner: usize) -> bool {
    IN_WORK.try_with(|c| c.get() == owner).unwrap_or(false)
}
