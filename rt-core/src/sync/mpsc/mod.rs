//! A multi-producer, single-consumer queue for sending values between tasks
//! (and threads).
//!
//! - [`channel`] makes a bounded channel: [`Sender::send`] waits while the
//!   buffer is full (backpressure), and waiting sends are served first come,
//!   first served.
//! - [`unbounded_channel`] makes an unbounded one: [`UnboundedSender::send`]
//!   never waits.
//!
//! Senders are cloneable; the [`Receiver`] sees `None` once every sender is
//! dropped (or it [closed](Receiver::close) the channel) and the buffered
//! values are drained. Dropping the receiver drops the buffered values and
//! makes every send fail, giving the value back in a [`SendError`].
//!
//! Nothing here depends on a runtime: the handles are `Send` and `Sync` when
//! the value type is `Send`, sending without waiting works from any thread,
//! and the futures work with any executor's wakers.
//!
//! ```
//! use rt_core::sync::mpsc;
//!
//! let (tx, mut rx) = mpsc::unbounded_channel();
//! let producer = std::thread::spawn(move || {
//!     for i in 0..3 {
//!         tx.send(i).unwrap();
//!     }
//! });
//! producer.join().unwrap();
//! assert_eq!(rx.try_recv(), Ok(0));
//! assert_eq!(rx.try_recv(), Ok(1));
//! assert_eq!(rx.try_recv(), Ok(2));
//! assert_eq!(rx.try_recv(), Err(mpsc::error::TryRecvError::Disconnected));
//! ```
//!
//! [`SendError`]: error::SendError

mod bounded;
mod chan;
pub mod error;
mod unbounded;

pub use bounded::{channel, Receiver, Sender};
pub use unbounded::{unbounded_channel, UnboundedReceiver, UnboundedSender};

#[cfg(all(test, not(loom)))]
pub(in crate::sync) mod test_util;
