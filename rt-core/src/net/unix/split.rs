//! Unix stream halves: borrowed (`split`) and owned (`into_split`), as
//! TCP's (`net/tcp/split.rs`).

use super::UnixStream;
use futures_io::{AsyncRead, AsyncWrite};
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The read half of a borrowed [`UnixStream`].
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a UnixStream);

/// The write half of a borrowed [`UnixStream`].
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a UnixStream);

/// The read half of a [`UnixStream`], movable to another task.
#[derive(Debug)]
pub struct OwnedReadHalf(Arc<UnixStream>);

/// The write half of a [`UnixStream`], movable to another task. Dropping it
/// shuts the write direction down.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<UnixStream>,
    shutdown_on_drop: bool,
}

/// The two halves given to [`OwnedReadHalf::reunite`] came from different
/// streams.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

pub(super) fn split(stream: &mut UnixStream) -> (ReadHalf<'_>, WriteHalf<'_>) {
    (ReadHalf(stream), WriteHalf(stream))
}

pub(super) fn into_split(stream: UnixStream) -> (OwnedReadHalf, OwnedWriteHalf) {
    let arc = Arc::new(stream);
    (
        OwnedReadHalf(arc.clone()),
        OwnedWriteHalf {
            inner: arc,
            shutdown_on_drop: true,
        },
    )
}

impl OwnedReadHalf {
    /// Joins the halves back into the stream.
    pub fn reunite(self, other: OwnedWriteHalf) -> Result<UnixStream, ReuniteError> {
        if !Arc::ptr_eq(&self.0, &other.inner) {
            return Err(ReuniteError(self, other));
        }
        let mut other = other;
        other.shutdown_on_drop = false;
        let arc = other.inner.clone();
        drop(other);
        drop(self);
        Ok(Arc::try_unwrap(arc).expect("both halves were given back"))
    }
}

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same socket")
    }
}

impl std::error::Error for ReuniteError {}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = self.inner.shutdown_std(Shutdown::Write);
        }
    }
}

macro_rules! read_half {
    ($ty:ty, $get:expr) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                let stream: &UnixStream = $get(&*self);
                Pin::new(&mut &*stream).poll_read(cx, buf)
            }
        }

        impl $ty {
            /// Reads into `buf`; returns the byte count (0 at end of stream).
            pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                crate::io::read(self, buf).await
            }

            /// Reads exactly `buf.len()` bytes.
            pub async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
                crate::io::read_exact(self, buf).await
            }
        }
    };
}

macro_rules! write_half {
    ($ty:ty, $get:expr) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                let stream: &UnixStream = $get(&*self);
                Pin::new(&mut &*stream).poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let stream: &UnixStream = $get(&*self);
                Poll::Ready(stream.shutdown_std(Shutdown::Write))
            }
        }

        impl $ty {
            /// Writes all of `buf`.
            pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
                crate::io::write_all(self, buf).await
            }
        }
    };
}

read_half!(ReadHalf<'_>, ReadHalf::stream);
write_half!(WriteHalf<'_>, WriteHalf::stream);
read_half!(OwnedReadHalf, OwnedReadHalf::stream);
write_half!(OwnedWriteHalf, OwnedWriteHalf::stream);

impl ReadHalf<'_> {
    fn stream(&self) -> &UnixStream {
        self.0
    }
}

impl WriteHalf<'_> {
    fn stream(&self) -> &UnixStream {
        self.0
    }
}

impl OwnedReadHalf {
    fn stream(&self) -> &UnixStream {
        &self.0
    }
}

impl OwnedWriteHalf {
    fn stream(&self) -> &UnixStream {
        &self.inner
    }
}
