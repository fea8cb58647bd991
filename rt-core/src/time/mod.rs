//! Time: sleeps, timeouts and intervals on a hierarchical timer wheel.
//!
//! - [`sleep`], [`sleep_until`] -> [`Sleep`] (with [`Sleep::reset`]);
//! - [`timeout`], [`timeout_at`] -> [`Timeout`], failing with [`Elapsed`];
//! - [`interval`], [`interval_at`] -> [`Interval`] with
//!   [`MissedTickBehavior`];
//! - [`WakeAt`]: a timer that wakes a given waker, with no task;
//! - [`Alarms`]: timers named by a token, reported to an [`AlarmTarget`]
//!   (an embedder's own timer table);
//! - [`Instant`].
//!
//! Resolution is 1 ms. Deadlines round up to the next millisecond tick, so a
//! timer never fires before its deadline. The wheel has 6 levels of 64 slots
//! and spans 2^36 ms (about 2.2 years); deadlines further out are clamped to
//! that horizon (they fire then, early: do not rely on timers beyond it).
//!
//! Internals: `wheel/` is the plain data structure, `driver.rs` owns it and
//! parks the runtime until the next deadline, `entry.rs` is the state
//! shared by a timer and the driver.
//!
//! Needs a runtime built with `enable_time` (or `enable_all`).

mod alarm;
pub(crate) mod driver;
mod entry;
mod error;
mod instant;
mod interval;
mod sleep;
mod timeout;
mod wake_at;
pub(crate) mod wheel;

pub use alarm::{AlarmDue, AlarmKey, AlarmTarget, Alarms};
pub use error::Elapsed;
pub use instant::Instant;
pub use interval::{interval, interval_at, Interval, MissedTickBehavior};
pub use sleep::{sleep, sleep_until, Sleep};
pub use timeout::{timeout, timeout_at, Timeout};
pub use wake_at::WakeAt;
