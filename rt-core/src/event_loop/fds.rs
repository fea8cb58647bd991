//! The reader / writer table: one optional handle per direction per fd, and
//! the level-triggered epoll registration that mirrors it, disarmed lazily
//! (as libuv does).
//!
//! An fd is in one of three states:
//! - **absent**: no entry, nothing registered by us;
//! - **live**: a reader and/or a writer; the kernel holds exactly their
//!   union (`armed == interest`);
//! - **stale**: no handle left, but the kernel still holds the last
//!   interest (`armed != 0`). Removing an fd's last handle makes no
//!   syscall: an asyncio `sock_recv` removes its reader when it fires and
//!   adds it back on the next `EAGAIN`, and that re-add is then one
//!   `EPOLL_CTL_MOD` instead of a `DEL` plus an `ADD`.
//!
//! Rules:
//! - a handle added: `EPOLL_CTL_MOD` if the kernel holds the fd (live or
//!   stale), else `ADD`. The syscall is made even when the interest is
//!   unchanged, so an fd number closed and reused behind our back (epoll
//!   dropped the old file with it) is registered again: MOD fails with
//!   `ENOENT` and is retried as ADD (and an ADD that finds a registration
//!   we did not know of, `EEXIST`, as MOD). An error (`EPERM` for a regular
//!   file, `EBADF`...) comes back to the caller and leaves the handles
//!   unchanged (the fd is then taken as not registered);
//! - a handle removed: MOD to the other direction's interest if it has a
//!   handle (errors ignored, as before: `ENOENT` -> ADD); the last one
//!   removed leaves the fd stale, with no syscall;
//! - readiness: `EPOLLIN` wakes the reader, `EPOLLOUT` the writer,
//!   `EPOLLERR`/`EPOLLHUP` both (as `selectors.EpollSelector`). An event
//!   for a stale fd (or for one we have no entry for) disarms it then:
//!   `DEL`, and the entry goes. So does an event whose handles were all
//!   cancelled (it would fire again at once);
//! - closing the loop DELs every live and stale registration (errors
//!   ignored).
//!
//! Stale registrations and closed fds: closing an fd drops its epoll
//! registration only once no other fd (a `dup`, a forked child's copy)
//! refers to the same open file. If a stale fd is closed while its file
//! lives on elsewhere, the registration survives under a number that no
//! longer names its file, so `EPOLL_CTL_DEL` cannot reach it (`EBADF` or
//! `ENOENT`) and, level-triggered, it would wake every wait. The table
//! detects it when such an event's `DEL` fails, and resets the poller (a
//! fresh epoll instance under the same fd number, where the live fds are
//! registered again). When the number was reused and added back meanwhile,
//! the old registration's events carry an older generation in their token
//! (each `ADD` makes a new one, see [`token`]): they never run the new
//! file's handles, and the first one resets the poller too. (The same
//! holds for an fd closed with its handles still in the table.) A reset
//! costs one `epoll_ctl` per live fd: a forking server that closes many
//! such fds pays it each time. If a reset itself fails (no fd left for the
//! new instance), the old registration keeps waking the loop until one
//! succeeds.

use super::poller::Poller;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::fd::RawFd;

const IN: u32 = libc::EPOLLIN as u32;
const OUT: u32 = libc::EPOLLOUT as u32;
const ERR_HUP: u32 = (libc::EPOLLERR | libc::EPOLLHUP) as u32;

/// Which handle of an fd.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Called when the fd is readable.
    Read,
    /// Called when the fd is writable.
    Write,
}

impl Dir {
    fn bit(self) -> u32 {
        match self {
            Dir::Read => IN,
            Dir::Write => OUT,
        }
    }
}

struct Entry<H> {
    reader: Option<H>,
    writer: Option<H>,
    /// The interest the kernel holds for the fd under our token; 0: not
    /// registered (or unreachable after an error).
    armed: u32,
    /// The generation in the token of the fd's current registration (see
    /// [`token`]).
    gen: u32,
}

impl<H> Entry<H> {
    fn slot(&mut self, dir: Dir) -> &mut Option<H> {
        match dir {
            Dir::Read => &mut self.reader,
            Dir::Write => &mut self.writer,
        }
    }

