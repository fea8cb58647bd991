//! `rt-core`: the Rust heart of the `rt` async runtime.
//!
//! It runs futures the way Tokio does, with names a Tokio user knows:
//!
//! - [`runtime`]: [`Builder`](runtime::Builder), [`Runtime`](runtime::Runtime)
//!   and [`Handle`](runtime::Handle) for a current-thread or a multi-thread
//!   work-stealing runtime;
//! - [`task`]: [`spawn`], [`JoinHandle`](task::JoinHandle),
//!   [`AbortHandle`](task::AbortHandle), [`yield_now`](task::yield_now) and the
//!   cooperative budget;
//! - [`sync`]: [`oneshot`](sync::oneshot) and [`mpsc`](sync::mpsc) channels;
//! - [`callback`]: the runtime's services for callers that hand it callbacks
//!   ([`CallbackRuntime`](callback::CallbackRuntime): timers, fd watches,
//!   tasks, host-driven mode, completion queue), shared by the C API and the
//!   Python binding.
//!
//! ```
//! use rt_core::runtime::Builder;
//!
//! let rt = Builder::new_multi_thread().worker_threads(2).build().unwrap();
//! let sum = rt.block_on(async {
//!     let handles: Vec<_> = (0..10u64).map(|i| rt_core::spawn(async move { i * 2 })).collect();
//!     let mut sum = 0;
//!     for h in handles {
//!         sum += h.await.unwrap();
//!     }
//!     sum
//! });
//! assert_eq!(sum, 90);
//! ```
//!
//! The map of the code is in `docs/ARCHITECTURE.md` at the repository root.

#![warn(missing_docs, missing_debug_implementations)]

pub(crate) mod blocking;
pub mod callback;
pub mod event_loop;
pub mod io;
pub(crate) mod loom;
pub mod net;
pub mod runtime;
pub(crate) mod scheduler;
pub mod sync;
pub mod task;
pub mod time;
pub mod util;

pub use task::spawn;
