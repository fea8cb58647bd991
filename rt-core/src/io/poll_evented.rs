//! `PollEvented`: a mio source plus its registration; the building block
//! of the net types.

use super::registration::Registration;
use super::scheduled_io::Direction;
use super::Interest;
use mio::event::Source;
use std::io::{self, Read, Write};
use std::task::{Context, Poll};

/// A registered mio source. Deregisters on drop.
#[derive(Debug)]
pub(crate) struct PollEvented<E: Source> {
    io: Option<E>,
    registration: Registration,
}

impl<E: Source> PollEvented<E> {
    /// Registers `io` for reads and writes with the current runtime.
    #[track_caller]
    pub(crate) fn new(io: E) -> io::Result<PollEvented<E>> {
        PollEvented::new_with_interest(io, Interest::READABLE | Interest::WRITABLE)
    }

    /// Registers `io` for `interest` with the current runtime.
    #[track_caller]
    pub(crate) fn new_with_interest(mut io: E, interest: Interest) -> io::Result<PollEvented<E>> {
        let registration = Registration::new(&mut io, interest)?;
        Ok(PollEvented {
            io: Some(io),
            registration,
        })
    }

    pub(crate) fn get_ref(&self) -> &E {
        self.io.as_ref().expect("PollEvented used after into_inner")
    }

    pub(crate) fn registration(&self) -> &Registration {
        &self.registration
    }

    /// The `poll_*` API: waits for `direction`, then runs `f` on the
    /// source, retrying after `WouldBlock` (one waker slot per direction:
    /// the last poller is woken).
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        mut f: impl FnMut(&E) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let io = self.get_ref();
        self.registration.poll_io(cx, direction, || f(io))
    }

    /// The async form of [`PollEvented::poll_io`]: any number of tasks may
    /// wait at once.
    pub(crate) async fn async_io<R>(
        &self,
        direction: Direction,
        mut f: impl FnMut(&E) -> io::Result<R>,
    ) -> io::Result<R> {
        let io = self.get_ref();
        self.registration.async_io(direction, || f(io)).await
    }

    /// Waits (async API) until the source is ready in `direction`.
    pub(crate) async fn readiness(&self, direction: Direction) -> io::Result<()> {
        self.registration.readiness(direction).await.map(|_| ())
    }
}

impl<E: Source> PollEvented<E>
where
    for<'a> &'a E: Read + Write,
{
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Direction::Read, |mut io| io.read(buf))
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Direction::Write, |mut io| io.write(buf))
    }

    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Direction::Write, |mut io| io.write_vectored(bufs))
    }
}

impl<E: Source> Drop for PollEvented<E> {
    fn drop(&mut self) {
        if let Some(mut io) = self.io.take() {
            // The source closes right after; nothing to do on error.
            let _ = self.registration.deregister(&mut io);
        }
    }
}