    fn interest(&self) -> u32 {
        (if self.reader.is_some() { IN } else { 0 }) | (if self.writer.is_some() { OUT } else { 0 })
    }
}

/// The table's hash of an fd number: one multiplication by 2^64 / φ
/// (Fibonacci hashing), which spreads the small, dense numbers the kernel
/// hands out over both the bucket bits and the tag bits of the map. The
/// numbers come from the kernel, not from an adversary, so std's SipHash
/// (about 100 instructions per lookup, one per I/O event) buys nothing.
#[derive(Default)]
struct FdHasher(u64);

const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for FdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_i32` is used (the key is a `RawFd`); any other input
        // still hashes every byte.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(FIBONACCI);
        }
    }

    fn write_i32(&mut self, fd: i32) {
        self.0 = u64::from(fd as u32).wrapping_mul(FIBONACCI);
    }
}

/// The fd table of one loop.
pub(crate) struct Fds<H> {
    map: HashMap<RawFd, Entry<H>, BuildHasherDefault<FdHasher>>,
    readers: usize,
    writers: usize,
    /// The generation of the next `ADD` (wrapping).
    next_gen: u32,
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// The epoll token of `fd`'s registration of generation `gen`: a new
/// generation per `ADD`, so an event from an older registration under the
/// same number (its file kept open by a `dup` after the number was closed
/// and reused) is told apart from the current file's. The low half is the
/// fd (below 2^31), so a token never equals the poller's own
/// ([`WAKE_TOKEN`](super::poller::WAKE_TOKEN), `RUNTIME_TOKEN`).
pub(crate) fn token(fd: RawFd, gen: u32) -> u64 {
    (u64::from(gen) << 32) | u64::from(fd as u32)
}

/// The `(fd, generation)` of a [`token`].
fn split_token(token: u64) -> (RawFd, u32) {
    (token as u32 as RawFd, (token >> 32) as u32)
}

/// Registers `fd` with `interest`: MOD (keeping generation `gen`) if the
/// kernel holds it (`armed`), else ADD (as generation `fresh`), each
/// retried as the other when the kernel disagrees. Returns the generation
/// now in the kernel's token.
fn arm(
    poller: &Poller,
    fd: RawFd,
    armed: bool,
    interest: u32,
    gen: u32,
    fresh: u32,
) -> io::Result<u32> {
    let ctl = |op, gen| poller.ctl(op, fd, interest, token(fd, gen)).map(|()| gen);
    if armed {
        match ctl(libc::EPOLL_CTL_MOD, gen) {
            Err(e) if errno(&e) == libc::ENOENT => ctl(libc::EPOLL_CTL_ADD, fresh),
            r => r,
        }
    } else {
        match ctl(libc::EPOLL_CTL_ADD, fresh) {
            Err(e) if errno(&e) == libc::EEXIST => ctl(libc::EPOLL_CTL_MOD, fresh),
            r => r,
        }
    }
}

impl<H> Fds<H> {
    pub(crate) fn new() -> Fds<H> {
        Fds {
            map: HashMap::default(),
            readers: 0,
            writers: 0,
            next_gen: 0,
        }
    }

    /// Number of fds with a reader.
    pub(crate) fn readers(&self) -> usize {
        self.readers
    }

    /// Number of fds with a writer.
    pub(crate) fn writers(&self) -> usize {
        self.writers
    }

    /// Whether `fd` has a handle for `dir` (false for a stale fd).
    pub(crate) fn has(&self, fd: RawFd, dir: Dir) -> bool {
        self.map.get(&fd).is_some_and(|e| match dir {
            Dir::Read => e.reader.is_some(),
            Dir::Write => e.writer.is_some(),
        })
    }

    fn count(&mut self, dir: Dir, delta: isize) {
        let n = match dir {
            Dir::Read => &mut self.readers,
            Dir::Write => &mut self.writers,
        };
        *n = n.wrapping_add_signed(delta);
    }

    /// Sets the `dir` handle of `fd`; returns the one it replaces. On error
    /// `h` comes back too, for the caller to drop outside its lock.
    pub(crate) fn add(
        &mut self,
        poller: &Poller,
        fd: RawFd,
        dir: Dir,
        h: H,
    ) -> Result<Option<H>, (io::Error, H)> {
        if fd < 0 {
            return Err((io::Error::from_raw_os_error(libc::EBADF), h));
        }
        let (armed, gen, interest) = match self.map.get(&fd) {
            Some(e) => (e.armed, e.gen, e.interest() | dir.bit()),
            None => (0, 0, dir.bit()),
        };
        // Never skipped, even for a stale fd armed with this very interest:
        // the number may name another file by now.
        let fresh = self.fresh_gen();
        let gen = match arm(poller, fd, armed != 0, interest, gen, fresh) {
            Ok(gen) => gen,
            Err(e) => {
                // Whatever the kernel held under this number is out of reach.
                if let Some(entry) = self.map.get_mut(&fd) {
                    entry.armed = 0;
                    if entry.interest() == 0 {
                        self.map.remove(&fd);
                    }
                }
                return Err((e, h));
            }
        };
        let entry = self.map.entry(fd).or_insert(Entry {
            reader: None,
            writer: None,
            armed: 0,
            gen,
        });
        entry.armed = interest;
        entry.gen = gen;
        let old = entry.slot(dir).replace(h);
        if old.is_none() {
            self.count(dir, 1);
        }
        Ok(old)
    }

    /// Removes the `dir` handle of `fd`; `None` if it had none. The last
    /// handle's removal makes no syscall (the fd goes stale).
    pub(crate) fn remove(&mut self, poller: &Poller, fd: RawFd, dir: Dir) -> Option<H> {
        let entry = self.map.get_mut(&fd)?;
        let old = entry.slot(dir).take()?;
        let interest = entry.interest();
        if interest == 0 {
            if entry.armed == 0 {
                self.map.remove(&fd);
            }
        } else {
            // The other direction stays: narrow the registration now (a
            // writable socket's stale OUT would wake every wait). A failure
            // leaves the handle in the table (as asyncio's selector would),
            // taken as not registered: the next add retries.
            self.rearm(poller, fd, interest);
        }
        self.count(dir, -1);
        Some(old)
    }

    /// Disarms `fd` after an event for it found no handle to run: `DEL`,
    /// and the entry goes. A `DEL` that fails (`EBADF`: the number is
    /// closed; `ENOENT`: it names another, unregistered file) means the
    /// event came from a registration we can no longer reach: the poller
    /// is reset and the live fds registered again (once per wait: the
    /// batch's later events came from the replaced instance).
    fn disarm(&mut self, poller: &Poller, fd: RawFd) {
        let armed = self.map.remove(&fd).map_or(0, |e| e.armed);
        if armed == 0 && poller.reset_since_wait() {
            // Not in the current instance, and reported by one a reset
            // replaced in this batch: that registration went with it.
            return;
        }
        if poller.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0).is_err() {
            self.reset(poller);
        }
    }

    /// A registration out of reach fired: a fresh epoll instance replaces
    /// the poller's (see `Poller::reset`) and the live fds are registered
    /// in it again, each as a new generation.
    fn reset(&mut self, poller: &Poller) {
        if poller.reset().is_err() {
            return;
        }
        let mut gen = self.next_gen;
        for (fd, e) in self.map.iter_mut() {
            let interest = e.interest();
            e.armed = 0;
            // Stale ones are not registered any more; live ones that fail
            // (closed behind our back) are retried by the next add.
            if interest != 0 {
                if let Ok(g) = arm(poller, *fd, false, interest, e.gen, gen) {
                    (e.armed, e.gen) = (interest, g);
                }
                gen = gen.wrapping_add(1);
            }
        }
        self.next_gen = gen;
        self.map.retain(|_, e| e.armed != 0 || e.interest() != 0);
    }

    /// Sets the registration of `fd` (in the table) to `interest`; if that
    /// fails, what the kernel holds is unknown: taken as not registered
    /// (the next add or event sets it again).
    fn rearm(&mut self, poller: &Poller, fd: RawFd, interest: u32) {
        let fresh = self.fresh_gen();
        let Some(entry) = self.map.get_mut(&fd) else {
            return;
        };
        match arm(poller, fd, entry.armed != 0, interest, entry.gen, fresh) {
            Ok(gen) => (entry.armed, entry.gen) = (interest, gen),
            Err(_) => entry.armed = 0,
        }
    }

    /// The generation of the next `ADD`.
    fn fresh_gen(&mut self) -> u32 {
        let gen = self.next_gen;
        self.next_gen = gen.wrapping_add(1);
        gen
    }

    /// Clones the handles an epoll event (with the [`token`] of an fd's
    /// registration) wakes into `out` (reader first). Cancelled handles are
    /// removed from the table and given to `garbage` instead (asyncio's
    /// `_process_events` does the same). An event that finds no handle to
    /// run (stale fd, unknown fd, all cancelled) disarms the fd; one from
    /// an older registration of the fd's number (a file closed under this
    /// number and kept open elsewhere, out of `DEL`'s reach) resets the
    /// poller, unless a reset already replaced the instance it came from.
    pub(crate) fn on_event(
        &mut self,
        poller: &Poller,
        token: u64,
        events: u32,
        is_cancelled: impl Fn(&H) -> bool,
        mut out: impl FnMut(H),
        garbage: &mut Vec<H>,
    ) where
        H: Clone,
    {
        let (fd, gen) = split_token(token);
        let Some(entry) = self.map.get(&fd) else {
            // Not ours (a reset dropped it, or the loop closed meanwhile):
            // stop level-triggered repeats.
            self.disarm(poller, fd);
            return;
        };
        if gen != entry.gen {
            if !poller.reset_since_wait() {
                self.reset(poller);
            }
            return;
        }
        let (mut r, mut w) = (None, None);
        if events & (IN | ERR_HUP) != 0 {
            r = entry.reader.clone();
        }
        if events & (OUT | ERR_HUP) != 0 {
            w = entry.writer.clone();
        }
        let mut ran = false;
        for (dir, h) in [(Dir::Read, r), (Dir::Write, w)] {
            let Some(h) = h else { continue };
            if is_cancelled(&h) {
                garbage.push(h);
                garbage.extend(self.remove(poller, fd, dir));
            } else {
                ran = true;
                out(h);
            }
        }
        if ran {
            return;
        }
        let Some(entry) = self.map.get_mut(&fd) else {
            return;
        };
        let interest = entry.interest();
        if interest == 0 {
            self.disarm(poller, fd);
        } else if entry.armed != interest {
            // A handle is left but the event ran nothing, and the kernel's
            // interest is not known to be ours (an earlier MOD failed): set
            // it again rather than wake for nothing each iteration.
            self.rearm(poller, fd, interest);
        }
    }

    /// Calls `f` with every reader and writer handle (any order).
    pub(crate) fn for_each(&self, f: &mut dyn FnMut(&H)) {
        for e in self.map.values() {
            e.reader.iter().chain(e.writer.iter()).for_each(&mut *f);
        }
    }

    /// Removes every handle and registration, live and stale (closing the
    /// loop; `DEL` errors are ignored: a closed fd's registration went
    /// with its file).
    pub(crate) fn drain_all(&mut self, poller: &Poller, out: &mut Vec<H>) {
        for (fd, e) in self.map.drain() {
            if e.armed != 0 {
                let _ = poller.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
            }
            out.extend(e.reader);
            out.extend(e.writer);
        }
        self.readers = 0;
        self.writers = 0;
    }
}

impl<H> std::fmt::Debug for Fds<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fds")
            .field("fds", &self.map.len())
            .field("readers", &self.readers)
            .field("writers", &self.writers)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    /// The fd hash is one-to-one on fd numbers and spreads consecutive
    /// ones over the map's tag bits (its top 7) and bucket bits (its low
    /// ones), so a table of dense fds probes little.
    #[test]
    fn fd_hash_spreads_dense_numbers() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<FdHasher>::default();
        let hashes: Vec<u64> = (0..4096).map(|fd: RawFd| build.hash_one(fd)).collect();
        let distinct: std::collections::HashSet<u64> = hashes.iter().copied().collect();
        assert_eq!(distinct.len(), hashes.len());
        let tags: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(tags.len(), 128, "every tag is used");
        let buckets: std::collections::HashSet<u64> = hashes[..64].iter().map(|h| h & 63).collect();
        assert_eq!(buckets.len(), 64, "64 fds fill 64 buckets");
        // The bytewise path (unused by `RawFd` keys) hashes too.
        let mut h = FdHasher::default();
        h.write(&[1, 2]);
        assert_ne!(h.finish(), 0);
    }

    /// The events ready now, as (token, events).
    fn wait_tokens(p: &Poller) -> Vec<(u64, u32)> {
        let mut ev = super::super::poller::events_buf();
        match p.wait(&mut ev, Some(std::time::Duration::ZERO)).unwrap() {
            super::super::poller::Waited::Events(n) => {
                ev[..n].iter().map(|e| (e.u64, e.events)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The events ready now, as (fd of an fd token / the poller's own
    /// token, events).
    fn wait(p: &Poller) -> Vec<(u64, u32)> {
        let own = |t: u64| t >= super::super::poller::RUNTIME_TOKEN;
        wait_tokens(p)
            .into_iter()
            .map(|(t, e)| (if own(t) { t } else { t & 0xffff_ffff }, e))
            .collect()
    }

    /// Hands `fds` an event (`token`, `bits`), with every handle taken as
    /// cancelled or not: the handles it woke, and its garbage.
    fn fire(
        fds: &mut Fds<u32>,
        p: &Poller,
        token: u64,
        bits: u32,
        cancelled: bool,
    ) -> (Vec<u32>, Vec<u32>) {
        let (mut out, mut garbage) = (Vec::new(), Vec::new());
        fds.on_event(p, token, bits, |_| cancelled, |h| out.push(h), &mut garbage);
        (out, garbage)
    }

    /// [`fire`] with the token of `fd`'s current registration.
    fn fire_fd(
        fds: &mut Fds<u32>,
        p: &Poller,
        fd: RawFd,
        bits: u32,
        cancelled: bool,
    ) -> (Vec<u32>, Vec<u32>) {
        let token = cur(fds, fd);
        fire(fds, p, token, bits, cancelled)
    }

    /// The token of `fd`'s current registration (an event for it).
    fn cur(fds: &Fds<u32>, fd: RawFd) -> u64 {
        token(fd, fds.map.get(&fd).map_or(0, |e| e.gen))
    }

    #[test]
    fn interest_is_the_union_and_follows_the_table() {
        let p = Poller::new().unwrap();
        let mut fds: Fds<u32> = Fds::new();
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        assert_eq!(fds.add(&p, fd, Dir::Write, 1).ok(), Some(None));
        assert_eq!(wait(&p), vec![(fd as u64, OUT)]);
        assert_eq!(fds.add(&p, fd, Dir::Read, 2).ok(), Some(None));
        assert_eq!(fds.add(&p, fd, Dir::Read, 3).ok(), Some(Some(2)));
        assert_eq!((fds.readers(), fds.writers()), (1, 1));
        assert_eq!(fds.remove(&p, fd, Dir::Write), Some(1));
        // Only IN left, nothing readable: no event.
        assert!(wait(&p).is_empty());
        assert_eq!(fds.remove(&p, fd, Dir::Read), Some(3));
        assert_eq!(fds.remove(&p, fd, Dir::Read), None);
        assert_eq!((fds.readers(), fds.writers()), (0, 0));
        // DEL happened: a fresh ADD works (no EEXIST).
        assert_eq!(fds.add(&p, fd, Dir::Write, 4).ok(), Some(None));
        let mut out = Vec::new();
        fds.drain_all(&p, &mut out);
        assert_eq!(out, vec![4]);
        assert!(wait(&p).is_empty());
    }

    /// The interest the kernel holds for `fd` (IN / OUT bits), if any.
    fn armed(p: &Poller, fd: RawFd) -> Option<u32> {
        p.registered()
            .into_iter()
            .find(|r| r.0 == fd)
            .map(|r| r.1 & (IN | OUT))
    }

    fn dup2(from: RawFd, to: RawFd) {
        // SAFETY: both are fds the test owns; dup2 replaces `to` atomically.
        assert_eq!(unsafe { libc::dup2(from, to) }, to);
    }

    #[test]
    fn last_removal_is_lazy_and_a_readd_is_one_mod() {
        let p = Poller::new().unwrap();
        let mut fds: Fds<u32> = Fds::new();
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let n0 = p.ctl_calls();
        assert_eq!(fds.add(&p, fd, Dir::Read, 1).ok(), Some(None));
        assert_eq!(p.ctl_calls() - n0, 1);
        // Removed: no syscall, the kernel keeps the fd (stale).
        assert_eq!(fds.remove(&p, fd, Dir::Read), Some(1));
        assert_eq!(p.ctl_calls() - n0, 1);
        assert_eq!(armed(&p, fd), Some(IN));
        assert!(!fds.has(fd, Dir::Read));
        assert_eq!(fds.remove(&p, fd, Dir::Read), None);
        assert_eq!((fds.readers(), fds.writers()), (0, 0));
        // Re-added: one MOD (never skipped).
        assert_eq!(fds.add(&p, fd, Dir::Read, 2).ok(), Some(None));
        assert_eq!(p.ctl_calls() - n0, 2);
        assert_eq!(armed(&p, fd), Some(IN));
        // Stale again, then a writer: one MOD to OUT alone.
        assert_eq!(fds.remove(&p, fd, Dir::Read), Some(2));
        assert_eq!(fds.add(&p, fd, Dir::Write, 3).ok(), Some(None));
        assert_eq!(p.ctl_calls() - n0, 3);
        assert_eq!(armed(&p, fd), Some(OUT));
        assert_eq!(wait(&p), vec![(fd as u64, OUT)]);
        assert_eq!((fds.readers(), fds.writers()), (0, 1));
        // Removing one of two handles narrows the registration at once.
        assert_eq!(fds.add(&p, fd, Dir::Read, 4).ok(), Some(None));
        assert_eq!(armed(&p, fd), Some(IN | OUT));
        let n1 = p.ctl_calls();
        assert_eq!(fds.remove(&p, fd, Dir::Write), Some(3));
        assert_eq!(p.ctl_calls() - n1, 1);
        assert_eq!(armed(&p, fd), Some(IN));
    }

    #[test]
    fn an_event_on_a_stale_fd_disarms_it() {
        let p = Poller::new().unwrap();
        let mut fds: Fds<u32> = Fds::new();
        let (a, mut b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        fds.add(&p, fd, Dir::Read, 1).ok().unwrap();
        fds.remove(&p, fd, Dir::Read).unwrap();
        b.write_all(b"x").unwrap();
        assert_eq!(wait(&p), vec![(fd as u64, IN)]);
        let (out, garbage) = fire_fd(&mut fds, &p, fd, IN, false);
        assert!(out.is_empty() && garbage.is_empty());
        assert_eq!(armed(&p, fd), None, "DEL on the event");
        assert!(fds.map.is_empty());
        assert!(wait(&p).is_empty(), "no level-triggered repeat");
        // Absent now: the next add is an ADD again, and works.
        let n0 = p.ctl_calls();
        fds.add(&p, fd, Dir::Read, 2).ok().unwrap();
        assert_eq!(p.ctl_calls() - n0, 1);
        assert_eq!(wait(&p), vec![(fd as u64, IN)]);
    }

    #[test]
    fn cancelled_handles_disarm_their_fd_at_once() {
        let p = Poller::new().unwrap();
        let mut fds: Fds<u32> = Fds::new();
        let (a, mut b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        fds.add(&p, fd, Dir::Read, 1).ok().unwrap();
        b.write_all(b"x").unwrap();
        let (out, garbage) = fire_fd(&mut fds, &p, fd, IN, true);
        assert!(out.is_empty());
        assert_eq!(garbage, vec![1, 1]);
        assert_eq!(fds.readers(), 0);
        assert_eq!(armed(&p, fd), None);
        assert!(wait(&p).is_empty());
    }

    #[test]
    fn a_stale_fd_closed_and_reused_is_registered_again() {
        let p = Poller::new().unwrap();
        let mut fds: Fds<u32> = Fds::new();
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        fds.add(&p, fd, Dir::Read, 1).ok().unwrap();
        fds.remove(&p, fd, Dir::Read).unwrap();
        // The number now names another socket: the old file (and its
        // registration) is gone.
        let (c, mut d) = UnixStream::pair().unwrap();
        dup2(c.as_raw_fd(), fd);
        drop(c);
        assert_eq!(armed(&p, fd), None);
        let n0 = p.ctl_calls();
        assert_eq!(fds.add(&p, fd, Dir::Read, 2).ok(), Some(None));
        assert_eq!(p.ctl_calls() - n0, 2, "MOD -> ENOENT -> ADD");
        d.write_all(b"x").unwrap();
        assert_eq!(wait(&p), vec![(fd as u64, IN)]);
        // Reused by a regular file while stale: the add fails, the entry
        // goes.
        fds.remove(&p, fd, Dir::Read).unwrap();
        let path = std::env::temp_dir().join(format!("rt-fds-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        dup2(file.as_raw_fd(), fd);
        let err = fds.add(&p, fd, Dir::Read, 3).err().unwrap();
        assert_eq!(err.0.raw_os_error(), Some(libc::EPERM));
        assert!(fds.map.is_empty());
        drop(a);
    }

    #[test]
    fn a_registration_out_of_reach_resets_the_poller() {
        let p = Poller::new().unwrap();
        let mut fds: Fds<u32> = Fds::new();
        let (a, mut b) = UnixStream::pair().unwrap();
        let keep = a.try_clone().unwrap(); // a dup: the file outlives `a`
        let (c, mut d) = UnixStream::pair().unwrap();
        let (fa, fc) = (a.as_raw_fd(), c.as_raw_fd());
        fds.add(&p, fc, Dir::Read, 1).ok().unwrap();
        fds.add(&p, fa, Dir::Read, 2).ok().unwrap();
        fds.remove(&p, fa, Dir::Read).unwrap();
        drop(a); // closed while stale: epoll keeps it (`keep` holds the file)
        assert_eq!(armed(&p, fa), Some(IN));
        b.write_all(b"x").unwrap();
        assert_eq!(wait(&p), vec![(fa as u64, IN)]);
        let (out, _) = fire_fd(&mut fds, &p, fa, IN, false);
        assert!(out.is_empty());
        // DEL could not reach it: a fresh instance, with `c` alone (and the
        // eventfd).
        let regs: Vec<RawFd> = p.registered().into_iter().map(|r| r.0).collect();
        assert_eq!(regs.len(), 2);
        assert!(regs.contains(&fc));
        assert_eq!(armed(&p, fc), Some(IN));
        // A later event of the same batch (from the old instance) resets
        // nothing again.
        let n0 = p.ctl_calls();
        assert_eq!(fire_fd(&mut fds, &p, fa, IN, false), (vec![], vec![]));
        assert_eq!(p.ctl_calls(), n0);
        assert!(wait(&p).is_empty(), "no more events from the closed number");
        // The live fd and the wake channel still work.
        d.write_all(b"y").unwrap();
        assert_eq!(wait(&p), vec![(fc as u64, IN)]);
        fds.remove(&p, fc, Dir::Read).unwrap();
        p.notify();
        assert_eq!(wait(&p).len(), 2, "wake + the stale fd's event");
        drop(keep);
    }

    #[test]
    fn an_event_of_an_older_registration_under_a_reused_number_resets_the_poller() {
        let p = Poller::new().unwrap();
        let mut fds: Fds<u32> = Fds::new();
        let (a, mut b) = UnixStream::pair().unwrap();
        let keep = a.try_clone().unwrap(); // a dup: the file outlives `a`
        let fd = a.as_raw_fd();
        fds.add(&p, fd, Dir::Read, 1).ok().unwrap();
        let old = cur(&fds, fd);
        fds.remove(&p, fd, Dir::Read).unwrap();
        // The number now names another socket, while `a`'s file (and its
        // registration, out of DEL's reach) lives on through `keep`.
        let (c, mut d) = UnixStream::pair().unwrap();
        dup2(c.as_raw_fd(), fd);
        drop(c);
        fds.add(&p, fd, Dir::Read, 2).ok().unwrap();
        assert_ne!(cur(&fds, fd), old, "a new registration, a new token");
        assert_eq!(p.registered().iter().filter(|r| r.0 == fd).count(), 2);
        // The old file fires under the old token: not the new reader's
        // event; the poller is replaced, with the new file alone.
        b.write_all(b"x").unwrap();
        assert_eq!(wait_tokens(&p), vec![(old, IN)]);
        let (out, _) = fire(&mut fds, &p, old, IN, false);
        assert!(out.is_empty(), "the old file's event ran the new reader");
        assert_eq!(p.registered().iter().filter(|r| r.0 == fd).count(), 1);
        assert!(wait(&p).is_empty(), "the old file keeps waking the loop");
        d.write_all(b"y").unwrap();
        let now = cur(&fds, fd);
        assert_eq!(wait_tokens(&p), vec![(now, IN)]);
        assert_eq!(fire(&mut fds, &p, now, IN, false), (vec![2], vec![]));
        drop((a, keep));
    }

    #[test]
    fn drain_all_drops_stale_registrations_too() {
        let p = Poller::new().unwrap();
        let mut fds: Fds<u32> = Fds::new();
        let (a, _b) = UnixStream::pair().unwrap();
        let (c, _d) = UnixStream::pair().unwrap();
        let (e, _f) = UnixStream::pair().unwrap();
        fds.add(&p, a.as_raw_fd(), Dir::Read, 1).ok().unwrap();
        fds.add(&p, c.as_raw_fd(), Dir::Write, 2).ok().unwrap();
        fds.remove(&p, c.as_raw_fd(), Dir::Write).unwrap();
        fds.add(&p, e.as_raw_fd(), Dir::Read, 3).ok().unwrap();
        fds.remove(&p, e.as_raw_fd(), Dir::Read).unwrap();
        drop(e); // closed while stale: its registration went with it
        assert_eq!(p.registered().len(), 3);
        let mut out = Vec::new();
        fds.drain_all(&p, &mut out);
        assert_eq!(out, vec![1]);
        assert_eq!(p.registered().len(), 1, "the eventfd alone");
        assert!(fds.map.is_empty());
    }

    #[test]
    fn an_event_that_runs_nothing_resets_an_unknown_interest() {
        // A live reader whose registration is not known to be ours (an
        // earlier MOD failed): the kernel holds IN | OUT. An OUT event runs
        // nothing and sets IN alone again.
        let p = Poller::new().unwrap();
        let mut fds: Fds<u32> = Fds::new();
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        fds.add(&p, fd, Dir::Read, 1).ok().unwrap();
        p.ctl(libc::EPOLL_CTL_MOD, fd, IN | OUT, fd as u64).unwrap();
        fds.map.get_mut(&fd).unwrap().armed = 0;
        assert_eq!(wait(&p), vec![(fd as u64, OUT)]);
        let (out, _) = fire_fd(&mut fds, &p, fd, OUT, false);
        assert!(out.is_empty());
        assert_eq!(armed(&p, fd), Some(IN));
        assert_eq!(fds.map[&fd].armed, IN);
        assert!(wait(&p).is_empty());
        assert!(fds.has(fd, Dir::Read));
    }

    #[test]
    fn a_stale_registration_is_taken_over() {
        // epoll has the fd (an earlier DEL failed or never happened) but
        // the table does not: ADD -> EEXIST -> MOD.
        let p = Poller::new().unwrap();
        let mut fds: Fds<u32> = Fds::new();
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        p.ctl(libc::EPOLL_CTL_ADD, fd, IN, fd as u64).unwrap();
        assert_eq!(fds.add(&p, fd, Dir::Write, 1).ok(), Some(None));
        assert_eq!(wait(&p), vec![(fd as u64, OUT)]);
    }

    #[test]
    fn events_without_an_entry_are_unregistered() {
        let p = Poller::new().unwrap();
        let mut fds: Fds<u32> = Fds::new();
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        p.ctl(libc::EPOLL_CTL_ADD, fd, OUT, fd as u64).unwrap();
        let (out, garbage) = fire_fd(&mut fds, &p, fd, OUT, false);
        assert!(out.is_empty() && garbage.is_empty());
        assert!(wait(&p).is_empty(), "still registered");
    }
}
