//! Creates the driver an idle runtime thread parks in.
//!
//! Today that is a plain thread parker ([`ParkThread`]). The I/O + timer
//! driver (mio reactor and timer wheel) replaces it behind the same
//! [`Park`] / [`Unpark`](super::park::Unpark) abstraction, so the schedulers
//! do not change.

use super::park::{Park, ParkThread};
use std::io;

/// What the driver should provide (grows with `enable_io` / `enable_time`).
#[derive(Debug, Clone, Default)]
pub(crate) struct DriverConfig {}

/// Builds the driver for one runtime.
pub(crate) fn create(_cfg: &DriverConfig) -> io::Result<Box<dyn Park>> {
    Ok(Box::new(ParkThread::new()))
}
