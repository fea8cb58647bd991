//! The loop's clock: `CLOCK_MONOTONIC` in nanoseconds, the clock Python's
//! `time.monotonic()` reads on Linux, so deadlines computed on either side
//! agree, shifted by [`MONOTONIC_ZERO_NS`].

/// The loop clock's reading when `CLOCK_MONOTONIC` reads zero (at boot):
/// 2^62 ns, about 146 years. Deadlines are unsigned; with the shift, one
/// before the clock's zero (asyncio's `call_at(loop.time() - 3600)` less
/// than an hour after boot) stays distinct from an earlier one, and due
/// timers keep their deadline order, down to 146 years before boot.
pub const MONOTONIC_ZERO_NS: u64 = 1 << 62;

/// Nanoseconds of `CLOCK_MONOTONIC`, plus [`MONOTONIC_ZERO_NS`].
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the
    // call; CLOCK_MONOTONIC always exists on Linux, so the call cannot fail
    // (the result is checked anyway in debug builds).
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    MONOTONIC_ZERO_NS + (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// The wheel tick (1 µs) at or after `when_ns`: a timer stored at this tick
/// is never handed out before `when_ns`.
pub(crate) fn tick_ceil(when_ns: u64) -> u64 {
    when_ns.div_ceil(1_000)
}

/// The wheel tick (1 µs) containing `now_ns`: every tick up to it has begun.
pub(crate) fn tick_floor(now_ns: u64) -> u64 {
    now_ns / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_the_safe_way() {
        assert_eq!(tick_ceil(0), 0);
        assert_eq!(tick_ceil(1), 1);
        assert_eq!(tick_ceil(1_000), 1);
        assert_eq!(tick_ceil(1_001), 2);
        assert_eq!(tick_floor(1_999), 1);
        assert_eq!(tick_ceil(u64::MAX), u64::MAX / 1_000 + 1);
    }

    #[test]
    fn clock_is_monotonic() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a && a > MONOTONIC_ZERO_NS);
    }
}
