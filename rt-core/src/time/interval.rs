//! `Interval`: ticks at a fixed period.

use super::{sleep_until, Instant, Sleep};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

/// What an [`Interval`] does with ticks it missed (the task was busy past
/// one or more tick times).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks back to back until caught up (the default).
    #[default]
    Burst,
    /// Start the period over from when the late tick was taken.
    Delay,
    /// Drop the missed ticks and go on with the next multiple of the
    /// period.
    Skip,
}

/// Late by more than this counts as a missed tick.
const MISS_TOLERANCE: Duration = Duration::from_millis(5);

impl MissedTickBehavior {
    fn next_timeout(self, timeout: Instant, now: Instant, period: Duration) -> Instant {
        match self {
            MissedTickBehavior::Burst => timeout + period,
            MissedTickBehavior::Delay => now + period,
            MissedTickBehavior::Skip => {
                let behind = now.duration_since(timeout).as_nanos();
                let period_ns = period.as_nanos().max(1);
                let rem = (behind % period_ns) as u64;
                now + period - Duration::from_nanos(rem)
            }
        }
    }
}

/// Ticks every `period`, the first tick completing at once.
///
/// # Panics
/// If `period` is zero; outside a runtime or without `enable_time`.
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Ticks every `period` starting at `start`.
///
/// # Panics
/// If `period` is zero; outside a runtime or without `enable_time`.
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(period > Duration::ZERO, "`period` must be non-zero.");
    Interval {
        delay: sleep_until(start),
        period,
        missed_tick_behavior: MissedTickBehavior::default(),
    }
}

/// A stream of ticks from [`interval`].
#[derive(Debug)]
pub struct Interval {
    delay: Sleep,
    period: Duration,
    missed_tick_behavior: MissedTickBehavior,
}

impl Interval {
    /// Waits for the next tick; returns its scheduled time.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        ready!(Pin::new(&mut self.delay).poll(cx));
        let timeout = self.delay.deadline();
        let now = Instant::now();
        let next = if now > timeout + MISS_TOLERANCE {
            self.missed_tick_behavior
                .next_timeout(timeout, now, self.period)
        } else {
            timeout + self.period
        };
        self.delay.reset(next);
        Poll::Ready(timeout)
    }

    /// Restarts the period from now (the next tick is one period away).
    pub fn reset(&mut self) {
        self.delay.reset(Instant::now() + self.period);
    }

    /// The missed-tick behavior.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed_tick_behavior
    }

    /// Sets the missed-tick behavior.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed_tick_behavior = behavior;
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }
}
