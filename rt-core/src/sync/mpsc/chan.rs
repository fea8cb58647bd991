//! The core shared by the bounded and the unbounded channel.
//!
//! All the channel's state sits behind one mutex ([`State`]). The critical
//! sections are short and run no user code beyond cloning or dropping a
//! waker: values are dropped, and wakers woken, only after the lock is
//! released.
//!
//! # Capacity and waiting senders (bounded channels)
//!
//! A bounded channel has `bound` slots. A slot is either free, holds a
//! buffered value, or is *reserved*: handed to a waiting send that was woken
//! but has not yet been polled to push its value. So
//! `buffer.len() + reserved <= bound` always holds.
//!
//! A send that finds no free slot (or finds other sends already waiting, which
//! keeps the queue FIFO-fair) joins `send_waiters`. Whenever a slot is freed
//! (the receiver takes a value, or a woken send is dropped before it used its
//! reserved slot) and sends are waiting, the slot is reserved for the front
//! waiter, which is dequeued and woken. Hence the invariant: while the channel
//! is open and sends are waiting, there are no free slots. A dequeued waiter is
//! always one that holds a reservation, so a send future tells "still waiting"
//! from "granted a slot" by looking its id up in the queue.
//!
//! Closing the channel (receiver `close` or drop) wakes every waiter but leaves
//! them queued; each then sees the closed flag and fails with its value. No
//! slot is reserved after closing.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::PoisonError;
use std::task::{ready, Context, Poll, Waker};

use super::error::{SendError, TryRecvError, TrySendError};
use crate::loom::{Arc, Mutex, MutexGuard};
use crate::task::coop;

/// Creates the two halves of a channel holding at most `bound` values
/// (`None`: unbounded).
pub(super) fn channel<T>(bound: Option<usize>) -> (Tx<T>, Rx<T>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            buffer: VecDeque::new(),
            bound,
            reserved: 0,
            send_waiters: VecDeque::new(),
            closed_waiters: Vec::new(),
            next_id: 0,
            rx_waker: None,
            rx_closed: false,
            tx_count: 1,
        }),
    });
    (Tx { chan: chan.clone() }, Rx { chan })
}

struct Chan<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    buffer: VecDeque<T>,
    /// Maximum number of buffered plus reserved values; `None` if unbounded.
    bound: Option<usize>,
    /// Slots reserved for dequeued waiting sends that have not pushed yet.
    reserved: usize,
    /// Sends waiting for a slot, oldest first. Ids strictly increase from front
    /// to back (they are handed out in order and only ever pushed at the back),
    /// so the queue can be binary-searched by id.
    send_waiters: VecDeque<Waiter>,
    /// `Sender::closed` futures waiting for the receiver to close.
    closed_waiters: Vec<Waiter>,
    next_id: u64,
    rx_waker: Option<Waker>,
    /// Set by `Receiver::close` and by dropping the receiver; never unset.
    rx_closed: bool,
    /// Live sender handles.
    tx_count: usize,
}

struct Waiter {
    id: u64,
    /// `None` once taken to be woken on close.
    waker: Option<Waker>,
}

