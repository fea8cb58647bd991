//! The byte-stream surface of `TcpStream` and `UnixStream`, written once:
//! `stream_methods!` (inherent methods, expanded inside the type's `impl`)
//! and `stream_io_traits!` (`AsyncRead` / `AsyncWrite` for the type and for
//! a shared reference to it).
//!
//! Both expect the type to wrap its socket as `io: PollEvented<$mio>`, where
//! `$mio` is a mio stream socket that `&$mio` reads and writes through.

/// Inherent `shutdown_std` / `shutdown`, `readable` / `writable`,
/// `try_read` / `try_write`, `split` / `into_split`, and `read` /
/// `read_exact` / `write` / `write_all` / `flush` (so callers need no trait
/// import for the common cases), for a stream wrapping `io:
/// PollEvented<$mio>` whose module has the halves of `stream_halves!` as
/// `split`.
macro_rules! stream_methods {
    ($mio:ty) => {
        /// Shuts down the read, write or both halves.
        pub fn shutdown_std(&self, how: std::net::Shutdown) -> std::io::Result<()> {
            self.io.get_ref().shutdown(how)
        }

        /// Shuts down the write half (the peer reads end of stream).
        pub async fn shutdown(&mut self) -> std::io::Result<()> {
            self.shutdown_std(std::net::Shutdown::Write)
        }

        /// Waits until the stream is readable. Any number of tasks may wait at
        /// once.
        pub async fn readable(&self) -> std::io::Result<()> {
            self.io
                .readiness(crate::io::scheduled_io::Direction::Read)
                .await
        }

        /// Waits until the stream is writable. Any number of tasks may wait at
        /// once.
        pub async fn writable(&self) -> std::io::Result<()> {
            self.io
                .readiness(crate::io::scheduled_io::Direction::Write)
                .await
        }

        /// Reads without waiting; `WouldBlock` if nothing is there.
        pub fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
            use std::io::Read;
            self.io
                .registration()
                .try_io(crate::io::scheduled_io::Direction::Read, || {
                    let mut s: &$mio = self.io.get_ref();
                    s.read(buf)
                })
        }

        /// Writes without waiting; `WouldBlock` if the socket buffer is full.
        pub fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
            use std::io::Write;
            self.io
                .registration()
                .try_io(crate::io::scheduled_io::Direction::Write, || {
                    let mut s: &$mio = self.io.get_ref();
                    s.write(buf)
                })
        }

        /// Borrowed read and write halves, usable at the same time (e.g. in two
        /// futures joined together).
        pub fn split(&mut self) -> (split::ReadHalf<'_>, split::WriteHalf<'_>) {
            split::split(self)
        }

        /// Owned halves that can move to different tasks; `reunite` joins them.
        pub fn into_split(self) -> (split::OwnedReadHalf, split::OwnedWriteHalf) {
            split::into_split(self)
        }

        /// Reads into `buf`; returns the byte count (0 at end of stream).
        pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            crate::io::read(self, buf).await
        }

        /// Reads exactly `buf.len()` bytes (`UnexpectedEof` if the stream ends first).
        pub async fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
            crate::io::read_exact(self, buf).await
        }

        /// Writes some of `buf`; returns the byte count.
        pub async fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            std::future::poll_fn(|cx| {
                futures_io::AsyncWrite::poll_write(std::pin::Pin::new(&mut *self), cx, buf)
            })
            .await
        }

        /// Writes all of `buf`.
        pub async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
            crate::io::write_all(self, buf).await
        }

        /// Flushes (a no-op for sockets, kept for symmetry with Tokio).
        pub async fn flush(&mut self) -> std::io::Result<()> {
            crate::io::flush(self).await
        }
    };
}
pub(crate) use stream_methods;

/// `futures-io`'s `AsyncRead` and `AsyncWrite` for `$stream` and for
/// `&$stream`: reads and (vectored) writes through the `PollEvented`,
/// `poll_flush` a no-op, `poll_close` shuts the write direction down.
macro_rules! stream_io_traits {
    ($stream:ident) => {
        $crate::net::stream_io::stream_io_traits!(@impl $stream);
        $crate::net::stream_io::stream_io_traits!(@impl &$stream);
    };
    (@impl $ty:ty) => {
        impl futures_io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.io.poll_read(cx, buf)
            }
        }

        impl futures_io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.io.poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.io.poll_write_vectored(cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.shutdown_std(std::net::Shutdown::Write))
            }
        }
    };
}
pub(crate) use stream_io_traits;
