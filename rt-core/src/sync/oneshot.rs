//! A channel for sending a single value from one task (or thread) to another.
//!
//! [`channel`] makes a [`Sender`] and a [`Receiver`]. The sender
//! [sends](Sender::send) once, consuming itself; the receiver is a future that
//! resolves to the value, or to [`RecvError`] if the sender
//! was dropped without sending. Dropping (or [closing](Receiver::close)) the
//! receiver makes the send fail and give the value back, and resolves the
//! sender's [`closed`](Sender::closed) future.
//!
//! Nothing here depends on a runtime: the handles are `Send` and `Sync` when
//! the value type is `Send`, and the futures work with any executor's wakers.
//!
//! ```
//! use rt_core::sync::oneshot;
//!
//! let (tx, mut rx) = oneshot::channel();
//! std::thread::spawn(move || tx.send(42).unwrap()).join().unwrap();
//! assert_eq!(rx.try_recv(), Ok(42));
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::PoisonError;
use std::task::{ready, Context, Poll, Waker};

use crate::loom::{Arc, Mutex, MutexGuard};
use crate::task::coop;

use self::error::{RecvError, TryRecvError};

/// Errors returned by the oneshot channel.
pub mod error {
    use std::fmt;

    /// The sender was dropped without sending a value (or the receiver was
    /// closed before a value was sent).
    #[derive(Debug, PartialEq, Eq, Clone, Copy)]
    pub struct RecvError(pub(super) ());

    impl fmt::Display for RecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("channel closed")
        }
    }

    impl std::error::Error for RecvError {}

    /// Why [`Receiver::try_recv`](super::Receiver::try_recv) returned no
    /// value.
    #[derive(Debug, PartialEq, Eq, Clone, Copy)]
    pub enum TryRecvError {
        /// No value has been sent yet, but one may still be.
        Empty,
        /// No value will ever be received: the sender was dropped without
        /// sending, the receiver was closed first, or the value was already
        /// taken.
        Closed,
    }

    impl fmt::Display for TryRecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TryRecvError::Empty => f.write_str("channel empty"),
                TryRecvError::Closed => f.write_str("channel closed"),
            }
        }
    }

    impl std::error::Error for TryRecvError {}
}

/// Creates a oneshot channel.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            value: None,
            tx_done: false,
            rx_closed: false,
            rx_waker: None,
            tx_waker: None,
        }),
    });
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner },
    )
}

struct Inner<T> {
    state: Mutex<State<T>>,
}

/// Everything is behind one mutex whose critical sections run no user code
/// beyond cloning or dropping a waker: values are dropped, and wakers woken,
/// after it is released.
struct State<T> {
    /// The sent value, until the receiver takes it (or is dropped).
    value: Option<T>,
    /// The sender sent or was dropped: no (further) value will come.
    tx_done: bool,
    /// The receiver was closed or dropped: sending fails.
    rx_closed: bool,
    /// Woken when a value is sent or the sender is dropped.
    rx_waker: Option<Waker>,
    /// Woken when the receiver is closed or dropped.
    tx_waker: Option<Waker>,
}

impl<T> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Only a waker's clone or drop could panic under the lock, and the
        // state is consistent at those points: a poisoned lock is safe to use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the receiver closed; returns the sender's waker to wake.
    fn close_rx(&self) -> Option<Waker> {
        let mut state = self.lock();
        state.rx_closed = true;
        state.tx_waker.take()
    }
}

impl<T> fmt::Debug for Inner<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Inner")
            .field("has_value", &state.value.is_some())
            .field("tx_done", &state.tx_done)
            .field("rx_closed", &state.rx_closed)
            .finish()
    }
}

fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// Sends the channel's one value. Dropping it without sending makes the
/// receiver resolve to [`RecvError`].
pub struct Sender<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waking the receiver.
    ///
    /// Fails, giving the value back, if the receiver was dropped or closed.
    /// Success does not mean the value will be received: the receiver may
    /// still be dropped first, dropping the value.
    pub fn send(self, value: T) -> Result<(), T> {
        let mut state = self.inner.lock();
        if state.rx_closed {
            return Err(value);
        }
        state.value = Some(value);
        state.tx_done = true;
        let waker = state.rx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        // `self` is dropped here; `tx_done` tells its `Drop` there is nothing
        // left to do.
        Ok(())
    }

    /// True if the receiver was dropped or closed: [`send`](Self::send) would
    /// fail.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().rx_closed
    }

    /// Resolves once the receiver is dropped or closed.
    pub async fn closed(&mut self) {
        std::future::poll_fn(|cx| self.poll_closed(cx)).await
    }

    /// Polls for the receiver being dropped or closed: the building block of
    /// [`closed`](Self::closed). `Pending` registers the task of `cx` (only
    /// the waker of the last call is kept).
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let coop = ready!(coop::poll_proceed(cx));
        let mut state = self.inner.lock();
        if state.rx_closed {
            coop.made_progress();
            return Poll::Ready(());
        }
        register(&mut state.tx_waker, cx);
        Poll::Pending
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        // The sender's own `closed` waker: nobody polls it any more, and the
        // receiver keeps the state (and so the waker) alive.
        let own_waker = state.tx_waker.take();
        let waker = if state.tx_done {
            // `send` already woke the receiver.
            None
        } else {
            state.tx_done = true;
            state.rx_waker.take()
        };
        drop(state);
        drop(own_waker);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("inner", &self.inner)
            .finish()
    }
}

/// Receives the channel's one value: await it, or poll with
/// [`try_recv`](Receiver::try_recv).
///
/// Awaiting resolves to the value, or to [`RecvError`] if the sender was
/// dropped without sending or the receiver was closed before a value was sent.
/// Polling again after it resolved gives `Err(RecvError)`. Dropping the
/// receiver drops a value that was sent but not received.
pub struct Receiver<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Receiver<T> {
    /// Blocks this thread until the value arrives, for code outside the
    /// runtime (a plain thread, a `spawn_blocking` closure): as awaiting
    /// the receiver.
    ///
    /// # Panics
    /// On a thread that drives a runtime (a worker, inside `block_on`), as
    /// in Tokio.
    #[track_caller]
    pub fn blocking_recv(self) -> Result<T, RecvError> {
        crate::sync::blocking_wait(self)
    }

    /// Takes the value if it was sent.
    ///
    /// [`TryRecvError::Empty`] means a value may still come;
    /// [`TryRecvError::Closed`] that none will (the sender is gone, the
    /// receiver was closed first, or the value was already taken).
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.inner.lock();
        if let Some(value) = state.value.take() {
            return Ok(value);
        }
        if state.tx_done || state.rx_closed {
            Err(TryRecvError::Closed)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Closes the receiver without dropping it: a later send fails, and the
    /// sender's [`closed`](Sender::closed) resolves. A value sent before the
    /// close can still be received.
    pub fn close(&mut self) {
        if let Some(waker) = self.inner.close_rx() {
            waker.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let coop = ready!(coop::poll_proceed(cx));
        let mut state = self.inner.lock();
        if let Some(value) = state.value.take() {
            coop.made_progress();
            return Poll::Ready(Ok(value));
        }
        if state.tx_done || state.rx_closed {
            coop.made_progress();
            return Poll::Ready(Err(RecvError(())));
        }
        register(&mut state.rx_waker, cx);
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        state.rx_closed = true;
        let waker = state.tx_waker.take();
        // The receiver's own waker: nobody will wake it any more, and the
        // sender keeps the state (and so the waker) alive.
        let own_waker = state.rx_waker.take();
        let value = state.value.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        drop(own_waker);
        drop(value);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("inner", &self.inner)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::mpsc::test_util::{
        block_on, counting_waker, poll_once, with_timeout, DropCounter,
    };
    use std::thread;
    use std::time::Duration;

    #[test]
    fn send_then_receive() {
        let (tx, rx) = channel();
        assert_eq!(tx.send(5), Ok(()));
        assert_eq!(block_on(rx), Ok(5));
    }

    #[test]
    fn pending_receiver_is_woken_by_send() {
        let (tx, mut rx) = channel();
        let (waker, wakes) = counting_waker();
        assert!(poll_once(&mut rx, &waker).is_pending());
        assert!(poll_once(&mut rx, &waker).is_pending());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        tx.send("hi").unwrap();
        assert_eq!(wakes.get(), 1);
        assert_eq!(poll_once(&mut rx, &waker), Poll::Ready(Ok("hi")));
        // Polling after completion reports the channel as spent.
        assert_eq!(poll_once(&mut rx, &waker), Poll::Ready(Err(RecvError(()))));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    }

    #[test]
    fn receiver_follows_the_latest_waker() {
        let (tx, mut rx) = channel();
        let (first, first_wakes) = counting_waker();
        let (second, second_wakes) = counting_waker();
        assert!(poll_once(&mut rx, &first).is_pending());
        assert!(poll_once(&mut rx, &second).is_pending());
        tx.send(()).unwrap();
        assert_eq!((first_wakes.get(), second_wakes.get()), (0, 1));
    }

    #[test]
    fn dropping_the_sender_gives_recv_error() {
        let (tx, mut rx) = channel::<u8>();
        let (waker, wakes) = counting_waker();
        assert!(poll_once(&mut rx, &waker).is_pending());
        drop(tx);
        assert_eq!(wakes.get(), 1);
        assert_eq!(poll_once(&mut rx, &waker), Poll::Ready(Err(RecvError(()))));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));

        let (tx, rx) = channel::<u8>();
        drop(tx);
        assert_eq!(block_on(rx), Err(RecvError(())));
    }

    #[test]
    fn dropping_the_receiver_fails_send_with_the_value() {
        let (tx, rx) = channel();
        assert!(!tx.is_closed());
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send(String::from("back")), Err(String::from("back")));
    }

