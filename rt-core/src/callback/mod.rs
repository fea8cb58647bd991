//! Services for callers that hand the runtime callbacks instead of futures:
//! the C API (`rt-ffi`) and the Python binding (`rtpy`) are thin
//! translations of this module.
//!
//! Every callback handed in is called exactly once with its final status:
//! [`Status::Ok`] when its work ran, or [`Status::Cancelled`] as its final
//! call (it never ran: aborted, stopped by shutdown). Timers and fd watches
//! are called once per expiry / readiness, then at most once more with
//! `Cancelled` (never after a successful stop). After a stop (timer stop,
//! watch close) returns [`Stopped::Done`], the callback is not running on
//! any other thread and is never called again.
//!
//! A callback that panics (the C API's cannot; a binding's should not) is
//! reported by the panic hook, and the layer's accounting holds: a timer or
//! watch call that panics counts as returned (a repeat keeps its schedule,
//! a watch keeps watching, their stops and final calls are unchanged); a
//! task's call ends its task as a task's panic does (its handle finished);
//! blocking work that panics gets `done(Cancelled)`. No final call is made
//! while a panic unwinds.
//!
//! - [`CallbackRuntime`]: a runtime with timers, fd watches, callback tasks,
//!   blocking work, a host-driven mode and the shutdown contract
//!   (`runtime.rs`, `lifecycle.rs`, `host.rs`);
//! - [`TaskHandle`]: abort / is_finished / join of a callback task;
//! - [`CompletionQueue`]: callbacks posted from any thread, drained by the
//!   host's thread;
//! - [`InFlight`]: a binding's calls into its own runtime (an interpreter)
//!   under way, and the gate that stops new ones at a shutdown or exit;
//! - the marks ([`in_callback`], [`is_in_callback`]...): a thread inside a
//!   callback of any caller (C or Python) refuses blocking waits that could
//!   wait for itself ([`Error::WouldDeadlock`]).

mod blocking;
mod error;
mod gate;
mod host;
mod in_flight;
mod lifecycle;
mod marks;
mod once;
mod queue;
mod registry;
mod runtime;
mod task;
mod timer;
mod watch;

pub use error::Error;
pub use gate::{ShutdownFlag, Stopped};
pub use in_flight::{Entered, InFlight};
pub use marks::{calls_made, in_callback, is_in_blocking_work, is_in_callback};
pub use once::Once;
pub use queue::CompletionQueue;
pub use runtime::{CallbackRuntime, MetricsSnapshot};
pub use task::TaskHandle;

/// How a callback is called: its work happened ([`Status::Ok`]), or this is
/// its final call ([`Status::Cancelled`]: the work never happened, or the
/// timer / watch was stopped by shutdown).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// The work ran (a task's callback, an expiry, a readiness).
    Ok,
    /// The final call: the work never ran, or no further call follows.
    Cancelled,
}

/// A callback called exactly once: `call(Status::Ok)` when its work ran,
/// or `call(Status::Cancelled)` as its final call ([`Once`] makes that call
/// when dropped uncalled).
pub trait OnceCallback: Send + 'static {
    /// Makes the call, consuming the callback.
    fn call(self, status: Status);
}

impl<F: FnOnce(Status) + Send + 'static> OnceCallback for F {
    fn call(self, status: Status) {
        self(status)
    }
}

/// A timer's callback: `call(Status::Ok)` per expiry, then at most one
/// final `call(Status::Cancelled)` (never after a successful stop).
///
/// `Clone` must be cheap: the timer table hands a copy to each call (the C
/// API's callback is a function pointer and an argument, `Copy`; Python's
/// an `Arc`). Starting a timer allocates nothing of its own. The copy is
/// made under the timer table's lock: `clone` must not call into the
/// runtime (an `Arc`'s does not). A callback is dropped outside the
/// layer's locks: its `Drop` may.
pub trait TimerCallback: Clone + Send + Sync + 'static {
    /// Makes one call.
    fn call(&self, status: Status);
}

/// An fd watch's callback: `call(fd, events, Status::Ok)` per readiness
/// (`events`: [`READABLE`] | [`WRITABLE`] | [`HUP`] | [`ERROR`] bits), then
/// at most one final `call(fd, 0, Status::Cancelled)` (never after a
/// successful close).
pub trait WatchCallback: Send + Sync + 'static {
    /// Makes one call.
    fn call(&self, fd: std::os::fd::RawFd, events: u32, status: Status);
}

/// Interest / event bit: readable (the C API's `RT_READABLE`).
pub const READABLE: u32 = 1;
/// Interest / event bit: writable (`RT_WRITABLE`).
pub const WRITABLE: u32 = 2;
/// Event bit: the peer hung up, or the read / write half closed (`RT_HUP`).
pub const HUP: u32 = 4;
/// Event bit: an error is pending on the fd (`RT_ERROR`).
pub const ERROR: u32 = 8;

/// A timer's id: generational (a slot and its generation), so a stale id
/// never names a later timer ([`Error::NotFound`]).
pub type TimerId = u64;

/// An fd watch's id: generational, as [`TimerId`].
pub type WatchId = u64;
