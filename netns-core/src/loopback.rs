//! Bringing `lo` up: a new namespace starts with it down (binding 127.0.0.1 works, connecting
//! does not).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::libc;

use crate::error::{Error, Result};
use crate::namespace::NetNs;

impl NetNs {
    /// Brings the loopback interface `lo` up inside this namespace, as
    /// `ip -n NAME link set lo up` does, so that connections to `127.0.0.1` and `::1` work.
    pub fn set_loopback_up(&self) -> Result<()> {
        self.run(loopback_up_here)?
    }
}

/// Sets `IFF_UP` on `lo` in the calling thread's namespace, with ioctls on a socket made here.
fn loopback_up_here() -> Result<()> {
    let os_error = |operation| Error::Os {
        operation,
        path: None,
        source: std::io::Error::last_os_error(),
    };
    // SAFETY: socket takes no pointers; a non-negative result is a new descriptor we own.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(os_error("socket(AF_INET) to configure lo"));
    }
    // SAFETY: `raw` is a new descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `ifreq` is plain old data; all zeroes is a valid (empty) request.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills the flags of the `ifreq` we own, named "lo".
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) } < 0 {
        return Err(os_error("ioctl(SIOCGIFFLAGS) on lo"));
    }
    // SAFETY: SIOCGIFFLAGS set the `ifru_flags` member of the union.
    unsafe { request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the `ifreq` we own.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) } < 0 {
        return Err(os_error("ioctl(SIOCSIFFLAGS) on lo"));
    }
    Ok(())
}
