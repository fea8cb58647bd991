//! `Mutex` and `Condvar` of the state machines modelled with loom (the
//! timer table): loom's under `--cfg loom`, std's otherwise.

#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
