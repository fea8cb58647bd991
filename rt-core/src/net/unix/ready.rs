//! `ready(interest)`: the readiness waits of both directions composed, for
//! the stream and datagram types.

use crate::io::poll_evented::PollEvented;
use crate::io::scheduled_io::Direction;
use crate::io::{Interest, Ready};
use mio::event::Source;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::task::Poll;

/// Waits until `io` is ready for any of `interest` and returns what it is
/// ready for. Uses the async API's waiter lists (any number of tasks may
/// wait at once): an interest in both directions waits in both lists and
/// ends when either is ready (with both readinesses if both are). Each
/// direction found ready spends a unit of coop budget.
pub(super) async fn ready<E: Source>(io: &PollEvented<E>, interest: Interest) -> io::Result<Ready> {
    let registration = io.registration();
    let read = interest
        .is_readable()
        .then(|| registration.readiness(Direction::Read));
    let write = interest
        .is_writable()
        .then(|| registration.readiness(Direction::Write));
    let mut read = pin!(read);
    let mut write = pin!(write);
    poll_fn(|cx| {
        let mut ready = Ready::EMPTY;
        let mut done = false;
        if let Some(read) = read.as_mut().as_pin_mut() {
            if let Poll::Ready(res) = read.poll(cx) {
                ready |= res?.ready;
                done = true;
            }
        }
        if let Some(write) = write.as_mut().as_pin_mut() {
            if let Poll::Ready(res) = write.poll(cx) {
                ready |= res?.ready;
                done = true;
            }
        }
        if done {
            Poll::Ready(Ok(ready))
        } else {
            Poll::Pending
        }
    })
    .await
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::io::Interest;
    use crate::net::UnixStream;
    use crate::runtime::Builder;

    #[test]
    fn both_directions_ready_are_both_reported() {
        let rt = Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let r = a.ready(Interest::WRITABLE).await.unwrap();
            assert!(r.is_writable() && !r.is_readable(), "{r:?}");
            b.writable().await.unwrap();
            b.try_write(b"x").unwrap();
            a.readable().await.unwrap();
            let r = a
                .ready(Interest::READABLE | Interest::WRITABLE)
                .await
                .unwrap();
            assert!(r.is_readable() && r.is_writable(), "{r:?}");
            let r = a.ready(Interest::READABLE).await.unwrap();
            assert!(r.is_readable() && !r.is_writable(), "{r:?}");
        });
    }
}
