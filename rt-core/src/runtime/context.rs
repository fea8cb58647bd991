//! Thread-local runtime context.
//!
//! Three things are tracked per thread:
//! - the *current handle*: which runtime `spawn` and `Handle::current` use
//!   (set by `Runtime::enter`, `block_on`, on worker threads and around
//!   `spawn_blocking` closures);
//! - whether the thread is *inside a runtime* (driving one): then a nested
//!   `block_on` would deadlock and is refused, and so is a wait for a
//!   runtime's threads (dropping a runtime);
//! - the *scheduler context*: the scheduler state of the worker (or
//!   `block_on` thread) running right now, so a wake from a task running
//!   on this thread can go to the local queue instead of the shared one.
//!
//! Every access tolerates the thread-local storage being torn down (a
//! runtime or `LocalSet` kept in a user's `thread_local!` is dropped during
//! the thread's exit, maybe after these): the value then reads as unset
//! and a set is skipped.

use crate::scheduler;
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;

thread_local! {
    static CURRENT: RefCell<Option<scheduler::Handle>> = const { RefCell::new(None) };
    static IN_RUNTIME: Cell<Entered> = const { Cell::new(Entered::No) };
    static SCHEDULER: Cell<Option<NonNull<scheduler::Context>>> = const { Cell::new(None) };
}

/// Whether, and into which flavor, this thread entered a runtime (drives it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Entered {
    No,
    /// A worker or `block_on` of a multi-thread runtime: `block_in_place`
    /// is allowed.
    MultiThread,
    /// A current-thread runtime's `block_on` / run: `block_in_place` is not.
    CurrentThread,
}

/// Restores the previous current handle on drop.
pub(crate) struct SetCurrentGuard {
    prev: Option<scheduler::Handle>,
    /// False if the thread-local was gone, so nothing was set.
    set: bool,
}

impl std::fmt::Debug for SetCurrentGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetCurrentGuard")
    }
}

/// Makes `handle` the current one until the guard drops (nothing, during
/// thread-local teardown).
pub(crate) fn set_current(handle: &scheduler::Handle) -> SetCurrentGuard {
    match CURRENT.try_with(|c| c.borrow_mut().replace(handle.clone())) {
        Ok(prev) => SetCurrentGuard { prev, set: true },
        Err(_) => SetCurrentGuard {
            prev: None,
            set: false,
        },
    }
}

impl Drop for SetCurrentGuard {
    fn drop(&mut self) {
        if !self.set {
            return;
        }
        let prev = self.prev.take();
        // Take the replaced handle out before dropping it: its drop may run
        // code that reads the current handle.
        let replaced = CURRENT
            .try_with(|c| std::mem::replace(&mut *c.borrow_mut(), prev))
            .ok();
        drop(replaced);
    }
}

/// The current handle, if any.
pub(crate) fn current() -> Option<scheduler::Handle> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// Marks the thread as driving a runtime until the guard drops.
pub(crate) struct EnterRuntimeGuard {
    _current: SetCurrentGuard,
}

/// Enters the runtime on this thread, or `None` if the thread already
/// drives one (a nested `block_on` would block the outer runtime's tasks).
pub(crate) fn try_enter_runtime(handle: &scheduler::Handle) -> Option<EnterRuntimeGuard> {
    // During thread-local teardown the flag is still readable (it has no
    // destructor); if it were not, entering is refused.
    let entered = match handle {
        scheduler::Handle::CurrentThread(_) => Entered::CurrentThread,
        scheduler::Handle::MultiThread(_) => Entered::MultiThread,
    };
    let prev = IN_RUNTIME
        .try_with(|c| {
            let prev = c.get();
            if prev == Entered::No {
                c.set(entered);
            }
            prev
        })
        .unwrap_or(Entered::MultiThread);
    if prev != Entered::No {
        return None;
    }
    Some(EnterRuntimeGuard {
        _current: set_current(handle),
    })
}

/// Enters the runtime, panicking with a clear message if already inside one.
#[track_caller]
pub(crate) fn enter_runtime(handle: &scheduler::Handle) -> EnterRuntimeGuard {
    try_enter_runtime(handle).expect(
        "Cannot start a runtime from within a runtime. This happens because a function \
         (like `block_on`) attempted to block the current thread while the thread is being \
         used to drive asynchronous tasks.",
    )
}

