//! A runtime or a `LocalSet` kept in a `thread_local!` is dropped during
//! the thread's TLS teardown, possibly after rt-core's own thread-locals
//! are gone. That drop must not panic (a panic there aborts the process:
//! "thread local panicked on drop"). Adapted from Tokio's
//! `runtime_in_thread_local` and `store_local_set_in_thread_local_with_runtime`.

use rt_core::runtime::{Builder, Runtime};
use rt_core::task::{spawn_local, LocalSet};
use std::cell::RefCell;
use std::future::pending;
use std::rc::Rc;

fn runtimes() -> Vec<Runtime> {
    vec![
        Builder::new_current_thread().enable_all().build().unwrap(),
        Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    ]
}

#[test]
fn runtime_in_thread_local() {
    thread_local! {
        static R: RefCell<Vec<Runtime>> = const { RefCell::new(Vec::new()) };
    }
    std::thread::spawn(|| {
        // Stored first, so it is destroyed after the runtime's own TLS.
        R.with(|cell| *cell.borrow_mut() = runtimes());
        R.with(|cell| {
            for rt in cell.borrow().iter() {
                // Uses rt-core's thread-locals on this thread, and leaves
                // work behind for the drop.
                rt.block_on(async {
                    rt_core::spawn(pending::<()>());
                    let _ = rt_core::spawn(async { 1 }).await;
                    rt_core::time::sleep(std::time::Duration::from_millis(1)).await;
                });
                let _g = rt.enter();
            }
        });
    })
    .join()
    .unwrap();
}

struct RtAndLocalSet {
    rt: Runtime,
    local: LocalSet,
}

impl RtAndLocalSet {
    fn new() -> RtAndLocalSet {
        RtAndLocalSet {
            rt: Builder::new_current_thread().enable_all().build().unwrap(),
            local: LocalSet::new(),
        }
    }

    fn method(&self) {
        self.rt.block_on(self.local.run_until(async {
            let rc = Rc::new(1);
            spawn_local(async move {
                let _rc = rc;
                pending::<()>().await
            });
            spawn_local(async {}).await.unwrap();
        }));
    }
}

#[test]
fn local_set_and_runtime_in_thread_local() {
    thread_local! {
        static CURRENT: RtAndLocalSet = RtAndLocalSet::new();
    }
    std::thread::spawn(|| CURRENT.with(|c| c.method()))
        .join()
        .unwrap();
}

#[test]
fn local_set_alone_in_thread_local() {
    thread_local! {
        static SET: RefCell<Option<LocalSet>> = const { RefCell::new(None) };
    }
    std::thread::spawn(|| {
        SET.with(|s| *s.borrow_mut() = Some(LocalSet::new()));
        let rt = Builder::new_current_thread().build().unwrap();
        SET.with(|s| {
            let s = s.borrow();
            let set = s.as_ref().unwrap();
            set.block_on(&rt, async {
                spawn_local(pending::<()>());
                rt_core::task::yield_now().await;
            });
        });
        // The runtime goes first; the set, with a task left, at teardown.
        drop(rt);
    })
    .join()
    .unwrap();
}
