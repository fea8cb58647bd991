//! The stream-socket transport of an asyncio-style event loop: the state
//! machine of asyncio's `selector_events._SelectorSocketTransport` (the
//! spec), generic over the [`Protocol`] it feeds and over the [`Reactor`]
//! (the loop) that tells it when its socket is ready.
//!
//! The transport does the socket I/O itself ([`sys`]): on read readiness it
//! reads up to [`MAX_READ`] bytes and hands them to the protocol (or reads
//! into the buffer a buffered protocol lends); `write` sends at once when
//! nothing is pending and keeps the rest in a [`WriteBuffer`], sent with one
//! gather write per write readiness. Flow control, `write_eof`, `close`,
//! `abort` and the fatal-error path follow asyncio: see [`SocketTransport`].
//!
//! Everything is single-threaded and re-entrant: every method takes
//! `&self`, and no borrow is held while the protocol or the reactor runs
//! (a protocol may write, close or switch protocols from any callback).

mod buffer;
mod malloc_thresholds;
mod socket;
pub mod sys;

pub use buffer::WriteBuffer;
pub use socket::SocketTransport;

/// asyncio's `max_size`: the most bytes one read readiness reads.
pub const MAX_READ: usize = 256 * 1024;
/// asyncio's default high-water mark of the write buffer.
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;
/// After this many writes to a lost connection, each further one logs a
/// warning (asyncio's `constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES`).
pub const LOG_THRESHOLD_FOR_CONNLOST_WRITES: u32 = 5;

/// What the transport's calls fail with: an OS error, a protocol
/// callback's error or a usage error.
pub trait TransportError: Sized {
    /// Wraps an OS error of a socket call.
    fn from_io(err: std::io::Error) -> Self;
    /// A usage error (asyncio's `RuntimeError(message)`).
    fn runtime(message: &str) -> Self;
    /// A second handle on the same error (handed to two parties).
    fn duplicate(&self) -> Self;
    /// True for errors that leave the transport untouched, up to the loop
    /// (asyncio re-raises `SystemExit` and `KeyboardInterrupt`).
    fn escapes(&self) -> bool {
        false
    }
}

/// The application side of a transport (asyncio's `Protocol` /
/// `BufferedProtocol`). Callbacks take `&self`: they may call the
/// transport back (write, close...), which may call the protocol again
/// (`pause_writing` from a `write` made in `data_received`).
pub trait Protocol {
    /// What callbacks fail with.
    type Error: TransportError;
    /// The buffer a buffered protocol lends for one read.
    type Buffer;

