//! LocalSet: `!Send` futures on the driving thread.

use rt_core::runtime::Builder;
use rt_core::sync::oneshot;
use rt_core::task::{spawn_local, yield_now, LocalSet};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn rc_futures_run_on_the_driving_thread() {
    for rt in [
        Builder::new_current_thread().build().unwrap(),
        Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap(),
    ] {
        let local = LocalSet::new();
        let me = std::thread::current().id();
        let total = local.block_on(&rt, async move {
            let counter = Rc::new(Cell::new(0));
            let handles: Vec<_> = (0..1_000)
                .map(|i| {
                    let c = counter.clone();
                    spawn_local(async move {
                        assert_eq!(std::thread::current().id(), me);
                        yield_now().await;
                        c.set(c.get() + i);
                    })
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
            counter.get()
        });
        assert_eq!(total, (0..1_000).sum::<i32>());
    }
}

#[test]
fn woken_from_another_thread() {
    let rt = Builder::new_current_thread().build().unwrap();
    let local = LocalSet::new();
    let (tx, rx) = oneshot::channel::<u32>();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    local.spawn_local(async move {
        let v = rx.await.unwrap();
        l.borrow_mut().push(v);
    });
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        tx.send(42).unwrap();
    });
    // Awaiting the set runs it until every task finished.
    rt.block_on(local);
    t.join().unwrap();
    assert_eq!(*log.borrow(), vec![42]);
}

#[test]
fn dropping_the_set_cancels_its_tasks_once() {
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let rt = Builder::new_current_thread().build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let local = LocalSet::new();
    let mut handles = Vec::new();
    for _ in 0..100 {
        let g = Guard(drops.clone());
        let not_send = Rc::new(());
        handles.push(local.spawn_local(async move {
            let _g = g;
            let _n = not_send;
            std::future::pending::<()>().await;
        }));
    }
    // Let them start, then drop the set.
    local.block_on(&rt, async {
        for _ in 0..5 {
            yield_now().await;
        }
    });
    drop(local);
    assert_eq!(drops.load(Ordering::SeqCst), 100);
    for h in handles {
        assert!(rt.block_on(h).unwrap_err().is_cancelled());
    }
}

#[test]
fn run_until_returns_with_tasks_left_and_they_resume_later() {
    let rt = Builder::new_current_thread().build().unwrap();
    let local = LocalSet::new();
    let (tx, rx) = oneshot::channel::<()>();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    local.spawn_local(async move {
        rx.await.unwrap();
        d.set(true);
    });
    local.block_on(&rt, async { yield_now().await });
    assert!(!done.get());
    tx.send(()).unwrap();
    rt.block_on(local);
    assert!(done.get());
}

#[test]
#[should_panic(expected = "LocalSet")]
fn spawn_local_outside_a_set_panics() {
    let rt = Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        spawn_local(async {});
    });
}
