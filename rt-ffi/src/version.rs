//! Version macros and functions.

use std::ffi::c_char;

/// Major version: incompatible ABI changes bump it (and the soname).
pub const RT_VERSION_MAJOR: u32 = 0;
/// Minor version: compatible additions.
pub const RT_VERSION_MINOR: u32 = 1;
/// Patch version: fixes.
pub const RT_VERSION_PATCH: u32 = 0;
/// `(MAJOR << 16) | (MINOR << 8) | PATCH`, for compile-time comparisons.
pub const RT_VERSION_HEX: u32 =
    (RT_VERSION_MAJOR << 16) | (RT_VERSION_MINOR << 8) | RT_VERSION_PATCH;

/// The library's version as `RT_VERSION_HEX` (of the library actually
/// loaded, which may differ from the header compiled against). Thread-safe.
#[no_mangle]
pub extern "C" fn rt_version() -> u32 {
    RT_VERSION_HEX
}

/// The library's version as a static "MAJOR.MINOR.PATCH" string. Never
/// NULL; must not be freed. Thread-safe.
#[no_mangle]
pub extern "C" fn rt_version_string() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
