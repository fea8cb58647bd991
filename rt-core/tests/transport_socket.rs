//! `rt_core::transport::SocketTransport` with a Rust protocol and a test
//! reactor over Unix socketpairs: asyncio's `_SelectorSocketTransport`
//! semantics (the spec).

use rt_core::transport::{
    OwnedRead, Protocol, Reactor, Scheduled, SocketTransport, TransportError, MAX_READ,
};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::{Rc, Weak};

#[derive(Debug, PartialEq)]
enum Err {
    Io(Option<i32>),
    Runtime(String),
    Proto(String),
}

impl TransportError for Err {
    fn from_io(err: io::Error) -> Self {
        Err::Io(err.raw_os_error())
    }
    fn runtime(message: &str) -> Self {
        Err::Runtime(message.to_string())
    }
    fn duplicate(&self) -> Self {
        match self {
            Err::Io(e) => Err::Io(*e),
            Err::Runtime(m) => Err::Runtime(m.clone()),
            Err::Proto(m) => Err::Proto(m.clone()),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Ev {
    Made,
    Data(usize),
    Eof,
    Lost(Option<Err>),
    Pause,
    Resume,
    /// `read_owned` was asked, with this hint; it read (and delivered) `n`.
    Owned {
        hint: usize,
        n: usize,
    },
}

type T = SocketTransport<Proto, TestReactor>;

#[derive(Default)]
struct Proto {
    events: Rc<RefCell<Vec<Ev>>>,
    received: Rc<RefCell<Vec<u8>>>,
    transport: RefCell<Weak<T>>,
    echo: bool,
    keep_open: bool,
    fail_data: bool,
    buffered: bool,
    /// Some(min): reads go through `read_owned` once the last one was >= min.
    owned_min: Option<usize>,
    /// Deliveries through `read_owned` fail (as `fail_data`).
    fail_owned: bool,
}

impl Protocol for Proto {
    type Error = Err;
    type Buffer = Vec<u8>;
    fn is_buffered(&self) -> bool {
        self.buffered
    }
    fn connection_made(&self) -> Result<(), Err> {
        self.events.borrow_mut().push(Ev::Made);
        Ok(())
    }
    fn data_received(&self, data: &[u8]) -> Result<(), Err> {
        assert!(!data.is_empty());
        self.events.borrow_mut().push(Ev::Data(data.len()));
        self.received.borrow_mut().extend_from_slice(data);
        if self.fail_data {
            return Err(Err::Proto("boom".into()));
        }
        if self.echo {
            let t = self.transport.borrow().upgrade().unwrap();
            t.write(data)?;
        }
        Ok(())
    }
    fn eof_received(&self) -> Result<bool, Err> {
        self.events.borrow_mut().push(Ev::Eof);
        Ok(self.keep_open)
    }
    fn connection_lost(&self, exc: Option<Err>) -> Result<(), Err> {
        self.events.borrow_mut().push(Ev::Lost(exc));
        Ok(())
    }
    fn pause_writing(&self) -> Result<(), Err> {
        self.events.borrow_mut().push(Ev::Pause);
        Ok(())
    }
    fn resume_writing(&self) -> Result<(), Err> {
        self.events.borrow_mut().push(Ev::Resume);
        Ok(())
    }
    fn get_buffer(&self, sizehint: isize) -> Result<Vec<u8>, Err> {
        assert_eq!(sizehint, -1);
        Ok(vec![0; 100])
    }
    fn buffer_len(&self, buf: &Vec<u8>) -> Result<usize, Err> {
        Ok(buf.len())
    }
    fn recv_into(&self, fd: i32, buf: &mut Vec<u8>) -> Result<Option<usize>, Err> {
        match rt_core::transport::sys::recv(fd, buf) {
            Ok(n) => {
                self.received.borrow_mut().extend_from_slice(&buf[..n]);
                Ok(Some(n))
            }
            Err(e) if rt_core::transport::sys::is_not_ready(&e) => Ok(None),
            Err(e) => Err(Err::from_io(e)),
        }
    }
    fn buffer_updated(&self, n: usize) -> Result<(), Err> {
        self.events.borrow_mut().push(Ev::Data(n));
        Ok(())
    }
    fn read_owned(&self, fd: i32, last: usize) -> Option<OwnedRead<Err>> {
        let min = self.owned_min?;
        if last < min {
            return None;
        }
        let mut own = vec![0u8; MAX_READ];
        Some(match rt_core::transport::sys::recv(fd, &mut own) {
            Ok(0) => OwnedRead::Eof,
            Ok(n) => {
                own.truncate(n);
                self.events.borrow_mut().push(Ev::Owned { hint: last, n });
                let delivered = match self.fail_owned {
                    true => Err(Err::Proto("boom".into())),
                    false => self.data_received(&own),
                };
                OwnedRead::Data(n, delivered)
            }
            Err(e) if rt_core::transport::sys::is_not_ready(&e) => OwnedRead::NotReady,
            Err(e) => OwnedRead::Failed(Err::from_io(e)),
        })
    }
}

#[derive(Default)]
struct TestReactor {
    reading: Cell<bool>,
    writing: Cell<bool>,
    queue: RefCell<VecDeque<Scheduled<Err>>>,
    fatal: RefCell<Vec<(String, Err)>>,
    callback_errors: Cell<usize>,
    drained: Cell<usize>,
    warnings: Cell<usize>,
    released: Cell<usize>,
}

impl Reactor<Err> for TestReactor {
    fn want_read(&self, on: bool) -> Result<(), Err> {
        self.reading.set(on);
        Ok(())
    }
    fn want_write(&self, on: bool) -> Result<(), Err> {
        self.writing.set(on);
        Ok(())
    }
    fn call_soon(&self, what: Scheduled<Err>) -> Result<(), Err> {
        self.queue.borrow_mut().push_back(what);
        Ok(())
    }
    fn fatal_error(&self, err: &Err, message: &str) {
        self.fatal
            .borrow_mut()
            .push((message.to_string(), err.duplicate()));
    }
    fn callback_error(&self, _err: &Err, _message: &str) {
        self.callback_errors.set(self.callback_errors.get() + 1);
    }
    fn write_drained(&self, _err: Option<&Err>) {
        self.drained.set(self.drained.get() + 1);
    }
    fn released(&self) {
        self.released.set(self.released.get() + 1);
    }
    fn lost_write_warning(&self) {
        self.warnings.set(self.warnings.get() + 1);
    }
}

struct Fixture {
    t: Rc<T>,
    peer: UnixStream,
    _ours: UnixStream,
    events: Rc<RefCell<Vec<Ev>>>,
    received: Rc<RefCell<Vec<u8>>>,
}

fn fixture(setup: impl FnOnce(&mut Proto)) -> Fixture {
    let (ours, peer) = UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let mut p = Proto::default();
    setup(&mut p);
    let events = p.events.clone();
    let received = p.received.clone();
    let t = Rc::new(SocketTransport::new(
        ours.as_raw_fd(),
        p,
        TestReactor::default(),
    ));
    *t.protocol().unwrap().transport.borrow_mut() = Rc::downgrade(&t);
    t.start().unwrap();
    Fixture {
        t,
        peer,
        _ours: ours,
        events,
        received,
    }
}

fn ready(fd: i32, events: libc::c_short) -> bool {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents != 0
}

impl Fixture {
    /// One loop iteration: scheduled calls, then the ready watches.
    fn turn(&self) {
        let due: Vec<_> = self.t.reactor().queue.borrow_mut().drain(..).collect();
        for s in due {
            self.t.run_scheduled(s).unwrap();
        }
        let r = self.t.reactor();
        if r.reading.get() && ready(self.t.fd(), libc::POLLIN) {
            self.t.read_ready().unwrap();
        }
        if r.writing.get() && ready(self.t.fd(), libc::POLLOUT) {
            self.t.write_ready().unwrap();
        }
    }
    fn turns(&self, n: usize) {
        for _ in 0..n {
            self.turn();
        }
    }
    fn lost_count(&self) -> usize {
        self.events
            .borrow()
            .iter()
            .filter(|e| matches!(e, Ev::Lost(_)))
            .count()
    }
    fn shrink_buffers(&self) {
        let small: libc::c_int = 4096;
        for fd in [self.t.fd(), self.peer.as_raw_fd()] {
            for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
                // SAFETY: a valid int option of the right size.
                unsafe {
                    libc::setsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        opt,
                        (&small as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as u32,
                    )
                };
            }
        }
    }
    /// Reads whatever the peer has (non-blocking).
    fn peer_drain(&mut self) -> Vec<u8> {
        self.peer.set_nonblocking(true).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match self.peer.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        out
    }
}

#[test]
fn connection_made_then_reading_then_echo() {
    let mut f = fixture(|p| p.echo = true);
    assert!(!f.t.reactor().reading.get());
    f.turn();
    assert_eq!(*f.events.borrow(), vec![Ev::Made]);
    assert!(f.t.reactor().reading.get());
    f.peer.write_all(b"hello").unwrap();
    f.turn();
    assert_eq!(*f.events.borrow(), vec![Ev::Made, Ev::Data(5)]);
    assert_eq!(f.peer_drain(), b"hello");
    assert_eq!(f.t.get_write_buffer_size(), 0);
    assert!(!f.t.reactor().writing.get());
}

#[test]
fn one_read_is_at_most_max_read() {
    let f = fixture(|_| {});
    f.turn();
    let big = vec![1u8; MAX_READ + 1000];
    let mut peer = f.peer.try_clone().unwrap();
    let writer = std::thread::spawn(move || peer.write_all(&big).unwrap());
    while f.received.borrow().len() < MAX_READ + 1000 {
        f.turn();
    }
    writer.join().unwrap();
    assert!(f
        .events
        .borrow()
        .iter()
        .all(|e| !matches!(e, Ev::Data(n) if *n > MAX_READ)));
}

#[test]
fn partial_write_is_buffered_and_flow_control_pauses_and_resumes() {
    let mut f = fixture(|_| {});
    f.shrink_buffers();
    f.turn();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    f.t.write(&data).unwrap();
    assert!(f.t.get_write_buffer_size() > 0);
    assert!(f.t.reactor().writing.get());
    assert_eq!(f.events.borrow().last(), Some(&Ev::Pause));
    let mut got = Vec::new();
    while got.len() < data.len() {
        got.extend(f.peer_drain());
        f.turn();
    }
    assert_eq!(got, data);
    assert_eq!(f.t.get_write_buffer_size(), 0);
    assert!(!f.t.reactor().writing.get());
    let ev = f.events.borrow();
    assert_eq!(ev.iter().filter(|e| **e == Ev::Pause).count(), 1);
    assert_eq!(ev.iter().filter(|e| **e == Ev::Resume).count(), 1);
    assert!(f.t.reactor().drained.get() >= 1);
}

#[test]
fn many_small_writes_keep_their_order() {
    let mut f = fixture(|_| {});
    f.shrink_buffers();
    f.turn();
    let mut expected = Vec::new();
    for i in 0..20_000u32 {
        let chunk = i.to_le_bytes();
        expected.extend_from_slice(&chunk);
        f.t.write(&chunk).unwrap();
    }
    let mut got = Vec::new();
    while got.len() < expected.len() {
        got.extend(f.peer_drain());
        f.turn();
    }
    assert_eq!(got, expected);
}

#[test]
fn set_write_buffer_limits_pauses_at_once() {
    let f = fixture(|_| {});
    f.shrink_buffers();
    f.turn();
    assert_eq!(f.t.get_write_buffer_limits(), (16 * 1024, 64 * 1024));
    // Under the default high mark: no pause.
    f.t.write(&vec![0u8; 40_000]).unwrap();
    let pending = f.t.get_write_buffer_size();
    assert!(pending > 0 && pending <= 64 * 1024, "{pending}");
    assert!(!f.events.borrow().contains(&Ev::Pause));
    // Lowering the marks under what is pending pauses at once.
    f.t.set_write_buffer_limits(100, 10).unwrap();
    assert_eq!(f.t.get_write_buffer_limits(), (10, 100));
    assert_eq!(f.events.borrow().last(), Some(&Ev::Pause));
    assert!(f.t.is_protocol_paused());
    // Raising them again does not resume: only a drain does.
    f.t.set_write_buffer_limits(1_000_000, 500_000).unwrap();
    assert!(f.t.is_protocol_paused());
}

#[test]
fn after_a_completed_close_writes_never_touch_the_fd() {
    let mut f = fixture(|_| {});
    f.shrink_buffers();
    f.turn();
    f.t.write(&vec![5u8; 100_000]).unwrap();
    f.t.close().unwrap();
    let mut got = 0;
    while f.lost_count() == 0 {
        got += f.peer_drain().len();
        f.turn();
    }
    got += f.peer_drain().len();
    assert_eq!(got, 100_000);
    assert_eq!(f.t.reactor().released.get(), 1);
    // The fd now belongs to whoever closes or reuses it: counted, not sent.
    f.t.write(b"late").unwrap();
    assert_eq!(f.t.conn_lost(), 2);
    assert_eq!(f.peer_drain(), b"");
    f.t.abort().unwrap();
    f.turns(2);
    assert_eq!(f.lost_count(), 1);
    assert_eq!(f.t.reactor().released.get(), 1);
}

#[test]
fn write_eof_waits_for_the_buffer_then_shuts_down() {
    let mut f = fixture(|_| {});
    f.shrink_buffers();
    f.turn();
    let data = vec![7u8; 100_000];
    f.t.write(&data).unwrap();
    f.t.write_eof().unwrap();
    assert_eq!(
        f.t.write(b"x"),
        Err(Err::Runtime("Cannot call write() after write_eof()".into()))
    );
    let mut got = Vec::new();
    f.peer.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 65536];
    loop {
        f.turn();
        match f.peer.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    assert_eq!(got.len(), data.len());
    assert_eq!(f.lost_count(), 0);
}

#[test]
fn eof_received_false_closes() {
    let mut f = fixture(|_| {});
    f.turn();
    f.peer.shutdown(std::net::Shutdown::Write).unwrap();
    f.turns(3);
    assert_eq!(*f.events.borrow(), vec![Ev::Made, Ev::Eof, Ev::Lost(None)]);
    assert!(f.t.is_closing());
    assert!(!f.t.reactor().reading.get());
    assert!(f.t.protocol().is_none());
    let _ = f.peer_drain();
}

#[test]
fn eof_received_true_keeps_open_for_writing() {
    let mut f = fixture(|p| p.keep_open = true);
    f.turn();
    f.peer.shutdown(std::net::Shutdown::Write).unwrap();
    f.turns(3);
    assert_eq!(*f.events.borrow(), vec![Ev::Made, Ev::Eof]);
    assert!(!f.t.reactor().reading.get());
    assert!(!f.t.is_closing());
    f.t.write(b"still here").unwrap();
    assert_eq!(f.peer_drain(), b"still here");
}

#[test]
fn close_with_pending_data_flushes_then_loses_once() {
    let mut f = fixture(|_| {});
    f.shrink_buffers();
    f.turn();
    let data = vec![3u8; 150_000];
    f.t.write(&data).unwrap();
    f.t.close().unwrap();
    f.t.close().unwrap();
    assert!(f.t.is_closing());
    assert!(!f.t.reactor().reading.get());
    f.turn();
    assert_eq!(f.lost_count(), 0, "not before the buffer drained");
    let mut got = Vec::new();
    while f.lost_count() == 0 {
        got.extend(f.peer_drain());
        f.turn();
    }
    got.extend(f.peer_drain());
    assert_eq!(got.len(), data.len());
    f.t.abort().unwrap();
    f.turns(2);
    assert_eq!(f.lost_count(), 1);
}

#[test]
fn abort_drops_the_buffer_and_loses_once() {
    let f = fixture(|_| {});
    f.shrink_buffers();
    f.turn();
    f.t.write(&vec![3u8; 150_000]).unwrap();
    f.t.abort().unwrap();
    assert_eq!(f.t.get_write_buffer_size(), 0);
    assert!(!f.t.reactor().writing.get());
    f.t.abort().unwrap();
    f.t.close().unwrap();
    f.turns(3);
    assert_eq!(f.lost_count(), 1);
    assert_eq!(f.events.borrow().last(), Some(&Ev::Lost(None)));
}

#[test]
fn writes_after_close_are_counted_and_warned_past_five() {
    let f = fixture(|_| {});
    f.turn();
    f.t.close().unwrap();
    for _ in 0..8 {
        f.t.write(b"late").unwrap();
    }
    // conn_lost went 1 (close) .. 9: warnings once it was >= 5.
    assert_eq!(f.t.reactor().warnings.get(), 4);
    f.turns(2);
    assert_eq!(f.lost_count(), 1);
}

#[test]
fn write_to_a_gone_peer_takes_the_fatal_path() {
    let f = fixture(|_| {});
    f.turn();
    let Fixture {
        t, peer, events, ..
    } = f;
    drop(peer);
    t.write(b"into the void").unwrap();
    let fatal = t.reactor().fatal.borrow();
    assert_eq!(fatal.len(), 1);
    assert_eq!(fatal[0].0, "Fatal write error on socket transport");
    assert_eq!(fatal[0].1, Err::Io(Some(libc::EPIPE)));
    drop(fatal);
    let due: Vec<_> = t.reactor().queue.borrow_mut().drain(..).collect();
    for s in due {
        t.run_scheduled(s).unwrap();
    }
    assert_eq!(
        events.borrow().last(),
        Some(&Ev::Lost(Some(Err::Io(Some(libc::EPIPE)))))
    );
}

#[test]
fn peer_reset_on_read_takes_the_fatal_path() {
    // A TCP reset: the peer closes with unread data and SO_LINGER 0.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let p = Proto::default();
    let events = p.events.clone();
    let t = SocketTransport::new(server.as_raw_fd(), p, TestReactor::default());
    t.start().unwrap();
    for s in t.reactor().queue.borrow_mut().drain(..).collect::<Vec<_>>() {
        t.run_scheduled(s).unwrap();
    }
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid linger option of the right size.
    unsafe {
        libc::setsockopt(
            client.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
    drop(client);
    for _ in 0..200 {
        if ready(t.fd(), libc::POLLIN) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    t.read_ready().unwrap();
    assert_eq!(
        t.reactor().fatal.borrow()[0].0,
        "Fatal read error on socket transport"
    );
    for s in t.reactor().queue.borrow_mut().drain(..).collect::<Vec<_>>() {
        t.run_scheduled(s).unwrap();
    }
    assert_eq!(
        events.borrow().last(),
        Some(&Ev::Lost(Some(Err::Io(Some(libc::ECONNRESET)))))
    );
}

#[test]
fn a_failing_data_received_is_fatal() {
    let mut f = fixture(|p| p.fail_data = true);
    f.turn();
    f.peer.write_all(b"x").unwrap();
    f.turns(2);
    let fatal = f.t.reactor().fatal.borrow();
    assert_eq!(
        fatal[0].0,
        "Fatal error: protocol.data_received() call failed."
    );
    assert_eq!(
        f.events.borrow().last(),
        Some(&Ev::Lost(Some(Err::Proto("boom".into()))))
    );
}

#[test]
fn pause_and_resume_reading() {
    let mut f = fixture(|_| {});
    f.turn();
    assert!(f.t.is_reading());
    f.t.pause_reading().unwrap();
    assert!(!f.t.is_reading());
    assert!(!f.t.reactor().reading.get());
    f.peer.write_all(b"abc").unwrap();
    f.turns(2);
    assert_eq!(f.received.borrow().len(), 0);
    f.t.resume_reading().unwrap();
    f.turn();
    assert_eq!(*f.received.borrow(), b"abc");
    f.t.close().unwrap();
    f.t.resume_reading().unwrap();
    assert!(!f.t.reactor().reading.get());
}

#[test]
fn paused_before_the_first_iteration_never_reads() {
    let mut f = fixture(|_| {});
    f.t.pause_reading().unwrap();
    f.peer.write_all(b"abc").unwrap();
    f.turns(2);
    assert!(!f.t.reactor().reading.get());
    assert_eq!(*f.events.borrow(), vec![Ev::Made]);
}

#[test]
fn buffered_protocol_reads_into_its_buffer() {
    let mut f = fixture(|p| p.buffered = true);
    f.turn();
    f.peer.write_all(&[9u8; 250]).unwrap();
    f.turns(4);
    assert_eq!(f.received.borrow().len(), 250);
    assert_eq!(f.events.borrow()[1], Ev::Data(100));
    f.peer.shutdown(std::net::Shutdown::Write).unwrap();
    f.turns(3);
    assert_eq!(f.lost_count(), 1);
}

#[test]
fn set_protocol_switches_the_receiver() {
    let mut f = fixture(|_| {});
    f.turn();
    let other = Proto::default();
    let other_received = other.received.clone();
    f.t.set_protocol(other);
    f.peer.write_all(b"to the new one").unwrap();
    f.turn();
    assert_eq!(*other_received.borrow(), b"to the new one");
    assert!(f.received.borrow().is_empty());
}

#[test]
fn owned_reads_take_over_after_a_large_read_with_the_last_length_as_hint() {
    let mut f = fixture(|p| {
        p.owned_min = Some(5);
        p.fail_data = false;
    });
    f.turns(2);
    let mut all = Vec::new();
    for (i, size) in [3usize, 10, 7, 2, 9].into_iter().enumerate() {
        let msg = vec![i as u8 + 1; size];
        f.peer.write_all(&msg).unwrap();
        all.extend_from_slice(&msg);
        f.turn();
    }
    // A spurious readiness: the owned read finds nothing (NotReady).
    f.t.read_ready().unwrap();
    f.peer.shutdown(std::net::Shutdown::Write).unwrap();
    f.turns(3);
    assert_eq!(*f.received.borrow(), all);
    let ev = f.events.borrow();
    assert_eq!(
        ev.iter()
            .filter(|e| !matches!(e, Ev::Made | Ev::Lost(_)))
            .collect::<Vec<_>>(),
        vec![
            &Ev::Data(3),
            &Ev::Data(10),
            &Ev::Owned { hint: 10, n: 7 },
            &Ev::Data(7),
            &Ev::Owned { hint: 7, n: 2 },
            &Ev::Data(2),
            &Ev::Data(9),
            &Ev::Eof,
        ]
    );
    assert_eq!(f.lost_count(), 1);
    assert!(f.t.reactor().fatal.borrow().is_empty());
}

#[test]
fn owned_read_delivery_failure_takes_the_fatal_path_and_the_first_read_is_never_owned() {
    let mut f = fixture(|p| {
        p.owned_min = Some(0);
        p.fail_owned = true;
    });
    f.turns(2);
    // The first read goes through the scratch buffer, whatever the
    // protocol's rule (rtpy's owned buffers rely on it: see `new_scratch`).
    f.peer.write_all(b"abc").unwrap();
    f.turn();
    assert_eq!(*f.received.borrow(), b"abc");
    assert!(f.t.reactor().fatal.borrow().is_empty());
    f.peer.write_all(b"def").unwrap();
    f.turns(3);
    assert!(f.events.borrow().contains(&Ev::Owned { hint: 3, n: 3 }));
    let fatal = f.t.reactor().fatal.borrow();
    assert_eq!(fatal.len(), 1);
    assert_eq!(
        fatal[0],
        (
            "Fatal error: protocol.data_received() call failed.".to_string(),
            Err::Proto("boom".into())
        )
    );
    assert_eq!(f.lost_count(), 1);
}
