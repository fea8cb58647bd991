//! `rt_core::event_loop`: readers and writers on the loop's level-triggered
//! epoll.

mod event_loop_util;

use event_loop_util::*;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// One iteration that waits at most `ms`.
fn step(lp: &rt_core::event_loop::EventLoop<Cb>, ms: u64) -> usize {
    lp.run_once(&mut Run::default(), false, within(ms)).unwrap()
}

#[test]
fn readers_are_level_triggered() {
    let lp = new_loop();
    let (a, mut b) = pair();
    let log = log();
    let reader = {
        let (log, a) = (log.clone(), a.try_clone().unwrap());
        Cb::new(1, move |id| {
            // Read one byte only: the fd stays readable while data remains.
            let mut byte = [0u8; 1];
            assert_eq!((&a).read(&mut byte).unwrap(), 1);
            log.lock().unwrap().push(id);
        })
    };
    assert!(lp.add_reader(a.as_raw_fd(), reader).unwrap().is_none());
    assert!(lp.has_reader(a.as_raw_fd()));
    assert!(!lp.has_writer(a.as_raw_fd()));
    // Nothing to read: nothing fires.
    assert_eq!(step(&lp, 20), 0);
    b.write_all(b"abc").unwrap();
    for _ in 0..3 {
        assert_eq!(step(&lp, 1_000), 1);
    }
    assert_eq!(taken(&log), vec![1, 1, 1]);
    assert_eq!(step(&lp, 20), 0);
    assert_eq!(lp.metrics().io_events, 3);
    assert_eq!(lp.remove_reader(a.as_raw_fd()).map(|h| h.id()), Some(1));
    assert!(lp.remove_reader(a.as_raw_fd()).is_none());
    b.write_all(b"d").unwrap();
    assert_eq!(step(&lp, 20), 0);
}

#[test]
fn reader_and_writer_share_an_fd() {
    let lp = new_loop();
    let (a, mut b) = pair();
    let fd = a.as_raw_fd();
    let log = log();
    lp.add_writer(fd, rec(&log, 2)).unwrap();
    assert_eq!(step(&lp, 1_000), 1);
    assert_eq!(taken(&log), vec![2]);
    lp.add_reader(fd, rec(&log, 1)).unwrap();
    b.write_all(b"x").unwrap();
    // Readable and writable: reader first, then writer.
    assert_eq!(step(&lp, 1_000), 2);
    assert_eq!(taken(&log), vec![1, 2]);
    // Removing the writer keeps the reader (MOD, not DEL).
    assert!(lp.remove_writer(fd).is_some());
    assert_eq!(step(&lp, 1_000), 1);
    assert_eq!(taken(&log), vec![1]);
    // Replacing the reader returns the old one.
    assert_eq!(
        lp.add_reader(fd, rec(&log, 3)).unwrap().map(|h| h.id()),
        Some(1)
    );
    assert_eq!(step(&lp, 1_000), 1);
    assert_eq!(taken(&log), vec![3]);
    let m = lp.metrics();
    assert_eq!((m.readers, m.writers), (1, 0));
    assert!(lp.remove_reader(fd).is_some());
    assert_eq!(step(&lp, 20), 0);
    assert_eq!(lp.metrics().readers, 0);
}

#[test]
fn hangup_wakes_reader_and_writer() {
    let lp = new_loop();
    let (a, b) = pair();
    let fd = a.as_raw_fd();
    let log = log();
    lp.add_reader(fd, rec(&log, 1)).unwrap();
    drop(b);
    assert_eq!(step(&lp, 1_000), 1);
    assert_eq!(taken(&log), vec![1]);
    // Writer only: HUP/ERR reach it as well.
    lp.remove_reader(fd).unwrap();
    lp.add_writer(fd, rec(&log, 2)).unwrap();
    assert_eq!(step(&lp, 1_000), 1);
    assert_eq!(taken(&log), vec![2]);
}

#[test]
fn cancelled_reader_is_removed_on_its_event() {
    let lp = new_loop();
    let (a, mut b) = pair();
    let log = log();
    let h = rec(&log, 1);
    lp.add_reader(a.as_raw_fd(), h.clone()).unwrap();
    h.cancel();
    b.write_all(b"x").unwrap();
    assert_eq!(step(&lp, 1_000), 0);
    assert!(!lp.has_reader(a.as_raw_fd()));
    assert_eq!(step(&lp, 20), 0);
    assert!(taken(&log).is_empty());
}

