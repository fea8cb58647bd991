//! [`SocketTransport`]: asyncio's `_SelectorSocketTransport` as a state
//! machine over a raw socket fd.

use super::buffer::WriteBuffer;
use super::sys;
use super::{
    OwnedRead, Protocol, Reactor, Scheduled, TransportError, DEFAULT_HIGH_WATER,
    LOG_THRESHOLD_FOR_CONNLOST_WRITES, MAX_READ,
};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::os::fd::RawFd;
use std::rc::Rc;

thread_local! {
    /// The read buffer shared by the thread's transports (a loop runs on one
    /// thread and reads one socket at a time). Taken while a read is handed
    /// to a protocol; a re-entrant read allocates its own.
    static SCRATCH: RefCell<Option<Box<[u8]>>> = const { RefCell::new(None) };
}

fn take_scratch() -> Box<[u8]> {
    SCRATCH
        .with(|s| s.borrow_mut().take())
        .unwrap_or_else(new_scratch)
}

/// A new scratch buffer, made after glibc's malloc thresholds were raised
/// above [`MAX_READ`] (see `malloc_thresholds.rs`). A transport's first read
/// always goes through the scratch buffer, so the raise comes before any
/// buffer of the protocol's own ([`Protocol::read_owned`]).
fn new_scratch() -> Box<[u8]> {
    super::malloc_thresholds::raise_once();
    vec![0u8; MAX_READ].into_boxed_slice()
}

fn give_back_scratch(buf: Box<[u8]>) {
    SCRATCH.with(|s| *s.borrow_mut() = Some(buf));
}

/// A connected stream socket's transport (asyncio's
/// `_SelectorSocketTransport`), driven by its loop:
///
/// - [`start`](Self::start) schedules `connection_made` then the start of
///   reading; the loop calls [`read_ready`](Self::read_ready) /
///   [`write_ready`](Self::write_ready) when the socket is ready and
///   [`run_scheduled`](Self::run_scheduled) for what the transport scheduled;
/// - [`write`](Self::write) sends at once when nothing is pending and keeps
///   the rest; above the high-water mark the protocol is paused
///   (`pause_writing`), at the low-water mark resumed;
/// - [`write_eof`](Self::write_eof) shuts the write side down once the
///   buffer drained; [`close`](Self::close) stops reading and loses the
///   connection once the buffer drained; [`abort`](Self::abort) loses it at
///   once, dropping the buffer;
/// - an I/O error or a failed protocol callback goes through the fatal-error
///   path (reported, then the connection is lost with that error);
/// - `connection_lost` is called exactly once.
///
/// The fd is the caller's: the transport never closes it.
pub struct SocketTransport<P: Protocol, R: Reactor<P::Error>> {
    fd: RawFd,
    protocol: RefCell<Option<Rc<P>>>,
    reactor: R,
    buffer: RefCell<WriteBuffer>,
    high_water: Cell<usize>,
    low_water: Cell<usize>,
    /// close() was called (or the connection is being lost).
    closing: Cell<bool>,
    /// write_eof() was called.
    eof: Cell<bool>,
    /// pause_reading() is in effect.
    paused: Cell<bool>,
    /// pause_writing() was called, resume_writing() not yet.
    protocol_paused: Cell<bool>,
    /// Nonzero once connection_lost is scheduled; then counts the writes
    /// made to the lost connection.
    conn_lost: Cell<u32>,
    /// connection_lost was run.
    lost_called: Cell<bool>,
    /// The read watch is registered (a removal is skipped when not).
    read_watched: Cell<bool>,
    /// The write watch is registered.
    write_watched: Cell<bool>,
    /// The length of the last read (the hint of `Protocol::read_owned`).
    last_read: Cell<usize>,
}

impl<P: Protocol, R: Reactor<P::Error>> fmt::Debug for SocketTransport<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketTransport")
            .field("fd", &self.fd)
            .field("closing", &self.closing.get())
            .field("eof", &self.eof.get())
            .field("paused", &self.paused.get())
            .field("conn_lost", &self.conn_lost.get())
            .field("buffered", &self.get_write_buffer_size())
            .finish()
    }
}

