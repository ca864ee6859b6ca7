//! The views of `/sys` and `/etc` that `ip netns exec` gives its command, prepared beforehand
//! (every path a C string, every flag worked out) so that applying them makes system calls
//! only: the same plan serves a thread, and a child between `fork` and `exec`, where nothing
//! may allocate or lock.

use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::libc;

use super::options::Setup;
use crate::namespace::ETC_DIR;
use crate::report;
use crate::sys;

/// Who applies a plan: what differs is `/proc/net`, which follows the process's main thread.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum For {
    /// A thread of this process: `/proc/net` is bound to the thread's own.
    Thread,
    /// A child between `fork` and `exec`: a process of its own, whose `/proc/net` is its own.
    Child,
}

/// The views of a [`Setup`], ready to apply.
pub(crate) struct Views {
    /// `mount -t sysfs NAME /sys`, with the flags the host's `/sys` has (read-only or not).
    sysfs: Option<(CString, libc::c_ulong)>,
    /// `/proc/PID/net`, for a thread: where `/proc/thread-self/net` is bound.
    proc_net: Option<CString>,
    /// Bind mounts of `/etc/netns/NAME/*` over `/etc/*`: (source, target).
    etc_binds: Vec<(CString, CString)>,
}

/// A step of applying a plan that failed.
#[derive(Debug)]
pub(crate) struct Failed<'a> {
    /// What failed, for errors (`"mount sysfs"`).
    pub(crate) operation: &'static str,
    /// What failed, for a child's standard error, which it writes without formatting.
    pub(crate) message: &'static CStr,
    /// The path it was about.
    pub(crate) path: Option<&'a CStr>,
    pub(crate) errno: Errno,
}

impl Failed<'_> {
    /// As the crate's error, on a thread (which may allocate).
    pub(crate) fn into_error(self) -> crate::error::Error {
        let path = self
            .path
            .map(|path| Path::new(std::ffi::OsStr::from_bytes(path.to_bytes())));
        crate::error::Error::from_errno(self.operation, path, self.errno)
    }
}

impl Views {
    /// The views `setup` asks for in the namespace called `name` (`None`: it asks for none).
    /// Reads `/etc/netns/NAME` and whether `/sys` is read-only now: a plan is as fresh as its
    /// sources when it was made.
    pub(crate) fn prepare(setup: &Setup, name: Option<&str>, applier: For) -> Option<Views> {
        if !setup.needs_mounts() {
            return None;
        }
        let sysfs = setup.sysfs.then(|| {
            let flags = if sys_is_read_only() {
                libc::MS_RDONLY
            } else {
                0
            };
            (c_string(Path::new(name.unwrap_or("sysfs"))), flags)
        });
        let proc_net = (setup.sysfs && applier == For::Thread).then(process_net);
        // `Setup::check` refused `etc` without a name before anything started.
        let etc_binds = match (setup.etc, name) {
            (true, Some(name)) => etc_bind_pairs(name)
                .iter()
                .map(|(source, target)| (c_string(source), c_string(target)))
                .collect(),
            _ => Vec::new(),
        };
        Some(Views {
            sysfs,
            proc_net,
            etc_binds,
        })
    }

    /// Applies the views on the calling thread, which has entered the namespace: a private copy
    /// of its mount namespace (a recursive slave of the one it had, so nothing mounted here
    /// propagates back), with the views in it. System calls only. An `/etc` entry that cannot
    /// be bound is passed to `skipped` and the others are still bound, as `ip netns exec` does.
    pub(crate) fn apply(
        &self,
        skipped: &mut dyn FnMut(&CStr, &CStr, Errno),
    ) -> Result<(), Failed<'_>> {
        let failed = |operation, message, path, errno| Failed {
            operation,
            message,
            path,
            errno,
        };
        sys::unshare(libc::CLONE_NEWNS).map_err(|errno| {
            failed(
                "unshare(CLONE_NEWNS)",
                c"in-netns: unshare(CLONE_NEWNS) failed\n",
                None,
                errno,
            )
        })?;
        let slave = libc::MS_SLAVE | libc::MS_REC;
        sys::mount(c"", c"/", c"none", slave, None).map_err(|errno| {
            failed(
                "mount --make-rslave",
                c"in-netns: mount --make-rslave / failed\n",
                Some(c"/"),
                errno,
            )
        })?;
        if let Some((source, flags)) = &self.sysfs {
            // Fails when nothing is mounted there; the new sysfs then simply goes on top.
            let _ = sys::umount2(c"/sys", libc::MNT_DETACH);
            sys::mount(source, c"/sys", c"sysfs", *flags, None).map_err(|errno| {
                failed(
                    "mount sysfs",
                    c"in-netns: mount sysfs on /sys failed\n",
                    Some(c"/sys"),
                    errno,
                )
            })?;
        }
        if let Some(process_net) = &self.proc_net {
            bind_thread_net_over(process_net).map_err(|errno| {
                failed(
                    "bind /proc/thread-self/net over",
                    c"in-netns: bind /proc/thread-self/net failed\n",
                    Some(process_net),
                    errno,
                )
            })?;
        }
        for (source, target) in &self.etc_binds {
            if let Err(errno) = sys::mount(source, target, c"none", libc::MS_BIND, None) {
                skipped(source, target, errno);
            }
        }
        Ok(())
    }
}