    /// True when reads go through [`get_buffer`](Self::get_buffer) /
    /// [`buffer_updated`](Self::buffer_updated), not
    /// [`data_received`](Self::data_received).
    fn is_buffered(&self) -> bool {
        false
    }
    /// The connection is up (scheduled by [`SocketTransport::new`]).
    fn connection_made(&self) -> Result<(), Self::Error>;
    /// Bytes arrived (never empty).
    fn data_received(&self, data: &[u8]) -> Result<(), Self::Error>;
    /// The peer closed its side: `Ok(true)` keeps the transport open (for
    /// writing), `Ok(false)` closes it.
    fn eof_received(&self) -> Result<bool, Self::Error>;
    /// Called exactly once, after the transport's last action; `None` for a
    /// regular close or EOF.
    fn connection_lost(&self, exc: Option<Self::Error>) -> Result<(), Self::Error>;
    /// The write buffer rose above the high-water mark.
    fn pause_writing(&self) -> Result<(), Self::Error> {
        Ok(())
    }
    /// The write buffer fell to the low-water mark.
    fn resume_writing(&self) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Buffered protocols: the buffer to read into (`sizehint` -1: any size).
    fn get_buffer(&self, _sizehint: isize) -> Result<Self::Buffer, Self::Error> {
        Err(Self::Error::runtime("not a buffered protocol"))
    }
    /// Buffered protocols: the length of a buffer `get_buffer` returned (an
    /// error is get_buffer's).
    fn buffer_len(&self, _buf: &Self::Buffer) -> Result<usize, Self::Error> {
        Ok(0)
    }
    /// Buffered protocols: reads from `fd` into `buf`; `Ok(None)` when the
    /// socket is not ready after all, `Ok(Some(0))` at end of stream.
    fn recv_into(
        &self,
        _fd: std::os::fd::RawFd,
        _buf: &mut Self::Buffer,
    ) -> Result<Option<usize>, Self::Error> {
        Err(Self::Error::runtime("not a buffered protocol"))
    }
    /// Buffered protocols: `n` bytes were written into the buffer.
    fn buffer_updated(&self, _n: usize) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Data protocols that can own the bytes they are given (a language's
    /// immutable bytes object): reads from `fd` (at most [`MAX_READ`] bytes)
    /// straight into a buffer of their own and delivers it as
    /// [`data_received`](Self::data_received) would, with no copy.
    /// `last` is the length of the previous read on this transport, a hint
    /// of what this one brings (never asked for a transport's first read).
    /// `None` (the default): not done, the transport reads into its scratch
    /// buffer and copies.
    fn read_owned(&self, _fd: std::os::fd::RawFd, _last: usize) -> Option<OwnedRead<Self::Error>> {
        None
    }
}

/// What [`Protocol::read_owned`] did.
#[derive(Debug)]
pub enum OwnedRead<E> {
    /// `n` bytes read and delivered: the delivery's outcome.
    Data(usize, Result<(), E>),
    /// End of stream (nothing delivered).
    Eof,
    /// The read failed with EAGAIN / EINTR (nothing delivered).
    NotReady,
    /// The read (or the buffer's allocation) failed: a fatal read error.
    Failed(E),
}

/// A call the transport asks the loop to make on a later iteration (its
/// `call_soon`); the loop hands it back to [`SocketTransport::run_scheduled`]
/// (or makes the equivalent call itself).
#[derive(Debug)]
pub enum Scheduled<E> {
    /// `protocol.connection_made(transport)`.
    ConnectionMade,
    /// Start watching for read readiness (if still reading).
    StartReading,
    /// `protocol.connection_lost(exc)`, then the socket is released.
    ConnectionLost(Option<E>),
}

/// The loop side of a transport: readiness registration, `call_soon` and
/// error reporting. Calls take `&self` and may re-enter the transport.
pub trait Reactor<E> {
    /// Registers (`true`) or removes (`false`) the read-readiness watch that
    /// calls [`SocketTransport::read_ready`].
    fn want_read(&self, on: bool) -> Result<(), E>;
    /// Registers (`true`) or removes (`false`) the write-readiness watch
    /// that calls [`SocketTransport::write_ready`].
    fn want_write(&self, on: bool) -> Result<(), E>;
    /// Schedules `what` for a later loop iteration, after the calls already
    /// scheduled.
    fn call_soon(&self, what: Scheduled<E>) -> Result<(), E>;
    /// asyncio's `_fatal_error` report (the transport closes itself right
    /// after): OS errors are only logged in debug mode, anything else goes
    /// to the loop's exception handler with `message`.
    fn fatal_error(&self, err: &E, message: &str);
    /// A flow-control callback failed: to the loop's exception handler.
    fn callback_error(&self, err: &E, message: &str);
    /// The connection is lost: `connection_lost` ran (or raised); the
    /// socket may be released. Called once, last.
    fn released(&self) {}
    /// The write buffer emptied (`err` None) or was dropped on a write error
    /// (the loop's sendfile waits for this).
    fn write_drained(&self, _err: Option<&E>) {}
    /// A write to a lost connection, past the warning threshold
    /// (asyncio logs "socket.send() raised exception.").
    fn lost_write_warning(&self) {}
}
