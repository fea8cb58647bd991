//! Asynchronous I/O: the reactor and readiness-based primitives.
//!
//! - [`AsyncFd`]: readiness of any file descriptor;
//! - [`Interest`] / [`Ready`]: what to wait for, what was reported;
//! - [`read`], [`read_exact`], [`write_all`], [`flush`]: helpers over the
//!   `futures-io` [`AsyncRead`] / [`AsyncWrite`] traits (re-exported), which
//!   the net types implement.
//!
//! Internals: `driver.rs` (the mio reactor), `scheduled_io.rs` (per-resource
//! readiness word, `poll_*` waker slots and async waiter lists),
//! `waiter_list.rs` (the slab of async waiters), `registration.rs` (the
//! readiness loops, with the coop budget),
//! `poll_evented.rs` (a registered mio source), `host_timer.rs` (the
//! timerfd that makes the epoll fd readable for a host's own wait).

mod async_fd;
pub(crate) mod driver;
pub(crate) mod host_timer;
mod interest;
pub(crate) mod poll_evented;
mod ready;
pub(crate) mod registration;
pub(crate) mod scheduled_io;
mod shutdown;
mod util;
mod waiter_list;

pub use async_fd::{AsyncFd, AsyncFdReadyGuard, TryIoError};
pub use futures_io::{AsyncRead, AsyncWrite};
pub use interest::Interest;
pub use ready::Ready;
pub(crate) use shutdown::error as shutdown_error;
pub use shutdown::RuntimeShutdown;
pub use util::{flush, read, read_exact, write_all};
