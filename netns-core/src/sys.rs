//! Every raw system call of the crate that `nix` does not wrap as the crate needs it, each with
//! its `SAFETY` argument, in one style: a thin function that takes Rust types, makes the call,
//! and returns `Result<_, Errno>`. None allocates or locks, so each may run in a child between
//! `fork` and `exec` (async-signal-safe).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::null;

use nix::errno::Errno;
use nix::libc;

/// `-1` as the errno the call set; anything else as itself.
fn check(result: libc::c_int) -> Result<libc::c_int, Errno> {
    if result == -1 {
        Err(Errno::last())
    } else {
        Ok(result)
    }
}

/// `setns(fd, nstype)`: moves the calling thread into the namespace `fd` refers to.
pub(crate) fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> Result<(), Errno> {
    // SAFETY: setns takes no pointers; `BorrowedFd` keeps the descriptor open for the call.
    check(unsafe { libc::setns(fd.as_raw_fd(), nstype) }).map(drop)
}

/// `unshare(flags)`: gives the calling thread namespaces (or tables) of its own.
pub(crate) fn unshare(flags: libc::c_int) -> Result<(), Errno> {
    // SAFETY: unshare takes no pointers.
    check(unsafe { libc::unshare(flags) }).map(drop)
}

/// `mount(source, target, fstype, flags, NULL)`.
pub(crate) fn mount(
    source: &CStr,
    target: &CStr,
    fstype: &CStr,
    flags: libc::c_ulong,
) -> Result<(), Errno> {
    // SAFETY: the three pointers are NUL-terminated strings that outlive the call, and the data
    // argument is null, which every filesystem used here accepts.
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            null(),
        )
    })
    .map(drop)
}

/// `umount2(target, flags)`.
pub(crate) fn umount2(target: &CStr, flags: libc::c_int) -> Result<(), Errno> {
    // SAFETY: `target` is a NUL-terminated string that outlives the call.
    check(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

/// Writes `bytes` to standard error, once, ignoring the outcome: for a child between `fork`
/// and `exec`, which has no other way to say what failed.
pub(crate) fn write_stderr(bytes: &[u8]) {
    // SAFETY: write reads `bytes.len()` bytes of `bytes`, which outlives the call.
    unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
}

/// `pthread_atfork(NULL, NULL, child)`: `child` runs in every forked child, first thing.
pub(crate) fn atfork_child(child: extern "C" fn()) -> Result<(), Errno> {
    // SAFETY: registers a child handler and no prepare or parent handler; the handler is a
    // plain function, valid for the life of the process. (It must be async-signal-safe: the
    // caller's is one atomic add.)
    match unsafe { libc::pthread_atfork(None, None, Some(child)) } {
        0 => Ok(()),
        code => Err(Errno::from_raw(code)),
    }
}