impl<T> Chan<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing that may panic runs under the lock except a waker's clone or
        // drop, and the state is consistent at each of those points, so a
        // poisoned lock is safe to go on with (the handles' destructors must
        // still run).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> State<T> {
    fn free_slots(&self) -> usize {
        match self.bound {
            Some(bound) => bound.saturating_sub(self.buffer.len() + self.reserved),
            None => usize::MAX,
        }
    }

    /// Whether a send that is not queued may push right now: a slot is free
    /// and no send waits ahead of it. (While the channel is open, waiting
    /// sends imply no free slot, as the module docs argue; the waiter check is
    /// kept so fairness does not hang on that argument alone.)
    fn newcomer_may_push(&self) -> bool {
        debug_assert!(
            self.rx_closed || self.send_waiters.is_empty() || self.free_slots() == 0,
            "sends are waiting while a slot is free"
        );
        self.send_waiters.is_empty() && self.free_slots() > 0
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn send_waiter_index(&self, id: u64) -> Option<usize> {
        self.send_waiters.binary_search_by_key(&id, |w| w.id).ok()
    }

    /// One slot became free: reserve it for the oldest waiting send, if any,
    /// and return that send's waker (to wake once the lock is released).
    fn grant_next(&mut self) -> Option<Waker> {
        if self.rx_closed {
            return None;
        }
        let waiter = self.send_waiters.pop_front()?;
        self.reserved += 1;
        waiter.waker
    }

    /// Pushes a value the caller is allowed to push (a free or reserved slot)
    /// and returns the receiver's waker.
    fn push(&mut self, value: T) -> Option<Waker> {
        self.buffer.push_back(value);
        self.rx_waker.take()
    }

    /// Takes the oldest buffered value, passing the freed slot on, and returns
    /// the waker of the send that got the slot.
    fn pop(&mut self) -> Option<(T, Option<Waker>)> {
        let value = self.buffer.pop_front()?;
        Some((value, self.grant_next()))
    }

    fn is_disconnected(&self) -> bool {
        self.rx_closed || self.tx_count == 0
    }

    /// Marks the channel closed; returns the wakers of everyone who waits for
    /// that (waiting sends stay queued and fail when polled).
    fn close(&mut self) -> Vec<Waker> {
        if self.rx_closed {
            return Vec::new();
        }
        self.rx_closed = true;
        let sends = self.send_waiters.iter_mut().filter_map(|w| w.waker.take());
        let closed = self.closed_waiters.drain(..).filter_map(|w| w.waker);
        sends.chain(closed).collect()
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Stores `cx`'s waker in `slot` unless the one there already wakes the same
/// task.
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

impl<T> fmt::Debug for Chan<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Chan")
            .field("len", &state.buffer.len())
            .field("bound", &state.bound)
            .field("waiting_senders", &state.send_waiters.len())
            .field("senders", &state.tx_count)
            .field("closed", &state.rx_closed)
            .finish()
    }
}

/// The sending side's handle: counts towards the live senders.
pub(super) struct Tx<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Tx<T> {
    /// Pushes `value` if a slot is free now and no send is waiting ahead.
    pub(super) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut state = self.chan.lock();
        if state.rx_closed {
            return Err(TrySendError::Closed(value));
        }
        if !state.newcomer_may_push() {
            return Err(TrySendError::Full(value));
        }
        let waker = state.push(value);
        drop(state);
        wake(waker);
        Ok(())
    }

    /// Sends `value`, waiting (FIFO) for a slot while the channel is full.
    pub(super) fn send(&self, value: T) -> SendFuture<'_, T> {
        SendFuture {
            chan: &self.chan,
            value: Some(value),
            waiting: None,
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.chan.lock().rx_closed
    }

    /// Free slots now (`usize::MAX` for an unbounded channel).
    pub(super) fn capacity(&self) -> usize {
        self.chan.lock().free_slots()
    }

    pub(super) fn max_capacity(&self) -> usize {
        self.chan.lock().bound.unwrap_or(usize::MAX)
    }

    /// Resolves once the receiver is closed or dropped.
    pub(super) fn closed(&self) -> ClosedFuture<'_, T> {
        ClosedFuture {
            chan: &self.chan,
            id: None,
        }
    }
}

