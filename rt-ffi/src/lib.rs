//! `librt`: the C ABI of the rt async runtime.
//!
//! The header `include/rt.h` is generated from these files by cbindgen
//! (`make header`); the doc comments here are the header's documentation.
//!
//! Every `extern "C"` entry catches panics (`guard.rs`), checks its pointers
//! for NULL, and returns a negative error code rather than aborting. A call
//! that takes a callback and fails never calls it; one that succeeds calls
//! it exactly once with its final status.

#![allow(non_camel_case_types)]

pub mod blocking;
mod callback;
pub mod error;
mod guard;
pub mod host;
pub mod io;
pub mod poll;
pub mod queue;
pub mod runtime;
pub mod task;
pub mod timer;
pub mod version;
