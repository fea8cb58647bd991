//! Helpers of the socket tests (`tcp.rs`, `net_unix.rs`, `io_waiters.rs`).

use rt_core::io::{AsyncRead, AsyncWrite};
use rt_core::task::JoinHandle;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// Echoes `stream` until its end of stream (or an error), then drops it.
pub async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = vec![0u8; 4096];
    loop {
        match rt_core::io::read(&mut stream, &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if rt_core::io::write_all(&mut stream, &buf[..n])
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// `AsyncWrite::poll_close` to completion (shuts a socket's write
/// direction down); fails the test on an error.
pub async fn futures_close<W: AsyncWrite + Unpin>(w: &mut W) {
    std::future::poll_fn(|cx| Pin::new(&mut *w).poll_close(cx))
        .await
        .unwrap();
}

/// Waits (on the runtime) until `n` tasks have counted themselves in, so
/// they are all parked in their wait before the test goes on.
pub async fn all_waiting(counter: &AtomicUsize, n: usize) {
    while counter.load(SeqCst) < n {
        rt_core::time::sleep(Duration::from_millis(1)).await;
    }
    // Each counted itself just before its first poll of the wait: give
    // every one the chance to get there.
    rt_core::time::sleep(Duration::from_millis(20)).await;
}

/// Spawns `n` tasks running `task(i)`, each counting itself in just before
/// its first poll of it, and returns once all are parked in their wait
/// ([`all_waiting`]).
pub async fn spawn_waiting<T, Fut>(
    n: usize,
    mut task: impl FnMut(usize) -> Fut,
) -> Vec<JoinHandle<T>>
where
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let started = Arc::new(AtomicUsize::new(0));
    let tasks = (0..n)
        .map(|i| {
            let (fut, started) = (task(i), started.clone());
            rt_core::spawn(async move {
                started.fetch_add(1, SeqCst);
                fut.await
            })
        })
        .collect();
    all_waiting(&started, n).await;
    tasks
}

/// A waker that counts its wakes.
#[derive(Default)]
pub struct Tracked {
    pub wakes: AtomicUsize,
}

impl Wake for Tracked {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, SeqCst);
    }
}

/// Polls `f` once with `waker`.
pub fn poll_with<F: Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

/// Fails unless `res` is the error of an I/O wait ended by the runtime's
/// shutdown.
pub fn assert_shut_down<T>(name: &str, what: &str, res: Poll<std::io::Result<T>>) {
    match res {
        Poll::Ready(Err(e)) => assert!(e.to_string().contains("shut down"), "{name}: {what}: {e}"),
        Poll::Ready(Ok(_)) => panic!("{name}: {what} succeeded after shutdown"),
        Poll::Pending => panic!("{name}: {what} still pending after shutdown"),
    }
}

/// Sends each message over `s` and reads it back (from an echo server),
/// checking the bytes; returns how many bytes went each way.
pub async fn round_trips<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    msgs: impl IntoIterator<Item = String>,
) -> usize {
    let mut bytes = 0;
    let mut buf = [0u8; 64];
    for msg in msgs {
        rt_core::io::write_all(s, msg.as_bytes()).await.unwrap();
        let got = &mut buf[..msg.len()];
        rt_core::io::read_exact(s, got).await.unwrap();
        assert_eq!(got, msg.as_bytes(), "round trip of {msg:?}");
        bytes += msg.len();
    }
    bytes
}
