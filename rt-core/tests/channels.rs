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
