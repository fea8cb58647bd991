//! `rt_core::callback::CompletionQueue` with closure callbacks: per-producer
//! order from four threads, the fd readable while non-empty, drains that
//! post, drop cancels what is left, in order.

use rt_core::callback::{CompletionQueue, Status};
use std::sync::{Arc, Mutex};

type Cb = Box<dyn FnOnce(Status) + Send>;

fn readable(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

#[test]
fn four_producers_keep_their_order() {
    const PER_THREAD: usize = 10_000;
    let q = Arc::new(CompletionQueue::<Cb>::new().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let producers: Vec<_> = (0..4)
        .map(|t| {
            let (q, log) = (q.clone(), log.clone());
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let log = log.clone();
                    q.post(Box::new(move |s| {
                        assert_eq!(s, Status::Ok);
                        log.lock().unwrap().push((t, i));
                    }));
                }
            })
        })
        .collect();
    let mut ran = 0;
    // The host drains while they post.
    while producers.iter().any(|p| !p.is_finished()) {
        ran += q.drain(100);
    }
    for p in producers {
        p.join().unwrap();
    }
    assert!(readable(q.fd()) || q.is_empty());
    ran += q.drain(0);
    assert_eq!(ran, 4 * PER_THREAD);
    assert!(!readable(q.fd()), "empty: not readable");
    let log = log.lock().unwrap();
    let mut next = [0usize; 4];
    for &(t, i) in log.iter() {
        assert_eq!(i, next[t], "producer {t} out of order");
        next[t] += 1;
    }
    assert_eq!(next, [PER_THREAD; 4]);
}

#[test]
fn a_drain_runs_what_was_queued_and_drop_cancels_the_rest_in_order() {
    let q = Arc::new(CompletionQueue::<Cb>::new().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 0..3 {
        let (q2, log) = (q.clone(), log.clone());
        q.post(Box::new(move |s| {
            log.lock().unwrap().push((i, s));
            // Posted from a drained callback: runs on a later drain.
            let log = log.clone();
            q2.post(Box::new(move |s| log.lock().unwrap().push((10 + i, s))));
        }));
    }
    assert!(readable(q.fd()));
    assert_eq!(q.drain(0), 3, "only what was queued when the drain began");
    assert_eq!(q.len(), 3);
    assert_eq!(q.drain(1), 1);
    let q = Arc::try_unwrap(q).unwrap_or_else(|_| panic!("still shared"));
    drop(q);
    assert_eq!(
        *log.lock().unwrap(),
        [
            (0, Status::Ok),
            (1, Status::Ok),
            (2, Status::Ok),
            (10, Status::Ok),
            (11, Status::Cancelled),
            (12, Status::Cancelled),
        ]
    );
}
