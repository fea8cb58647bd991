//! loom models of the task state machine: every interleaving of two threads
//! (bounded by LOOM_MAX_PREEMPTIONS) keeps "polled by one thread at a time,
//! future and output dropped exactly once, memory freed, no lost wakeup".
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p rt-core --lib --release loom`.

use super::{new_task, JoinHandle, Notified, Schedule, Task};
use crate::loom::Mutex;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// A scheduler that queues woken tasks for the test threads to run.
#[derive(Clone)]
struct Mock {
    inner: Arc<MockInner>,
}

struct MockInner {
    queue: Mutex<VecDeque<Notified<Mock>>>,
    owned: Mutex<Vec<Task<Mock>>>,
}

impl Mock {
    fn new() -> Mock {
        Mock {
            inner: Arc::new(MockInner {
                queue: Mutex::new(VecDeque::new()),
                owned: Mutex::new(Vec::new()),
            }),
        }
    }

    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, notified, join) = new_task(future, self.clone(), super::Id::next());
        self.inner.owned.lock().unwrap().push(task);
        self.schedule(notified);
        join
    }

    /// Runs queued tasks until the queue is empty.
    fn run(&self) {
        loop {
            let next = self.inner.queue.lock().unwrap().pop_front();
            match next {
                Some(task) => task.run(),
                None => return,
            }
        }
    }

    fn take_owned(&self) -> Option<Task<Mock>> {
        self.inner.owned.lock().unwrap().pop()
    }

    /// Drops queued entries (as a closing scheduler does).
    fn drain(&self) {
        let q = std::mem::take(&mut *self.inner.queue.lock().unwrap());
        drop(q);
    }
}

impl Schedule for Mock {
    fn release(&self, task: &Task<Self>) -> Option<Task<Self>> {
        let mut owned = self.inner.owned.lock().unwrap();
        let pos = owned.iter().position(|t| t.ptr_eq(task))?;
        Some(owned.swap_remove(pos))
    }

    fn schedule(&self, task: Notified<Self>) {
        self.inner.queue.lock().unwrap().push_back(task);
    }
}

/// Counts drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// Pending until `ready` is set; stores its waker for whoever sets it.
struct WaitFlag {
    ready: Arc<crate::loom::AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
    _drop: Counted,
}

impl Future for WaitFlag {
    type Output = Counted;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Counted> {
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.ready.load(SeqCst) {
            Poll::Ready(Counted(Arc::new(AtomicUsize::new(0))))
        } else {
            Poll::Pending
        }
    }
}

/// Reads the join handle's output without blocking.
fn try_join<T>(jh: &mut JoinHandle<T>) -> Poll<Result<T, super::JoinError>> {
    let mut cx = Context::from_waker(Waker::noop());
    crate::task::coop::with_budget(crate::task::coop::Budget::unconstrained(), || {
        Pin::new(jh).poll(&mut cx)
    })
}

/// The mock (inside every task cell) is freed with the task: its Arc count
/// returns to one.
fn assert_all_freed(mock: &Mock) {
    assert!(mock.inner.owned.lock().unwrap().is_empty());
    assert_eq!(Arc::strong_count(&mock.inner), 1, "a task was leaked");
}

#[test]
fn wake_vs_poll() {
    loom::model(|| {
        let mock = Mock::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(crate::loom::AtomicBool::new(false));
        let slot = Arc::new(Mutex::new(None::<Waker>));
        let mut jh = mock.spawn(WaitFlag {
            ready: ready.clone(),
            waker: slot.clone(),
            _drop: Counted(drops.clone()),
        });
        let m2 = mock.clone();
        let runner = loom::thread::spawn(move || m2.run());
        // Waker thread: make it ready, then wake whatever waker is stored.
        ready.store(true, SeqCst);
        let w = slot.lock().unwrap().take();
        if let Some(w) = w {
            w.wake();
        }
        runner.join().unwrap();
        mock.run();
        assert!(
            try_join(&mut jh).is_ready(),
            "lost wakeup: task never completed"
        );
        assert_eq!(drops.load(SeqCst), 1);
        drop(jh);
        slot.lock().unwrap().take();
        assert_all_freed(&mock);
    });
}

#[test]
fn abort_vs_complete() {
    loom::model(|| {
        let mock = Mock::new();
        let fut_drops = Arc::new(AtomicUsize::new(0));
        let out_drops = Arc::new(AtomicUsize::new(0));
        let (f, o) = (Counted(fut_drops.clone()), out_drops.clone());
        let mut jh = mock.spawn(async move {
            let _f = f;
            Counted(o)
        });
        let abort = jh.abort_handle();
        let m2 = mock.clone();
        let runner = loom::thread::spawn(move || m2.run());
        abort.abort();
        runner.join().unwrap();
        mock.run();
        match try_join(&mut jh) {
            Poll::Ready(Ok(out)) => drop(out),
            Poll::Ready(Err(e)) => assert!(e.is_cancelled()),
            Poll::Pending => panic!("task neither completed nor cancelled"),
        }
        assert_eq!(fut_drops.load(SeqCst), 1);
        assert!(out_drops.load(SeqCst) <= 1);
        drop(jh);
        drop(abort);
        assert_all_freed(&mock);
    });
}

#[test]
fn join_handle_drop_vs_complete() {
    loom::model(|| {
        let mock = Mock::new();
        let out_drops = Arc::new(AtomicUsize::new(0));
        let o = out_drops.clone();
        let jh = mock.spawn(async move { Counted(o) });
        let m2 = mock.clone();
        let runner = loom::thread::spawn(move || m2.run());
        drop(jh);
        runner.join().unwrap();
        // Whoever came second dropped the output, exactly once.
        assert_eq!(out_drops.load(SeqCst), 1);
        assert_all_freed(&mock);
    });
}

#[test]
fn join_waker_vs_complete() {
    loom::model(|| {
        use std::task::Wake;
        struct Flag(crate::loom::AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, SeqCst);
            }
        }
        let mock = Mock::new();
        let mut jh = mock.spawn(async { 7u8 });
        let m2 = mock.clone();
        let runner = loom::thread::spawn(move || m2.run());
        let flag = Arc::new(Flag(crate::loom::AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let first =
            crate::task::coop::with_budget(crate::task::coop::Budget::unconstrained(), || {
                Pin::new(&mut jh).poll(&mut cx)
            });
        runner.join().unwrap();
        match first {
            Poll::Ready(v) => assert_eq!(v.unwrap(), 7),
            Poll::Pending => {
                assert!(flag.0.load(SeqCst), "join waker not woken on completion");
                assert!(matches!(try_join(&mut jh), Poll::Ready(Ok(7))));
            }
        }
        drop(jh);
        drop(waker);
        assert_eq!(Arc::strong_count(&flag), 1, "join waker leaked");
        assert_all_freed(&mock);
    });
}

#[test]
fn shutdown_vs_poll() {
    loom::model(|| {
        let mock = Mock::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(crate::loom::AtomicBool::new(false));
        let slot = Arc::new(Mutex::new(None::<Waker>));
        let mut jh = mock.spawn(WaitFlag {
            ready,
            waker: slot.clone(),
            _drop: Counted(drops.clone()),
        });
        let m2 = mock.clone();
        let runner = loom::thread::spawn(move || m2.run());
        // The runtime closes: take the owned entry and shut the task down.
        if let Some(task) = mock.take_owned() {
            task.shutdown();
        }
        runner.join().unwrap();
        mock.drain();
        assert_eq!(drops.load(SeqCst), 1, "future not dropped exactly once");
        match try_join(&mut jh) {
            Poll::Ready(Err(e)) => assert!(e.is_cancelled()),
            other => panic!("expected cancellation, got {:?}", other.map(|r| r.is_ok())),
        }
        drop(jh);
        slot.lock().unwrap().take();
        assert_all_freed(&mock);
    });
}