fn dup2(from: RawFd, to: RawFd) {
    // SAFETY: both are fds this test owns; dup2 replaces `to` atomically.
    let rc = unsafe { libc::dup2(from, to) };
    assert_eq!(rc, to);
}

#[test]
fn fd_closed_behind_our_back_and_reused() {
    let lp = new_loop();
    let log = log();
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    lp.add_reader(fd, rec(&log, 1)).unwrap();
    // The socket is closed without remove_reader: epoll drops it. Its fd
    // number is then reused for another socket (dup2 forces the number).
    let (c, mut d) = pair();
    dup2(c.as_raw_fd(), fd); // closes `a`'s file, `fd` now names `c`'s
    drop(c);
    // Still in our table; adding again re-registers the new file
    // (MOD -> ENOENT -> ADD) and returns the stale handle.
    assert_eq!(
        lp.add_reader(fd, rec(&log, 2)).unwrap().map(|h| h.id()),
        Some(1)
    );
    d.write_all(b"x").unwrap();
    assert_eq!(step(&lp, 1_000), 1);
    assert_eq!(taken(&log), vec![2]);

    // A writer added to a reused number whose registration epoll dropped.
    let (e, _f) = pair();
    dup2(e.as_raw_fd(), fd);
    drop(e);
    assert!(lp.add_writer(fd, rec(&log, 3)).unwrap().is_none());
    assert_eq!(step(&lp, 1_000), 1);
    assert_eq!(taken(&log), vec![3]);

    // Removal of an fd closed behind our back: no error, table updated.
    drop(a); // closes `fd`
    assert_eq!(lp.remove_reader(fd).map(|h| h.id()), Some(2));
    assert_eq!(lp.remove_writer(fd).map(|h| h.id()), Some(3));
    assert!(!lp.has_reader(fd) && !lp.has_writer(fd));
    assert_eq!(step(&lp, 20), 0);
    let m = lp.metrics();
    assert_eq!((m.readers, m.writers), (0, 0));
}

