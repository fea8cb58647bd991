//! `EventLoop::visit_handles`: every handle the loop holds is visited (the
//! Python binding's garbage-collector traversal), none after `close`.

mod event_loop_util;

use event_loop_util::*;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

fn visited(lp: &rt_core::event_loop::EventLoop<Cb>) -> Vec<u32> {
    let mut ids = Vec::new();
    lp.visit_handles(&mut |h: &Cb| ids.push(h.id()));
    ids.sort_unstable();
    ids
}

#[test]
fn visit_sees_ready_timers_fds_and_threadsafe_handles() {
    let lp = new_loop();
    let log = log();
    let (a, b) = UnixStream::pair().unwrap();
    lp.call_soon(rec(&log, 1)).unwrap();
    lp.call_at(now() + 3_600_000_000_000, rec(&log, 2)).unwrap(); // in the wheel
    lp.call_at(u64::MAX - 1, rec(&log, 3)).unwrap(); // beyond the wheel's range
    lp.add_reader(a.as_raw_fd(), rec(&log, 4)).unwrap();
    lp.add_writer(b.as_raw_fd(), rec(&log, 5)).unwrap();
    lp.call_soon_threadsafe(rec(&log, 6)).unwrap();
    assert_eq!(visited(&lp), vec![1, 2, 3, 4, 5, 6]);
    let held = lp.close();
    assert_eq!(held.len(), 6);
    assert_eq!(visited(&lp), Vec::<u32>::new());
}
