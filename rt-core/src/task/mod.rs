//! Tasks: the unit of work the schedulers run.
//!
//! A task is one heap allocation (`cell.rs`): a type-erased header with the
//! atomic state word (`state.rs`) and a vtable (`raw.rs`), the future or its
//! output, and the join waker. The typed operations live in `harness.rs`,
//! the waker vtable in `waker.rs`. The scheduler sees three owning views of
//! a task:
//!
//! - `Task`: the owned-list entry (`list.rs`), used at shutdown;
//! - `Notified`: a run-queue entry, consumed by `Notified::run`;
//! - [`JoinHandle`] / [`AbortHandle`]: the user's handles.
//!
//! Each holds one reference in the state word.

mod abort;
mod cell;
pub(crate) mod coop;
mod error;
mod harness;
mod id;
mod join;
pub(crate) mod list;
mod local;
mod raw;
pub(crate) mod state;
mod waker;
mod yield_now;

#[cfg(all(test, loom))]
mod loom_tests;

pub use crate::blocking::{block_in_place, spawn_blocking};
pub use abort::AbortHandle;
pub use coop::consume_budget;
pub use error::JoinError;
pub use id::Id;
pub use join::JoinHandle;
pub use local::{spawn_local, LocalSet};
pub use yield_now::yield_now;

use cell::Header;
use raw::RawTask;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Spawns a future on the current runtime and returns a handle to join it.
///
/// The future starts running in the background right away; it does not need
/// to be awaited. Dropping the `JoinHandle` detaches it.
///
/// # Panics
/// When called outside a runtime context (see
/// [`Handle::current`](crate::runtime::Handle::current)).
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    crate::runtime::Handle::current().spawn(future)
}

/// What a scheduler must provide to the tasks it runs.
pub(crate) trait Schedule: Send + Sync + Sized + 'static {
    /// The task completed: take it out of the owned list (returning the
    /// list's entry, if it was still there).
    fn release(&self, task: &Task<Self>) -> Option<Task<Self>>;

    /// Queue a task that was woken.
    fn schedule(&self, task: Notified<Self>);

    /// Queue a task that yielded (woke itself while running): back of the
    /// queue, never the LIFO slot.
    fn yield_now(&self, task: Notified<Self>) {
        self.schedule(task);
    }
}

/// The owned-list view of a task (one reference).
pub(crate) struct Task<S: 'static> {
    raw: RawTask,
    _p: PhantomData<S>,
}

// SAFETY: a Task is a counted pointer to a task whose scheduler `S` is Send
// + Sync (Schedule bound at construction) and whose future was Send; the
// shared state is atomic.
unsafe impl<S> Send for Task<S> {}
// SAFETY: as for Send; `&Task` exposes only atomic state reads.
unsafe impl<S> Sync for Task<S> {}

/// A run-queue entry: a task that must be polled (one reference).
pub(crate) struct Notified<S: 'static>(Task<S>);

impl<S: 'static> Task<S> {
    /// # Safety
    /// The caller passes on one reference of a live task scheduled by `S`.
    unsafe fn from_raw(ptr: NonNull<Header>) -> Task<S> {
        Task {
            // SAFETY: forwarded from the caller.
            raw: unsafe { RawTask::from_raw(ptr) },
            _p: PhantomData,
        }
    }

    fn header(&self) -> &Header {
        self.raw.header()
    }

    /// The task's id.
    pub(crate) fn id(&self) -> Id {
        self.raw.id()
    }

    fn ptr_eq(&self, other: &Task<S>) -> bool {
        self.raw.header_ptr() == other.raw.header_ptr()
    }

    /// Cancels the task because its runtime shuts down; consumes this
    /// (owned-list) reference.
    pub(crate) fn shutdown(self) {
        let raw = self.raw;
        std::mem::forget(self);
        raw.shutdown();
    }
}

impl<S: 'static> Drop for Task<S> {
    fn drop(&mut self) {
        self.raw.drop_reference();
    }
}

impl<S: 'static> fmt::Debug for Task<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").field("id", &self.id()).finish()
    }
}

impl<S: 'static> Notified<S> {
    /// Polls the task (or drops its future if it was cancelled). Consumes
    /// the entry.
    pub(crate) fn run(self) {
        let raw = self.0.raw;
        std::mem::forget(self);
        raw.poll();
    }

    /// The task's id.
    pub(crate) fn id(&self) -> Id {
        self.0.id()
    }
}

