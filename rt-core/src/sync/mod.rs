//! Channels for passing values between tasks (and threads).
//!
//! - [`oneshot`]: a single value, from one sender to one receiver.
//! - [`mpsc`]: a queue from many senders to one receiver, bounded (with
//!   backpressure: a full channel makes `send` wait) or unbounded.

pub mod mpsc;
pub mod oneshot;

/// Waits for `future` on this thread, for the `blocking_*` methods of the
/// channels (a thread outside any runtime: a plain thread, or a
/// `spawn_blocking` closure). Waits on the thread's private parker, so the
/// caller's own `thread::park`/`unpark` use does not interfere.
///
/// # Panics
/// On a thread that drives a runtime (a worker, inside `block_on`), where
/// blocking would stall its tasks; with Tokio's message.
#[track_caller]
pub(crate) fn blocking_wait<F: std::future::Future>(future: F) -> F::Output {
    if crate::runtime::context::is_in_runtime() {
        panic!(
            "Cannot block the current thread from within a runtime. This happens because a \
             function attempted to block the current thread while the thread is being used to \
             drive asynchronous tasks."
        );
    }
    crate::runtime::park::block_on(future)
}
