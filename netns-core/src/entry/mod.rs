//! One way in: what a thread, or a child between `fork` and `exec`, does to be inside a
//! namespace. The [`Options`] say how (the [`Setup`] part); [`views`] prepares the mounts
//! beforehand so that applying them is system calls only; [`enter_net`] is the `setns`.
//!
//! Imports the namespace layer and the base; nothing here starts a thread.

mod options;
pub(crate) mod views;

use std::os::fd::BorrowedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::libc;

pub(crate) use options::CallerDir;
pub use options::{Options, Setup};

use crate::error::{Error, Result};
use crate::sys;

/// Moves the calling thread into the network namespace `fd` refers to (`path`, when known, is
/// what errors name).
pub(crate) fn enter_net(fd: BorrowedFd<'_>, path: Option<&Path>) -> Result<()> {
    sys::setns(fd, libc::CLONE_NEWNET).map_err(|errno| match (errno, path) {
        (Errno::EINVAL, Some(path)) => Error::NotNetns {
            path: path.to_path_buf(),
            found: "a namespace that setns(CLONE_NEWNET) refuses".to_owned(),
        },
        (errno, path) => Error::from_errno("setns", path, errno),
    })
}

/// Moves the calling thread into the namespace `fd` (called `name`, opened from `path`) as
/// `setup` says: the network namespace, then the views. For a thread of this process.
pub(crate) fn enter_thread(
    fd: BorrowedFd<'_>,
    path: Option<&Path>,
    name: Option<&str>,
    setup: &Setup,
) -> Result<()> {
    enter_net(fd, path)?;
    views::apply_on_thread(setup, name)
}
