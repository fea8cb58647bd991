//! The error of an I/O call refused because the runtime is shutting down.

use std::fmt;
use std::io;

/// Message of the shutdown error.
const MSG: &str = "the rt runtime's I/O driver has shut down";

/// Why an I/O call failed: the runtime's I/O driver has shut down (the
/// runtime is shutting down or gone). Registering a resource then fails,
/// and readiness waits resolve, with an [`io::Error`] of kind
/// [`io::ErrorKind::Other`] wrapping this value: recognise it with
/// [`RuntimeShutdown::is`] (it has no OS error code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeShutdown(());

impl RuntimeShutdown {
    /// True if `err` is the runtime's shutdown error.
    pub fn is(err: &io::Error) -> bool {
        err.get_ref()
            .is_some_and(|inner| inner.is::<RuntimeShutdown>())
    }
}

impl fmt::Display for RuntimeShutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MSG)
    }
}

impl std::error::Error for RuntimeShutdown {}

/// The shutdown error as an [`io::Error`].
pub(crate) fn error() -> io::Error {
    io::Error::other(RuntimeShutdown(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognised_and_described() {
        let e = error();
        assert!(RuntimeShutdown::is(&e));
        assert_eq!(e.kind(), io::ErrorKind::Other);
        assert!(e.raw_os_error().is_none());
        assert!(e.to_string().contains("shut down"));
        assert!(!RuntimeShutdown::is(&io::Error::other(MSG)));
        assert!(!RuntimeShutdown::is(&io::Error::from_raw_os_error(9)));
    }
}