impl<T> Clone for Tx<T> {
    fn clone(&self) -> Tx<T> {
        self.chan.lock().tx_count += 1;
        Tx {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Tx<T> {
    fn drop(&mut self) {
        let mut state = self.chan.lock();
        state.tx_count -= 1;
        let waker = if state.tx_count == 0 {
            state.rx_waker.take()
        } else {
            None
        };
        drop(state);
        wake(waker);
    }
}

impl<T> fmt::Debug for Tx<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.chan.fmt(f)
    }
}

/// The receiving side's handle; dropping it closes the channel and drops the
/// buffered values.
pub(super) struct Rx<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Rx<T> {
    pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let coop = ready!(coop::poll_proceed(cx));
        let mut state = self.chan.lock();
        if let Some((value, waker)) = state.pop() {
            drop(state);
            wake(waker);
            coop.made_progress();
            return Poll::Ready(Some(value));
        }
        if state.is_disconnected() {
            coop.made_progress();
            return Poll::Ready(None);
        }
        register(&mut state.rx_waker, cx);
        Poll::Pending
    }

    pub(super) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.chan.lock();
        if let Some((value, waker)) = state.pop() {
            drop(state);
            wake(waker);
            return Ok(value);
        }
        if state.is_disconnected() {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    pub(super) fn close(&mut self) {
        let wakers = self.chan.lock().close();
        wakers.into_iter().for_each(Waker::wake);
    }

    pub(super) fn is_closed(&self) -> bool {
        self.chan.lock().is_disconnected()
    }

    pub(super) fn len(&self) -> usize {
        self.chan.lock().buffer.len()
    }

    pub(super) fn capacity(&self) -> usize {
        self.chan.lock().free_slots()
    }

    pub(super) fn max_capacity(&self) -> usize {
        self.chan.lock().bound.unwrap_or(usize::MAX)
    }
}

impl<T> Drop for Rx<T> {
    fn drop(&mut self) {
        let mut state = self.chan.lock();
        let wakers = state.close();
        let buffered = mem::take(&mut state.buffer);
        // The receiver's own waker: nobody will wake it any more, and the
        // senders keep the channel (and so a stored waker, and through it
        // the receiving task) alive.
        let own_waker = state.rx_waker.take();
        drop(state);
        wakers.into_iter().for_each(Waker::wake);
        drop(own_waker);
        drop(buffered);
    }
}

impl<T> fmt::Debug for Rx<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.chan.fmt(f)
    }
}

/// A bounded send in progress: owns the value until it is pushed.
///
/// Dropping it while queued leaves the queue; dropping it after it was granted
/// a slot passes the slot on to the next waiting send.
pub(super) struct SendFuture<'a, T> {
    chan: &'a Chan<T>,
    value: Option<T>,
    /// Id in `send_waiters` once queued; cleared when the future completes.
    waiting: Option<u64>,
}

// The value is never pinned (it is moved out by value), so the future does not
// need to be `!Unpin` even if `T` is.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let coop = ready!(coop::poll_proceed(cx));
        let mut state = this.chan.lock();
        let may_push = match this.waiting {
            None if state.rx_closed => false,
            None if state.newcomer_may_push() => true,
            None => {
                let id = state.next_id();
                let waker = Some(cx.waker().clone());
                state.send_waiters.push_back(Waiter { id, waker });
                this.waiting = Some(id);
                return Poll::Pending;
            }
            Some(id) => match state.send_waiter_index(id) {
                Some(index) if state.rx_closed => {
                    state.send_waiters.remove(index);
                    this.waiting = None;
                    false
                }
                Some(index) => {
                    register(&mut state.send_waiters[index].waker, cx);
                    return Poll::Pending;
                }
                None => {
                    // Dequeued, so granted a reserved slot: use it (or, if the
                    // channel closed since, give it up: no one else needs it).
                    state.reserved -= 1;
                    this.waiting = None;
                    !state.rx_closed
                }
            },
        };
        let value = this
            .value
            .take()
            .expect("SendFuture polled after completion");
        coop.made_progress();
        if !may_push {
            return Poll::Ready(Err(SendError(value)));
        }
        let waker = state.push(value);
        drop(state);
        wake(waker);
        Poll::Ready(Ok(()))
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        let Some(id) = self.waiting else { return };
        let mut state = self.chan.lock();
        let waker = match state.send_waiter_index(id) {
            Some(index) => {
                state.send_waiters.remove(index);
                None
            }
            None => {
                // Granted a slot it will never use: pass it on.
                state.reserved -= 1;
                state.grant_next()
            }
        };
        drop(state);
        wake(waker);
        // `self.value` is dropped after this, outside the lock.
    }
}

