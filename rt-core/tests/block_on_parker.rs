//! `block_on` on a thread that does not drive the scheduler (a multi-thread
//! runtime's `block_on`, a current-thread `Handle::block_on` while another
//! thread drives it) waits on a parker of its own, not on
//! `std::thread::park`: user code that parks or unparks the thread itself
//! neither steals the runtime's wake-ups nor loses its own tokens.

mod support;

use rt_core::runtime::{Builder, Runtime};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use support::with_deadline;

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Pending until `ready`; on its first poll it hands its waker to a thread
/// that sets `ready` and wakes it 20 ms later, then itself parks the thread
/// (a synchronous library doing `park_timeout` inside a poll): that park
/// may eat a `std::thread::unpark` token meant for the runtime.
struct ParksInsidePoll {
    ready: Arc<AtomicBool>,
    started: bool,
}

impl Future for ParksInsidePoll {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.ready.load(SeqCst) {
            return Poll::Ready(());
        }
        if !self.started {
            self.started = true;
            let ready = self.ready.clone();
            let waker = cx.waker().clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                ready.store(true, SeqCst);
                waker.wake();
            });
            // Wait past the wake: the runtime's wake-up is delivered while
            // this poll still runs.
            let end = Instant::now() + Duration::from_millis(200);
            while Instant::now() < end {
                std::thread::park_timeout(end - Instant::now());
            }
        }
        Poll::Pending
    }
}

#[test]
fn user_park_inside_poll_does_not_steal_the_wakeup() {
    with_deadline("user_park_inside_poll", 20, || {
        let rt = multi_thread();
        rt.block_on(ParksInsidePoll {
            ready: Arc::new(AtomicBool::new(false)),
            started: false,
        });
    });
}

#[test]
fn user_park_inside_poll_current_thread_handle_block_on() {
    with_deadline("user_park_inside_poll_ct", 20, || {
        let rt = Builder::new_current_thread().enable_all().build().unwrap();
        let handle = rt.handle().clone();
        // Another thread drives the runtime: this `block_on` waits apart.
        let (stop_tx, stop_rx) = rt_core::sync::oneshot::channel::<()>();
        let (driving_tx, driving_rx) = mpsc::channel();
        let driver = std::thread::spawn(move || {
            rt.block_on(async move {
                driving_tx.send(()).unwrap();
                let _ = stop_rx.await;
            });
        });
        driving_rx.recv().unwrap();
        handle.block_on(ParksInsidePoll {
            ready: Arc::new(AtomicBool::new(false)),
            started: false,
        });
        stop_tx.send(()).unwrap();
        driver.join().unwrap();
    });
}

/// Another thread unparks the `block_on` thread while it waits for the
/// runtime; the user's token must still be there for the user's own
/// `park` afterwards (the runtime's wait must not consume it).
#[test]
fn user_unpark_token_survives_block_on() {
    with_deadline("user_unpark_token", 20, || {
        let rt = multi_thread();
        let me = std::thread::current();
        let waited = rt.block_on(async move {
            let (tx, rx) = rt_core::sync::oneshot::channel::<()>();
            // A task unparks this thread, then later completes the wait.
            rt_core::spawn(async move {
                me.unpark();
                rt_core::time::sleep(Duration::from_millis(50)).await;
                let _ = tx.send(());
            });
            rx.await.unwrap();
            let start = Instant::now();
            std::thread::park_timeout(Duration::from_secs(5));
            start.elapsed()
        });
        assert!(
            waited < Duration::from_secs(2),
            "the user's unpark token was consumed by the runtime (parked {waited:?})"
        );
    });
}

/// Wakes from many threads while the future also parks/unparks itself
/// never get lost.
#[test]
fn many_wakes_with_user_park_traffic() {
    with_deadline("many_wakes_user_park", 60, || {
        let rt = multi_thread();
        for _ in 0..200 {
            let ready = Arc::new(AtomicBool::new(false));
            let r = ready.clone();
            rt.block_on(std::future::poll_fn(move |cx| {
                if r.load(SeqCst) {
                    return Poll::Ready(());
                }
                // User code consuming whatever token is there.
                std::thread::current().unpark();
                std::thread::park();
                let r2 = r.clone();
                let waker = cx.waker().clone();
                std::thread::spawn(move || {
                    r2.store(true, SeqCst);
                    waker.wake();
                });
                std::thread::park_timeout(Duration::from_millis(1));
                Poll::Pending
            }));
        }
    });
}
