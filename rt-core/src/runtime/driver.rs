//! The driver stack an idle runtime thread parks in.
//!
//! ```text
//! time::Driver  (if enable_time)   wheel; park until the next deadline
//!   └─ io::Driver (if enable_io)   mio Poll: epoll_wait, readiness, mio Waker
//!      or ParkThread               mutex + condvar when I/O is off
//! ```
//!
//! Each layer implements [`Park`]; the schedulers only see the top one.
//! [`Handle`] gives tasks the I/O and time handles of their runtime.

use super::park::{Park, ParkThread};
use crate::{io, time};
use std::fmt;

/// Which drivers to build (`Builder::enable_io`, `enable_time`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DriverConfig {
    pub(crate) enable_io: bool,
    pub(crate) enable_time: bool,
}

/// The handles of the enabled drivers.
#[derive(Clone, Default)]
pub(crate) struct Handle {
    pub(crate) io: Option<io::driver::Handle>,
    pub(crate) time: Option<time::driver::Handle>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("driver::Handle")
            .field("io", &self.io.is_some())
            .field("time", &self.time.is_some())
            .finish()
    }
}

/// Builds the driver stack for one runtime.
pub(crate) fn create(cfg: DriverConfig) -> std::io::Result<(Box<dyn Park>, Handle)> {
    let mut handle = Handle::default();
    let io_stack: Box<dyn Park> = if cfg.enable_io {
        let driver = io::driver::Driver::new()?;
        handle.io = Some(driver.handle());
        Box::new(driver)
    } else {
        Box::new(ParkThread::new())
    };
    let stack: Box<dyn Park> = if cfg.enable_time {
        let driver = time::driver::Driver::new(io_stack);
        handle.time = Some(driver.handle());
        Box::new(driver)
    } else {
        io_stack
    };
    Ok((stack, handle))
}

fn current_driver() -> Handle {
    match crate::runtime::context::current() {
        Some(h) => h.driver().clone(),
        None => {
            panic!("there is no reactor running, must be called from the context of an rt runtime")
        }
    }
}

/// The I/O driver of the current runtime.
///
/// # Panics
/// Outside a runtime, or if it was built without `enable_io`.
#[track_caller]
pub(crate) fn current_io_handle() -> io::driver::Handle {
    current_driver().io.unwrap_or_else(|| {
        panic!("the rt runtime was built without its I/O driver: call `enable_io()` (or `enable_all()`) on the runtime Builder")
    })
}

/// The time driver of the current runtime.
///
/// # Panics
/// Outside a runtime, or if it was built without `enable_time`.
#[track_caller]
pub(crate) fn current_time_handle() -> time::driver::Handle {
    current_driver().time.unwrap_or_else(|| {
        panic!("the rt runtime was built without its timer: call `enable_time()` (or `enable_all()`) on the runtime Builder")
    })
}
