//! `AbortHandle`: cancel a task without being able to join it.

use super::raw::RawTask;
use super::Id;
use std::fmt;

/// A cloneable handle that can abort a task. Dropping it does nothing to the
/// task.
pub struct AbortHandle {
    raw: RawTask,
}

impl AbortHandle {
    /// # Safety
    /// `raw` carries a reference taken for this handle.
    pub(super) unsafe fn new(raw: RawTask) -> AbortHandle {
        AbortHandle { raw }
    }

    /// Requests cancellation; see [`JoinHandle::abort`](super::JoinHandle::abort).
    pub fn abort(&self) {
        self.raw.remote_abort();
    }

    /// True once the task has completed, been cancelled or panicked.
    pub fn is_finished(&self) -> bool {
        self.raw.state().load().is_complete()
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.raw.id()
    }
}

impl Clone for AbortHandle {
    fn clone(&self) -> AbortHandle {
        self.raw.ref_inc();
        AbortHandle { raw: self.raw }
    }
}

impl Drop for AbortHandle {
    fn drop(&mut self) {
        self.raw.drop_reference();
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.id())
            .finish()
    }
}
