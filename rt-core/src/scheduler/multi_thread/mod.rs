//! Multi-thread work-stealing scheduler.
//!
//! - `handle.rs`: the shared state (`Handle`, `Shared`): inject queue,
//!   stealing ends, idle state, owned tasks; spawn and schedule.
//! - `worker.rs`: a worker's `Core` and its run loop.
//! - `queue.rs`: the bounded local queue on crossbeam-deque, overflow and
//!   steal-half.
//! - `lifo.rs`: the LIFO slot, which another worker may take when its owner
//!   is stuck in one poll.
//! - `inject.rs`: the global inject queue.
//! - `idle.rs`: searching/unparked accounting.
//! - `park.rs`: worker parking, in the shared driver or on a condvar.

mod handle;
mod idle;
mod inject;
mod lifo;
mod park;
mod queue;
mod worker;

pub(crate) use handle::Handle;
pub(crate) use worker::Context;

use crate::blocking::Spawner;
use crate::runtime::config::Config;
use crate::runtime::driver;
use crate::runtime::metrics::{SchedulerMetrics, WorkerMetrics};
use crate::runtime::park::Park;
use crate::task::list::OwnedTasks;
use handle::{Remote, Shared};
use idle::Idle;
use inject::Inject;
use lifo::Lifo;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use worker::{Core, Worker};

/// The body of one worker thread.
pub(crate) type WorkerBody = Box<dyn FnOnce() + Send>;

/// Initializes, on the thread that builds the runtime, the process-wide
/// lazies the workers use: crossbeam-epoch's global collector (first
/// touched by a steal) and the stuck-slot clock. Left to a worker, the
/// first use could be inside their `Once` when another thread calls
/// `fork()`: the child would inherit that `Once` mid-initialization, and
/// the workers of any runtime it builds would wait on it forever.
fn init_process_lazies() {
    crossbeam_epoch::default_collector();
    lifo::stuck_clock_ms();
}

/// Creates the scheduler and returns its handle plus one thread body per
/// worker (the caller spawns the threads).
pub(crate) fn create(
    size: usize,
    park: Box<dyn Park>,
    driver: driver::Handle,
    blocking: Spawner,
    config: Config,
) -> (Arc<Handle>, Vec<WorkerBody>) {
    assert!(size > 0, "a multi-thread runtime needs at least one worker");
    init_process_lazies();
    let parkers = park::parkers(park, size);
    let mut cores = Vec::with_capacity(size);
    let mut remotes = Vec::with_capacity(size);
    for (index, parker) in parkers.into_iter().enumerate() {
        let (steal, run_queue) = queue::local();
        let lifo = Arc::new(Lifo::new());
        remotes.push(Remote {
            steal,
            lifo: lifo.clone(),
            unpark: parker.unparker(),
        });
        cores.push(Core::new(index, run_queue, lifo, parker, &config));
    }
    let handle = Arc::new(Handle {
        shared: Shared {
            remotes: remotes.into_boxed_slice(),
            inject: Inject::new(),
            idle: Idle::new(size),
            lifo_watch: AtomicBool::new(false),
            owned: OwnedTasks::new(4 * size),
            shutdown_cores: Mutex::new(Vec::with_capacity(size)),
            worker_metrics: (0..size).map(|_| WorkerMetrics::default()).collect(),
            scheduler_metrics: SchedulerMetrics::default(),
        },
        config,
        driver,
        blocking,
    });
    let bodies = cores
        .into_iter()
        .enumerate()
        .map(|(index, core)| {
            let worker = Arc::new(Worker {
                handle: handle.clone(),
                index,
                core: Mutex::new(Some(core)),
            });
            let launch = worker::Launch::new(worker);
            Box::new(move || launch.run()) as WorkerBody
        })
        .collect();
    (handle, bodies)
}