type Res<P> = Result<(), <P as Protocol>::Error>;

impl<P: Protocol, R: Reactor<P::Error>> SocketTransport<P, R> {
    /// A transport of the connected, non-blocking socket `fd`. Nothing
    /// happens until [`start`](Self::start).
    pub fn new(fd: RawFd, protocol: P, reactor: R) -> Self {
        SocketTransport {
            fd,
            protocol: RefCell::new(Some(Rc::new(protocol))),
            reactor,
            buffer: RefCell::new(WriteBuffer::new()),
            high_water: Cell::new(DEFAULT_HIGH_WATER),
            low_water: Cell::new(DEFAULT_HIGH_WATER / 4),
            closing: Cell::new(false),
            eof: Cell::new(false),
            paused: Cell::new(false),
            protocol_paused: Cell::new(false),
            conn_lost: Cell::new(0),
            lost_called: Cell::new(false),
            read_watched: Cell::new(false),
            write_watched: Cell::new(false),
            last_read: Cell::new(0),
        }
    }

    /// Schedules `connection_made`, then the start of reading (asyncio's
    /// transport constructor).
    pub fn start(&self) -> Res<P> {
        self.reactor.call_soon(Scheduled::ConnectionMade)?;
        self.reactor.call_soon(Scheduled::StartReading)
    }

    /// The socket's fd.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The reactor.
    pub fn reactor(&self) -> &R {
        &self.reactor
    }

    /// The current protocol (None once the connection is lost).
    pub fn protocol(&self) -> Option<Rc<P>> {
        self.protocol.borrow().clone()
    }

    /// Switches protocols (takes effect at the next callback).
    pub fn set_protocol(&self, protocol: P) {
        *self.protocol.borrow_mut() = Some(Rc::new(protocol));
    }

    /// True once close() or abort() was called or the connection is lost.
    pub fn is_closing(&self) -> bool {
        self.closing.get()
    }

    /// True while reading (neither paused nor closing).
    pub fn is_reading(&self) -> bool {
        !self.paused.get() && !self.closing.get()
    }

    /// True once connection_lost is scheduled (or ran).
    pub fn is_lost(&self) -> bool {
        self.conn_lost.get() > 0
    }

    /// Bytes pending in the write buffer.
    pub fn get_write_buffer_size(&self) -> usize {
        self.buffer.borrow().len()
    }

    /// `(low, high)` water marks.
    pub fn get_write_buffer_limits(&self) -> (usize, usize) {
        (self.low_water.get(), self.high_water.get())
    }

    /// Sets the water marks (the caller checked `high >= low`, asyncio's
    /// rule) and pauses the protocol if the buffer is already above `high`.
    pub fn set_write_buffer_limits(&self, high: usize, low: usize) -> Res<P> {
        self.high_water.set(high);
        self.low_water.set(low.min(high));
        self.maybe_pause_protocol()
    }

    fn set_read_watch(&self, on: bool) -> Res<P> {
        if !on && !self.read_watched.get() {
            return Ok(());
        }
        self.reactor.want_read(on)?;
        self.read_watched.set(on);
        Ok(())
    }

    fn set_write_watch(&self, on: bool) -> Res<P> {
        if !on && !self.write_watched.get() {
            return Ok(());
        }
        self.reactor.want_write(on)?;
        self.write_watched.set(on);
        Ok(())
    }

    /// Runs a call the transport scheduled through its reactor.
    pub fn run_scheduled(&self, what: Scheduled<P::Error>) -> Res<P> {
        match what {
            Scheduled::ConnectionMade => match self.protocol() {
                Some(p) => p.connection_made(),
                None => Ok(()),
            },
            Scheduled::StartReading => self.start_reading(),
            Scheduled::ConnectionLost(exc) => self.call_connection_lost(exc),
        }
    }

