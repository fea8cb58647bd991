//! `Registration`: a resource registered with the current runtime's I/O
//! driver, and the readiness loops every I/O future is built on: the
//! `poll_*` API (one waker slot per direction) and the async API (a waiter
//! list per direction, any number of waiting tasks).

use super::driver;
use super::scheduled_io::{Direction, ReadyEvent, ScheduledIo};
use super::Interest;
use crate::task::coop;
use mio::event::Source;
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// A resource's link to the driver.
pub(crate) struct Registration {
    handle: driver::Handle,
    shared: Arc<ScheduledIo>,
}

impl Registration {
    /// Registers `source` with the current runtime's I/O driver.
    ///
    /// # Panics
    /// Outside a runtime, or if the runtime was built without `enable_io`.
    #[track_caller]
    pub(crate) fn new(source: &mut impl Source, interest: Interest) -> io::Result<Registration> {
        let handle = crate::runtime::driver::current_io_handle();
        let shared = handle.add_source(source, interest)?;
        Ok(Registration { handle, shared })
    }

    /// The `poll_*` API: waits until the resource is ready in `direction`
    /// (one waker slot per direction: the last poller is woken). Spends a
    /// unit of coop budget (`Pending` once it is spent); fails once the
    /// driver has shut down.
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Result<ReadyEvent>> {
        let coop = ready!(coop::poll_proceed(cx));
        let ev = ready!(self.shared.poll_readiness(cx, direction));
        coop.made_progress();
        if ev.is_shutdown {
            return Poll::Ready(Err(gone()));
        }
        Poll::Ready(Ok(ev))
    }

    /// Forgets readiness that turned out stale (`WouldBlock`).
    pub(crate) fn clear_readiness(&self, event: ReadyEvent) {
        self.shared.clear_readiness(event);
    }

    /// The `poll_*` API: runs `f` when ready; on `WouldBlock` clears
    /// readiness and waits again. Spends a unit of coop budget when `f`
    /// makes progress (`Pending` once the budget is spent; the unit comes
    /// back if the poll ends `Pending`).
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.drive_io(cx, |cx| self.shared.poll_readiness(cx, direction), &mut f)
    }

    /// The loop of [`poll_io`](Self::poll_io) and
    /// [`async_io`](Self::async_io), over either readiness source: `f` runs
    /// on each readiness event until it does not answer `WouldBlock`; the
    /// coop unit is kept only when it made progress (or on shutdown).
    fn drive_io<R>(
        &self,
        cx: &mut Context<'_>,
        mut ready: impl FnMut(&mut Context<'_>) -> Poll<ReadyEvent>,
        f: &mut impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let coop = ready!(coop::poll_proceed(cx));
        loop {
            let ev = ready!(ready(cx));
            if ev.is_shutdown {
                coop.made_progress();
                return Poll::Ready(Err(gone()));
            }
            match f() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear_readiness(ev),
                res => {
                    coop.made_progress();
                    return Poll::Ready(res);
                }
            }
        }
    }

    /// The async API: waits until the resource is ready in `direction`.
    /// Any number of tasks may wait at once (each has a place in the
    /// resource's waiter list). Spends a unit of coop budget; fails once
    /// the driver has shut down.
    pub(crate) async fn readiness(&self, direction: Direction) -> io::Result<ReadyEvent> {
        let mut wait = self.shared.readiness(direction);
        poll_fn(|cx| {
            let coop = ready!(coop::poll_proceed(cx));
            let ev = ready!(wait.poll_ready(cx));
            coop.made_progress();
            if ev.is_shutdown {
                return Poll::Ready(Err(gone()));
            }
            Poll::Ready(Ok(ev))
        })
        .await
    }

    /// The async API: runs `f` when ready; on `WouldBlock` clears readiness
    /// and waits again. Any number of tasks may do this at once. Budget as
    /// [`Registration::poll_io`].
    pub(crate) async fn async_io<R>(
        &self,
        direction: Direction,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let mut wait = self.shared.readiness(direction);
        poll_fn(|cx| self.drive_io(cx, |cx| wait.poll_ready(cx), &mut f)).await
    }

    /// Runs `f` if the resource looks ready, without waiting.
    pub(crate) fn try_io<R>(
        &self,
        direction: Direction,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        let ev = self.shared.ready_event(direction);
        if ev.is_shutdown {
            return Err(gone());
        }
        if ev.ready.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match f() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.clear_readiness(ev);
                Err(e)
            }
            res => res,
        }
    }

    /// Sets the source's interest; readiness it has now is reported again.
    pub(crate) fn reregister(
        &self,
        source: &mut impl Source,
        interest: Interest,
    ) -> io::Result<()> {
        self.handle
            .reregister_source(source, &self.shared, interest)
    }

    /// Removes the source from the driver.
    pub(crate) fn deregister(&self, source: &mut impl Source) -> io::Result<()> {
        self.handle.deregister_source(source, &self.shared)
    }
}

/// The error a readiness wait resolves with after the driver shut down.
pub(crate) fn gone() -> io::Error {
    super::shutdown_error()
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").finish_non_exhaustive()
    }
}
