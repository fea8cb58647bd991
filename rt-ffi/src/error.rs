//! Error codes, `rt_strerror`, `rt_err_name`.
//!
//! Every function returns 0 (or a count) on success and a negative code on
//! failure. The codes have fixed values on every platform (the Linux errno
//! numbers, negated); OS errors from the kernel come through as `-errno`.

use std::ffi::{c_char, c_int};

/// Invalid argument (NULL pointer, bad value, stale handle of the wrong kind).
pub const RT_EINVAL: c_int = -22;
/// Out of memory (or out of threads).
pub const RT_ENOMEM: c_int = -12;
/// No such entry: a timer or I/O id that already fired, was stopped, or never existed.
pub const RT_ENOENT: c_int = -2;
/// The runtime has been shut down.
pub const RT_ESHUTDOWN: c_int = -108;
/// The operation was cancelled (passed to callbacks as their status).
pub const RT_ECANCELED: c_int = -125;
/// A wait timed out.
pub const RT_ETIMEDOUT: c_int = -110;
/// The call would deadlock (a blocking wait on a runtime thread).
pub const RT_EDEADLK: c_int = -35;
/// The task already started or finished: the abort changed nothing.
pub const RT_EALREADY: c_int = -114;
/// A Rust panic was caught at the boundary (a bug in rt: please report it).
pub const RT_EPANIC: c_int = -10_000;

const TABLE: &[(c_int, &str, &str)] = &[
    (0, "RT_OK\0", "success\0"),
    (RT_EINVAL, "RT_EINVAL\0", "invalid argument\0"),
    (RT_ENOMEM, "RT_ENOMEM\0", "out of memory\0"),
    (
        RT_ENOENT,
        "RT_ENOENT\0",
        "no such entry (already fired, stopped or unknown)\0",
    ),
    (
        RT_ESHUTDOWN,
        "RT_ESHUTDOWN\0",
        "runtime has been shut down\0",
    ),
    (RT_ECANCELED, "RT_ECANCELED\0", "operation cancelled\0"),
    (RT_ETIMEDOUT, "RT_ETIMEDOUT\0", "timed out\0"),
    (
        RT_EDEADLK,
        "RT_EDEADLK\0",
        "would deadlock: blocking wait on a runtime thread\0",
    ),
    (
        RT_EALREADY,
        "RT_EALREADY\0",
        "task already started or finished\0",
    ),
    (
        RT_EPANIC,
        "RT_EPANIC\0",
        "internal panic caught at the API boundary\0",
    ),
];

fn lookup(err: c_int) -> Option<&'static (c_int, &'static str, &'static str)> {
    TABLE.iter().find(|(code, _, _)| *code == err)
}

/// A static, NUL-terminated description of an error code. Never NULL;
/// unknown negative codes are described as OS errors (`-errno`), other
/// unknown values as "unknown error". Thread-safe; the string must not be
/// freed.
#[no_mangle]
pub extern "C" fn rt_strerror(err: c_int) -> *const c_char {
    match lookup(err) {
        Some((_, _, msg)) => msg.as_ptr().cast(),
        None if err < 0 => c"operating system error (-errno)".as_ptr(),
        None => c"unknown error".as_ptr(),
    }
}

/// The static, NUL-terminated name of an error code ("RT_EINVAL"...;
/// "RT_EOS" for other `-errno` values, "RT_EUNKNOWN" otherwise). Never
/// NULL. Thread-safe; the string must not be freed.
#[no_mangle]
pub extern "C" fn rt_err_name(err: c_int) -> *const c_char {
    match lookup(err) {
        Some((_, name, _)) => name.as_ptr().cast(),
        None if err < 0 => c"RT_EOS".as_ptr(),
        None => c"RT_EUNKNOWN".as_ptr(),
    }
}

/// The code of an I/O error: `-errno` for an OS error, `RT_ESHUTDOWN` for
/// rt-core's "the runtime is shutting down" (it has no errno), `RT_ENOMEM`
/// for out of memory, `RT_EINVAL` for anything else.
pub(crate) fn from_io(e: &std::io::Error) -> c_int {
    match e.raw_os_error() {
        Some(errno) if errno > 0 => -errno,
        _ if rt_core::io::RuntimeShutdown::is(e) => RT_ESHUTDOWN,
        _ if e.kind() == std::io::ErrorKind::OutOfMemory => RT_ENOMEM,
        _ => RT_EINVAL,
    }
}

/// The C code of an error of the callback layer (one code per variant).
pub(crate) fn code(e: &rt_core::callback::Error) -> c_int {
    use rt_core::callback::Error;
    match e {
        Error::InvalidInput => RT_EINVAL,
        Error::Shutdown => RT_ESHUTDOWN,
        Error::NotFound => RT_ENOENT,
        Error::WouldDeadlock => RT_EDEADLK,
        Error::TimedOut => RT_ETIMEDOUT,
        Error::Already => RT_EALREADY,
        Error::Os(e) => from_io(e),
        // A variant added later: a bug here, but never a crash.
        _ => RT_EINVAL,
    }
}

/// 0 for `Ok`, else the error's code.
pub(crate) fn status<T>(r: Result<T, rt_core::callback::Error>) -> c_int {
    match r {
        Ok(_) => 0,
        Err(e) => code(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn every_code_has_a_name_and_message() {
        for (code, name, _) in TABLE {
            // SAFETY: the functions return static NUL-terminated strings.
            let n = unsafe { CStr::from_ptr(rt_err_name(*code)) };
            assert_eq!(n.to_str().unwrap(), name.trim_end_matches('\0'));
            // SAFETY: as above.
            let m = unsafe { CStr::from_ptr(rt_strerror(*code)) };
            assert!(!m.to_bytes().is_empty());
        }
        // SAFETY: as above.
        let os = unsafe { CStr::from_ptr(rt_err_name(-9)) };
        assert_eq!(os.to_str().unwrap(), "RT_EOS");
    }

    #[test]
    fn io_errors_map_to_codes() {
        assert_eq!(from_io(&std::io::Error::from_raw_os_error(9)), -9);
        assert_eq!(from_io(&std::io::ErrorKind::OutOfMemory.into()), RT_ENOMEM);
        assert_eq!(from_io(&std::io::Error::other("x")), RT_EINVAL);
        // rt-core's shutdown error has no errno: it must not read as EINVAL.
        let rt = rt_core::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        rt.shutdown_timeout(std::time::Duration::from_secs(5));
        let _enter = handle.enter();
        let e = rt_core::io::AsyncFd::new(std::io::stdin()).unwrap_err();
        assert_eq!(from_io(&e), RT_ESHUTDOWN);
    }
}
