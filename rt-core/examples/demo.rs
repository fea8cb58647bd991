//! A tour of rt-core: spawning and joining, abort, channels with
//! backpressure, a panic caught as a JoinError, and a host loop driving a
//! current-thread runtime with `run_for`.

use rt_core::runtime::Builder;
use rt_core::sync::{mpsc, oneshot};
use rt_core::task::{self, JoinError};
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let rt = Builder::new_multi_thread().worker_threads(4).build()?;

    // 1. Spawn many tasks and join them.
    let start = Instant::now();
    let sum: u64 = rt.block_on(async {
        let handles: Vec<_> = (0..100_000u64)
            .map(|i| rt_core::spawn(async move { i }))
            .collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.expect("task failed");
        }
        sum
    });
    assert_eq!(sum, 100_000 * 99_999 / 2);
    println!(
        "spawned and joined 100000 tasks in {:?} (sum {sum})",
        start.elapsed()
    );

    // 2. Abort a task stuck on a channel that never delivers.
    let (_keep_sender, never) = oneshot::channel::<()>();
    let stuck = rt.spawn(async move {
        let _ = never.await;
    });
    stuck.abort();
    let err: JoinError = rt.block_on(stuck).unwrap_err();
    println!("aborted task: {err} (cancelled: {})", err.is_cancelled());

    // 3. A bounded channel: producers wait when it is full (backpressure).
    let received = rt.block_on(async {
        let (tx, mut rx) = mpsc::channel::<u32>(8);
        for p in 0..4u32 {
            let tx = tx.clone();
            rt_core::spawn(async move {
                for i in 0..1_000 {
                    tx.send(p * 1_000 + i).await.expect("receiver alive");
                }
            });
        }
        drop(tx);
        let mut n = 0;
        while let Some(_v) = rx.recv().await {
            n += 1;
        }
        n
    });
    println!("bounded channel (capacity 8): received {received} messages from 4 producers");
    assert_eq!(received, 4_000);

    // 4. A request/response over oneshot channels.
    let answer = rt.block_on(async {
        let (req_tx, req_rx) = oneshot::channel::<u32>();
        let (resp_tx, resp_rx) = oneshot::channel::<u32>();
        rt_core::spawn(async move {
            let q = req_rx.await.unwrap();
            resp_tx.send(q * 2).unwrap();
        });
        req_tx.send(21).unwrap();
        resp_rx.await.unwrap()
    });
    println!("oneshot ping-pong answered {answer}");

    // 5. A panicking task does not take the runtime down. (A one-line hook
    //    keeps the deliberate panic from printing a backtrace.)
    std::panic::set_hook(Box::new(|info| eprintln!("(a task panicked: {info})")));
    let err = rt.block_on(rt.spawn(async { panic!("deliberate panic in a task") }));
    println!("panicking task reported: {}", err.unwrap_err());
    assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);

    // 6. A host loop (say, a game's frame loop) drives a current-thread
    //    runtime a slice at a time, never blocking.
    let host = Builder::new_current_thread().build()?;
    let mut done = Vec::new();
    for i in 0..50u32 {
        done.push(host.spawn(async move {
            task::yield_now().await;
            i
        }));
    }
    let mut frame = 0;
    while done.iter().any(|h| !h.is_finished()) {
        let ran = host.run_for(Duration::from_millis(2), 16);
        println!("frame {frame}: ran {ran} task polls");
        frame += 1;
    }
    println!("host loop finished all tasks in {frame} frames");

    rt.shutdown_timeout(Duration::from_secs(5));
    println!("demo complete");
    Ok(())
}
