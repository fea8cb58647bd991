//! The lock of the loop's state ([`StateLock`]): a mutex, or the
//! embedder's own lock.
//!
//! Every iteration of a busy loop takes the state at least once, and every
//! `call_soon` once more: with a mutex, two atomic read-modify-writes each
//! (without them, a chain of `call_soon`s on rtpy ran 1.7% faster on the
//! development VM). An embedder whose calls into the loop all hold a lock of
//! its own already (Python's GIL, for rtpy) can build the loop with
//! [`EventLoop::with_outside_lock`](super::EventLoop::with_outside_lock):
//! the state is then guarded by that lock, and taking it here costs a plain
//! load and two plain stores (a `busy` flag that turns a re-entrant take,
//! which the mutex would deadlock on, into a panic).

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, TryLockError};

/// A value behind a mutex, or behind the embedder's own lock.
pub(crate) struct StateLock<T> {
    /// `None`: the embedder's lock guards the value (see `outside`).
    mutex: Option<Mutex<()>>,
    /// Set while a guard of an outside-locked value lives. Only read and
    /// written by the holder of the embedder's lock, which orders every
    /// access: relaxed accesses (plain loads and stores) suffice.
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached through a `StateGuard`, which exists only
// while the mutex is held (`mutex` is `Some`) or, for a lock made by the
// unsafe `outside`, while its `busy` flag is set by the holder of the
// embedder's lock, which that constructor's caller promised every taker
// holds: either way no two threads reach `value` at once, and the lock's
// release / acquire orders their accesses. `T: Send` as the value may be
// reached (and dropped) from any thread.
unsafe impl<T: Send> Sync for StateLock<T> {}

impl<T> StateLock<T> {
    /// `value` behind a mutex of its own.
    pub(crate) fn new(value: T) -> StateLock<T> {
        StateLock {
            mutex: Some(Mutex::new(())),
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// `value` behind the caller's own lock.
    ///
    /// # Safety
    /// Every [`lock`](Self::lock) and [`try_lock`](Self::try_lock), from
    /// every thread, must be made while holding one and the same lock of
    /// the caller's, held until the guard is dropped (a lock whose release
    /// and acquisition synchronise, as a mutex's or Python's GIL's do).
    pub(crate) unsafe fn outside(value: T) -> StateLock<T> {
        StateLock {
            mutex: None,
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the value, waiting for the mutex if there is one.
    ///
    /// # Panics
    /// If the value is outside-locked and already taken (a take from within
    /// a take, on the thread holding the embedder's lock).
    #[inline]
    pub(crate) fn lock(&self) -> StateGuard<'_, T> {
        let mutex = match &self.mutex {
            // A panic never happens under the lock; recover anyway.
            Some(m) => Some(m.lock().unwrap_or_else(|e| e.into_inner())),
            None => {
                assert!(self.take_busy(), "the event loop's state was taken twice");
                None
            }
        };
        StateGuard { lock: self, mutex }
    }

    /// Takes the value if it is free now.
    pub(crate) fn try_lock(&self) -> Option<StateGuard<'_, T>> {
        let mutex = match &self.mutex {
            Some(m) => match m.try_lock() {
                Ok(g) => Some(g),
                Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(TryLockError::WouldBlock) => return None,
            },
            None if !self.take_busy() => return None,
            None => None,
        };
        Some(StateGuard { lock: self, mutex })
    }

    /// Sets the `busy` flag of an outside-locked value; false if it was set
    /// already (plain accesses: the embedder's lock orders them).
    fn take_busy(&self) -> bool {
        if self.busy.load(Relaxed) {
            return false;
        }
        self.busy.store(true, Relaxed);
        true
    }
}

/// Exclusive access to a [`StateLock`]'s value while it lives: the lock's
/// mutex held, or (no mutex) its `busy` flag set, then cleared on drop.
pub(crate) struct StateGuard<'a, T> {
    lock: &'a StateLock<T>,
    /// Released after the drop below (fields drop after `drop`).
    mutex: Option<MutexGuard<'a, ()>>,
}

impl<T> Drop for StateGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.mutex.is_none() {
            self.lock.busy.store(false, Relaxed);
        }
    }
}

impl<T> Deref for StateGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard is the exclusion (see the `Sync` impl): no
        // other guard exists while this one lives.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for StateGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as `deref`; `&mut self` makes this the only reference
        // taken through the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_mutex_lock_excludes_and_releases() {
        let l = StateLock::new(1);
        {
            let mut g = l.lock();
            *g += 1;
            assert!(l.try_lock().is_none(), "held");
        }
        assert_eq!(*l.try_lock().expect("free"), 2);
    }

    #[test]
    fn an_outside_lock_is_marked_busy_while_taken() {
        // SAFETY: one thread takes it: trivially serialised.
        let l = unsafe { StateLock::outside(1) };
        {
            let mut g = l.lock();
            *g += 1;
            assert!(l.try_lock().is_none(), "taken");
        }
        assert_eq!(*l.lock(), 2);
        assert!(l.try_lock().is_some(), "released");
    }

    #[test]
    #[should_panic(expected = "taken twice")]
    fn an_outside_lock_taken_twice_panics() {
        // SAFETY: one thread takes it: trivially serialised.
        let l = unsafe { StateLock::outside(()) };
        let _g = l.lock();
        let _h = l.lock();
    }

    #[test]
    fn an_outside_lock_serves_threads_serialised_by_a_mutex() {
        let outer = std::sync::Arc::new(Mutex::new(()));
        // SAFETY: every take below holds `outer` until its guard drops.
        let l = std::sync::Arc::new(unsafe { StateLock::outside(0u64) });
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (outer, l) = (outer.clone(), l.clone());
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        let _o = outer.lock().unwrap();
                        *l.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let _o = outer.lock().unwrap();
        assert_eq!(*l.lock(), 40_000);
    }
}
