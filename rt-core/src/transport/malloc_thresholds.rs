//! glibc's malloc thresholds, raised once per process before the first
//! large read, so that buffers of up to [`MAX_READ`](super::MAX_READ)
//! bytes come from the heap and their release does not shrink it.
//!
//! glibc maps a block above its mmap threshold (128 KiB at first) with
//! `mmap` and unmaps it on free; freeing such a mapped block raises the
//! threshold to the block's size and the heap's trim threshold to twice
//! that (mallopt(3): the dynamic mmap threshold). Without a raise, large
//! reads pay for the allocator's moves on every message (measured on a
//! 100 KiB `streams` echo, per request): a protocol's buffer of its own was
//! mapped, shrunk and unmapped (3 system calls and 13 to 25 page faults);
//! copies of 100 KiB freed just below the trim threshold made the heap's
//! top shrink and grow again (a `brk` and 21 page faults).
//!
//! The raise frees a mapped block of the wanted size. A block comes from
//! the heap instead when a free chunk there is large enough (a process's
//! history decides that), and freeing it then raises nothing: so the
//! blocks are allocated and held until one is mapped (at most
//! [`TRIES`]; `mallinfo2`'s mapped byte count tells), which is freed
//! first, then the held ones. With no `mallinfo2` (glibc before 2.33), one
//! block is freed, mapped or not. Other allocators than glibc's are left
//! alone (musl's has no such thresholds).

/// Blocks held at most while looking for a mapped one (each of the wanted
/// size, held only during the call).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIES: usize = 8;

/// Raises glibc's thresholds above [`MAX_READ`](super::MAX_READ) bytes,
/// once per process (the thresholds are the process's: every thread's reads
/// share them).
pub(crate) fn raise_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        raise(super::MAX_READ);
    });
}

/// Frees a mapped block of `size` bytes (see the module); returns whether
/// one was found mapped (false also when that cannot be told).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn raise(size: usize) -> bool {
    let Some(mapped_bytes) = mapped_bytes_fn() else {
        // SAFETY: a block only this function sees (see `touched_malloc`),
        // freed once (free takes NULL too).
        unsafe { libc::free(touched_malloc(size)) };
        return false;
    };
    let mut held = Vec::with_capacity(TRIES);
    let mut found = false;
    for _ in 0..TRIES {
        let before = mapped_bytes();
        // SAFETY: a block only this function sees, freed below.
        let p = unsafe { touched_malloc(size) };
        if p.is_null() {
            break;
        }
        if mapped_bytes() > before {
            // SAFETY: `p` came from malloc just above and is freed once.
            unsafe { libc::free(p) };
            found = true;
            break;
        }
        held.push(p);
    }
    for p in held {
        // SAFETY: each came from malloc above, is freed once, and was
        // never handed out.
        unsafe { libc::free(p) };
    }
    found
}

/// `malloc(size)` with its first byte written through a volatile store:
/// the compiler may remove an allocation and its free when nothing reads
/// or writes the block (`black_box` is only a best effort against that).
///
/// # Safety
/// The block must be freed with `libc::free`, once.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe fn touched_malloc(size: usize) -> *mut libc::c_void {
    // SAFETY: malloc has no precondition; a non-NULL block of `size` bytes
    // (at least one: callers ask for `MAX_READ` or more) is writable.
    unsafe {
        let p = libc::malloc(size);
        if !p.is_null() && size > 0 {
            p.cast::<u8>().write_volatile(0);
        }
        p
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn raise(_size: usize) -> bool {
    false
}

/// glibc's count of bytes in mapped blocks (`mallinfo2().hblkhd`), looked
/// up at run time (`mallinfo2` is glibc 2.33's: a link-time reference would
/// stop the library loading on an older glibc).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn mapped_bytes_fn() -> Option<impl Fn() -> usize> {
    type MallInfo2 = unsafe extern "C" fn() -> libc::mallinfo2;
    // SAFETY: a lookup of a NUL-terminated name in the global scope; it
    // returns NULL or the address of the function of that name.
    let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"mallinfo2".as_ptr()) };
    if sym.is_null() {
        return None;
    }
    // SAFETY: glibc's `mallinfo2` has this signature (no argument, the
    // struct returned by value), as the libc crate declares it.
    let f = unsafe { std::mem::transmute::<*mut libc::c_void, MallInfo2>(sym) };
    // SAFETY: `mallinfo2` only reads the allocator's statistics (under
    // its locks): callable from any thread at any time.
    Some(move || unsafe { f() }.hblkhd)
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Whether a block of `size` bytes is mapped when allocated now.
    fn mapped_now(size: usize) -> bool {
        let mapped_bytes = mapped_bytes_fn().expect("glibc 2.33 or later");
        let before = mapped_bytes();
        // SAFETY: a block only this test sees, freed at once.
        let p = unsafe { libc::malloc(size) };
        assert!(!p.is_null());
        let mapped = mapped_bytes() > before;
        // SAFETY: `p` came from malloc just above.
        unsafe { libc::free(p) };
        mapped
    }

    #[test]
    fn after_the_raise_a_block_of_that_size_comes_from_the_heap() {
        // 24 MiB: more than any other test of this process allocates (the
        // free of a mapped one would raise the thresholds without us),
        // less than glibc's ceiling for the dynamic threshold (32 MiB).
        // Before the raise such a block is mapped: `raise` finds one.
        const SIZE: usize = 24 << 20;
        assert!(raise(SIZE), "a mapped block was found and freed");
        // Checked once: the check's own free of a mapped block would raise
        // the thresholds too.
        assert!(!mapped_now(SIZE), "still mapped after the raise");
    }
}