/// Resolves once the receiver is closed or dropped.
pub(super) struct ClosedFuture<'a, T> {
    chan: &'a Chan<T>,
    /// Id in `closed_waiters` once registered.
    id: Option<u64>,
}

impl<T> Future for ClosedFuture<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut state = this.chan.lock();
        if state.rx_closed {
            // `close` already removed our entry, if any.
            this.id = None;
            return Poll::Ready(());
        }
        let entry = this
            .id
            .and_then(|id| state.closed_waiters.iter_mut().find(|w| w.id == id));
        match entry {
            Some(waiter) => register(&mut waiter.waker, cx),
            None => {
                let id = state.next_id();
                let waker = Some(cx.waker().clone());
                state.closed_waiters.push(Waiter { id, waker });
                this.id = Some(id);
            }
        }
        Poll::Pending
    }
}

impl<T> Drop for ClosedFuture<'_, T> {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let mut state = self.chan.lock();
        if let Some(index) = state.closed_waiters.iter().position(|w| w.id == id) {
            let waiter = state.closed_waiters.swap_remove(index);
            drop(state);
            drop(waiter);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::mpsc::test_util::{counting_waker, poll_once};

    fn state<T>(rx: &Rx<T>) -> MutexGuard<'_, State<T>> {
        rx.chan.lock()
    }

    #[test]
    fn dropping_the_receiver_releases_its_waker() {
        for bound in [None, Some(1)] {
            let (tx, mut rx) = channel::<u8>(bound);
            let (waker, wakes) = counting_waker();
            assert!(rx.poll_recv(&mut Context::from_waker(&waker)).is_pending());
            drop(waker);
            assert_eq!(wakes.alive(), 1, "stored for the receiver");
            drop(rx);
            assert_eq!(
                wakes.alive(),
                0,
                "{bound:?}: the channel kept the receiver's waker"
            );
            assert_eq!(wakes.get(), 0);
            drop(tx);
        }
    }

    #[test]
    fn dropped_send_and_closed_futures_release_their_wakers() {
        let (tx, rx) = channel(Some(1));
        tx.try_send(0).unwrap();
        let (waker, wakes) = counting_waker();
        let mut send = tx.send(1);
        let mut closed = tx.closed();
        assert!(poll_once(&mut send, &waker).is_pending());
        assert!(poll_once(&mut closed, &waker).is_pending());
        drop(waker);
        assert_eq!(wakes.alive(), 2);
        drop(send);
        drop(closed);
        assert_eq!(wakes.alive(), 0);
        // Closed by the receiver: the wakers are woken and let go.
        let (waker, wakes) = counting_waker();
        let mut send = tx.send(2);
        let mut closed = tx.closed();
        assert!(poll_once(&mut send, &waker).is_pending());
        assert!(poll_once(&mut closed, &waker).is_pending());
        drop(waker);
        drop(rx);
        assert_eq!((wakes.get(), wakes.alive()), (2, 0));
        drop(send);
    }

    #[test]
    fn dropped_closed_futures_unregister() {
        let (tx, rx) = channel::<()>(None);
        let (waker, _) = counting_waker();
        for _ in 0..10 {
            let mut closed = tx.closed();
            assert!(poll_once(&mut closed, &waker).is_pending());
            assert!(poll_once(&mut closed, &waker).is_pending());
            assert_eq!(state(&rx).closed_waiters.len(), 1);
        }
        assert_eq!(state(&rx).closed_waiters.len(), 0);
    }

    #[test]
    fn reservations_are_accounted_for() {
        let (tx, mut rx) = channel(Some(1));
        tx.try_send(0).unwrap();
        let (waker, _) = counting_waker();
        let mut a = tx.send(1);
        let mut b = tx.send(2);
        assert!(poll_once(&mut a, &waker).is_pending());
        assert!(poll_once(&mut b, &waker).is_pending());
        assert_eq!(state(&rx).send_waiters.len(), 2);

        assert_eq!(rx.try_recv(), Ok(0));
        assert_eq!(state(&rx).reserved, 1);
        assert_eq!(state(&rx).send_waiters.len(), 1);
        drop(a);
        assert_eq!(state(&rx).reserved, 1, "passed on to B");
        assert!(state(&rx).send_waiters.is_empty());
        rx.close();
        assert!(poll_once(&mut b, &waker).is_ready());
        assert_eq!(state(&rx).reserved, 0);
        assert_eq!(state(&rx).free_slots(), 1);
    }

    #[test]
    fn waiters_queued_at_close_leave_when_polled_or_dropped() {
        let (tx, mut rx) = channel(Some(1));
        tx.try_send(0).unwrap();
        let (waker, _) = counting_waker();
        let mut a = tx.send(1);
        let mut b = tx.send(2);
        assert!(poll_once(&mut a, &waker).is_pending());
        assert!(poll_once(&mut b, &waker).is_pending());
        rx.close();
        assert_eq!(rx.try_recv(), Ok(0));
        assert_eq!(state(&rx).reserved, 0, "no grants after close");
        assert!(matches!(poll_once(&mut a, &waker), Poll::Ready(Err(_))));
        drop(b);
        assert!(state(&rx).send_waiters.is_empty());
    }
}

