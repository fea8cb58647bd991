//! Channels used between tasks on both runtime flavors.

mod support;

use rt_core::sync::{mpsc, oneshot};
use rt_core::task::yield_now;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::flavors;

#[test]
fn bounded_send_waits_while_full() {
    for (name, rt) in flavors() {
        let sent = Arc::new(AtomicUsize::new(0));
        let s = sent.clone();
        rt.block_on(async move {
            let (tx, mut rx) = mpsc::channel::<usize>(2);
            let producer = rt_core::spawn(async move {
                for i in 0..20 {
                    tx.send(i).await.unwrap();
                    s.fetch_add(1, Ordering::SeqCst);
                }
            });
            let mut received = 0;
            loop {
                // Give the producer every chance to run ahead.
                for _ in 0..50 {
                    yield_now().await;
                }
                let ahead = sent.load(Ordering::SeqCst).saturating_sub(received);
                assert!(
                    ahead <= 3,
                    "{name}: producer ran {ahead} messages ahead of a capacity-2 channel"
                );
                match rx.recv().await {
                    Some(v) => {
                        assert_eq!(v, received, "{name}: out of order");
                        received += 1;
                    }
                    None => break,
                }
            }
            assert_eq!(received, 20, "{name}");
            producer.await.unwrap();
        });
    }
}

#[test]
fn many_producers_one_consumer_every_message_once() {
    for (name, rt) in flavors() {
        let total = rt.block_on(async {
            let (tx, mut rx) = mpsc::channel::<(u32, u32)>(16);
            for p in 0..8u32 {
                let tx = tx.clone();
                rt_core::spawn(async move {
                    for i in 0..2_000u32 {
                        tx.send((p, i)).await.unwrap();
                    }
                });
            }
            drop(tx);
            let mut next = [0u32; 8];
            let mut total = 0;
            while let Some((p, i)) = rx.recv().await {
                assert_eq!(next[p as usize], i, "{name}: per-producer order broken");
                next[p as usize] += 1;
                total += 1;
            }
            total
        });
        assert_eq!(total, 16_000, "{name}");
    }
}

#[test]
fn unbounded_from_foreign_threads() {
    for (name, rt) in flavors() {
        let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        tx.send(t * 5_000 + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let sum = rt.block_on(rt.spawn(async move {
            let mut sum = 0u64;
            while let Some(v) = rx.recv().await {
                sum += v;
            }
            sum
        }));
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(sum.unwrap(), (0..20_000u64).sum::<u64>(), "{name}");
    }
}

#[test]
fn oneshot_ping_pong_between_tasks() {
    for (name, rt) in flavors() {
        let n = rt.block_on(async {
            let mut hs = Vec::new();
            for i in 0..1_000u32 {
                hs.push(rt_core::spawn(async move {
                    let (ping_tx, ping_rx) = oneshot::channel::<u32>();
                    let (pong_tx, pong_rx) = oneshot::channel::<u32>();
                    rt_core::spawn(async move {
                        let v = ping_rx.await.unwrap();
                        pong_tx.send(v + 1).unwrap();
                    });
                    ping_tx.send(i).unwrap();
                    pong_rx.await.unwrap()
                }));
            }
            let mut ok = 0;
            for (i, h) in hs.into_iter().enumerate() {
                assert_eq!(h.await.unwrap(), i as u32 + 1);
                ok += 1;
            }
            ok
        });
        assert_eq!(n, 1_000, "{name}");
    }
}

#[test]
fn oneshot_sender_dropped_in_aborted_task_wakes_receiver() {
    for (name, rt) in flavors() {
        rt.block_on(async {
            let (tx, rx) = oneshot::channel::<u32>();
            let h = rt_core::spawn(async move {
                let _tx = tx;
                support::Pending.await;
            });
            h.abort();
            assert!(
                rx.await.is_err(),
                "{name}: receiver must see the sender dropped"
            );
        });
    }
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<rt_core::runtime::Runtime>();
    send_sync::<rt_core::runtime::Handle>();
    send_sync::<rt_core::task::JoinHandle<u32>>();
    send_sync::<rt_core::task::AbortHandle>();
    send_sync::<rt_core::task::JoinError>();
    send_sync::<mpsc::Sender<u32>>();
    send_sync::<mpsc::UnboundedSender<u32>>();
    send::<mpsc::Receiver<u32>>();
    send::<oneshot::Sender<u32>>();
    send::<oneshot::Receiver<u32>>();
}

/// `blocking_recv` / `blocking_send` from plain threads, with tasks on the
/// other end; a bounded `blocking_send` waits for room.
#[test]
fn blocking_recv_and_send_from_plain_threads() {
    for (name, rt) in flavors() {
        let (tx, mut rx) = mpsc::channel::<usize>(1);
        let (back_tx, mut back_rx) = mpsc::unbounded_channel::<usize>();
        let (done_tx, done_rx) = oneshot::channel::<&'static str>();
        let plain = std::thread::spawn(move || {
            // More values than the buffer holds: every send past the first
            // waits for the task to take one.
            for i in 0..50 {
                tx.blocking_send(i).unwrap();
            }
            drop(tx);
            let mut sum = 0;
            while let Some(v) = back_rx.blocking_recv() {
                sum += v;
            }
            (sum, done_rx.blocking_recv())
        });
        rt.block_on(async move {
            while let Some(v) = rx.recv().await {
                back_tx.send(v * 2).unwrap();
                yield_now().await;
            }
            drop(back_tx);
            done_tx.send("done").unwrap();
        });
        let (sum, done) = plain.join().unwrap();
        assert_eq!(sum, 2 * (0..50).sum::<usize>(), "{name}");
        assert_eq!(done, Ok("done"), "{name}");
    }
}

/// A oneshot `blocking_recv` waits for the value (unparks of its thread are
/// not values), and an mpsc `blocking_recv` works inside `spawn_blocking`.
#[test]
fn blocking_recv_waits_for_the_value_and_works_in_spawn_blocking() {
    for (name, rt) in flavors() {
        let (tx, rx) = oneshot::channel::<u32>();
        let waiter = std::thread::spawn(move || rx.blocking_recv());
        // Unparks aimed at the waiting thread are not wake-ups of the wait.
        for _ in 0..100 {
            waiter.thread().unpark();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!waiter.is_finished(), "{name}: returned without a value");
        tx.send(7).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(7), "{name}");

        let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
        let got = rt.block_on(async move {
            let reader = rt_core::task::spawn_blocking(move || rx.blocking_recv());
            tx.send(9).unwrap();
            reader.await.unwrap()
        });
        assert_eq!(got, Some(9), "{name}");
    }
}

/// Blocking on a channel from a thread that drives a runtime panics, with
/// Tokio's message.
#[test]
fn blocking_recv_inside_the_runtime_panics() {
    for (name, rt) in flavors() {
        let (_tx, mut rx) = mpsc::channel::<u32>(1);
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async move { rx.blocking_recv() })
        }))
        .expect_err("blocking_recv inside block_on must panic");
        let msg = err
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| err.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(
            msg.contains("Cannot block the current thread from within a runtime"),
            "{name}: {msg}"
        );
    }
}