    #[test]
    fn close_fails_later_sends_but_keeps_an_earlier_value() {
        let (waker, _) = counting_waker();
        let (tx, mut rx) = channel();
        rx.close();
        assert!(tx.is_closed());
        assert_eq!(tx.send(1), Err(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        assert_eq!(poll_once(&mut rx, &waker), Poll::Ready(Err(RecvError(()))));

        let (tx, mut rx) = channel();
        tx.send(2).unwrap();
        rx.close();
        assert_eq!(poll_once(&mut rx, &waker), Poll::Ready(Ok(2)));

        // Closed with the sender alive: resolves at once, no waiting.
        let (tx, mut rx) = channel::<u8>();
        rx.close();
        assert_eq!(poll_once(&mut rx, &waker), Poll::Ready(Err(RecvError(()))));
        drop(tx);
    }

    #[test]
    fn closed_resolves_when_the_receiver_goes() {
        let (mut tx, rx) = channel::<()>();
        let (waker, wakes) = counting_waker();
        assert!(tx
            .poll_closed(&mut Context::from_waker(&waker))
            .is_pending());
        drop(rx);
        assert_eq!(wakes.get(), 1);
        assert!(tx.poll_closed(&mut Context::from_waker(&waker)).is_ready());
        block_on(tx.closed());

        let (mut tx, mut rx) = channel::<()>();
        let waiter = thread::spawn(move || {
            block_on(tx.closed());
            tx.is_closed()
        });
        thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished());
        rx.close();
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn dropped_handles_release_the_wakers_stored_for_them() {
        // The receiver's waker, receiver dropped while the sender lives.
        let (tx, mut rx) = channel::<u8>();
        let (waker, wakes) = counting_waker();
        assert!(poll_once(&mut rx, &waker).is_pending());
        drop(waker);
        assert_eq!(wakes.alive(), 1);
        drop(rx);
        assert_eq!(wakes.alive(), 0, "the receiver's waker outlived it");
        drop(tx);

        // The sender's `closed` waker, sender dropped while the receiver
        // lives.
        let (mut tx, rx) = channel::<u8>();
        let (waker, wakes) = counting_waker();
        assert!(tx
            .poll_closed(&mut Context::from_waker(&waker))
            .is_pending());
        drop(waker);
        drop(tx);
        assert_eq!(wakes.alive(), 0, "the sender's waker outlived it");
        drop(rx);

        // ... or consumed by `send`.
        let (mut tx, mut rx) = channel::<u8>();
        let (waker, wakes) = counting_waker();
        assert!(tx
            .poll_closed(&mut Context::from_waker(&waker))
            .is_pending());
        drop(waker);
        tx.send(1).unwrap();
        assert_eq!(wakes.alive(), 0, "the sender's waker outlived send");
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(wakes.get(), 0);
    }

    #[test]
    fn values_are_dropped_exactly_once_in_every_order() {
        let counter = DropCounter::new();
        let mut made = 0;

        // send, receive
        let (tx, rx) = channel();
        tx.send(counter.item()).unwrap();
        drop(block_on(rx).unwrap());
        made += 1;
        assert_eq!(counter.dropped(), made);

        // send, drop the receiver unreceived
        let (tx, rx) = channel();
        tx.send(counter.item()).unwrap();
        assert_eq!(counter.dropped(), made);
        drop(rx);
        made += 1;
        assert_eq!(counter.dropped(), made);

        // drop the receiver, send fails and gives the value back
        let (tx, rx) = channel();
        drop(rx);
        let back = tx.send(counter.item()).unwrap_err();
        assert_eq!(counter.dropped(), made);
        drop(back);
        made += 1;
        assert_eq!(counter.dropped(), made);

        // close, send fails
        let (tx, mut rx) = channel();
        rx.close();
        drop(tx.send(counter.item()).unwrap_err());
        drop(rx);
        made += 1;
        assert_eq!(counter.dropped(), made);

        // send, close, then receive via try_recv / drop
        let (tx, mut rx) = channel();
        tx.send(counter.item()).unwrap();
        rx.close();
        drop(rx.try_recv().unwrap());
        made += 1;
        assert_eq!(counter.dropped(), made);
        let (tx, mut rx) = channel();
        tx.send(counter.item()).unwrap();
        rx.close();
        drop(rx);
        made += 1;
        assert_eq!(counter.dropped(), made);

        // both dropped without a value
        let (tx, rx) = channel::<crate::sync::mpsc::test_util::Counted>();
        drop(rx);
        drop(tx);
        let (tx, rx) = channel::<crate::sync::mpsc::test_util::Counted>();
        drop(tx);
        drop(rx);
        assert_eq!(counter.dropped(), made);
    }

    #[test]
    fn racing_send_and_receiver_drop_drop_each_value_once() {
        let counter = DropCounter::new();
        const ROUNDS: usize = 2_000;
        let counter2 = counter.clone();
        with_timeout(Duration::from_secs(60), move || {
            for _ in 0..ROUNDS {
                let (tx, rx) = channel();
                let item = counter2.item();
                let sender = thread::spawn(move || tx.send(item).map_err(drop).is_ok());
                drop(rx);
                sender.join().unwrap();
            }
        });
        assert_eq!(counter.dropped(), ROUNDS);
    }

    #[test]
    fn value_crosses_threads() {
        with_timeout(Duration::from_secs(30), || {
            for i in 0..500u32 {
                let (tx, rx) = channel();
                let sender = thread::spawn(move || tx.send(i).unwrap());
                assert_eq!(block_on(rx), Ok(i));
                sender.join().unwrap();
            }
        });
    }

    #[test]
    fn receiving_spends_the_cooperative_budget() {
        let (tx, mut rx) = channel();
        tx.send(1).unwrap();
        let (waker, wakes) = counting_waker();
        coop::budget(|| {
            while coop::has_budget_remaining() {
                let _ = ready_unit(&mut Context::from_waker(&waker));
            }
            assert!(poll_once(&mut rx, &waker).is_pending());
            assert_eq!(wakes.get(), 1);
        });
        assert_eq!(poll_once(&mut rx, &waker), Poll::Ready(Ok(1)));
    }

    /// Spends one unit of budget.
    fn ready_unit(cx: &mut Context<'_>) -> Poll<()> {
        let coop = ready!(coop::poll_proceed(cx));
        coop.made_progress();
        Poll::Ready(())
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let (mut tx, rx) = channel::<String>();
        send_sync(&rx);
        send(&tx.closed());
        send_sync(&tx);
    }

    #[test]
    fn errors_display() {
        assert_eq!(RecvError(()).to_string(), "channel closed");
        assert_eq!(TryRecvError::Empty.to_string(), "channel empty");
        assert_eq!(TryRecvError::Closed.to_string(), "channel closed");
        let (tx, rx) = channel::<()>();
        assert!(format!("{tx:?} {rx:?}").contains("rx_closed: false"));
    }
}

/// Model checks (`RUSTFLAGS="--cfg loom" cargo test --lib loom_`).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use ::loom::thread;

    use crate::loom::block_on;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counted(std::sync::Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn loom_send_races_receiver_drop() {
        ::loom::model(|| {
            let drops = std::sync::Arc::new(AtomicUsize::new(0));
            let (tx, rx) = channel();
            let value = Counted(drops.clone());
            let sender = thread::spawn(move || drop(tx.send(value)));
            drop(rx);
            sender.join().unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn loom_receiver_sees_send_or_sender_drop() {
        ::loom::model(|| {
            let (tx, rx) = channel::<u8>();
            let (tx2, rx2) = channel::<u8>();
            let sender = thread::spawn(move || {
                tx.send(1).unwrap();
                drop(tx2);
            });
            assert_eq!(block_on(rx), Ok(1));
            assert!(block_on(rx2).is_err());
            sender.join().unwrap();
        });
    }

    #[test]
    fn loom_closed_wakes_on_receiver_drop() {
        ::loom::model(|| {
            let (mut tx, rx) = channel::<u8>();
            let receiver = thread::spawn(move || drop(rx));
            block_on(tx.closed());
            assert!(tx.is_closed());
            receiver.join().unwrap();
        });
    }
}
