//! One iteration of the loop: asyncio's `BaseEventLoop._run_once`.

use super::clock::now_ns;
use super::poller::{self, Waited, MAX_EVENTS, RUNTIME_TOKEN, WAKE_TOKEN};
use super::stopwatch::Stamp;
use super::{BusyPoll, EventLoop, Limits, LoopHandle, Runner, State};
use crate::runtime::RunMode;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// How many handles ahead of the one it runs a batch asks for the next
/// one's memory ([`LoopHandle::prefetch`]): a callback takes long enough
/// (hundreds of ns) for a load from memory to finish well before.
const PREFETCH_AHEAD: usize = 4;

/// The handles an iteration runs ([`EventLoop::run_once`]'s step 7).
enum Batch<H> {
    /// A lone ready handle, taken out of the queue (and counted) under the
    /// lock that took it.
    One(H),
    /// The ready queue, swapped out whole.
    Many(VecDeque<H>),
}

fn min_timeout(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl<H: LoopHandle> EventLoop<H> {
    /// One asyncio iteration (`BaseEventLoop._run_once` semantics):
    ///
    /// 1. handles queued by `call_soon_threadsafe` join the ready queue
    ///    (here, and again right after the wait);
    /// 2. the wait's timeout is 0 if handles are ready or `stopping`, else
    ///    until the earliest timer (none: no limit), capped by
    ///    `limits.deadline` (the embedded runtime's deadlines arm its
    ///    backend fd's timer). With handles ready and not `stopping`,
    ///    `limits.busy_poll` may skip the wait (see [`BusyPoll`]): steps
    ///    3-5 are skipped then;
    /// 3. the loop waits in epoll (with a nanosecond timeout; through
    ///    [`Runner::park`], or [`Runner::poll`] if the timeout is 0). A
    ///    signal (`EINTR`) ends the wait with no events;
    /// 4. each I/O event makes the fd's reader / writer ready
    ///    (`EPOLLERR`/`EPOLLHUP` both); a cancelled one is removed instead;
    /// 5. the embedded runtime runs (`RunMode::NoWait`) if its backend fd
    ///    fired;
    /// 6. due timers (deadline `<= now`, never early) become ready by
    ///    (deadline, insertion order), cancelled ones are dropped;
    /// 7. the handles ready at this point run, in order (cancelled ones are
    ///    skipped), at most `limits.max_callbacks` of them, and no new one
    ///    once `limits.deadline` has passed; the rest keep their place at
    ///    the head of the queue. Handles added meanwhile wait for the next
    ///    iteration.
    ///
    /// No lock is held while [`Runner::run`] runs: it may call any method
    /// of the loop, re-entrantly. If it returns `Err`, the handles not yet
    /// run go back to the head of the ready queue, in order, and the error
    /// is returned. Returns the number of handles run; `Ok(0)` at once on a
    /// closed loop.
    pub fn run_once<R: Runner<H>>(
        &self,
        runner: &mut R,
        stopping: bool,
        limits: Limits,
    ) -> Result<usize, R::Error> {
        let mut garbage: Vec<H> = Vec::new();
        // The clock, if step 2 read it (a loop with no timer and no
        // deadline reads it only around a blocking wait).
        let mut read_at = None;

        // 1-2: threadsafe queue, timeout.
        let mut timeout = {
            let mut st = self.lock();
            if st.closed {
                return Ok(0);
            }
            st.counters.iterations += 1;
            // `may_have_pending` sees every push made before it; one racing
            // with it is seen by `before_park` (no block) or next time.
            if self.remote.may_have_pending() {
                self.remote.drain_into(&mut st.ready);
            }
            if stopping {
                Some(Duration::ZERO)
            } else if !st.ready.is_empty() {
                if let Some(now) = self.may_skip_poll(limits.busy_poll) {
                    // 3-5 skipped: a busy iteration soon after a wait that
                    // found nothing (due timers: as of the clock read that
                    // decided it, if one did).
                    let now = || now.unwrap_or_else(now_ns);
                    let batch = Self::take_batch(&mut st, limits, &mut garbage, now);
                    drop(st);
                    return self.run_batch(runner, limits, batch, garbage);
                }
                Some(Duration::ZERO)
            } else {
                st.timers.next_due_ns().map(|t| {
                    let now = *read_at.insert(now_ns());
                    Duration::from_nanos(t.saturating_sub(now))
                })
            }
        };
        if let Some(dl) = limits.deadline {
            let now = *read_at.get_or_insert_with(now_ns);
            let left = Duration::from_nanos(dl.saturating_sub(now));
            timeout = min_timeout(timeout, Some(left));
        }

        // 3: wait.
        let mut events = poller::events_buf();
        let mut waited = Ok(Waited::Events(0));
        let mut parked_ns = 0;
        // The clock read when a blocking wait ended (a poll reads none).
        let mut woke_at = None;
        if timeout != Some(Duration::ZERO) && self.remote.before_park() {
            // The wait's time counts from the timeout's clock reading, if
            // one was made just before.
            let start = read_at.unwrap_or_else(now_ns);
            runner.park(&mut || waited = self.poller.wait(&mut events, timeout));
            self.remote.after_park();
            let end = now_ns();
            parked_ns = end - start;
            woke_at = Some(end);
        } else {
            runner.poll(&mut || waited = self.poller.wait(&mut events, Some(Duration::ZERO)));
        }
        // An error other than EINTR (none is expected from our own epoll
        // fd) counts as a wait with no events.
        let n = match waited {
            Ok(Waited::Events(n)) => n.min(MAX_EVENTS),
            Ok(Waited::Interrupted) | Err(_) => 0,
        };
        // A wait that found nothing lets the next busy iterations skip
        // theirs; one that found events, `max_skips_after_events` of them
        // (none: a loop with I/O going on polls in every iteration). The
        // clock is read only if a skip may follow.
        let may_skip = n == 0
            || limits
                .busy_poll
                .is_some_and(|bp| bp.max_skips_after_events > 0);
        let (last_at, stamp) = if may_skip {
            let now = woke_at.unwrap_or_else(now_ns);
            (now, Stamp::at(now))
        } else {
            (0, Stamp::from_raw(0))
        };
        self.last_wait_ns.store(last_at, Relaxed);
        self.last_wait_stamp.store(stamp.to_raw(), Relaxed);
        self.last_wait_found.store(n > 0, Relaxed);
        self.busy_skips.store(0, Relaxed);

        // 4: I/O events (a busy iteration with nothing to do here takes no
        // lock).
        let mut rt_fired = false;
        if n > 0 || parked_ns > 0 || self.remote.may_have_pending() {
            let mut st = self.lock();
            let st = &mut *st;
            st.counters.parked_ns += parked_ns;
            // Threadsafe calls made during the wait run in this iteration,
            // before the I/O events (asyncio appends them to its ready
            // queue at once).
            if self.remote.may_have_pending() {
                self.remote.drain_into(&mut st.ready);
            }
            for ev in &events[..n] {
                let (token, bits) = (ev.u64, ev.events);
                match token {
                    WAKE_TOKEN => {
                        self.poller.drain_notify();
                        self.remote.clear_notified();
                    }
                    RUNTIME_TOKEN => rt_fired = true,
                    token => {
                        st.counters.io_events += 1;
                        let ready = &mut st.ready;
                        st.fds.on_event(
                            &self.poller,
                            token,
                            bits,
                            H::is_cancelled,
                            |h| ready.push_back(h),
                            &mut garbage,
                        );
                    }
                }
            }
        }

        // 5: the embedded runtime (no lock held: its tasks may call us).
        // Its backend fd fires for all of its work: I/O, a task scheduled
        // from any thread (an unpark) and, through the host timer it arms
        // before each return, its timers and the tasks a run left queued.
        // (A timer a task registers outside a run, from another thread,
        // wakes it only at the wheel's next cascade point or the armed
        // deadline, whichever is first: as for any host of the runtime.)
        if rt_fired {
            let polled = self.rt_handle.run(RunMode::NoWait);
            let mut st = self.lock();
            st.counters.runtime_runs += 1;
            st.counters.runtime_tasks_polled += polled as u64;
        }

        let batch = Self::take_batch(&mut self.lock(), limits, &mut garbage, now_ns);
        self.run_batch(runner, limits, batch, garbage)
    }

    /// Whether a busy iteration skips its poll under `busy_poll` (see
    /// [`BusyPoll`]), counting the skip if so: then `Some` of the clock
    /// reading made to decide, if one was (the time since the last wait is
    /// read from the CPU's counter where it can be: see `stopwatch.rs`).
    fn may_skip_poll(&self, busy_poll: Option<BusyPoll>) -> Option<Option<u64>> {
        let bp = busy_poll?;
        let skips = self.busy_skips.load(Relaxed);
        let last_at = self.last_wait_ns.load(Relaxed);
        let max = if self.last_wait_found.load(Relaxed) {
            bp.max_skips_after_events.min(bp.max_skips)
        } else {
            bp.max_skips
        };
        if skips >= max || last_at == 0 {
            return None;
        }
        let stamp = Stamp::from_raw(self.last_wait_stamp.load(Relaxed));
        let (elapsed, now) = stamp.elapsed(last_at, bp.interval_ns);
        if elapsed {
            return None;
        }
        // Relaxed: these two only steer how often the loop polls (run_once
        // calls racing on two threads could at worst poll once more or
        // less than asked).
        self.busy_skips.store(skips + 1, Relaxed);
        Some(now)
    }

    /// Step 6 of [`run_once`](Self::run_once) and the start of 7: due
    /// timers (at `now()`, read only if there are timers) join the ready
    /// queue (cancelled ones go to `garbage`), which is then taken whole as
    /// the batch to run. A lone ready handle not cancelled is taken alone,
    /// already counted as run: the iteration then needs no lock after it
    /// runs (a chain of `call_soon`s, one handle per iteration, takes two
    /// locks per iteration instead of three).
    fn take_batch(
        st: &mut State<H>,
        limits: Limits,
        garbage: &mut Vec<H>,
        now: impl FnOnce() -> u64,
    ) -> Batch<H> {
        let ready = &mut st.ready;
        let mut fired = 0;
        st.timers.poll_if_any(now, |h| {
            if h.is_cancelled() {
                garbage.push(h);
            } else {
                fired += 1;
                ready.push_back(h);
            }
        });
        st.counters.timers_fired += fired;
        // Not if garbage was found: its destructors, run before the batch,
        // may cancel the handle.
        let lone = st.ready.len() == 1 && !st.ready[0].is_cancelled();
        if lone && limits.max_callbacks != Some(0) && garbage.is_empty() {
            if let Some(h) = st.ready.pop_front() {
                st.counters.callbacks_run += 1;
                return Batch::One(h);
            }
        }
        let mut batch = std::mem::take(&mut st.spare);
        std::mem::swap(&mut batch, &mut st.ready);
        Batch::Many(batch)
    }

    /// Step 7 of [`run_once`](Self::run_once), taken lock released: runs
    /// `batch` within `limits` and gives back what did not run. `garbage`,
    /// the cancelled handles found so far, is dropped first.
    fn run_batch<R: Runner<H>>(
        &self,
        runner: &mut R,
        limits: Limits,
        batch: Batch<H>,
        garbage: Vec<H>,
    ) -> Result<usize, R::Error> {
        // Cancelled readers and timers are dropped with no lock held (a
        // handle's destructor may call back into the loop).
        drop(garbage);

        let mut batch = match batch {
            Batch::One(h) => return runner.run(h).map(|()| 1),
            Batch::Many(b) => b,
        };
        let max = limits.max_callbacks.unwrap_or(usize::MAX);
        let mut ran = 0usize;
        let mut result = Ok(());
        while ran < max {
            if ran > 0 {
                if let Some(dl) = limits.deadline {
                    if now_ns() >= dl {
                        break;
                    }
                }
            }
            if let Some(ahead) = batch.get(PREFETCH_AHEAD) {
                ahead.prefetch();
            }
            if let Some(ahead) = batch.get(PREFETCH_AHEAD / 2) {
                ahead.prefetch_targets();
            }
            let Some(h) = batch.pop_front() else { break };
            if h.is_cancelled() {
                continue;
            }
            ran += 1;
            if let Err(e) = runner.run(h) {
                result = Err(e);
                break;
            }
        }
        self.give_back(batch, ran);
        result.map(|()| ran)
    }

    /// Puts the handles of a batch that did not run back at the head of the
    /// ready queue (in order), and keeps the batch's buffer for the next
    /// swap.
    fn give_back(&self, mut batch: VecDeque<H>, ran: usize) {
        let mut st = self.lock();
        st.counters.callbacks_run += ran as u64;
        if st.closed {
            // Closed by a handle: `close` already returned everything else;
            // the rest is dropped below, with no lock held.
            drop(st);
            drop(batch);
            return;
        }
        if batch.is_empty() {
            if st.spare.capacity() < batch.capacity() {
                st.spare = batch;
            }
            return;
        }
        // batch = rest ++ ready, then it becomes the ready queue.
        batch.append(&mut st.ready);
        std::mem::swap(&mut batch, &mut st.ready);
        if st.spare.capacity() < batch.capacity() {
            st.spare = batch;
        }
    }
}