/// Model checks (`RUSTFLAGS="--cfg loom" cargo test --lib loom_`): every
/// interleaving of the lock sections and wakeups.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use ::loom::thread;

    use crate::loom::block_on;

    /// Explores with at most 3 preemptions (as Tokio's CI does; unbounded
    /// takes minutes here) unless `LOOM_MAX_PREEMPTIONS` says otherwise.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = ::loom::model::Builder::new();
        builder.preemption_bound.get_or_insert(3);
        builder.check(f);
    }

    #[test]
    fn loom_two_waiting_senders_deliver_everything() {
        model(|| {
            let (tx, mut rx) = channel(Some(1));
            let senders: Vec<_> = (1..=2)
                .map(|i| {
                    let tx = tx.clone();
                    thread::spawn(move || block_on(tx.send(i)).unwrap())
                })
                .collect();
            drop(tx);
            let mut got = Vec::new();
            while let Some(v) = block_on(std::future::poll_fn(|cx| rx.poll_recv(cx))) {
                got.push(v);
            }
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
            senders.into_iter().for_each(|s| s.join().unwrap());
        });
    }

    #[test]
    fn loom_cancelled_send_passes_its_slot_on() {
        model(|| {
            let (tx, mut rx) = channel(Some(1));
            tx.try_send(0).unwrap();
            let tx2 = tx.clone();
            let canceller = thread::spawn(move || {
                let mut send = tx2.send(1);
                let sent = block_on(std::future::poll_fn(|cx| {
                    Poll::Ready(Pin::new(&mut send).poll(cx).is_ready())
                }));
                drop(send);
                sent
            });
            let waiter = thread::spawn(move || block_on(tx.send(2)).unwrap());
            let mut got = Vec::new();
            while let Some(v) = block_on(std::future::poll_fn(|cx| rx.poll_recv(cx))) {
                got.push(v);
            }
            let cancelled_sent = canceller.join().unwrap();
            waiter.join().unwrap();
            assert_eq!(got.contains(&1), cancelled_sent);
            assert!(got.contains(&2));
            assert_eq!(rx.capacity(), 1);
        });
    }
}
