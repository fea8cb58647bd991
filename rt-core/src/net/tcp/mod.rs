//! TCP: listener, stream, and stream halves.

mod listener;
mod split;
mod stream;

pub use listener::TcpListener;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub use stream::TcpStream;

/// Inherent `read` / `read_exact` / `write` / `write_all` / `flush` for a
/// type that implements `AsyncRead + AsyncWrite`, so callers need no trait
/// import for the common cases.
macro_rules! inherent_io_methods {
    () => {
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
pub(crate) use inherent_io_methods;
