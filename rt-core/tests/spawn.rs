//! Spawning and joining many tasks on both flavors.

use rt_core::runtime::{Builder, Runtime};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn flavors() -> Vec<(&'static str, Runtime)> {
    vec![
        (
            "current_thread",
            Builder::new_current_thread().build().unwrap(),
        ),
        (
            "multi_thread",
            Builder::new_multi_thread()
                .worker_threads(4)
                .build()
                .unwrap(),
        ),
    ]
}

#[test]
fn hundred_thousand_tasks_complete_with_results() {
    for (name, rt) in flavors() {
        let sum = rt.block_on(async {
            let handles: Vec<_> = (0..100_000u64)
                .map(|i| rt_core::spawn(async move { i * 3 }))
                .collect();
            let mut sum = 0u64;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, 3 * (100_000u64 * 99_999 / 2), "{name}");
        assert_eq!(rt.metrics().num_alive_tasks(), 0, "{name}");
        assert!(rt.metrics().spawned_tasks_count() >= 100_000, "{name}");
    }
}

#[test]
fn spawn_from_outside_runtime_threads() {
    for (name, rt) in flavors() {
        let counter = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..10_000)
            .map(|_| {
                let c = counter.clone();
                rt.spawn(async move {
                    c.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        rt.block_on(async {
            for h in handles {
                h.await.unwrap();
            }
        });
        assert_eq!(counter.load(Ordering::Relaxed), 10_000, "{name}");
    }
}

#[test]
fn spawn_from_foreign_threads_through_handle() {
    for (name, rt) in flavors() {
        let handle = rt.handle().clone();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let handle = handle.clone();
                std::thread::spawn(move || {
                    (0..2_500u64)
                        .map(|i| handle.spawn(async move { t * 10_000 + i }))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let handles: Vec<_> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let results = rt.block_on(async {
            let mut v = Vec::new();
            for h in handles {
                v.push(h.await.unwrap());
            }
            v
        });
        assert_eq!(results.len(), 10_000, "{name}");
        let mut sorted = results.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 10_000, "{name}: duplicate or lost results");
    }
}

#[test]
fn chained_spawns_and_nested_joins() {
    fn chain(n: usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = usize> + Send>> {
        Box::pin(async move {
            if n == 0 {
                0
            } else {
                rt_core::spawn(chain(n - 1)).await.unwrap() + 1
            }
        })
    }
    for (name, rt) in flavors() {
        assert_eq!(rt.block_on(chain(1_000)), 1_000, "{name}");
    }
}

#[test]
fn handle_current_and_try_current() {
    assert!(rt_core::runtime::Handle::try_current().is_err());
    for (name, rt) in flavors() {
        let flavor = rt.block_on(async { rt_core::runtime::Handle::current().runtime_flavor() });
        assert_eq!(flavor, rt.handle().runtime_flavor(), "{name}");
        {
            let _guard = rt.enter();
            let h = rt_core::spawn(async { 5 });
            assert_eq!(rt.block_on(h).unwrap(), 5, "{name}");
        }
        assert!(rt_core::runtime::Handle::try_current().is_err());
    }
}

#[test]
fn nested_block_on_panics_with_clear_message() {
    let rt = Builder::new_current_thread().build().unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let inner = Builder::new_current_thread().build().unwrap();
            inner.block_on(async {});
        })
    }))
    .unwrap_err();
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap();
    assert!(
        msg.contains("Cannot start a runtime from within a runtime"),
        "{msg}"
    );
}
