//! The reader / writer table: one optional handle per direction per fd, and
//! the level-triggered epoll registration that mirrors it.
//!
//! Rules (the interest is the union of the fd's reader and writer):
//! - a handle added: `EPOLL_CTL_MOD` if the fd is registered, else `ADD`.
//!   MOD is issued even when the interest is unchanged, so an fd closed and
//!   reused behind our back (epoll dropped the old file) is registered
//!   again: MOD fails with `ENOENT` and is retried as ADD (and an ADD that
//!   finds a stale registration, `EEXIST`, as MOD). An error (`EPERM` for a
//!   regular file, `EBADF`...) comes back to the caller and leaves the table
//!   unchanged;
//! - a handle removed: MOD to what is left, or `DEL` when nothing is;
//!   `EBADF`/`ENOENT` (the fd was closed behind our back) are ignored, and a
//!   removal always updates the table.
//! - readiness: `EPOLLIN` wakes the reader, `EPOLLOUT` the writer,
//!   `EPOLLERR`/`EPOLLHUP` both (as `selectors.EpollSelector`).

use super::poller::Poller;
use std::collections::HashMap;
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

struct Entry<H> {
    reader: Option<H>,
    writer: Option<H>,
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

/// The fd table of one loop.
pub(crate) struct Fds<H> {
    map: HashMap<RawFd, Entry<H>>,
    readers: usize,
    writers: usize,
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

impl<H> Fds<H> {
    pub(crate) fn new() -> Fds<H> {
        Fds {
            map: HashMap::new(),
            readers: 0,
            writers: 0,
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

    /// Whether `fd` has a handle for `dir`.
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
        let token = fd as u64;
        let (registered, interest) = match self.map.get(&fd) {
            Some(e) => {
                let other = match dir {
                    Dir::Read => e.writer.is_some(),
                    Dir::Write => e.reader.is_some(),
                };
                let mine = if dir == Dir::Read { IN } else { OUT };
                let theirs = if other {
                    if dir == Dir::Read {
                        OUT
                    } else {
                        IN
                    }
                } else {
                    0
                };
                (e.interest() != 0, mine | theirs)
            }
            None => (false, if dir == Dir::Read { IN } else { OUT }),
        };
        if fd < 0 {
            return Err((io::Error::from_raw_os_error(libc::EBADF), h));
        }
        let res = if registered {
            match poller.ctl(libc::EPOLL_CTL_MOD, fd, interest, token) {
                Err(e) if errno(&e) == libc::ENOENT => {
                    poller.ctl(libc::EPOLL_CTL_ADD, fd, interest, token)
                }
                r => r,
            }
        } else {
            match poller.ctl(libc::EPOLL_CTL_ADD, fd, interest, token) {
                Err(e) if errno(&e) == libc::EEXIST => {
                    poller.ctl(libc::EPOLL_CTL_MOD, fd, interest, token)
                }
                r => r,
            }
        };
        if let Err(e) = res {
            return Err((e, h));
        }
        let entry = self.map.entry(fd).or_insert(Entry {
            reader: None,
            writer: None,
        });
        let old = entry.slot(dir).replace(h);
        if old.is_none() {
            self.count(dir, 1);
        }
        Ok(old)
    }

    /// Removes the `dir` handle of `fd`; `None` if it had none.
    pub(crate) fn remove(&mut self, poller: &Poller, fd: RawFd, dir: Dir) -> Option<H> {
        let entry = self.map.get_mut(&fd)?;
        let old = entry.slot(dir).take()?;
        let interest = entry.interest();
        self.count(dir, -1);
        if interest == 0 {
            self.map.remove(&fd);
            // EBADF / ENOENT: closed behind our back, epoll forgot it.
            let _ = poller.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
        } else {
            let token = fd as u64;
            if let Err(e) = poller.ctl(libc::EPOLL_CTL_MOD, fd, interest, token) {
                if errno(&e) == libc::ENOENT {
                    // Reused fd: register what is left; a failure leaves the
                    // handle in the table (as asyncio's selector would), and
                    // the next add retries.
                    let _ = poller.ctl(libc::EPOLL_CTL_ADD, fd, interest, token);
                }
            }
        }
        Some(old)
    }

    /// Clones the handles an epoll event on `fd` wakes into `out` (reader
    /// first). Cancelled handles are removed from the table and given to
    /// `garbage` instead (asyncio's `_process_events` does the same). An
    /// event for an fd without a matching handle is unregistered.
    pub(crate) fn on_event(
        &mut self,
        poller: &Poller,
        fd: RawFd,
        events: u32,
        is_cancelled: impl Fn(&H) -> bool,
        mut out: impl FnMut(H),
        garbage: &mut Vec<H>,
    ) where
        H: Clone,
    {
        let Some(entry) = self.map.get(&fd) else {
            // Registered under a closed-and-reused number or removed while
            // the event was pending: stop level-triggered repeats.
            let _ = poller.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
            return;
        };
        let (mut r, mut w) = (None, None);
        if events & (IN | ERR_HUP) != 0 {
            r = entry.reader.clone();
        }
        if events & (OUT | ERR_HUP) != 0 {
            w = entry.writer.clone();
        }
        for (dir, h) in [(Dir::Read, r), (Dir::Write, w)] {
            let Some(h) = h else { continue };
            if is_cancelled(&h) {
                garbage.push(h);
                garbage.extend(self.remove(poller, fd, dir));
            } else {
                out(h);
            }
        }
    }

    /// Calls `f` with every reader and writer handle (any order).
    pub(crate) fn for_each(&self, f: &mut dyn FnMut(&H)) {
        for e in self.map.values() {
            e.reader.iter().chain(e.writer.iter()).for_each(&mut *f);
        }
    }

    /// Removes every handle and registration (closing the loop).
    pub(crate) fn drain_all(&mut self, poller: &Poller, out: &mut Vec<H>) {
        for (fd, e) in self.map.drain() {
            let _ = poller.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
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
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    fn wait(p: &Poller) -> Vec<(u64, u32)> {
        let mut ev = super::super::poller::events_buf();
        match p.wait(&mut ev, Some(std::time::Duration::ZERO)).unwrap() {
            super::super::poller::Waited::Events(n) => {
                ev[..n].iter().map(|e| (e.u64, e.events)).collect()
            }
            _ => Vec::new(),
        }
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
        let mut garbage = Vec::new();
        let mut out = Vec::new();
        fds.on_event(&p, fd, OUT, |_| false, |h| out.push(h), &mut garbage);
        assert!(out.is_empty() && garbage.is_empty());
        assert!(wait(&p).is_empty(), "still registered");
    }
}
