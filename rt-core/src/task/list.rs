//! `OwnedTasks`: every live task of one runtime, so shutdown can cancel them.
//!
//! The list is sharded by task id to keep spawns on different threads off
//! each other's lock. Each shard is a slab (`Vec` of slots plus a free list);
//! a task remembers its slot in its header (written and read under the shard
//! lock), so insert and remove are O(1).

use super::{Schedule, Task};
use crate::loom::Mutex;
use std::sync::atomic::Ordering::Relaxed;

/// The live tasks of one scheduler.
pub(crate) struct OwnedTasks<S: 'static> {
    shards: Box<[Mutex<Shard<S>>]>,
    shard_mask: usize,
}

struct Shard<S: 'static> {
    slots: Vec<Option<Task<S>>>,
    free: Vec<usize>,
    closed: bool,
    /// Live tasks in this shard.
    alive: usize,
    /// Tasks ever inserted into this shard.
    spawned: u64,
}

impl<S: Schedule> OwnedTasks<S> {
    /// A list with at least `min_shards` shards (rounded up to a power of two).
    pub(crate) fn new(min_shards: usize) -> OwnedTasks<S> {
        let n = min_shards.max(1).next_power_of_two();
        let shards = (0..n)
            .map(|_| {
                Mutex::new(Shard {
                    slots: Vec::new(),
                    free: Vec::new(),
                    closed: false,
                    alive: 0,
                    spawned: 0,
                })
            })
            .collect();
        OwnedTasks {
            shards,
            shard_mask: n - 1,
        }
    }

    fn shard_of(&self, task: &Task<S>) -> &Mutex<Shard<S>> {
        &self.shards[(task.id().as_u64() as usize) & self.shard_mask]
    }

    /// Adds a task. If the list is closed the task is handed back so the
    /// caller can shut it down.
    pub(crate) fn insert(&self, task: Task<S>) -> Result<(), Task<S>> {
        let mut shard = self.shard_of(&task).lock().unwrap();
        if shard.closed {
            return Err(task);
        }
        let slot = match shard.free.pop() {
            Some(slot) => slot,
            None => {
                shard.slots.push(None);
                shard.slots.len() - 1
            }
        };
        task.header().owned_slot.store(slot, Relaxed);
        shard.slots[slot] = Some(task);
        shard.alive += 1;
        shard.spawned += 1;
        Ok(())
    }

    /// Removes a task that completed; `None` if it is not (any longer) here,
    /// e.g. because shutdown took it out.
    pub(crate) fn remove(&self, task: &Task<S>) -> Option<Task<S>> {
        let mut shard = self.shard_of(task).lock().unwrap();
        let slot = task.header().owned_slot.load(Relaxed);
        let entry = shard.slots.get_mut(slot)?;
        if !entry.as_ref().is_some_and(|t| t.ptr_eq(task)) {
            return None;
        }
        let removed = entry.take();
        shard.free.push(slot);
        shard.alive -= 1;
        removed
    }

    /// Closes the list (later inserts fail) and shuts down every task in it:
    /// idle tasks have their future dropped here, running ones are
    /// cancelled by their poller. Several threads may call this at once;
    /// `start` spreads them over the shards.
    pub(crate) fn close_and_shutdown_all(&self, start: usize) {
        for i in 0..self.shards.len() {
            let idx = (start + i) & self.shard_mask;
            // Take the tasks out under the lock, shut them down without it:
            // shutting down completes the task, which calls `remove`.
            let tasks: Vec<Task<S>> = {
                let mut shard = self.shards[idx].lock().unwrap();
                shard.closed = true;
                shard.free.clear();
                shard.alive = 0;
                shard.slots.drain(..).flatten().collect()
            };
            for task in tasks {
                task.shutdown();
            }
        }
    }

    /// Number of live tasks (sums the shards under their locks).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().alive).sum()
    }

    /// Number of tasks ever added.
    pub(crate) fn spawned(&self) -> u64 {
        self.shards.iter().map(|s| s.lock().unwrap().spawned).sum()
    }

    /// True if no task is alive.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
