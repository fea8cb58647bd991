//! The panic boundary: every `extern "C"` entry runs its body through
//! [`ffi_guard`], so no Rust panic unwinds into C.

use crate::error::RT_EPANIC;
use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; a panic becomes `RT_EPANIC`.
pub(crate) fn ffi_guard(f: impl FnOnce() -> c_int) -> c_int {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(RT_EPANIC)
}

/// Runs `f` for an entry without a status to return (a panic is swallowed:
/// nothing may unwind into C).
pub(crate) fn ffi_guard_void(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}
