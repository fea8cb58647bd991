//! `AsyncFd`: readiness of any file descriptor (pipes, eventfds, sockets
//! made elsewhere) through the runtime's reactor.

use super::registration::Registration;
use super::scheduled_io::{Direction, ReadyEvent};
use super::{Interest, Ready};
use mio::unix::SourceFd;
use std::fmt;
use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::task::{ready, Context, Poll};

/// Wraps a file descriptor owner `T` and reports when the descriptor is
/// readable or writable. The descriptor must be in non-blocking mode; `T`
/// keeps owning it (it is deregistered before `T` is dropped).
///
/// Readiness is edge-based underneath: after an operation returns
/// `WouldBlock`, call [`AsyncFdReadyGuard::clear_ready`] (or use
/// [`AsyncFdReadyGuard::try_io`], which does it for you) so the next wait
/// blocks until new readiness arrives.
pub struct AsyncFd<T: AsRawFd> {
    registration: Registration,
    inner: Option<T>,
    /// Set once the descriptor left the reactor (`deregister_now`, drop).
    deregistered: std::sync::atomic::AtomicBool,
}

/// Readiness observed by [`AsyncFd::readable`] / [`AsyncFd::writable`].
pub struct AsyncFdReadyGuard<'a, T: AsRawFd> {
    fd: &'a AsyncFd<T>,
    event: Option<ReadyEvent>,
}

/// [`AsyncFdReadyGuard::try_io`] found the descriptor not ready after all.
#[derive(Debug)]
pub struct TryIoError(());

impl<T: AsRawFd> AsyncFd<T> {
    /// Registers `inner`'s descriptor for reads and writes.
    ///
    /// # Panics
    /// Outside a runtime, or on a runtime built without `enable_io`.
    #[track_caller]
    pub fn new(inner: T) -> io::Result<AsyncFd<T>> {
        AsyncFd::with_interest(inner, Interest::READABLE | Interest::WRITABLE)
    }

    /// Registers `inner`'s descriptor for `interest`.
    ///
    /// # Panics
    /// Outside a runtime, or on a runtime built without `enable_io`.
    #[track_caller]
    pub fn with_interest(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
        let fd: RawFd = inner.as_raw_fd();
        let registration = Registration::new(&mut SourceFd(&fd), interest)?;
        Ok(AsyncFd {
            registration,
            inner: Some(inner),
            deregistered: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The wrapped value.
    pub fn get_ref(&self) -> &T {
        self.inner.as_ref().expect("AsyncFd used after into_inner")
    }

    /// The wrapped value, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect("AsyncFd used after into_inner")
    }

    /// Deregisters and gives the value back.
    pub fn into_inner(mut self) -> T {
        self.deregister();
        self.inner.take().expect("AsyncFd used after into_inner")
    }

    fn deregister(&mut self) {
        let _ = self.deregister_now();
    }

    /// Removes the descriptor from the reactor now, through a shared
    /// reference: afterwards no readiness is reported any more (pending and
    /// later waits never complete on their own), and the descriptor may be
    /// closed even while other references to this `AsyncFd` live on.
    /// Idempotent; dropping the `AsyncFd` does it too.
    pub fn deregister_now(&self) -> io::Result<()> {
        use std::sync::atomic::Ordering::AcqRel;
        if self.deregistered.swap(true, AcqRel) {
            return Ok(());
        }
        match &self.inner {
            Some(inner) => {
                let fd = inner.as_raw_fd();
                self.registration.deregister(&mut SourceFd(&fd))
            }
            None => Ok(()),
        }
    }

    /// Leaves the reactor without touching the descriptor, for one that was
    /// closed behind this `AsyncFd`'s back: its number may name another file
    /// by now, which [`AsyncFd::deregister_now`] would take off the reactor
    /// in its place. Afterwards no call on this `AsyncFd` (nor its drop)
    /// makes a system call on the descriptor, and [`AsyncFd::reregister`]
    /// fails with `NotFound`. The reactor keeps its state for the old file
    /// until shutdown (if another descriptor keeps that file open, the kernel
    /// may still report it, and waits may still see that readiness).
    /// Idempotent.
    pub fn forget_closed(&self) {
        use std::sync::atomic::Ordering::Release;
        self.deregistered.store(true, Release);
    }

    /// Sets the interest the reactor watches, and has the kernel check the
    /// descriptor again: readiness it has now (for the new interest) is
    /// reported at the reactor's next turn, even if it was reported before.
    /// After [`AsyncFdReadyGuard::clear_ready`], this turns the edge-based
    /// readiness into a level-triggered check without a `poll(2)` of its
    /// own: the wait ends again if data is still there. Fails with
    /// `NotFound` after [`AsyncFd::deregister_now`].
    pub fn reregister(&self, interest: Interest) -> io::Result<()> {
        use std::sync::atomic::Ordering::Acquire;
        if self.deregistered.load(Acquire) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let fd = self.get_ref().as_raw_fd();
        self.registration.reregister(&mut SourceFd(&fd), interest)
    }

    /// Polls for read readiness. Only the task of the last call is woken
    /// (one slot per direction); [`AsyncFd::readable`] has no such limit.
    pub fn poll_read_ready<'a>(
        &'a self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyGuard<'a, T>>> {
        let event = ready!(self.registration.poll_ready(cx, Direction::Read))?;
        Poll::Ready(Ok(AsyncFdReadyGuard {
            fd: self,
            event: Some(event),
        }))
    }

    /// Polls for write readiness. Only the task of the last call is woken
    /// (one slot per direction); [`AsyncFd::writable`] has no such limit.
    pub fn poll_write_ready<'a>(
        &'a self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyGuard<'a, T>>> {
        let event = ready!(self.registration.poll_ready(cx, Direction::Write))?;
        Poll::Ready(Ok(AsyncFdReadyGuard {
            fd: self,
            event: Some(event),
        }))
    }

    /// Waits until the descriptor is readable (or closed, or in error).
    /// Any number of tasks may wait at once.
    pub async fn readable(&self) -> io::Result<AsyncFdReadyGuard<'_, T>> {
        let event = self.registration.readiness(Direction::Read).await?;
        Ok(AsyncFdReadyGuard {
            fd: self,
            event: Some(event),
        })
    }

    /// Waits until the descriptor is writable (or closed, or in error).
    /// Any number of tasks may wait at once.
    pub async fn writable(&self) -> io::Result<AsyncFdReadyGuard<'_, T>> {
        let event = self.registration.readiness(Direction::Write).await?;
        Ok(AsyncFdReadyGuard {
            fd: self,
            event: Some(event),
        })
    }

