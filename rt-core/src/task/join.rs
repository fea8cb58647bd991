//! `JoinHandle`: await a task's output, abort it, or detach it.

use super::raw::RawTask;
use super::{AbortHandle, Id, JoinError};
use crate::task::coop;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// An owned permission to join a task: a future that resolves to the task's
/// output, or a [`JoinError`] if it was cancelled or panicked.
///
/// Dropping a `JoinHandle` detaches the task: it keeps running and its output
/// is dropped when it completes.
pub struct JoinHandle<T> {
    raw: RawTask,
    _p: PhantomData<T>,
}

// SAFETY: the handle only moves the output `T` across threads (when it is
// read), and the task state it touches is synchronised by the state word.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only allows abort/is_finished/id, which are atomic.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// # Safety
    /// `raw` carries the join handle's reference of a task whose output type is `T`.
    pub(super) unsafe fn new(raw: RawTask) -> JoinHandle<T> {
        JoinHandle {
            raw,
            _p: PhantomData,
        }
    }

    /// Requests cancellation. The task stops at its next `.await` point (or
    /// before its first poll); awaiting this handle then gives a cancelled
    /// `JoinError`, unless the task completed first. Has no effect on a
    /// finished task.
    pub fn abort(&self) {
        self.raw.remote_abort();
    }

    /// True once the task has completed, been cancelled or panicked.
    pub fn is_finished(&self) -> bool {
        self.raw.state().load().is_complete()
    }

    /// A handle that can abort the task but not join it.
    pub fn abort_handle(&self) -> AbortHandle {
        self.raw.ref_inc();
        // SAFETY: the reference was just taken for the new handle.
        unsafe { AbortHandle::new(self.raw) }
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.raw.id()
    }
}

impl<T> Unpin for JoinHandle<T> {}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let coop = std::task::ready!(coop::poll_proceed(cx));
        let mut ret = Poll::Pending;
        // SAFETY: `ret` is a Poll<Result<T, JoinError>> and T is the task's
        // output type (the handle was created with it).
        unsafe {
            self.raw.try_read_output(
                &mut ret as *mut Poll<Result<T, JoinError>> as *mut (),
                cx.waker(),
            );
        }
        if ret.is_ready() {
            coop.made_progress();
        }
        ret
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if self.raw.state().drop_join_handle_fast().is_ok() {
            return;
        }
        self.raw.drop_join_handle_slow();
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .finish()
    }
}
