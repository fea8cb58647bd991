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

/// The receiving methods shared by [`Receiver`] and [`UnboundedReceiver`]
/// (both wrap a `chan::Rx` in a field named `rx`).
macro_rules! receiver_methods {
    () => {
        /// Receives the next value, waiting for one if the buffer is empty.
        ///
        /// Returns `None` once the buffer is empty and no value can arrive
        /// any more: all senders are dropped, or [`close`](Self::close) was
        /// called.
        ///
        /// # Cancel safety
        ///
        /// Cancel-safe: if the future is dropped before completing, no value
        /// was taken from the channel.
        pub async fn recv(&mut self) -> Option<T> {
            std::future::poll_fn(|cx| self.poll_recv(cx)).await
        }

        /// Blocks this thread until the next value arrives, for code outside
        /// the runtime (a plain thread, a `spawn_blocking` closure): as
        /// [`recv`](Self::recv).
        ///
        /// # Panics
        /// On a thread that drives a runtime (a worker, inside
        /// `block_on`), as in Tokio.
        #[track_caller]
        pub fn blocking_recv(&mut self) -> Option<T> {
            crate::sync::blocking_wait(self.recv())
        }

        /// Polls for the next value: the building block of
        /// [`recv`](Self::recv).
        ///
        /// `Pending` registers the task of `cx` to be woken when a value
        /// arrives or the channel closes (only the waker of the last call is
        /// kept).
        pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.rx.poll_recv(cx)
        }

        /// Takes the next value if one is buffered now.
        ///
        /// [`TryRecvError::Disconnected`] means the buffer is empty and will
        /// stay so; [`TryRecvError::Empty`] that a value may still arrive.
        pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
            self.rx.try_recv()
        }

        /// Closes the channel without dropping the receiver: sends fail from
        /// now on (on a bounded channel, waiting ones too), while the values
        /// already buffered can still be received.
        pub fn close(&mut self) {
            self.rx.close()
        }

        /// True if no value can be sent any more: the channel was closed, or
        /// all senders are dropped. Buffered values may remain.
        pub fn is_closed(&self) -> bool {
            self.rx.is_closed()
        }

        /// The number of values buffered now.
        pub fn len(&self) -> usize {
            self.rx.len()
        }

        /// True if no value is buffered now.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }
    };
}

mod bounded;
mod chan;
pub mod error;
mod unbounded;

pub use bounded::{channel, Receiver, Sender};
pub use unbounded::{unbounded_channel, UnboundedReceiver, UnboundedSender};

#[cfg(all(test, not(loom)))]
pub(in crate::sync) mod test_util;
