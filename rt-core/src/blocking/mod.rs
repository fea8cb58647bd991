//! The blocking pool: threads for work that blocks (`spawn_blocking`), for
//! the multi-thread workers themselves, and for `block_in_place` handoffs.
//!
//! - `pool.rs`: the pool (threads on demand up to a cap, idle threads exit
//!   after a keep-alive, shutdown with a timeout);
//! - `task.rs`: a closure as a one-poll future, and the scheduler stub
//!   blocking tasks are bound to;
//! - `place.rs`: `block_in_place`.

mod place;
pub(crate) mod pool;
mod task;

pub use place::block_in_place;
pub(crate) use pool::{BlockingPool, Spawner};

use crate::task::JoinHandle;

/// Runs `f` on the runtime's blocking pool and returns a handle to its
/// result. Use it for code that blocks (file I/O, a synchronous library,
/// heavy computation) so the async workers keep running other tasks.
///
/// `f` runs with the runtime as the current one, as in Tokio: `spawn`,
/// `sleep`, sockets and `Handle::current()` work in it, and so does
/// `Handle::current().block_on(..)` (a blocking thread does not drive the
/// runtime).
///
/// Threads are created on demand up to `Builder::max_blocking_threads`
/// (default 512); beyond that, calls queue. Once `f` has started it cannot
/// be aborted (abort only prevents a queued `f` from starting). At runtime
/// shutdown, closures still waiting for a free thread (the pool at its cap)
/// are dropped and their handles report cancellation; a closure a thread
/// was started or woken for counts as started (as in Tokio) and runs.
/// Running ones are waited for up to the shutdown timeout, and one still
/// running then finishes in the background and delivers its result.
///
/// # Panics
/// Outside a runtime context.
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    crate::runtime::Handle::current().spawn_blocking(f)
}