/// Applies the views of `setup` for the namespace `name` on the calling thread (which has
/// entered it), logging each `/etc` entry that could not be bound.
pub(crate) fn apply_on_thread(setup: &Setup, name: Option<&str>) -> crate::error::Result<()> {
    let Some(views) = Views::prepare(setup, name, For::Thread) else {
        return Ok(());
    };
    views
        .apply(&mut |source, target, errno| {
            report::warning!("{} was not bound over {}: {} (the other entries are bound, as `ip netns exec` does)",
                source.to_string_lossy(),
                target.to_string_lossy(),
                io::Error::from(errno),
            );
        })
        .map_err(Failed::into_error)
}

/// On a thread started by the one that set up the view (and that may end first), points the
/// parts of the view that follow a thread at this one: `/proc/net` must not describe a thread
/// that is gone. The view works without it but for `/proc/net`, so a failure is a `log`
/// warning.
pub(crate) fn follow_current_thread(setup: &Setup) {
    if !setup.sysfs {
        return;
    }
    if let Err(errno) = bind_thread_net_over(&process_net()) {
        report::warning!(
            "/proc/net still describes the thread that set up the view: {}",
            io::Error::from(errno)
        );
    }
}

/// `/proc/PID/net` of this process.
fn process_net() -> CString {
    c_string(&PathBuf::from(format!("/proc/{}/net", std::process::id())))
}

/// Makes `/proc/net` and `/proc/self/net` (in the thread's private mount namespace) list the
/// calling thread's network namespace. Both lead to `/proc/PID/net` (`process_net`), which
/// describes the process's main thread, elsewhere; `/proc/thread-self/net` describes this
/// thread, so it is bound over it. (`/proc/self` itself stays the process.)
///
/// A bind already there (of the thread that set up the view, or of an enclosing view) is
/// detached first rather than covered: procfs detaches every mount on a thread's directory when
/// that thread ends, so a bind stacked on another thread's would vanish with it.
fn bind_thread_net_over(process_net: &CStr) -> Result<(), Errno> {
    // EINVAL: nothing is bound there yet.
    let _ = sys::umount2(process_net, libc::MNT_DETACH);
    sys::mount(
        c"/proc/thread-self/net",
        process_net,
        c"none",
        libc::MS_BIND,
        None,
    )
}

/// Whether the host's `/sys` is read-only, so the namespace's sysfs should be too.
fn sys_is_read_only() -> bool {
    nix::sys::statvfs::statvfs("/sys")
        .is_ok_and(|fs| fs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// The (source, target) bind mounts that give `/etc` the view of `/etc/netns/NAME/`. A missing
/// `/etc/netns/NAME/` means there is nothing to bind; a directory or an entry that cannot be
/// read is a `log` warning, and what can be read is still bound.
fn etc_bind_pairs(name: &str) -> Vec<(PathBuf, PathBuf)> {
    let dir = Path::new(ETC_DIR).join(name);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(err) => {
            report::warning!(
                "nothing bound over /etc: cannot list {}: {err}",
                dir.display()
            );
            return Vec::new();
        }
    };
    let mut pairs = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => pairs.push((entry.path(), Path::new("/etc").join(entry.file_name()))),
            Err(err) => report::warning!("an entry of {} was skipped: {err}", dir.display()),
        }
    }
    pairs
}

/// A path as a C string; paths from the filesystem and `/etc/netns` hold no NUL.
fn c_string(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}
