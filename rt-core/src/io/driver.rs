//! The I/O driver: one `mio::Poll` per runtime.
//!
//! Each registered resource gets an `Arc<ScheduledIo>`; its address is the
//! mio token, so an event finds its resource without a lookup. The driver
//! keeps every such `Arc` in its registration set until the resource is
//! deregistered, and releases deregistered ones only at the start of its
//! next turn: an event never refers to freed memory. A `mio::Waker` (token
//! `usize::MAX`) interrupts `epoll_wait` for unparks.

use super::scheduled_io::ScheduledIo;
use super::{Interest, Ready};
use crate::runtime::park::{Park, Unpark};
use mio::event::Source;
use mio::{Events, Poll, Registry, Token, Waker};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Events taken per `epoll_wait`.
pub(crate) const EVENTS_PER_TURN: usize = 1024;

const TOKEN_WAKEUP: Token = Token(usize::MAX);
/// The host timer (`host_timer.rs`): it only makes the epoll fd readable.
const TOKEN_HOST_TIMER: Token = Token(usize::MAX - 1);

/// The I/O driver (owned by whichever thread parks in it).
pub(crate) struct Driver {
    poll: Poll,
    events: Events,
    tick: u8,
    handle: Handle,
}

/// The shared half: register and deregister from any thread, unpark.
#[derive(Clone)]
pub(crate) struct Handle {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    waker: Waker,
    set: Mutex<RegistrationSet>,
}

#[derive(Default)]
struct RegistrationSet {
    /// Registered resources by address.
    live: HashMap<usize, Arc<ScheduledIo>>,
    /// Deregistered, freed at the start of the next turn.
    pending_release: Vec<Arc<ScheduledIo>>,
    is_shutdown: bool,
}

impl Driver {
    /// Creates the driver and its `epoll` instance.
    pub(crate) fn new() -> io::Result<Driver> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), TOKEN_WAKEUP)?;
        let registry = poll.registry().try_clone()?;
        Ok(Driver {
            poll,
            events: Events::with_capacity(EVENTS_PER_TURN),
            tick: 0,
            handle: Handle {
                inner: Arc::new(Inner {
                    registry,
                    waker,
                    set: Mutex::new(RegistrationSet::default()),
                }),
            },
        })
    }

    pub(crate) fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// One turn: wait for events at most `timeout` (`None`: until one
    /// comes or an unpark), then record readiness and wake the waiters.
    fn turn(&mut self, timeout: Option<Duration>) {
        {
            let mut set = self
                .handle
                .inner
                .set
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            // No event of this turn can name these: they were deregistered
            // before the poll below starts.
            set.pending_release.clear();
        }
        self.tick = self.tick.wrapping_add(1);
        if let Err(e) = self.poll.poll(&mut self.events, timeout) {
            // EINTR: a signal; the caller loops anyway. Anything else would
            // mean a broken epoll fd: nothing to dispatch this turn.
            if e.kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
        for event in self.events.iter() {
            let token = event.token();
            if token == TOKEN_WAKEUP || token == TOKEN_HOST_TIMER {
                continue;
            }
            let ready = Ready::from_mio(event);
            // SAFETY: the token is the address of an `Arc<ScheduledIo>` that
            // the registration set holds from registration until at least
            // the start of the turn after its deregistration; this event was
            // returned by this turn's poll, so the Arc is still held and the
            // pointee alive.
            let io = unsafe { &*(token.0 as *const ScheduledIo) };
            io.set_readiness(self.tick, ready);
            io.wake(ready);
        }
    }
}

impl Park for Driver {
    fn park(&mut self) {
        self.turn(None);
    }

    fn park_timeout(&mut self, duration: Duration) {
        self.turn(Some(duration));
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        Arc::new(self.handle.clone())
    }

    fn shutdown(&mut self) {
        self.handle.shutdown();
    }
}

impl Unpark for Handle {
    fn unpark(&self) {
        // Only fails if the eventfd is broken; nothing better to do then.
        let _ = self.inner.waker.wake();
    }
}

impl Handle {
    /// Registers `source` for `interest`; the returned state receives its
    /// readiness. Fails after shutdown.
    pub(crate) fn add_source(
        &self,
        source: &mut impl Source,
        interest: Interest,
    ) -> io::Result<Arc<ScheduledIo>> {
        let io = Arc::new(ScheduledIo::default());
        let addr = Arc::as_ptr(&io) as usize;
        {
            let mut set = self.inner.set.lock().unwrap_or_else(|e| e.into_inner());
            if set.is_shutdown {
                return Err(super::shutdown_error());
            }
            set.live.insert(addr, io.clone());
        }
        if let Err(e) = self
            .inner
            .registry
            .register(source, Token(addr), interest.to_mio())
        {
            let mut set = self.inner.set.lock().unwrap_or_else(|e| e.into_inner());
            set.live.remove(&addr);
            return Err(e);
        }
        Ok(io)
    }

    /// Sets `source`'s interest (`epoll_ctl` MOD). The kernel checks the
    /// descriptor again: readiness it has right now is reported at the next
    /// turn, even if it was reported before (the re-arm of a level-triggered
    /// check).
    pub(crate) fn reregister_source(
        &self,
        source: &mut impl Source,
        io: &Arc<ScheduledIo>,
        interest: Interest,
    ) -> io::Result<()> {
        let addr = Arc::as_ptr(io) as usize;
        self.inner
            .registry
            .reregister(source, Token(addr), interest.to_mio())
    }

    /// Deregisters `source`. The state is released on the driver's next
    /// turn. If the kernel refuses (the state may still be named by future
    /// events) it is kept until shutdown instead.
    pub(crate) fn deregister_source(
        &self,
        source: &mut impl Source,
        io: &Arc<ScheduledIo>,
    ) -> io::Result<()> {
        self.inner.registry.deregister(source)?;
        let addr = Arc::as_ptr(io) as usize;
        {
            let mut set = self.inner.set.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(io) = set.live.remove(&addr) {
                set.pending_release.push(io);
            }
        }
        io.clear_wakers();
        Ok(())
    }

    /// The epoll fd (a duplicate sharing the driver's epoll instance):
    /// readable while an event is waiting for the driver's next turn.
    pub(crate) fn backend_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.inner.registry.as_raw_fd()
    }

    /// Adds `timer` to the epoll set, so its expiry makes `backend_fd`
    /// readable. The timer must stay alive (and registered) as long as
    /// the driver; its events are ignored by the driver's turns.
    pub(crate) fn register_host_timer(
        &self,
        timer: &super::host_timer::HostTimer,
    ) -> io::Result<()> {
        self.inner.registry.register(
            &mut mio::unix::SourceFd(&timer.raw_fd()),
            TOKEN_HOST_TIMER,
            mio::Interest::READABLE,
        )
    }

    /// Number of registered resources.
    pub(crate) fn num_registrations(&self) -> usize {
        self.inner
            .set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live
            .len()
    }

    /// Marks the driver shut down and resolves every waiter.
    pub(crate) fn shutdown(&self) {
        let (live, released) = {
            let mut set = self.inner.set.lock().unwrap_or_else(|e| e.into_inner());
            if set.is_shutdown {
                return;
            }
            set.is_shutdown = true;
            // The driver never turns again (shutdown runs with the driver
            // held, after its last turn), so no event can name these any
            // more: let them go. Keeping them would keep every waker, and
            // through it every task and this driver, alive.
            let live: Vec<Arc<ScheduledIo>> = set.live.drain().map(|(_, io)| io).collect();
            (live, std::mem::take(&mut set.pending_release))
        };
        for io in &live {
            io.shutdown();
        }
        drop(released);
    }
}
