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
    /// Receives the next value, waiting for one if the buffer is empty.
    ///
    /// Returns `None` once the buffer is empty and no value can arrive any
    /// more: all senders are dropped, or [`close`](Receiver::close) was
    /// called.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: if the future is dropped before completing, no value was
    /// taken from the channel.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next value: the building block of [`recv`](Self::recv).
    ///
    /// `Pending` registers the task of `cx` to be woken when a value arrives
    /// or the channel closes (only the waker of the last call is kept).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }

    /// Takes the next value if one is buffered now.
    ///
    /// [`TryRecvError::Disconnected`] means the buffer is empty and will stay
    /// so; [`TryRecvError::Empty`] that a value may still arrive.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.rx.try_recv()
    }

    /// Closes the channel without dropping the receiver: sends fail from now
    /// on (waiting ones too), while the values already buffered can still be
    /// received.
    pub fn close(&mut self) {
        self.rx.close()
    }

    /// True if no value can be sent any more: the channel was closed, or all
    /// senders are dropped. Buffered values may remain.
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
