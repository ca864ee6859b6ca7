//! Bringing `lo` up: a new namespace starts with it down (binding 127.0.0.1 works, connecting
//! does not).

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::libc;

use crate::error::{Error, Result};
use crate::namespace::NetNs;
use crate::sys;

impl NetNs {
    /// Brings the loopback interface `lo` up inside this namespace, as
    /// `ip -n NAME link set lo up` does, so that connections to `127.0.0.1` and `::1` work.
    pub fn set_loopback_up(&self) -> Result<()> {
        self.run(loopback_up_here)?
    }
}

/// Sets `IFF_UP` on `lo` in the calling thread's namespace, with ioctls on a socket made here.
fn loopback_up_here() -> Result<()> {
    let os_error = |operation| {
        move |errno: Errno| Error::Os {
            operation,
            path: None,
            source: std::io::Error::from_raw_os_error(errno as i32),
        }
    };
    let socket = sys::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
        .map_err(os_error("socket(AF_INET) to configure lo"))?;
    let flags = sys::interface_flags(socket.as_fd(), c"lo")
        .map_err(os_error("ioctl(SIOCGIFFLAGS) on lo"))?;
    sys::set_interface_flags(socket.as_fd(), c"lo", flags | libc::IFF_UP as libc::c_short)
        .map_err(os_error("ioctl(SIOCSIFFLAGS) on lo"))
}
