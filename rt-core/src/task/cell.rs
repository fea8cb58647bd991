//! The single allocation behind every task: header, core and trailer.
//!
//! `Cell` is `#[repr(C)]` with the `Header` first, so a pointer to the header
//! is a pointer to the cell; the type-erased code (queues, wakers, handles)
//! holds only `NonNull<Header>` and reaches the typed parts through the
//! header's vtable.

use super::raw::{self, Vtable};
use super::state::State;
use super::{Id, JoinError, Schedule};
use crate::loom::UnsafeCell;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::AtomicUsize;
use std::task::{Context, Poll, Waker};

/// One task: header (type-erased), core (future or output, scheduler),
/// trailer (join waker).
#[repr(C)]
pub(super) struct Cell<T: Future, S> {
    pub(super) header: Header,
    pub(super) core: Core<T, S>,
    pub(super) trailer: Trailer,
}

/// The type-erased part of a task, shared by every handle to it.
#[repr(C)]
pub(crate) struct Header {
    /// State bits and reference count.
    pub(super) state: State,
    /// The typed operations of this task.
    pub(super) vtable: &'static Vtable,
    /// The task's id.
    pub(super) id: Id,
    /// Index of the task in its owner's `OwnedTasks` shard; only read or
    /// written with that shard's lock held (so relaxed ordering suffices).
    pub(super) owned_slot: AtomicUsize,
}

/// The typed part of a task: its scheduler and its stage.
pub(super) struct Core<T: Future, S> {
    pub(super) scheduler: S,
    pub(super) task_id: Id,
    /// Owned by whoever holds `RUNNING`, or after `COMPLETE` per the rules in
    /// `state.rs`.
    stage: UnsafeCell<Stage<T>>,
}

/// What the task holds now.
pub(super) enum Stage<T: Future> {
    /// The future, not yet complete.
    Running(T),
    /// The output (or why there is none), waiting for the join handle.
    Finished(Result<T::Output, JoinError>),
    /// Nothing: the output was taken or dropped.
    Consumed,
}

/// The join handle's waker slot (see the `JOIN_WAKER` rules in `state.rs`).
pub(super) struct Trailer {
    waker: UnsafeCell<Option<Waker>>,
}

impl<T: Future, S: Schedule> Cell<T, S> {
    /// Allocates a new task and returns its header pointer. The reference
    /// count starts at three (see `State::new`).
    pub(super) fn allocate(future: T, scheduler: S, id: Id) -> NonNull<Header> {
        let cell = Box::new(Cell {
            header: Header {
                state: State::new(),
                vtable: raw::vtable::<T, S>(),
                id,
                owned_slot: AtomicUsize::new(usize::MAX),
            },
            core: Core {
                scheduler,
                task_id: id,
                stage: UnsafeCell::new(Stage::Running(future)),
            },
            trailer: Trailer {
                waker: UnsafeCell::new(None),
            },
        });
        NonNull::from(Box::leak(cell)).cast::<Header>()
    }
}

impl<T: Future, S> Core<T, S> {
    /// Polls the future. If it completes, the future is dropped at once.
    ///
    /// # Safety
    /// The caller holds `RUNNING` (exclusive access to the stage), and the
    /// stage is `Running`.
    pub(super) unsafe fn poll(&self, mut cx: Context<'_>) -> Poll<T::Output> {
        let res = self.stage.with_mut(|ptr| {
            // SAFETY: the caller holds RUNNING, so no other thread reads or
            // writes the stage while this reference lives.
            let stage = unsafe { &mut *ptr };
            let Stage::Running(future) = stage else {
                unreachable!("polled a task whose future is gone");
            };
            // SAFETY: the future lives inside the heap-allocated cell, which is
            // never moved; it is only ever dropped in place (set_stage).
            let future = unsafe { Pin::new_unchecked(future) };
            future.poll(&mut cx)
        });
        if res.is_ready() {
            // SAFETY: still under the caller's RUNNING.
            unsafe { self.drop_future_or_output() };
        }
        res
    }

    /// Drops whatever the stage holds.
    ///
    /// # Safety
    /// The caller has exclusive access to the stage (see `state.rs`).
    pub(super) unsafe fn drop_future_or_output(&self) {
        // SAFETY: forwarded from the caller.
        unsafe { self.set_stage(Stage::Consumed) }
    }

    /// Stores the output for the join handle.
    ///
    /// # Safety
    /// The caller has exclusive access to the stage (see `state.rs`).
    pub(super) unsafe fn store_output(&self, output: Result<T::Output, JoinError>) {
        // SAFETY: forwarded from the caller.
        unsafe { self.set_stage(Stage::Finished(output)) }
    }

    /// Takes the output out, leaving `Consumed`.
    ///
    /// # Safety
    /// The caller is the join handle and the task is `COMPLETE`.
    pub(super) unsafe fn take_output(&self) -> Result<T::Output, JoinError> {
        self.stage.with_mut(|ptr| {
            // SAFETY: after COMPLETE, with JOIN_INTEREST set, only the join
            // handle touches the stage.
            match std::mem::replace(unsafe { &mut *ptr }, Stage::Consumed) {
                Stage::Finished(output) => output,
                _ => panic!("JoinHandle polled after it returned its output"),
            }
        })
    }

    unsafe fn set_stage(&self, stage: Stage<T>) {
        // SAFETY: the caller has exclusive access to the stage. If dropping
        // the old stage panics, the new value is still written (assignment
        // semantics), so the stage is never left dropped-but-readable.
        self.stage.with_mut(|ptr| unsafe { *ptr = stage })
    }
}

impl Trailer {
    /// Replaces the join waker.
    ///
    /// # Safety
    /// The caller owns the waker slot (see `JOIN_WAKER` in `state.rs`).
    pub(super) unsafe fn set_waker(&self, waker: Option<Waker>) {
        // SAFETY: forwarded from the caller.
        self.waker.with_mut(|ptr| unsafe { *ptr = waker });
    }

    /// True if the stored waker would wake the same task as `waker`.
    ///
    /// # Safety
    /// The slot is set and not concurrently written (the join handle, which
    /// is the only writer, is the caller).
    pub(super) unsafe fn will_wake(&self, waker: &Waker) -> bool {
        // SAFETY: forwarded from the caller.
        self.waker
            .with(|ptr| unsafe { (*ptr).as_ref() }.is_some_and(|w| w.will_wake(waker)))
    }

    /// Wakes the join waker (by reference).
    ///
    /// # Safety
    /// The task is `COMPLETE` and `JOIN_WAKER` is set: the runtime side may
    /// read the slot.
    pub(super) unsafe fn wake_join(&self) {
        // SAFETY: forwarded from the caller.
        self.waker.with(|ptr| match unsafe { &*ptr } {
            Some(waker) => waker.wake_by_ref(),
            None => panic!("join waker bit set but no waker stored"),
        });
    }
}
