//! Processes started inside a namespace: the child enters between `fork` and `exec`, as
//! `ip netns exec` does, and no thread of the parent moves.

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::ptr::null;

use nix::libc;

use crate::error::Result;
use crate::handle::NetNs;
use crate::options::Options;

/// Starts processes inside a network namespace: `std::process::Command` and, with the `tokio`
/// feature, `tokio::process::Command`.
///
/// The child enters the namespace between `fork` and `exec` (and, with [`Options`], gets the
/// `/sys` and `/etc` views `ip netns exec` gives its command, in a mount namespace of its own),
/// so no thread of the parent ever moves: it works from any thread, and from an async task
/// without blocking the runtime. Everything the child needs is prepared before the fork; the
/// child only makes system calls.
///
/// ```no_run
/// # use netns_core as in_netns;
/// use in_netns::CommandExt;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let ns = in_netns::NetNs::named("blue")?;
/// let links = std::process::Command::new("ip").arg("link").netns(&ns).output()?;
/// # Ok(()) }
/// ```
///
/// A failure in the child (say `setns` refused) makes the spawn fail with that errno; since
/// the standard library carries only the errno back, the child also writes the failed
/// operation to its standard error first (`in-netns: setns failed`).
pub trait CommandExt: sealed::Sealed {
    /// Runs the child inside `ns`.
    fn netns(&mut self, ns: &NetNs) -> &mut Self;

    /// Runs the child inside `ns`, with the `/sys` and `/etc` view of `options`. Fails, before
    /// anything is spawned, when the options cannot apply to `ns` ([`Error::Unnamed`](crate::Error::Unnamed) for
    /// `etc` on a namespace without a name) or `/etc/netns/NAME` cannot be read.
    fn netns_with(&mut self, ns: &NetNs, options: &Options) -> Result<&mut Self>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::process::Command {}
    #[cfg(feature = "tokio")]
    impl Sealed for tokio::process::Command {}
}

impl CommandExt for std::process::Command {
    fn netns(&mut self, ns: &NetNs) -> &mut Self {
        let entry = ChildEntry::plain(ns);
        // SAFETY: the closure only makes async-signal-safe system calls on data prepared
        // before the fork (see `ChildEntry::enter`); it neither allocates nor takes locks.
        unsafe { self.pre_exec(move || entry.enter()) }
    }

    fn netns_with(&mut self, ns: &NetNs, options: &Options) -> Result<&mut Self> {
        let entry = ChildEntry::with_options(ns, options)?;
        // SAFETY: as in `netns`.
        Ok(unsafe { self.pre_exec(move || entry.enter()) })
    }
}

#[cfg(feature = "tokio")]
impl CommandExt for tokio::process::Command {
    fn netns(&mut self, ns: &NetNs) -> &mut Self {
        self.as_std_mut().netns(ns);
        self
    }

    fn netns_with(&mut self, ns: &NetNs, options: &Options) -> Result<&mut Self> {
        self.as_std_mut().netns_with(ns, options)?;
        Ok(self)
    }
}

/// What the child does after `fork`, prepared by the parent: C strings and a descriptor, so
/// that the child makes system calls only.
struct ChildEntry {
    /// Keeps the descriptor open until the command is dropped.
    ns: NetNs,
    /// Set up a private mount namespace (a recursive slave of the parent's).
    private_mounts: bool,
    /// Mount a sysfs of the namespace on `/sys`: its source name and flags.
    sysfs: Option<(CString, libc::c_ulong)>,
    /// Bind mounts over `/etc`: (source, target).
    etc_binds: Vec<(CString, CString)>,
}

impl ChildEntry {
    fn plain(ns: &NetNs) -> ChildEntry {
        ChildEntry {
            ns: ns.clone(),
            private_mounts: false,
            sysfs: None,
            etc_binds: Vec::new(),
        }
    }

    fn with_options(ns: &NetNs, options: &Options) -> Result<ChildEntry> {
        options.check(ns)?;
        let mut entry = ChildEntry::plain(ns);
        entry.private_mounts = options.has_sysfs() || options.has_etc();
        if options.has_sysfs() {
            let source = c_string(Path::new(ns.name().unwrap_or("sysfs")));
            let flags = if crate::options::sys_is_read_only() {
                libc::MS_RDONLY
            } else {
                0
            };
            entry.sysfs = Some((source, flags));
        }
        if let (true, Some(name)) = (options.has_etc(), ns.name()) {
            entry.etc_binds = crate::options::etc_bind_pairs(name)
                .iter()
                .map(|(source, target)| (c_string(source), c_string(target)))
                .collect();
        }
        Ok(entry)
    }

    /// Runs in the child, between `fork` and `exec`: async-signal-safe system calls only.
    fn enter(&self) -> io::Result<()> {
        // SAFETY (every block below): async-signal-safe system calls whose pointers are
        // NUL-terminated strings that outlive the call, or null, and whose descriptor `self.ns`
        // keeps open.
        // SAFETY: see above.
        let entered = unsafe { libc::setns(self.ns.as_raw_fd(), libc::CLONE_NEWNET) };
        check(entered, c"in-netns: setns failed\n")?;
        if !self.private_mounts {
            return Ok(());
        }
        // SAFETY: see above.
        let unshared = unsafe { libc::unshare(libc::CLONE_NEWNS) };
        check(unshared, c"in-netns: unshare(CLONE_NEWNS) failed\n")?;
        let flags = libc::MS_SLAVE | libc::MS_REC;
        // SAFETY: see above.
        let slave =
            unsafe { libc::mount(c"".as_ptr(), c"/".as_ptr(), c"none".as_ptr(), flags, null()) };
        check(slave, c"in-netns: mount --make-rslave / failed\n")?;
        if let Some((source, flags)) = &self.sysfs {
            // SAFETY: see above. Failing means nothing was mounted there; sysfs goes on top.
            unsafe { libc::umount2(c"/sys".as_ptr(), libc::MNT_DETACH) };
            let sys = c"/sys".as_ptr();
            // SAFETY: see above.
            let mounted =
                unsafe { libc::mount(source.as_ptr(), sys, c"sysfs".as_ptr(), *flags, null()) };
            check(mounted, c"in-netns: mount sysfs on /sys failed\n")?;
        }
        for (source, target) in &self.etc_binds {
            let (source, target) = (source.as_ptr(), target.as_ptr());
            // SAFETY: see above. An entry that cannot be bound is skipped, as `ip netns exec`
            // does (the child cannot log: it only makes system calls).
            unsafe { libc::mount(source, target, c"none".as_ptr(), libc::MS_BIND, null()) };
        }
        Ok(())
    }
}

/// In the child: a failed call (`-1`) becomes its errno, after `message` goes to stderr.
fn check(result: libc::c_int, message: &std::ffi::CStr) -> io::Result<()> {
    if result != -1 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    let bytes = message.to_bytes();
    // SAFETY: write is async-signal-safe and reads `bytes`, which outlives the call. What it
    // returns does not matter: the errno below is the error.
    unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
    Err(error)
}

/// A path as a C string; paths from the filesystem and `/etc/netns` hold no NUL.
fn c_string(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}
