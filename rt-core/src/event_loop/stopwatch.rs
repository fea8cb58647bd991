//! A cheap test of "has this much time passed since then?" for the busy
//! loop's poll skipping ([`BusyPoll`](super::BusyPoll)), asked once per busy
//! iteration.
//!
//! On x86-64, where the kernel keeps time with the CPU's time-stamp counter
//! (its clocksource is `tsc`: invariant and synchronized across CPUs, or
//! the kernel would not use it), a stamp is one `rdtsc` (about 10 ns on the
//! development VM, against 25 ns for `clock_gettime`), converted with a
//! rate measured against `CLOCK_MONOTONIC` over the first 10 ms of stamps
//! taken beside clock readings. Until the rate is known, elsewhere, or with
//! another clocksource, the test reads `CLOCK_MONOTONIC` instead.
//! Every odd reading (a counter that went back, a rate out of bounds) makes
//! the test answer "yes", which only makes the loop poll sooner.

use super::clock::now_ns;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

/// Counter ticks per 1024 ns, 0 until measured (or if it cannot be).
static RATE: AtomicU64 = AtomicU64::new(0);

/// The first (ns, stamp) pair the rate is measured from.
static ANCHOR: Mutex<Option<(u64, u64)>> = Mutex::new(None);

/// The clock time a rate is measured over, at least.
const CALIBRATION_NS: u64 = 10_000_000;

/// A point in time to measure from: the counter's reading, 0 if the
/// counter is not used.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stamp(u64);

/// Whether the kernel keeps time with the counter.
fn counter_usable() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| {
        cfg!(target_arch = "x86_64")
            && std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|s| s.trim() == "tsc")
    })
}

#[cfg(target_arch = "x86_64")]
fn read_counter() -> u64 {
    // SAFETY: `rdtsc` exists on every x86-64 CPU and only reads the
    // counter (no memory access, no side effect); a kernel that disabled
    // it for user space (`PR_SET_TSC`) does not keep time with it, so
    // `counter_usable` is false and this is never called.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn read_counter() -> u64 {
    0
}

impl Stamp {
    /// The stamp as stored in an atomic.
    pub(crate) fn to_raw(self) -> u64 {
        self.0
    }

    /// A stamp [`to_raw`](Self::to_raw) stored.
    pub(crate) fn from_raw(raw: u64) -> Stamp {
        Stamp(raw)
    }

    /// Now, taken beside `now_ns` (a clock reading just made): also feeds
    /// the rate's measurement until it is done.
    pub(crate) fn at(now_ns: u64) -> Stamp {
        if !counter_usable() {
            return Stamp(0);
        }
        let stamp = read_counter();
        if RATE.load(Relaxed) == 0 {
            calibrate(now_ns, stamp);
        }
        Stamp(stamp)
    }

    /// Whether `ns` nanoseconds passed since this stamp, which was taken
    /// with `then_ns` (that clock reading): the counter's answer if it is
    /// calibrated, else the clock's. Returns the clock reading if one was
    /// made.
    pub(crate) fn elapsed(self, then_ns: u64, ns: u64) -> (bool, Option<u64>) {
        let rate = RATE.load(Relaxed);
        if self.0 != 0 && rate != 0 {
            let now = read_counter();
            let ticks = now.wrapping_sub(self.0);
            // A counter that went back (reads a huge difference) counts as
            // elapsed.
            let limit = ns.saturating_mul(rate) / 1024;
            return (ticks >= limit, None);
        }
        let now = now_ns();
        (now.saturating_sub(then_ns) >= ns, Some(now))
    }
}

/// Measures the rate once `CALIBRATION_NS` passed since the first pair;
/// a rate out of bounds (below 0.1 or above 100 ticks per ns) leaves the
/// counter unused.
fn calibrate(now_ns: u64, stamp: u64) {
    let mut anchor = ANCHOR.lock().unwrap_or_else(|e| e.into_inner());
    let Some((ns0, stamp0)) = *anchor else {
        *anchor = Some((now_ns, stamp));
        return;
    };
    let dt = now_ns.saturating_sub(ns0);
    if dt < CALIBRATION_NS || stamp <= stamp0 {
        if stamp < stamp0 {
            // The counter went back: start over.
            *anchor = Some((now_ns, stamp));
        }
        return;
    }
    let rate = u128::from(stamp - stamp0) * 1024 / u128::from(dt);
    if (102..=102_400).contains(&rate) {
        RATE.store(rate as u64, Relaxed);
    } else {
        *anchor = Some((now_ns, stamp));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_measures_elapsed_time() {
        // Stamps over more than the calibration time: the counter's rate
        // is then known where it is used.
        let start = now_ns();
        let first = Stamp::at(start);
        while now_ns() - start < CALIBRATION_NS + 2_000_000 {
            std::thread::sleep(std::time::Duration::from_millis(1));
            let _ = Stamp::at(now_ns());
        }
        if counter_usable() {
            assert_ne!(RATE.load(Relaxed), 0, "the rate was measured");
        }
        let t0 = now_ns();
        let s = Stamp::at(t0);
        assert!(!s.elapsed(t0, 1_000_000_000).0, "a second has not passed");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(s.elapsed(t0, 4_000_000).0, "4 ms have passed");
        assert!(first.elapsed(start, CALIBRATION_NS).0);
        // Without the counter, the clock answers (and says what it read).
        let (yes, read) = Stamp(0).elapsed(t0, 1_000);
        assert!(yes && read.is_some_and(|r| r >= t0));
    }
}