    /// The scheduled start of reading: registers the read watch unless
    /// paused or closing by now.
    pub fn start_reading(&self) -> Res<P> {
        if self.is_reading() {
            self.set_read_watch(true)?;
        }
        Ok(())
    }

    /// The scheduled loss of the connection: `connection_lost(exc)` once,
    /// then [`Reactor::released`]; the protocol is dropped whatever it
    /// returns.
    pub fn call_connection_lost(&self, exc: Option<P::Error>) -> Res<P> {
        if self.lost_called.replace(true) {
            return Ok(());
        }
        // A close that completed when its buffer drained got here without
        // passing through `force_close`: from now on the fd is the caller's
        // to close (and may be reused), so every later write is only counted.
        if self.conn_lost.get() == 0 {
            self.conn_lost.set(1);
        }
        let protocol = self.protocol.borrow_mut().take();
        let result = match protocol {
            Some(p) => p.connection_lost(exc),
            None => Ok(()),
        };
        self.reactor.released();
        result
    }

    /// Drops the protocol without calling it (the binding's GC clear).
    pub fn detach_protocol(&self) -> Option<Rc<P>> {
        self.protocol.borrow_mut().take()
    }

    /// The connection-lost counter: 0 until connection_lost is scheduled,
    /// then 1 + the writes made to the lost connection.
    pub fn conn_lost(&self) -> u32 {
        self.conn_lost.get()
    }

    /// `(read, write)`: which readiness watches are registered.
    pub fn watching(&self) -> (bool, bool) {
        (self.read_watched.get(), self.write_watched.get())
    }

    /// True while pause_writing() is in effect.
    pub fn is_protocol_paused(&self) -> bool {
        self.protocol_paused.get()
    }

    /// True once connection_lost ran.
    pub fn connection_lost_called(&self) -> bool {
        self.lost_called.get()
    }

    /// Stops reading until [`resume_reading`](Self::resume_reading); a no-op
    /// unless reading.
    pub fn pause_reading(&self) -> Res<P> {
        if !self.is_reading() {
            return Ok(());
        }
        self.paused.set(true);
        self.set_read_watch(false)
    }

    /// Reads again after [`pause_reading`](Self::pause_reading); a no-op when
    /// closing or not paused.
    pub fn resume_reading(&self) -> Res<P> {
        if self.closing.get() || !self.paused.get() {
            return Ok(());
        }
        self.paused.set(false);
        self.set_read_watch(true)
    }

    /// Read readiness: one read, handed to the protocol. `Err` only for an
    /// error that escapes (the reactor lets it out of the loop's callback);
    /// every other error takes the fatal-error path.
    pub fn read_ready(&self) -> Res<P> {
        if self.is_lost() {
            return Ok(());
        }
        let Some(protocol) = self.protocol() else {
            return Ok(());
        };
        if protocol.is_buffered() {
            return self.read_buffered(&protocol);
        }
        // The first read goes through the scratch buffer (see `new_scratch`).
        let last = self.last_read.get();
        let owned = match last {
            0 => None,
            last => protocol.read_owned(self.fd, last),
        };
        if let Some(read) = owned {
            return match read {
                OwnedRead::Data(n, result) => {
                    self.last_read.set(n);
                    self.callback_outcome(
                        result,
                        "Fatal error: protocol.data_received() call failed.",
                    )
                }
                OwnedRead::Eof => self.on_eof(&protocol),
                OwnedRead::NotReady => Ok(()),
                OwnedRead::Failed(e) => {
                    self.fatal_error(e, "Fatal read error on socket transport");
                    Ok(())
                }
            };
        }
        let mut scratch = take_scratch();
        let outcome = sys::recv(self.fd, &mut scratch);
        let result = match outcome {
            Ok(0) => {
                give_back_scratch(scratch);
                return self.on_eof(&protocol);
            }
            Ok(n) => {
                self.last_read.set(n);
                protocol.data_received(&scratch[..n])
            }
            Err(e) if sys::is_not_ready(&e) => Ok(()),
            Err(e) => {
                give_back_scratch(scratch);
                self.fatal_error(P::Error::from_io(e), "Fatal read error on socket transport");
                return Ok(());
            }
        };
        give_back_scratch(scratch);
        self.callback_outcome(result, "Fatal error: protocol.data_received() call failed.")
    }

