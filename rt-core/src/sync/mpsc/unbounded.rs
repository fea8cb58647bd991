//! The unbounded channel: [`unbounded_channel`], [`UnboundedSender`],
//! [`UnboundedReceiver`].

use std::fmt;
use std::task::{Context, Poll};

use super::chan::{self, Rx, Tx};
use super::error::{SendError, TryRecvError};

/// Creates a channel with no bound on the number of buffered values: sending
/// never waits (and memory is the only limit).
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    let (tx, rx) = chan::channel(None);
    (UnboundedSender { tx }, UnboundedReceiver { rx })
}

/// Sends values into an unbounded channel. Cloning it makes another sender of
/// the same channel; the receiver sees the end of the stream once all are
/// dropped.
pub struct UnboundedSender<T> {
    tx: Tx<T>,
}

impl<T> UnboundedSender<T> {
    /// Sends `value` without waiting.
    ///
    /// Fails, giving the value back, if the receiver is closed or dropped.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.tx
            .try_send(value)
            .map_err(|err| SendError(err.into_inner()))
    }

    /// Resolves once the receiver is closed or dropped.
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    /// True if the receiver is closed or dropped: every send will fail.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl<T> Clone for UnboundedSender<T> {
    fn clone(&self) -> UnboundedSender<T> {
        UnboundedSender {
            tx: self.tx.clone(),
        }
    }
}

impl<T> fmt::Debug for UnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnboundedSender")
            .field("chan", &self.tx)
            .finish()
    }
}

/// Receives the values sent into an unbounded channel, in the order they were
/// sent.
///
/// Dropping it closes the channel: buffered values are dropped and sends fail.
pub struct UnboundedReceiver<T> {
    rx: Rx<T>,
}

impl<T> UnboundedReceiver<T> {
    receiver_methods!();
}

impl<T> fmt::Debug for UnboundedReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnboundedReceiver")
            .field("chan", &self.rx)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::mpsc::test_util::{block_on, counting_waker, DropCounter};

    #[test]
    fn unbounded_send_never_waits_and_keeps_order() {
        let (tx, mut rx) = unbounded_channel();
        for i in 0..1000 {
            tx.send(i).unwrap();
        }
        assert_eq!(rx.len(), 1000);
        for i in 0..1000 {
            assert_eq!(rx.try_recv(), Ok(i));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert!(rx.is_empty());
    }

    #[test]
    fn unbounded_recv_wakes_on_send_and_on_last_sender_drop() {
        let (tx, mut rx) = unbounded_channel::<u32>();
        let (waker, wakes) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_recv(&mut cx).is_pending());
        tx.send(7).unwrap();
        assert_eq!(wakes.get(), 1);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(7)));

        let tx2 = tx.clone();
        assert!(rx.poll_recv(&mut cx).is_pending());
        drop(tx);
        assert_eq!(wakes.get(), 1, "a sender remains: no wakeup");
        drop(tx2);
        assert_eq!(wakes.get(), 2);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(None));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn unbounded_close_and_receiver_drop() {
        let (tx, mut rx) = unbounded_channel();
        tx.send(1).unwrap();
        rx.close();
        assert!(tx.is_closed());
        assert!(rx.is_closed());
        assert_eq!(tx.send(2), Err(SendError(2)));
        assert_eq!(block_on(rx.recv()), Some(1));
        assert_eq!(block_on(rx.recv()), None);

        let counter = DropCounter::new();
        let (tx, rx) = unbounded_channel();
        tx.send(counter.item()).unwrap();
        tx.send(counter.item()).unwrap();
        drop(rx);
        assert_eq!(counter.dropped(), 2);
        let err = tx.send(counter.item()).unwrap_err();
        assert_eq!(counter.dropped(), 2);
        drop(err);
        assert_eq!(counter.dropped(), 3);
        block_on(tx.closed());
    }

    #[test]
    fn unbounded_closed_resolves_on_receiver_drop() {
        let (tx, rx) = unbounded_channel::<()>();
        let handle = std::thread::spawn(move || block_on(tx.closed()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!handle.is_finished());
        drop(rx);
        handle.join().unwrap();
    }
}
