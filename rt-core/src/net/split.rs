//! Stream halves, borrowed (`split`) and owned (`into_split`), written once
//! for every stream type that can be split: `stream_halves!(TcpStream)` in
//! `net/tcp/split.rs`, `stream_halves!(UnixStream)` in `net/unix/split.rs`.
//!
//! Each expansion defines concrete types in its module (`ReadHalf<'a>`,
//! `WriteHalf<'a>`, `OwnedReadHalf`, `OwnedWriteHalf`, `ReuniteError`), so
//! users name them as in Tokio (`tcp::OwnedReadHalf`), docs list their
//! methods and trait impls, and compiler errors show those paths. (Type
//! aliases of generic halves were tried: rustdoc then lists none of the
//! generic methods or trait impls on the alias pages, errors name the hidden
//! generic type, and `Err(ReuniteError(read, write))` stops compiling, since a
//! type alias is not a tuple-struct pattern.)
//!
//! The stream type needs `AsyncRead` and `AsyncWrite` for `&Stream` (both
//! halves hold a shared reference) and `shutdown_std(Shutdown::Write)`.

/// Defines the halves of `$stream` in the invoking module, with the
/// crate-private `split` / `into_split` that `$stream`'s methods call.
macro_rules! stream_halves {
    ($stream:ident) => {
        use futures_io::{AsyncRead, AsyncWrite};
        use std::fmt;
        use std::io;
        use std::net::Shutdown;
        use std::pin::Pin;
        use std::sync::Arc;
        use std::task::{Context, Poll};

        #[doc = concat!("The read half of a borrowed [`", stringify!($stream), "`].")]
        #[derive(Debug)]
        pub struct ReadHalf<'a>(&'a $stream);

        #[doc = concat!("The write half of a borrowed [`", stringify!($stream), "`].")]
        #[derive(Debug)]
        pub struct WriteHalf<'a>(&'a $stream);

        #[doc = concat!(
                    "The read half of a [`", stringify!($stream), "`], movable to another task."
                )]
        #[derive(Debug)]
        pub struct OwnedReadHalf(Arc<$stream>);

        #[doc = concat!(
                    "The write half of a [`", stringify!($stream), "`], movable to another task. ",
                    "Dropping it\nshuts the write direction down."
                )]
        #[derive(Debug)]
        pub struct OwnedWriteHalf {
            inner: Arc<$stream>,
            shutdown_on_drop: bool,
        }

        /// The two halves given to [`OwnedReadHalf::reunite`] came from different
        /// streams.
        #[derive(Debug)]
        pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

        pub(super) fn split(stream: &mut $stream) -> (ReadHalf<'_>, WriteHalf<'_>) {
            (ReadHalf(stream), WriteHalf(stream))
        }

        pub(super) fn into_split(stream: $stream) -> (OwnedReadHalf, OwnedWriteHalf) {
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
            pub fn reunite(self, other: OwnedWriteHalf) -> Result<$stream, ReuniteError> {
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

        $crate::net::split::read_half!($stream, ReadHalf<'_>, ReadHalf::stream);
        $crate::net::split::write_half!($stream, WriteHalf<'_>, WriteHalf::stream);
        $crate::net::split::read_half!($stream, OwnedReadHalf, OwnedReadHalf::stream);
        $crate::net::split::write_half!($stream, OwnedWriteHalf, OwnedWriteHalf::stream);

        impl ReadHalf<'_> {
            fn stream(&self) -> &$stream {
                self.0
            }
        }

        impl WriteHalf<'_> {
            fn stream(&self) -> &$stream {
                self.0
            }
        }

        impl OwnedReadHalf {
            fn stream(&self) -> &$stream {
                &self.0
            }
        }

        impl OwnedWriteHalf {
            fn stream(&self) -> &$stream {
                &self.inner
            }
        }
    };
}
pub(crate) use stream_halves;

/// `AsyncRead` (through `&$stream`) and inherent `read` / `read_exact` for a
/// read half `$ty`; `$get` gives the stream.
macro_rules! read_half {
    ($stream:ident, $ty:ty, $get:expr) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                let stream: &$stream = $get(&*self);
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
pub(crate) use read_half;

/// `AsyncWrite` (through `&$stream`; `poll_close` shuts the write direction
/// down) and inherent `write_all` for a write half `$ty`; `$get` gives the
/// stream.
macro_rules! write_half {
    ($stream:ident, $ty:ty, $get:expr) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                let stream: &$stream = $get(&*self);
                Pin::new(&mut &*stream).poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let stream: &$stream = $get(&*self);
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
pub(crate) use write_half;
