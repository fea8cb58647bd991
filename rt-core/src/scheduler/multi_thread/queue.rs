//! A worker's bounded local run queue on `crossbeam-deque`.
//!
//! The owner pushes and pops at one end (FIFO); other workers steal half of
//! it from the other end. crossbeam's deque grows without bound, so the
//! bound of [`LOCAL_QUEUE_CAPACITY`] is kept here: a push into a full queue
//! moves the older half plus the new task to the global inject queue in one
//! batch (overflow).

use super::inject::Inject;
use crate::runtime::metrics::WorkerStats;
use crossbeam_deque::{Steal as StealResult, Stealer, Worker};

/// Slots in a worker's local queue.
pub(super) const LOCAL_QUEUE_CAPACITY: usize = 256;

/// The owner's end of a local queue.
pub(super) struct Local<T> {
    inner: Worker<T>,
}

/// Another worker's end of a local queue.
pub(super) struct Steal<T> {
    inner: Stealer<T>,
}

/// A new local queue and its stealing end.
pub(super) fn local<T>() -> (Steal<T>, Local<T>) {
    let inner = Worker::new_fifo();
    let steal = Steal {
        inner: inner.stealer(),
    };
    (steal, Local { inner })
}

impl<T> Local<T> {
    /// Entries in the queue now.
    pub(super) fn len(&self) -> usize {
        self.inner.len()
    }

    /// True if the queue holds anything.
    pub(super) fn has_tasks(&self) -> bool {
        !self.inner.is_empty()
    }

    /// Free slots (other workers can only take entries away, never add).
    pub(super) fn remaining_slots(&self) -> usize {
        LOCAL_QUEUE_CAPACITY.saturating_sub(self.len())
    }

    /// The bound of the queue.
    pub(super) fn max_capacity(&self) -> usize {
        LOCAL_QUEUE_CAPACITY
    }

    /// Pushes to the back; on a full queue moves half of it and `task` to
    /// `inject` instead.
    pub(super) fn push_back_or_overflow(
        &mut self,
        task: T,
        inject: &Inject<T>,
        stats: &mut WorkerStats,
    ) {
        if self.len() < LOCAL_QUEUE_CAPACITY {
            self.inner.push(task);
            return;
        }
        let half = LOCAL_QUEUE_CAPACITY / 2;
        let mut batch = Vec::with_capacity(half + 1);
        // The oldest entries go: the owner pops from the front.
        for _ in 0..half {
            match self.inner.pop() {
                Some(t) => batch.push(t),
                None => break,
            }
        }
        batch.push(task);
        stats.overflows += 1;
        inject.push_batch(batch);
    }

    /// Takes the oldest entry.
    pub(super) fn pop(&mut self) -> Option<T> {
        self.inner.pop()
    }

    /// Moves up to `limit` entries (including the returned one) from the
    /// inject queue into this queue and returns one to run now.
    pub(super) fn refill_from(&mut self, inject: &Inject<T>, limit: usize) -> Option<T> {
        inject.pop_batch_into(&self.inner, limit)
    }

    /// Drops every entry (shutdown).
    pub(super) fn clear(&mut self) {
        while self.inner.pop().is_some() {}
    }
}

impl<T> Steal<T> {
    /// True if nothing can be stolen now.
    pub(super) fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Steals half of the victim's queue into `dst` and returns one entry to
    /// run now. Only steals while `dst` is at most half full, so the stolen
    /// batch always fits.
    pub(super) fn steal_into(&self, dst: &mut Local<T>, stats: &mut WorkerStats) -> Option<T> {
        if dst.len() > LOCAL_QUEUE_CAPACITY / 2 {
            return None;
        }
        let before = dst.len();
        loop {
            match self
                .inner
                .steal_batch_with_limit_and_pop(&dst.inner, LOCAL_QUEUE_CAPACITY / 2)
            {
                StealResult::Success(task) => {
                    stats.steals += (dst.len() - before) as u64 + 1;
                    return Some(task);
                }
                StealResult::Empty => return None,
                StealResult::Retry => crate::loom::spin_loop(),
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn overflow_moves_half_plus_one_to_inject() {
        let inject = Inject::new();
        let (_steal, mut local) = local::<usize>();
        let mut stats = WorkerStats::default();
        for i in 0..LOCAL_QUEUE_CAPACITY {
            local.push_back_or_overflow(i, &inject, &mut stats);
        }
        assert_eq!(local.len(), LOCAL_QUEUE_CAPACITY);
        assert_eq!(inject.len(), 0);
        local.push_back_or_overflow(999, &inject, &mut stats);
        assert_eq!(local.len(), LOCAL_QUEUE_CAPACITY / 2);
        assert_eq!(inject.len(), LOCAL_QUEUE_CAPACITY / 2 + 1);
        assert_eq!(stats.overflows, 1);
        // The oldest half went to the inject queue, in order.
        assert_eq!(inject.pop(), Some(0));
        assert_eq!(local.pop(), Some(LOCAL_QUEUE_CAPACITY / 2));
    }

    #[test]
    fn steal_takes_half() {
        let inject = Inject::new();
        let (steal, mut victim) = local::<usize>();
        let (_s2, mut thief) = local::<usize>();
        let mut stats = WorkerStats::default();
        for i in 0..100 {
            victim.push_back_or_overflow(i, &inject, &mut stats);
        }
        let first = steal.steal_into(&mut thief, &mut stats);
        assert_eq!(first, Some(0));
        assert_eq!(thief.len() + 1, 50);
        assert_eq!(victim.len(), 50);
        assert_eq!(stats.steals, 50);
    }

    #[test]
    fn no_steal_into_a_more_than_half_full_queue() {
        let inject = Inject::new();
        let (steal, mut victim) = local::<usize>();
        let (_s2, mut thief) = local::<usize>();
        let mut stats = WorkerStats::default();
        for i in 0..10 {
            victim.push_back_or_overflow(i, &inject, &mut stats);
        }
        for i in 0..(LOCAL_QUEUE_CAPACITY / 2 + 1) {
            thief.push_back_or_overflow(i, &inject, &mut stats);
        }
        assert!(steal.steal_into(&mut thief, &mut stats).is_none());
    }
}
