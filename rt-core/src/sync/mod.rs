//! Channels for passing values between tasks (and threads).
//!
//! - [`oneshot`]: a single value, from one sender to one receiver.
//! - [`mpsc`]: a queue from many senders to one receiver, bounded (with
//!   backpressure: a full channel makes `send` wait) or unbounded.

pub mod mpsc;
pub mod oneshot;
