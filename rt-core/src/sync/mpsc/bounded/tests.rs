use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::Waker;
use std::thread;
use std::time::Duration;

use super::*;
use crate::sync::mpsc::test_util::{
    block_on, counting_waker, poll_once, with_timeout, DropCounter, WakeCount,
};
use crate::task::coop;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A send future with its own counting waker, polled by hand.
struct ManualSend<'a, T> {
    future: BoxFuture<'a, Result<(), SendError<T>>>,
    waker: Waker,
    wakes: WakeCount,
}

impl<'a, T: 'a> ManualSend<'a, T> {
    fn new(tx: &'a Sender<T>, value: T) -> Self {
        let (waker, wakes) = counting_waker();
        ManualSend {
            future: Box::pin(tx.send(value)),
            waker,
            wakes,
        }
    }

    fn poll(&mut self) -> Poll<Result<(), SendError<T>>> {
        poll_once(&mut self.future, &self.waker)
    }
}

#[test]
fn values_come_out_in_fifo_order() {
    let (tx, mut rx) = channel(8);
    for i in 0..8 {
        tx.try_send(i).unwrap();
    }
    for i in 0..8 {
        assert_eq!(block_on(rx.recv()), Some(i));
    }
    for i in 8..100 {
        block_on(tx.send(i)).unwrap();
        assert_eq!(rx.try_recv(), Ok(i));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
#[should_panic(expected = "buffer > 0")]
fn zero_capacity_panics() {
    let _ = channel::<()>(0);
}

#[test]
fn full_channel_makes_send_wait_until_a_recv() {
    let (tx, mut rx) = channel(1);
    let mut first = ManualSend::new(&tx, 1);
    assert_eq!(first.poll(), Poll::Ready(Ok(())));

    let mut second = ManualSend::new(&tx, 2);
    assert!(second.poll().is_pending());
    assert!(second.poll().is_pending());
    assert_eq!(second.wakes.get(), 0);
    assert_eq!(tx.capacity(), 0);

    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(
        second.wakes.get(),
        1,
        "the waiting send is woken by the recv"
    );
    assert_eq!(second.poll(), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(tx.capacity(), 1);
}

#[test]
fn try_send_reports_full_and_capacity_tracks_slots() {
    let (tx, mut rx) = channel(3);
    assert_eq!((tx.capacity(), tx.max_capacity()), (3, 3));
    tx.try_send('a').unwrap();
    tx.try_send('b').unwrap();
    assert_eq!(tx.capacity(), 1);
    assert_eq!(rx.len(), 2);
    tx.try_send('c').unwrap();
    assert_eq!(tx.try_send('d'), Err(TrySendError::Full('d')));
    assert_eq!((rx.capacity(), rx.max_capacity()), (0, 3));
    assert_eq!(rx.try_recv(), Ok('a'));
    assert_eq!(tx.capacity(), 1);
    tx.try_send('d').unwrap();
    assert_eq!(rx.len(), 3);
}

#[test]
fn waiting_senders_are_served_first_come_first_served() {
    let (tx, mut rx) = channel(1);
    tx.try_send(0).unwrap();
    let mut a = ManualSend::new(&tx, 1);
    let mut b = ManualSend::new(&tx, 2);
    let mut c = ManualSend::new(&tx, 3);
    assert!(a.poll().is_pending());
    assert!(b.poll().is_pending());
    assert!(c.poll().is_pending());

    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!((a.wakes.get(), b.wakes.get(), c.wakes.get()), (1, 0, 0));
    // The freed slot is A's: neither a later waiter nor try_send takes it.
    assert!(c.poll().is_pending());
    assert!(b.poll().is_pending());
    assert_eq!(tx.try_send(9), Err(TrySendError::Full(9)));
    assert_eq!(a.poll(), Poll::Ready(Ok(())));
    // Senders are waiting, so try_send stays behind them even with a slot
    // free after the next recv.
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(tx.try_send(9), Err(TrySendError::Full(9)));
    assert_eq!((b.wakes.get(), c.wakes.get()), (1, 0));
    assert_eq!(b.poll(), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(c.wakes.get(), 1);
    assert_eq!(c.poll(), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.try_send(4).unwrap();
}

#[test]
fn dropping_a_woken_send_passes_the_slot_to_the_next_waiter() {
    let counter = DropCounter::new();
    let (tx, mut rx) = channel(1);
    tx.try_send(counter.item()).unwrap();
    let mut a = ManualSend::new(&tx, counter.item());
    let mut b = ManualSend::new(&tx, counter.item());
    assert!(a.poll().is_pending());
    assert!(b.poll().is_pending());

    drop(rx.try_recv().unwrap());
    assert_eq!((a.wakes.get(), b.wakes.get()), (1, 0));
    drop(a);
    assert_eq!(counter.dropped(), 2, "the cancelled send dropped its value");
    assert_eq!(b.wakes.get(), 1, "the slot passed on with a wakeup");
    assert!(b.poll().is_ready());
    assert_eq!(rx.len(), 1);
    drop(rx.try_recv().unwrap());
    assert_eq!(tx.capacity(), 1, "no capacity leaked");
    assert_eq!(counter.dropped(), 3);
}

#[test]
fn dropping_a_woken_send_with_no_other_waiter_frees_the_slot() {
    let (tx, mut rx) = channel(1);
    tx.try_send(0).unwrap();
    let mut a = ManualSend::new(&tx, 1);
    assert!(a.poll().is_pending());
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!(tx.capacity(), 0, "the slot is reserved for A");
    drop(a);
    assert_eq!(tx.capacity(), 1);
    tx.try_send(2).unwrap();
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn dropping_a_queued_send_leaves_the_queue() {
    let (tx, mut rx) = channel(1);
    tx.try_send(0).unwrap();
    let mut a = ManualSend::new(&tx, 1);
    let mut b = ManualSend::new(&tx, 2);
    let mut c = ManualSend::new(&tx, 3);
    assert!(a.poll().is_pending());
    assert!(b.poll().is_pending());
    assert!(c.poll().is_pending());
    drop(b);
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!(a.poll(), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(c.wakes.get(), 1, "C is next once B left");
    assert_eq!(c.poll(), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(3));
}

#[test]
fn send_future_follows_the_latest_waker() {
    let (tx, mut rx) = channel(1);
    tx.try_send(0).unwrap();
    let mut a = ManualSend::new(&tx, 1);
    assert!(a.poll().is_pending());
    let (other, other_wakes) = counting_waker();
    assert!(poll_once(&mut a.future, &other).is_pending());
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!((a.wakes.get(), other_wakes.get()), (0, 1));
}

#[test]
fn recv_waits_for_a_value_and_follows_the_latest_waker() {
    let (tx, mut rx) = channel(4);
    let (first, first_wakes) = counting_waker();
    let (second, second_wakes) = counting_waker();
    assert!(rx.poll_recv(&mut Context::from_waker(&first)).is_pending());
    assert!(rx.poll_recv(&mut Context::from_waker(&second)).is_pending());
    tx.try_send(5).unwrap();
    assert_eq!((first_wakes.get(), second_wakes.get()), (0, 1));
    assert_eq!(
        rx.poll_recv(&mut Context::from_waker(&second)),
        Poll::Ready(Some(5))
    );
}

#[test]
fn close_keeps_buffered_values_and_fails_senders() {
    let (tx, mut rx) = channel(2);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    let mut waiting = ManualSend::new(&tx, 3);
    assert!(waiting.poll().is_pending());
    let (waker, closed_wakes) = counting_waker();
    let mut closed = Box::pin(tx.closed());
    assert!(poll_once(&mut closed, &waker).is_pending());
    assert!(!tx.is_closed());

    rx.close();
    assert!(tx.is_closed());
    assert!(rx.is_closed());
    assert_eq!(waiting.wakes.get(), 1);
    assert_eq!(closed_wakes.get(), 1);
    assert_eq!(poll_once(&mut closed, &waker), Poll::Ready(()));
    assert_eq!(waiting.poll(), Poll::Ready(Err(SendError(3))));
    assert_eq!(tx.try_send(4), Err(TrySendError::Closed(4)));
    assert_eq!(block_on(tx.send(5)), Err(SendError(5)));

    assert_eq!(block_on(rx.recv()), Some(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(block_on(rx.recv()), None);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    rx.close(); // idempotent
    block_on(tx.clone().closed());
}

#[test]
fn close_fails_a_send_that_was_granted_a_slot() {
    let (tx, mut rx) = channel(1);
    tx.try_send(1).unwrap();
    let mut a = ManualSend::new(&tx, 2);
    assert!(a.poll().is_pending());
    assert_eq!(rx.try_recv(), Ok(1));
    rx.close();
    assert_eq!(a.poll(), Poll::Ready(Err(SendError(2))));
    assert_eq!(block_on(rx.recv()), None);
}

#[test]
fn recv_returns_none_once_all_senders_are_dropped() {
    let (tx, mut rx) = channel(4);
    let tx2 = tx.clone();
    tx.try_send(1).unwrap();
    tx2.try_send(2).unwrap();
    let (waker, wakes) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(1)));
    assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(2)));
    assert!(rx.poll_recv(&mut cx).is_pending());
    drop(tx);
    assert_eq!(wakes.get(), 0);
    assert!(!rx.is_closed());
    drop(tx2);
    assert_eq!(wakes.get(), 1);
    assert!(rx.is_closed());
    assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(None));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn buffered_values_are_received_after_the_senders_are_gone() {
    let (tx, mut rx) = channel(4);
    block_on(tx.send("a")).unwrap();
    block_on(tx.send("b")).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok("a"));
    assert_eq!(block_on(rx.recv()), Some("b"));
    assert_eq!(block_on(rx.recv()), None);
}

#[test]
fn dropping_the_receiver_fails_waiting_senders_with_their_values() {
    let counter = DropCounter::new();
    let (tx, rx) = channel(1);
    tx.try_send(counter.item()).unwrap();
    let mut a = ManualSend::new(&tx, counter.item());
    let mut b = ManualSend::new(&tx, counter.item());
    assert!(a.poll().is_pending());
    assert!(b.poll().is_pending());

    drop(rx);
    assert_eq!(counter.dropped(), 1, "the buffered value is dropped");
    assert_eq!((a.wakes.get(), b.wakes.get()), (1, 1));
    let Poll::Ready(Err(SendError(value))) = a.poll() else {
        panic!("send must fail after the receiver is dropped");
    };
    assert_eq!(counter.dropped(), 1, "the value came back, not dropped");
    drop(value);
    drop(b);
    assert_eq!(counter.dropped(), 3);
    assert!(tx.is_closed());
    assert!(matches!(
        tx.try_send(counter.item()),
        Err(TrySendError::Closed(_))
    ));
    assert_eq!(counter.dropped(), 4);
}

#[test]
fn every_value_is_dropped_exactly_once() {
    let counter = DropCounter::new();
    let mut made = 0;
    let mut item = || {
        made += 1;
        counter.item()
    };
    {
        // Buffered values dropped with the receiver while senders live.
        let (tx, rx) = channel(4);
        tx.try_send(item()).unwrap();
        tx.try_send(item()).unwrap();
        drop(rx);
        drop(tx);
    }
    {
        // Buffered values still there when the last handle (the receiver)
        // goes, after the senders.
        let (tx, rx) = channel(4);
        tx.try_send(item()).unwrap();
        drop(tx);
        drop(rx);
    }
    {
        // Received values, full-channel rejections, a cancelled waiting send,
        // a cancelled granted send and a send failing on close.
        let (tx, mut rx) = channel(1);
        tx.try_send(item()).unwrap();
        drop(tx.try_send(item()).unwrap_err());
        let mut queued = ManualSend::new(&tx, item());
        let mut granted = ManualSend::new(&tx, item());
        let mut closing = ManualSend::new(&tx, item());
        assert!(granted.poll().is_pending());
        assert!(queued.poll().is_pending());
        assert!(closing.poll().is_pending());
        drop(rx.try_recv().unwrap());
        drop(granted);
        assert!(queued.poll().is_ready());
        drop(block_on(rx.recv()));
        drop(rx);
        assert!(matches!(closing.poll(), Poll::Ready(Err(_))));
        drop(closing);
    }
    assert_eq!(counter.dropped(), made);
}

#[test]
fn recv_spends_the_cooperative_budget() {
    let (tx, mut rx) = channel(1000);
    for i in 0..1000 {
        tx.try_send(i).unwrap();
    }
    let (waker, wakes) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let received = coop::budget(|| {
        let mut received = 0;
        while let Poll::Ready(value) = rx.poll_recv(&mut cx) {
            assert_eq!(value, Some(received));
            received += 1;
        }
        received
    });
    assert_eq!(received, usize::from(coop::BUDGET_PER_POLL));
    assert_eq!(wakes.get(), 1, "an exhausted budget wakes the task");
    // A pending recv on an empty channel does not spend budget.
    let (_tx, mut empty) = channel::<u8>(1);
    coop::budget(|| {
        for _ in 0..1000 {
            assert!(empty.poll_recv(&mut cx).is_pending());
        }
        assert!(coop::has_budget_remaining());
    });
}

#[test]
fn handles_and_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let (tx, mut rx) = channel::<String>(1);
    send_sync(&tx);
    send_sync(&rx);
    send(&tx.send(String::new()));
    send(&tx.closed());
    send(&rx.recv());
}

#[test]
fn debug_output_does_not_need_debug_values() {
    struct Opaque;
    let (tx, rx) = channel::<Opaque>(2);
    let text = format!("{tx:?} {rx:?}");
    assert!(text.contains("Sender"), "{text}");
    assert!(text.contains("bound: Some(2)"), "{text}");
}

/// Four threads send 10,000 numbered messages each through a 16-slot channel;
/// each must arrive exactly once and in its sender's order.
#[test]
fn stress_four_threads_through_sixteen_slots() {
    const SENDERS: usize = 4;
    const PER_SENDER: usize = 10_000;
    with_timeout(Duration::from_secs(60), || {
        let (tx, mut rx) = channel::<(usize, usize)>(16);
        let producers: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for seq in 0..PER_SENDER {
                        block_on(tx.send((sender, seq))).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0; SENDERS];
        let mut seen = HashSet::new();
        while let Some((sender, seq)) = block_on(rx.recv()) {
            assert_eq!(seq, next[sender], "per-sender order");
            next[sender] += 1;
            assert!(seen.insert((sender, seq)), "duplicate message");
        }
        for producer in producers {
            producer.join().unwrap();
        }
        assert_eq!(seen.len(), SENDERS * PER_SENDER);
        assert_eq!(rx.capacity(), 16);
    });
}

/// Senders that give up on a pending send half of the time (dropping the
/// future, possibly after it was granted a slot) and retry: no message or
/// capacity may be lost, and nothing may hang.
#[test]
fn stress_cancelled_sends_lose_no_capacity() {
    const SENDERS: usize = 4;
    const PER_SENDER: usize = 5_000;
    with_timeout(Duration::from_secs(60), || {
        let (tx, mut rx) = channel::<usize>(2);
        let producers: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let tx = tx.clone();
                thread::spawn(move || {
                    let (waker, _) = counting_waker();
                    for seq in 0..PER_SENDER {
                        let value = sender * PER_SENDER + seq;
                        // Poll once and cancel on every other message.
                        if seq % 2 == 0 {
                            let mut attempt = Box::pin(tx.send(value));
                            if poll_once(&mut attempt, &waker).is_ready() {
                                continue;
                            }
                            drop(attempt);
                            thread::yield_now();
                        }
                        block_on(tx.send(value)).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut seen = vec![false; SENDERS * PER_SENDER];
        while let Some(value) = block_on(rx.recv()) {
            assert!(!seen[value], "duplicate message {value}");
            seen[value] = true;
        }
        for producer in producers {
            producer.join().unwrap();
        }
        assert!(seen.iter().all(|&s| s), "a message was lost");
        assert_eq!(rx.capacity(), 2, "capacity leaked");
    });
}