impl<S: 'static> fmt::Debug for Notified<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notified").field("id", &self.id()).finish()
    }
}

/// A task that belongs to no owned list (blocking tasks): holds both the
/// owned-list and the first-notification references, and is run or shut
/// down exactly once.
pub(crate) struct UnownedTask<S: 'static> {
    raw: RawTask,
    _p: PhantomData<S>,
}

// SAFETY: as for Task: a counted pointer; the future it owns was Send
// (`unowned` requires it).
unsafe impl<S> Send for UnownedTask<S> {}

impl<S: 'static> UnownedTask<S> {
    /// Polls the task once, then releases both references it held.
    pub(crate) fn run(self) {
        let raw = self.raw;
        std::mem::forget(self);
        // The poll consumes the notification reference...
        raw.poll();
        // ...and this drops the owned-list one.
        raw.drop_reference();
    }

    /// Cancels the task without running it: its join handle reports
    /// cancellation.
    pub(crate) fn shutdown(self) {
        let raw = self.raw;
        std::mem::forget(self);
        // Shutdown consumes the owned-list reference...
        raw.shutdown();
        // ...and this drops the notification one.
        raw.drop_reference();
    }
}

impl<S: 'static> Drop for UnownedTask<S> {
    fn drop(&mut self) {
        // Never run: cancel it, so its join handle resolves.
        let raw = self.raw;
        raw.shutdown();
        raw.drop_reference();
    }
}

impl<S: 'static> fmt::Debug for UnownedTask<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnownedTask")
            .field("id", &self.raw.id())
            .finish()
    }
}

/// Creates a task outside any owned list (for the blocking pool).
pub(crate) fn unowned<T, S>(
    future: T,
    scheduler: S,
    id: Id,
) -> (UnownedTask<S>, JoinHandle<T::Output>)
where
    T: Future + Send + 'static,
    T::Output: Send + 'static,
    S: Schedule,
{
    let (task, notified, join) = new_task(future, scheduler, id);
    let raw = task.raw;
    std::mem::forget(task);
    std::mem::forget(notified);
    (
        UnownedTask {
            raw,
            _p: PhantomData,
        },
        join,
    )
}

/// Creates a task and the three views of it that hold its initial
/// references.
pub(crate) fn new_task<T, S>(
    future: T,
    scheduler: S,
    id: Id,
) -> (Task<S>, Notified<S>, JoinHandle<T::Output>)
where
    T: Future + 'static,
    S: Schedule,
{
    let raw = RawTask::new::<T, S>(future, scheduler, id);
    // SAFETY: the new task has three references, one for each view below.
    unsafe {
        let task = Task::from_raw(raw.header_ptr());
        let notified = Notified(Task::from_raw(raw.header_ptr()));
        let join = JoinHandle::new(raw);
        (task, notified, join)
    }
}

impl<S: Schedule> list::OwnedTasks<S> {
    /// Creates a task owned by this list. Returns its join handle and the
    /// first run-queue entry, or no entry if the list is closed (the task is
    /// then already cancelled and the handle reports it).
    pub(crate) fn bind<T>(
        &self,
        future: T,
        scheduler: S,
        id: Id,
    ) -> (JoinHandle<T::Output>, Option<Notified<S>>)
    where
        T: Future + Send + 'static,
        T::Output: Send + 'static,
    {
        // SAFETY: the future and its output are Send, so polling,
        // cancelling or dropping them on any thread is fine.
        unsafe { self.bind_local(future, scheduler, id) }
    }

    /// Like `bind`, for a future that is not `Send`.
    ///
    /// # Safety
    /// The scheduler `S` must poll, cancel and shut down the task only on the
    /// thread that calls this (the task's future never crosses threads).
    pub(crate) unsafe fn bind_local<T>(
        &self,
        future: T,
        scheduler: S,
        id: Id,
    ) -> (JoinHandle<T::Output>, Option<Notified<S>>)
    where
        T: Future + 'static,
        T::Output: 'static,
    {
        let (task, notified, join) = new_task(future, scheduler, id);
        match self.insert(task) {
            Ok(()) => (join, Some(notified)),
            Err(task) => {
                drop(notified);
                task.shutdown();
                (join, None)
            }
        }
    }
}