#[test]
fn epoll_errors_leave_the_table_unchanged() {
    let lp = new_loop();
    let log = log();
    let path = std::env::temp_dir().join(format!("rt-event-loop-{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = lp.add_reader(file.as_raw_fd(), rec(&log, 1)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    let err = lp.add_writer(file.as_raw_fd(), rec(&log, 1)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    assert!(!lp.has_reader(file.as_raw_fd()));
    assert!(lp.remove_reader(file.as_raw_fd()).is_none());
    // Bad fds.
    assert_eq!(
        lp.add_reader(-1, rec(&log, 1)).unwrap_err().raw_os_error(),
        Some(libc::EBADF)
    );
    // An fd number far above any open one (other tests' threads open fds
    // concurrently, so a just-closed number could be reused).
    assert_eq!(
        lp.add_writer(999_999, rec(&log, 1))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EBADF)
    );
    let m = lp.metrics();
    assert_eq!((m.readers, m.writers), (0, 0));
    // A failed re-registration on a registered fd keeps the old handle.
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    lp.add_reader(fd, rec(&log, 5)).unwrap();
    dup2(file.as_raw_fd(), fd); // now a regular file under that number
    let err = lp.add_reader(fd, rec(&log, 6)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    assert_eq!(lp.remove_reader(fd).map(|h| h.id()), Some(5));
    assert!(taken(&log).is_empty());
}

#[test]
fn many_fds_and_events_in_one_wait() {
    // More ready fds than one wait returns (256): all are served over several
    // iterations.
    let lp = new_loop();
    let log = log();
    let pairs: Vec<_> = (0..280).map(|_| pair()).collect();
    for (i, (a, b)) in pairs.iter().enumerate() {
        lp.add_reader(a.as_raw_fd(), rec(&log, i as u32)).unwrap();
        (&*b).write_all(b"x").unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let mut iterations = 0;
    while seen.len() < 280 && iterations < 50 {
        step(&lp, 1_000);
        seen.extend(taken(&log));
        iterations += 1;
    }
    assert_eq!(seen.len(), 280);
    let lp2 = Arc::clone(&lp);
    assert_eq!(lp2.close().len(), 280);
}

// Lazy deregistration: removing an fd's last handle leaves its epoll
// registration in place ("stale") until an event or a re-add.

#[test]
fn a_removed_reader_added_back_gets_events() {
    let lp = new_loop();
    let log = log();
    let (a, mut b) = pair();
    let fd = a.as_raw_fd();
    for id in 1..=3 {
        assert!(lp.add_reader(fd, rec(&log, id)).unwrap().is_none());
        b.write_all(b"x").unwrap();
        assert_eq!(step(&lp, 1_000), 1);
        assert_eq!(taken(&log), vec![id]);
        (&a).read_exact(&mut [0u8; 1]).unwrap();
        assert_eq!(lp.remove_reader(fd).map(|h| h.id()), Some(id));
        assert!(!lp.has_reader(fd));
        assert!(lp.remove_reader(fd).is_none());
    }
    // Stale with IN, data pending, then a writer: only the writer runs (the
    // registration now holds OUT alone).
    b.write_all(b"y").unwrap();
    assert!(lp.add_writer(fd, rec(&log, 4)).unwrap().is_none());
    assert_eq!(step(&lp, 1_000), 1);
    assert_eq!(taken(&log), vec![4]);
    assert!(lp.remove_writer(fd).is_some());
    // And the reader again, on the pending byte.
    assert!(lp.add_reader(fd, rec(&log, 5)).unwrap().is_none());
    assert_eq!(step(&lp, 1_000), 1);
    assert_eq!(taken(&log), vec![5]);
    let m = lp.metrics();
    assert_eq!((m.readers, m.writers), (1, 0));
}

#[test]
fn an_event_on_a_stale_fd_disarms_it() {
    let lp = new_loop();
    let log = log();
    let (a, mut b) = pair();
    let fd = a.as_raw_fd();
    lp.add_reader(fd, rec(&log, 1)).unwrap();
    lp.remove_reader(fd).unwrap();
    b.write_all(b"x").unwrap();
    // The first wait reports the stale fd (nothing runs) and disarms it...
    assert_eq!(step(&lp, 1_000), 0);
    assert_eq!(lp.metrics().io_events, 1);
    // ...so the next waits block for their whole timeout, with no repeat.
    let t = std::time::Instant::now();
    assert_eq!(step(&lp, 30), 0);
    assert_eq!(step(&lp, 30), 0);
    assert!(t.elapsed() >= std::time::Duration::from_millis(55));
    assert_eq!(lp.metrics().io_events, 1);
    assert!(taken(&log).is_empty());
    // Added back after the DEL: a fresh registration.
    lp.add_reader(fd, rec(&log, 2)).unwrap();
    assert_eq!(step(&lp, 1_000), 1);
    assert_eq!(taken(&log), vec![2]);
}

#[test]
fn a_stale_fd_closed_then_reused_by_a_new_socket_gets_events() {
    let lp = new_loop();
    let log = log();
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    lp.add_reader(fd, rec(&log, 1)).unwrap();
    lp.add_writer(fd, rec(&log, 2)).unwrap();
    assert!(lp.remove_writer(fd).is_some());
    assert!(lp.remove_reader(fd).is_some());
    // Closed while stale (its registration goes with the file), the number
    // then taken by a new socket (dup2 forces the number).
    let (c, mut d) = pair();
    dup2(c.as_raw_fd(), fd);
    drop(c);
    assert!(lp.add_reader(fd, rec(&log, 3)).unwrap().is_none());
    assert_eq!(step(&lp, 20), 0);
    d.write_all(b"x").unwrap();
    assert_eq!(step(&lp, 1_000), 1);
    assert_eq!(taken(&log), vec![3]);
    // Same with a writer on a number reused while stale.
    assert!(lp.remove_reader(fd).is_some());
    let (e, _f) = pair();
    dup2(e.as_raw_fd(), fd);
    drop(e);
    assert!(lp.add_writer(fd, rec(&log, 4)).unwrap().is_none());
    assert_eq!(step(&lp, 1_000), 1);
    assert_eq!(taken(&log), vec![4]);
    // Reused by a regular file while stale: EPERM, as for a fresh fd.
    assert!(lp.remove_writer(fd).is_some());
    let path = std::env::temp_dir().join(format!("rt-event-loop-stale-{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    dup2(file.as_raw_fd(), fd);
    let err = lp.add_reader(fd, rec(&log, 5)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    assert!(!lp.has_reader(fd) && lp.remove_reader(fd).is_none());
    drop(a);
}

#[test]
fn a_stale_fd_closed_while_its_file_lives_on_does_not_spin() {
    // The registration of a number closed while a dup keeps its file open
    // survives in epoll, out of DEL's reach: the loop replaces its epoll
    // instance instead of waking for it forever.
    let lp = new_loop();
    let log = log();
    let (a, mut b) = pair();
    let keep = a.try_clone().unwrap();
    let (c, mut d) = pair();
    lp.add_reader(c.as_raw_fd(), rec(&log, 1)).unwrap();
    lp.add_reader(a.as_raw_fd(), rec(&log, 2)).unwrap();
    lp.remove_reader(a.as_raw_fd()).unwrap();
    drop(a);
    b.write_all(b"x").unwrap();
    assert_eq!(step(&lp, 1_000), 0);
    let t = std::time::Instant::now();
    assert_eq!(step(&lp, 30), 0);
    assert_eq!(step(&lp, 30), 0);
    assert!(t.elapsed() >= std::time::Duration::from_millis(55));
    assert_eq!(lp.metrics().io_events, 1);
    // The live reader, threadsafe wake-ups and the runtime survive it.
    d.write_all(b"y").unwrap();
    assert_eq!(step(&lp, 1_000), 1);
    assert_eq!(taken(&log), vec![1]);
    let lp2 = Arc::clone(&lp);
    let log2 = log.clone();
    std::thread::spawn(move || lp2.call_soon_threadsafe(rec(&log2, 3)).unwrap())
        .join()
        .unwrap();
    // An rt task awaiting a blocking job: woken through the runtime's fd.
    let rt = lp.runtime().unwrap();
    let (rt2, lp3, log3) = (rt.clone(), lp.clone(), log.clone());
    rt.spawn(async move {
        let v = rt2
            .spawn_blocking(|| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                7
            })
            .await
            .unwrap();
        lp3.call_soon(rec(&log3, v)).unwrap();
    });
    let mut run = Run::default();
    let start = std::time::Instant::now();
    while !run.ran.contains(&7) {
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        // No deadline: only the runtime's fd / timeout ends the wait.
        lp.run_once(&mut run, false, Default::default()).unwrap();
    }
    assert!(taken(&log).contains(&3));
    drop(keep);
}

#[test]
fn close_with_stale_registrations() {
    let lp = new_loop();
    let log = log();
    let pairs: Vec<_> = (0..4).map(|_| pair()).collect();
    for (i, (a, _)) in pairs.iter().enumerate() {
        lp.add_reader(a.as_raw_fd(), rec(&log, i as u32)).unwrap();
        lp.add_writer(a.as_raw_fd(), rec(&log, 10 + i as u32))
            .unwrap();
    }
    // Two stale, one live, one stale then closed.
    for (a, _) in &pairs[..2] {
        lp.remove_reader(a.as_raw_fd()).unwrap();
        lp.remove_writer(a.as_raw_fd()).unwrap();
    }
    lp.remove_writer(pairs[2].0.as_raw_fd()).unwrap();
    let (a3, _b3) = &pairs[3];
    lp.remove_reader(a3.as_raw_fd()).unwrap();
    lp.remove_writer(a3.as_raw_fd()).unwrap();
    let mut pairs = pairs;
    drop(pairs.pop());
    let mut ids: Vec<u32> = lp.close().iter().map(|h| h.id()).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![2]);
    assert!(lp.close().is_empty());
    let m = lp.metrics();
    assert_eq!((m.readers, m.writers), (0, 0));
    assert!(!lp.has_reader(pairs[0].0.as_raw_fd()));
    assert!(lp.remove_reader(pairs[0].0.as_raw_fd()).is_none());
    assert_eq!(lp.run_once(&mut Run::default(), false, within(20)), Ok(0));
    // The fds are free for another loop.
    let lp2 = new_loop();
    for (a, b) in &pairs {
        lp2.add_reader(a.as_raw_fd(), rec(&log, 20)).unwrap();
        (&*b).write_all(b"x").unwrap();
    }
    let mut n = 0;
    for _ in 0..10 {
        n += step(&lp2, 1_000);
        if n >= 3 {
            break;
        }
    }
    assert_eq!(n, 3);
}
