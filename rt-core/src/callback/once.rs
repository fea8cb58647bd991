//! [`Once`]: the "called exactly once" guarantee of a [`OnceCallback`].

use super::marks::in_callback;
use super::{OnceCallback, Status};
use std::fmt;

/// A callback that is called exactly once: explicitly with [`Once::call`],
/// or with `Cancelled` when dropped uncalled (task aborted before it ran,
/// runtime shut down first). [`Once::disarm`] lets it go uncalled: for a
/// callback handed to a call that failed.
pub struct Once<C: OnceCallback> {
    cb: Option<C>,
    /// The status of the call made on drop (`Cancelled` unless the work it
    /// reports on already ran).
    drop_status: Status,
}

impl<C: OnceCallback> fmt::Debug for Once<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("called", &self.cb.is_none())
            .field("drop_status", &self.drop_status)
            .finish()
    }
}

impl<C: OnceCallback> Once<C> {
    /// Wraps `cb`; dropped uncalled it gets `Cancelled`.
    pub fn new(cb: C) -> Once<C> {
        Once {
            cb: Some(cb),
            drop_status: Status::Cancelled,
        }
    }

    /// The status to report if it is dropped uncalled.
    pub fn set_drop_status(&mut self, status: Status) {
        self.drop_status = status;
    }

    /// Calls it with `status`, consuming it, marked as a runtime callback
    /// ([`in_callback`]).
    pub fn call(mut self, status: Status) {
        if let Some(cb) = self.cb.take() {
            in_callback(|| cb.call(status));
        }
    }

    /// Calls it with `status` without the "inside a runtime callback"
    /// mark: for calls the host makes on its own thread (draining a
    /// completion queue), where blocking calls and host runs are fine.
    pub fn call_unmarked(mut self, status: Status) {
        if let Some(cb) = self.cb.take() {
            cb.call(status);
        }
    }

    /// Lets it go uncalled, handing the callback back: for a callback
    /// handed to a call that failed, which is never called.
    pub fn disarm(mut self) -> C {
        self.cb.take().expect("an uncalled Once holds its callback")
    }
}

impl<C: OnceCallback> Drop for Once<C> {
    fn drop(&mut self) {
        // Reached with the callback only when neither `call` nor `disarm`
        // took it.
        if let Some(cb) = self.cb.take() {
            let status = self.drop_status;
            in_callback(|| cb.call(status));
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn recorder() -> (Arc<Mutex<Vec<Status>>>, impl OnceCallback) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        (log, move |s| l.lock().unwrap().push(s))
    }

    #[test]
    fn called_once_explicitly_or_on_drop() {
        let (log, cb) = recorder();
        Once::new(cb).call(Status::Ok);
        assert_eq!(*log.lock().unwrap(), vec![Status::Ok]);
        let (log, cb) = recorder();
        drop(Once::new(cb));
        assert_eq!(*log.lock().unwrap(), vec![Status::Cancelled]);
        let (log, cb) = recorder();
        let mut once = Once::new(cb);
        once.set_drop_status(Status::Ok);
        drop(once);
        assert_eq!(*log.lock().unwrap(), vec![Status::Ok]);
        let (log, cb) = recorder();
        drop(Once::new(cb).disarm());
        assert!(
            log.lock().unwrap().is_empty(),
            "a disarmed callback is never called"
        );
    }

    #[test]
    fn marked_calls_count_and_mark_the_thread() {
        let before = super::super::calls_made();
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        Once::new(move |_| *s.lock().unwrap() = Some(super::super::is_in_callback()))
            .call(Status::Ok);
        assert_eq!(*seen.lock().unwrap(), Some(true));
        assert_eq!(super::super::calls_made(), before + 1);
        let s = seen.clone();
        Once::new(move |_| *s.lock().unwrap() = Some(super::super::is_in_callback()))
            .call_unmarked(Status::Ok);
        assert_eq!(*seen.lock().unwrap(), Some(false));
        assert!(!super::super::is_in_callback());
    }
}