/// True if this thread drives a runtime now (a worker, or inside
/// `block_on`): blocking it would stall that runtime's tasks.
pub(crate) fn is_in_runtime() -> bool {
    IN_RUNTIME.try_with(|c| c.get()).unwrap_or(Entered::No) != Entered::No
}

/// True if this thread drives a current-thread runtime now (where
/// `block_in_place` has no other thread to hand the work to).
pub(crate) fn is_in_current_thread_runtime() -> bool {
    IN_RUNTIME.try_with(|c| c.get()).unwrap_or(Entered::No) == Entered::CurrentThread
}

/// Leaves the "driving a runtime" state until the guard drops, also when
/// unwinding (used by `block_in_place`, whose closure may call `block_on`
/// or drop a runtime). The current handle stays.
pub(crate) struct ExitRuntimeGuard {
    was_in: Entered,
}

pub(crate) fn exit_runtime() -> ExitRuntimeGuard {
    ExitRuntimeGuard {
        was_in: IN_RUNTIME
            .try_with(|c| c.replace(Entered::No))
            .unwrap_or(Entered::No),
    }
}

impl Drop for ExitRuntimeGuard {
    fn drop(&mut self) {
        let was_in = self.was_in;
        let _ = IN_RUNTIME.try_with(|c| c.set(was_in));
    }
}

impl Drop for EnterRuntimeGuard {
    fn drop(&mut self) {
        let _ = IN_RUNTIME.try_with(|c| c.set(Entered::No));
    }
}

/// Runs `f` with `cx` as this thread's scheduler context.
pub(crate) fn set_scheduler<R>(cx: &scheduler::Context, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<NonNull<scheduler::Context>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let prev = self.0;
            let _ = SCHEDULER.try_with(|c| c.set(prev));
        }
    }
    // If the thread-local is gone, `f` runs without a scheduler context:
    // its wakes take the remote path.
    let prev = SCHEDULER
        .try_with(|c| c.replace(Some(NonNull::from(cx))))
        .ok()
        .flatten();
    let _reset = Reset(prev);
    f()
}

/// Gives `f` this thread's scheduler context, if one is set.
pub(crate) fn with_scheduler<R>(f: impl FnOnce(Option<&scheduler::Context>) -> R) -> R {
    let ptr = SCHEDULER.try_with(|c| c.get()).ok().flatten();
    // SAFETY: the pointer was set by `set_scheduler` from a reference that
    // outlives the closure it ran (the guard resets it before that
    // reference ends), and it is only used on this thread.
    let cx = ptr.map(|p| unsafe { p.as_ref() });
    f(cx)
}

/// A runtime handle that does not keep the runtime alive: held by the
/// blocking pool (which the runtime owns) to run its threads' start and
/// stop hooks inside the runtime's context.
pub(crate) enum WeakHandle {
    CurrentThread(std::sync::Weak<scheduler::current_thread::Handle>),
    MultiThread(std::sync::Weak<scheduler::multi_thread::Handle>),
}

impl WeakHandle {
    pub(crate) fn new(handle: &scheduler::Handle) -> WeakHandle {
        match handle {
            scheduler::Handle::CurrentThread(h) => {
                WeakHandle::CurrentThread(std::sync::Arc::downgrade(h))
            }
            scheduler::Handle::MultiThread(h) => {
                WeakHandle::MultiThread(std::sync::Arc::downgrade(h))
            }
        }
    }

    /// The runtime's handle, if it is still alive.
    pub(crate) fn upgrade(&self) -> Option<scheduler::Handle> {
        match self {
            WeakHandle::CurrentThread(h) => h.upgrade().map(scheduler::Handle::CurrentThread),
            WeakHandle::MultiThread(h) => h.upgrade().map(scheduler::Handle::MultiThread),
        }
    }
}

/// Runs `f` with the runtime behind `weak` as the current one (if it is
/// still alive), holding it only while `f` runs.
pub(crate) fn with_weak_current<R>(weak: Option<&WeakHandle>, f: impl FnOnce() -> R) -> R {
    let handle = weak.and_then(WeakHandle::upgrade);
    let _guard = handle.as_ref().map(set_current);
    f()
}
