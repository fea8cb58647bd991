//! `Interest`: which readiness a registration waits for.

use std::fmt;
use std::ops;

/// The readiness events a resource is registered for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Interest(u8);

const READABLE: u8 = 0b01;
const WRITABLE: u8 = 0b10;

impl Interest {
    /// Interest in readable events.
    pub const READABLE: Interest = Interest(READABLE);
    /// Interest in writable events.
    pub const WRITABLE: Interest = Interest(WRITABLE);

    /// True if readable events are included.
    pub const fn is_readable(self) -> bool {
        self.0 & READABLE != 0
    }

    /// True if writable events are included.
    pub const fn is_writable(self) -> bool {
        self.0 & WRITABLE != 0
    }

    /// Both interests together.
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    pub(crate) fn to_mio(self) -> mio::Interest {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => mio::Interest::READABLE | mio::Interest::WRITABLE,
            (false, true) => mio::Interest::WRITABLE,
            _ => mio::Interest::READABLE,
        }
    }
}

impl ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            (false, true) => f.write_str("WRITABLE"),
            (false, false) => f.write_str("(empty)"),
        }
    }
}