    fn read_buffered(&self, protocol: &P) -> Res<P> {
        let got = protocol.get_buffer(-1).and_then(|b| {
            if protocol.buffer_len(&b)? == 0 {
                Err(P::Error::runtime("get_buffer() returned an empty buffer"))
            } else {
                Ok(b)
            }
        });
        let mut buf = match got {
            Ok(b) => b,
            Err(e) => {
                return self
                    .callback_outcome(Err(e), "Fatal error: protocol.get_buffer() call failed.")
            }
        };
        let n = match protocol.recv_into(self.fd, &mut buf) {
            Ok(None) => return Ok(()),
            Ok(Some(0)) => return self.on_eof(protocol),
            Ok(Some(n)) => n,
            Err(e) => return self.callback_outcome(Err(e), "Fatal read error on socket transport"),
        };
        drop(buf);
        let result = protocol.buffer_updated(n);
        self.callback_outcome(
            result,
            "Fatal error: protocol.buffer_updated() call failed.",
        )
    }

    /// An escaping error goes up; any other takes the fatal path.
    fn callback_outcome(&self, result: Res<P>, message: &str) -> Res<P> {
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.escapes() => Err(e),
            Err(e) => {
                self.fatal_error(e, message);
                Ok(())
            }
        }
    }

    fn on_eof(&self, protocol: &P) -> Res<P> {
        match protocol.eof_received() {
            Ok(true) => self.set_read_watch(false),
            Ok(false) => self.close(),
            Err(e) => {
                self.callback_outcome(Err(e), "Fatal error: protocol.eof_received() call failed.")
            }
        }
    }

    /// Writes `data`: sent at once when nothing is pending, the rest kept.
    /// Errors: after [`write_eof`](Self::write_eof) (a usage error), or what
    /// the reactor or `pause_writing` raised that escapes. A write to a lost
    /// connection is dropped and counted.
    pub fn write(&self, data: &[u8]) -> Res<P> {
        if self.eof.get() {
            return Err(P::Error::runtime("Cannot call write() after write_eof()"));
        }
        if data.is_empty() {
            return Ok(());
        }
        let lost = self.conn_lost.get();
        if lost > 0 {
            if lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES {
                self.reactor.lost_write_warning();
            }
            self.conn_lost.set(lost.saturating_add(1));
            return Ok(());
        }
        let mut rest = data;
        if self.buffer.borrow().is_empty() {
            match sys::send(self.fd, data) {
                Ok(n) if n == data.len() => return Ok(()),
                Ok(n) => rest = &data[n..],
                Err(e) if sys::is_not_ready(&e) => {}
                Err(e) => {
                    self.fatal_error(
                        P::Error::from_io(e),
                        "Fatal write error on socket transport",
                    );
                    return Ok(());
                }
            }
            // Buffered before the reactor runs: `data` is not used once
            // foreign code (which could free it) ran.
            self.buffer.borrow_mut().push(rest);
            self.set_write_watch(true)?;
        } else {
            self.buffer.borrow_mut().push(rest);
        }
        self.maybe_pause_protocol()
    }

    /// Write readiness: one gather write of the buffer. When it empties:
    /// the watch goes, then a pending close completes or a pending
    /// write_eof shuts the write side down.
    pub fn write_ready(&self) -> Res<P> {
        if self.is_lost() {
            return Ok(());
        }
        let sent = self.buffer.borrow_mut().send_to(self.fd);
        if let Err(e) = sent {
            if sys::is_not_ready(&e) {
                return Ok(());
            }
            self.set_write_watch(false)?;
            self.buffer.borrow_mut().clear();
            let e = P::Error::from_io(e);
            let copy = e.duplicate();
            self.fatal_error(e, "Fatal write error on socket transport");
            self.reactor.write_drained(Some(&copy));
            return Ok(());
        }
        self.maybe_resume_protocol()?; // may write more
        if self.buffer.borrow().is_empty() {
            self.set_write_watch(false)?;
            self.reactor.write_drained(None);
            if self.closing.get() {
                return self.call_connection_lost(None);
            } else if self.eof.get() {
                return sys::shutdown_write(self.fd).map_err(P::Error::from_io);
            }
        }
        Ok(())
    }

    /// Shuts the write side down once the buffer drained (at once if
    /// empty). A no-op when closing or already called.
    pub fn write_eof(&self) -> Res<P> {
        if self.closing.get() || self.eof.get() {
            return Ok(());
        }
        self.eof.set(true);
        if self.buffer.borrow().is_empty() {
            return sys::shutdown_write(self.fd).map_err(P::Error::from_io);
        }
        Ok(())
    }

    /// True once write_eof() was called.
    pub fn eof_written(&self) -> bool {
        self.eof.get()
    }

    /// Stops reading; the connection is lost (connection_lost(None)) once the
    /// buffer drained. A no-op when already closing.
    pub fn close(&self) -> Res<P> {
        if self.closing.get() {
            return Ok(());
        }
        self.closing.set(true);
        self.set_read_watch(false)?;
        if self.buffer.borrow().is_empty() {
            self.conn_lost.set(self.conn_lost.get() + 1);
            self.set_write_watch(false)?;
            self.reactor.call_soon(Scheduled::ConnectionLost(None))?;
        }
        Ok(())
    }

    /// Loses the connection at once (connection_lost(None)), dropping the
    /// pending bytes.
    pub fn abort(&self) -> Res<P> {
        self.force_close(None)
    }

    /// asyncio's `_fatal_error`: the reactor reports `err`, then the
    /// connection is lost with it.
    pub fn fatal_error(&self, err: P::Error, message: &str) {
        self.reactor.fatal_error(&err, message);
        // An error of the reactor itself here has nowhere better to go than
        // the loop's handler, which force_close's callers do not have:
        // report it the same way.
        if let Err(e) = self.force_close(Some(err)) {
            self.reactor
                .fatal_error(&e, "Fatal error closing the transport");
        }
    }

    /// asyncio's `_force_close`: drops the buffer, stops reading and
    /// schedules connection_lost(exc), unless already scheduled.
    pub fn force_close(&self, exc: Option<P::Error>) -> Res<P> {
        if self.is_lost() {
            return Ok(());
        }
        if !self.buffer.borrow().is_empty() {
            self.buffer.borrow_mut().clear();
            self.set_write_watch(false)?;
        }
        if !self.closing.get() {
            self.closing.set(true);
            self.set_read_watch(false)?;
        }
        self.conn_lost.set(self.conn_lost.get() + 1);
        self.reactor.call_soon(Scheduled::ConnectionLost(exc))
    }

    fn maybe_pause_protocol(&self) -> Res<P> {
        if self.get_write_buffer_size() <= self.high_water.get() || self.protocol_paused.get() {
            return Ok(());
        }
        self.protocol_paused.set(true);
        if let Some(p) = self.protocol() {
            if let Err(e) = p.pause_writing() {
                if e.escapes() {
                    return Err(e);
                }
                self.reactor
                    .callback_error(&e, "protocol.pause_writing() failed");
            }
        }
        Ok(())
    }

    fn maybe_resume_protocol(&self) -> Res<P> {
        if !self.protocol_paused.get() || self.get_write_buffer_size() > self.low_water.get() {
            return Ok(());
        }
        self.protocol_paused.set(false);
        if let Some(p) = self.protocol() {
            if let Err(e) = p.resume_writing() {
                if e.escapes() {
                    return Err(e);
                }
                self.reactor
                    .callback_error(&e, "protocol.resume_writing() failed");
            }
        }
        Ok(())
    }
}