    /// Runs `f` when the descriptor is ready for `interest` (readable if it
    /// includes reads), retrying after `WouldBlock`. Any number of tasks
    /// may do this at once.
    pub async fn async_io<R>(
        &self,
        interest: Interest,
        mut f: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let direction = if interest.is_readable() {
            Direction::Read
        } else {
            Direction::Write
        };
        let inner = self.get_ref();
        self.registration.async_io(direction, || f(inner)).await
    }
}

impl<T: AsRawFd> AsRawFd for AsyncFd<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.get_ref().as_raw_fd()
    }
}

impl<T: AsRawFd> Drop for AsyncFd<T> {
    fn drop(&mut self) {
        self.deregister();
    }
}

impl<T: AsRawFd + fmt::Debug> fmt::Debug for AsyncFd<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncFd")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<'a, T: AsRawFd> AsyncFdReadyGuard<'a, T> {
    /// The readiness observed.
    pub fn ready(&self) -> Ready {
        self.event.map_or(Ready::EMPTY, |e| e.ready)
    }

    /// Forgets the observed readiness: the next wait blocks until the
    /// reactor reports new readiness. Call after `WouldBlock`.
    pub fn clear_ready(&mut self) {
        if let Some(event) = self.event.take() {
            self.fd.registration.clear_readiness(event);
        }
    }

    /// Keeps the readiness for the next wait (the default when the guard is
    /// dropped).
    pub fn retain_ready(&mut self) {
        self.event = None;
    }

    /// Runs `f`; on `WouldBlock` clears the readiness and returns
    /// `Err(TryIoError)` so the caller waits again.
    pub fn try_io<R>(
        &mut self,
        f: impl FnOnce(&'a AsyncFd<T>) -> io::Result<R>,
    ) -> Result<io::Result<R>, TryIoError> {
        match f(self.fd) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.clear_ready();
                Err(TryIoError(()))
            }
            res => Ok(res),
        }
    }

    /// The `AsyncFd` this guard belongs to.
    pub fn get_ref(&self) -> &'a AsyncFd<T> {
        self.fd
    }

    /// The wrapped value.
    pub fn get_inner(&self) -> &'a T {
        self.fd.get_ref()
    }
}

impl<T: AsRawFd> fmt::Debug for AsyncFdReadyGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncFdReadyGuard")
            .field("ready", &self.ready())
            .finish()
    }
}

impl fmt::Display for TryIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("operation would block")
    }
}

impl std::error::Error for TryIoError {}
