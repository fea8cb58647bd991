//! The bounded channel: [`channel`], [`Sender`], [`Receiver`].

use std::fmt;
use std::task::{Context, Poll};

use super::chan::{self, Rx, Tx};
use super::error::{SendError, TryRecvError, TrySendError};

/// Creates a bounded channel that buffers at most `buffer` values.
///
/// When the buffer is full, [`Sender::send`] waits until the receiver takes a
/// value (backpressure); waiting sends are served in the order they started
/// waiting.
///
/// # Panics
///
/// Panics if `buffer` is 0.
pub fn channel<T>(buffer: usize) -> (Sender<T>, Receiver<T>) {
    assert!(buffer > 0, "mpsc bounded channel requires buffer > 0");
    let (tx, rx) = chan::channel(Some(buffer));
    (Sender { tx }, Receiver { rx })
}

/// Sends values into a bounded channel. Cloning it makes another sender of the
/// same channel; the receiver sees the end of the stream once all are dropped.
pub struct Sender<T> {
    tx: Tx<T>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting for a free slot while the channel is full.
    ///
    /// Fails, giving the value back, if the receiver is closed or dropped
    /// (also while waiting).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes means the value was not sent
    /// (it is dropped with the future). If the future had already been given a
    /// slot, the slot passes to the next waiting send, so no capacity or wakeup
    /// is lost; but it loses its place in the queue.
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.tx.send(value).await
    }

    /// Blocks this thread until `value` is sent (waiting for room while
    /// the channel is full), for code outside the runtime: as
    /// [`send`](Self::send).
    ///
    /// # Panics
    /// On a thread that drives a runtime (a worker, inside `block_on`), as
    /// in Tokio.
    #[track_caller]
    pub fn blocking_send(&self, value: T) -> Result<(), SendError<T>> {
        crate::sync::blocking_wait(self.send(value))
    }

    /// Sends `value` only if that can be done without waiting.
    ///
    /// Fails with [`TrySendError::Full`] when no slot is free, or when other
    /// sends are already waiting for one (they go first), and with
    /// [`TrySendError::Closed`] when the receiver is closed or dropped.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.tx.try_send(value)
    }

    /// Resolves once the receiver is closed or dropped.
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    /// True if the receiver is closed or dropped: every send will fail.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// The number of values that can be sent now without waiting.
    pub fn capacity(&self) -> usize {
        self.tx.capacity()
    }

    /// The channel's buffer size, as given to [`channel`].
    pub fn max_capacity(&self) -> usize {
        self.tx.max_capacity()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        Sender {
            tx: self.tx.clone(),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("chan", &self.tx).finish()
    }
}

/// Receives the values sent into a bounded channel, in the order they were
/// sent.
///
/// Dropping it closes the channel: buffered values are dropped and waiting
/// sends fail, giving their values back.
pub struct Receiver<T> {
    rx: Rx<T>,
}

impl<T> Receiver<T> {
    receiver_methods!();

    /// The number of values that can be sent now without waiting.
    pub fn capacity(&self) -> usize {
        self.rx.capacity()
    }

    /// The channel's buffer size, as given to [`channel`].
    pub fn max_capacity(&self) -> usize {
        self.rx.max_capacity()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("chan", &self.rx).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
