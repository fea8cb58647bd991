//! Idle-worker accounting: how many workers are searching for work and how
//! many are unparked, packed in one atomic, plus the list of sleepers.
//!
//! The rules that keep wakes cheap and avoid thundering herds:
//! - at most half the workers search (steal) at once;
//! - a new task only wakes a sleeper if nobody is searching (a searcher will
//!   find the task) and someone sleeps; the woken worker starts searching;
//! - the last searcher to find work wakes one more worker, in case more
//!   work is waiting.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Mutex;

const UNPARK_SHIFT: usize = 16;
const UNPARK_ONE: usize = 1 << UNPARK_SHIFT;
const SEARCH_MASK: usize = UNPARK_ONE - 1;

/// The idle state of one multi-thread scheduler.
pub(super) struct Idle {
    /// Low 16 bits: searching workers; high bits: unparked workers.
    state: AtomicUsize,
    /// Indexes of parked workers.
    sleepers: Mutex<Vec<usize>>,
    num_workers: usize,
}

fn num_searching(state: usize) -> usize {
    state & SEARCH_MASK
}

fn num_unparked(state: usize) -> usize {
    state >> UNPARK_SHIFT
}

impl Idle {
    pub(super) fn new(num_workers: usize) -> Idle {
        assert!(num_workers < SEARCH_MASK, "too many workers");
        Idle {
            state: AtomicUsize::new(num_workers << UNPARK_SHIFT),
            sleepers: Mutex::new(Vec::with_capacity(num_workers)),
            num_workers,
        }
    }

    /// If a sleeper should be woken for new work, marks it unparked and
    /// searching and returns its index.
    pub(super) fn worker_to_notify(&self) -> Option<usize> {
        if !self.notify_should_wakeup() {
            return None;
        }
        let mut sleepers = self.sleepers.lock().unwrap();
        // Check again under the lock: parking happens under it too.
        if !self.notify_should_wakeup() {
            return None;
        }
        let worker = sleepers.pop()?;
        self.state.fetch_add(UNPARK_ONE | 1, SeqCst);
        Some(worker)
    }

    /// A worker parks. Returns true if it was the last searcher (it must
    /// then check for work that arrived while it searched).
    pub(super) fn transition_worker_to_parked(&self, worker: usize, is_searching: bool) -> bool {
        let mut sleepers = self.sleepers.lock().unwrap();
        let dec = UNPARK_ONE + usize::from(is_searching);
        let prev = self.state.fetch_sub(dec, SeqCst);
        sleepers.push(worker);
        is_searching && num_searching(prev) == 1
    }

    /// A worker wants to steal: allowed while fewer than half search.
    pub(super) fn transition_worker_to_searching(&self) -> bool {
        let state = self.state.load(SeqCst);
        if 2 * num_searching(state) >= self.num_workers {
            return false;
        }
        // Racy on purpose, like the bound it enforces: a few too many
        // searchers for a moment is harmless.
        self.state.fetch_add(1, SeqCst);
        true
    }

    /// A searcher found work. True if it was the last searcher.
    pub(super) fn transition_worker_from_searching(&self) -> bool {
        let prev = self.state.fetch_sub(1, SeqCst);
        debug_assert!(num_searching(prev) > 0);
        num_searching(prev) == 1
    }

    /// Takes a worker off the sleepers list because it found work by
    /// itself. True if it was there (then it is not searching).
    pub(super) fn unpark_worker_by_id(&self, worker: usize) -> bool {
        let mut sleepers = self.sleepers.lock().unwrap();
        if let Some(pos) = sleepers.iter().position(|&w| w == worker) {
            sleepers.swap_remove(pos);
            self.state.fetch_add(UNPARK_ONE, SeqCst);
            return true;
        }
        false
    }

    /// True if the worker is still on the sleepers list.
    pub(super) fn is_parked(&self, worker: usize) -> bool {
        self.sleepers.lock().unwrap().contains(&worker)
    }

    /// Workers not parked now (running, searching or about to park).
    pub(super) fn num_unparked(&self) -> usize {
        num_unparked(self.state.load(SeqCst))
    }

    /// True if some worker is parked now (a plain load: cheap enough for
    /// a hot path, unlike `worker_to_notify`).
    pub(super) fn has_sleepers(&self) -> bool {
        self.num_unparked() < self.num_workers
    }

    fn notify_should_wakeup(&self) -> bool {
        let state = self.state.fetch_add(0, SeqCst);
        num_searching(state) == 0 && num_unparked(state) < self.num_workers
    }

    #[cfg(all(test, not(loom)))]
    fn counts(&self) -> (usize, usize) {
        let s = self.state.load(SeqCst);
        (num_searching(s), num_unparked(s))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn at_most_half_search() {
        let idle = Idle::new(4);
        assert!(idle.transition_worker_to_searching());
        assert!(idle.transition_worker_to_searching());
        assert!(!idle.transition_worker_to_searching());
        assert_eq!(idle.counts(), (2, 4));
    }

    #[test]
    fn wake_only_when_nobody_searches() {
        let idle = Idle::new(2);
        assert_eq!(idle.worker_to_notify(), None); // nobody sleeps
        assert!(!idle.transition_worker_to_parked(1, false));
        assert!(idle.transition_worker_to_searching()); // worker 0 searches
        assert_eq!(idle.worker_to_notify(), None);
        assert!(idle.transition_worker_from_searching());
        assert_eq!(idle.worker_to_notify(), Some(1));
        // The woken worker counts as searching: no second wake.
        assert_eq!(idle.counts(), (1, 2));
        assert_eq!(idle.worker_to_notify(), None);
    }

    #[test]
    fn last_searcher_to_park_is_reported() {
        let idle = Idle::new(2);
        assert!(idle.transition_worker_to_searching());
        assert!(idle.transition_worker_to_parked(0, true));
        assert!(idle.is_parked(0));
        assert!(idle.unpark_worker_by_id(0));
        assert!(!idle.is_parked(0));
        assert_eq!(idle.counts(), (0, 2));
    }
}
