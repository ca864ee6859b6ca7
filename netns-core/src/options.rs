//! Per-call options: a view of `/sys` and `/etc` that describes the namespace, as
//! `ip netns exec` gives its command.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::statvfs::{FsFlags, statvfs};

use crate::error::{Error, Result};
use crate::handle::NetNs;
use crate::name::ETC_DIR;

/// The `log` target of the warnings about views that could only partly be set up.
pub(crate) const LOG_TARGET: &str = "in_netns";

/// How a dedicated thread is made: its stack, and what it sets up after entering the namespace
/// besides the namespace itself.
///
/// `sysfs` and `etc` give the thread a private mount namespace (made a recursive slave of the
/// host's, so nothing it mounts propagates back); the host's mounts are never touched, and the
/// private view ends with the thread. The thread then also has a working directory and umask
/// of its own, starting as the caller's. A reused thread's view is as its sources (the host's
/// mounts, `/etc`, `/etc/netns/NAME`) are when each call starts: it is built again when they
/// changed.
///
/// ```no_run
/// # use netns_core as in_netns;
/// # fn main() -> in_netns::Result<()> {
/// let ns = in_netns::NetNs::named("blue")?;
/// let options = in_netns::Options::default().sysfs(true).etc(true);
/// let links = ns.run_with(&options, || std::fs::read_dir("/sys/class/net").map(|d| d.count()))?;
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Options {
    sysfs: bool,
    etc: bool,
    stack_size: usize,
    fresh_thread: bool,
    idle_timeout: std::time::Duration,
}

impl Options {
    /// The stack of a dedicated thread unless [`Options::stack_size`] says otherwise: 8 MiB, the
    /// usual limit of a Linux main thread, so that code that recurses there also works in a
    /// body (std's threads get 2 MiB). It is address space: only the pages a body touches take
    /// memory.
    pub const DEFAULT_STACK_SIZE: usize = 8 << 20;

    /// No options: the thread only enters the network namespace, with the default stack.
    /// How long a warm thread waits for its next call before it ends, unless
    /// [`Options::idle_timeout`] says otherwise: 10 s (as tokio's blocking pool keeps its
    /// threads). An idle warm thread uses no CPU, only its memory.
    pub const DEFAULT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

    /// No options: the thread only enters the network namespace, with the default stack.
    pub const DEFAULT: Options = Options {
        sysfs: false,
        etc: false,
        stack_size: Options::DEFAULT_STACK_SIZE,
        fresh_thread: false,
        idle_timeout: Options::DEFAULT_IDLE_TIMEOUT,
    };

    /// Mount a fresh sysfs on `/sys` for the call (read-only when the host's is), so that
    /// `/sys/class/net` lists the namespace's links, and make `/proc/net` and `/proc/self/net`
    /// the namespace's too.
    pub fn sysfs(mut self, enabled: bool) -> Options {
        self.sysfs = enabled;
        self
    }

    /// Bind each file of `/etc/netns/NAME/` over `/etc/` for the call, so `/etc/resolv.conf`
    /// and `/etc/hosts` are the namespace's. Needs a named namespace ([`Error::Unnamed`]).
    /// An entry that cannot be bound is skipped with a `log` warning, as `ip netns exec`
    /// skips it with a message.
    pub fn etc(mut self, enabled: bool) -> Options {
        self.etc = enabled;
        self
    }

    /// The size in bytes of the dedicated thread's stack (rounded up to whole pages, and to
    /// the minimum the platform allows); [`Options::DEFAULT_STACK_SIZE`] unless set.
    pub fn stack_size(mut self, bytes: usize) -> Options {
        self.stack_size = bytes;
        self
    }

    /// Run each call on a thread of its own, started for it and ended after it, instead of a
    /// warm thread of the handle: for a body that needs fresh thread-locals, or changes thread
    /// state that a warm thread does not put back after a call (see the README's "What a reused
    /// thread carries from one call to the next"). Costs a thread start per call.
    pub fn fresh_thread(mut self, enabled: bool) -> Options {
        self.fresh_thread = enabled;
        self
    }

    /// How long the handle's warm threads for calls with these options wait for a call before
    /// they end; [`Options::DEFAULT_IDLE_TIMEOUT`] unless set.
    pub fn idle_timeout(mut self, timeout: std::time::Duration) -> Options {
        self.idle_timeout = timeout;
        self
    }

    /// Whether each call gets a thread of its own ([`Options::fresh_thread`]).
    pub fn has_fresh_thread(&self) -> bool {
        self.fresh_thread
    }

    /// How long an idle warm thread waits before it ends.
    pub fn thread_idle_timeout(&self) -> std::time::Duration {
        self.idle_timeout
    }

    /// Whether a fresh sysfs is mounted on `/sys`.
    pub fn has_sysfs(&self) -> bool {
        self.sysfs
    }

    /// Whether `/etc/netns/NAME/` is bound over `/etc/`.
    pub fn has_etc(&self) -> bool {
        self.etc
    }

    /// The stack size in bytes the dedicated thread is made with.
    pub fn thread_stack_size(&self) -> usize {
        self.stack_size
    }

    /// Whether the options need a private mount namespace (and so private working directory
    /// and umask) at all.
    pub(crate) fn needs_mounts(&self) -> bool {
        self.sysfs || self.etc
    }

    /// Refuses what cannot work for `ns`, before any thread is started.
    pub(crate) fn check(&self, ns: &NetNs) -> Result<()> {
        if self.etc && ns.name().is_none() {
            return Err(Error::Unnamed {
                namespace: ns.describe(),
            });
        }
        Ok(())
    }

    /// On a thread started by the one that set up the view (and may end first), points the
    /// parts of the view that follow a thread at this one: `/proc/net` must not describe a
    /// thread that is gone. The view works without it but for `/proc/net`, so a failure (it
    /// needs a mount that just succeeded on the other thread) is a `log` warning.
    pub(crate) fn follow_current_thread(&self) {
        if self.sysfs {
            if let Err(err) = bind_proc_net() {
                log::warn!(
                    target: LOG_TARGET,
                    "/proc/net still describes the thread that set up the view: {err}"
                );
            }
        }
    }

    /// Sets up the views on the calling (dedicated) thread, which has already entered the
    /// namespace called `name`: a private copy of the thread's mount namespace, with them in it.
    pub(crate) fn apply_views(&self, name: Option<&str>) -> Result<()> {
        if !self.needs_mounts() {
            return Ok(());
        }
        unshare(CloneFlags::CLONE_NEWNS)
            .map_err(|e| Error::from_errno("unshare(CLONE_NEWNS)", None, e))?;
        mount(
            Some(""),
            "/",
            Some("none"),
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Error::from_errno("mount --make-rslave", Some(Path::new("/")), e))?;
        if self.sysfs {
            mount_sysfs(name)?;
            bind_proc_net()?;
        }
        // `check` refused `etc` without a name before the thread started.
        if let (true, Some(name)) = (self.etc, name) {
            bind_etc(name);
        }
        Ok(())
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::DEFAULT
    }
}

/// The caller's working directory, for a reused thread whose own one (private, since it has a
/// private mount namespace) must follow the caller's at each call.
pub(crate) enum CallerDir {
    /// By path, so that it resolves in the thread's mount namespace, as the kernel translates
    /// the directory of a new one.
    Path(PathBuf),
    /// A directory that was removed has no path: the thread gets the directory itself, as a
    /// fresh thread inherits it (nothing can be made in it, as for the caller).
    Removed(std::os::fd::OwnedFd),
}

impl CallerDir {
    /// Reads the calling thread's working directory.
    pub(crate) fn capture() -> Result<CallerDir> {
        let error = |source| Error::Os {
            operation: "getcwd (the caller's working directory, which the body uses)",
            path: None,
            source,
        };
        match std::env::current_dir() {
            Ok(path) => Ok(CallerDir::Path(path)),
            Err(err) if err.raw_os_error() == Some(nix::libc::ENOENT) => {
                let flags = nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC;
                nix::fcntl::open(".", flags, nix::sys::stat::Mode::empty())
                    .map(CallerDir::Removed)
                    .map_err(|errno| error(errno.into()))
            }
            Err(err) => Err(error(err)),
        }
    }

    /// Makes it the calling thread's working directory. (Reading the current one first is
    /// cheaper than a `chdir`, and it usually is the same.)
    pub(crate) fn enter(&self) -> Result<()> {
        match self {
            CallerDir::Path(path) => {
                if std::env::current_dir().is_ok_and(|current| current == *path) {
                    return Ok(());
                }
                nix::unistd::chdir(path).map_err(|errno| Error::Os {
                    operation: "chdir to the caller's working directory",
                    path: Some(path.clone()),
                    source: errno.into(),
                })
            }
            CallerDir::Removed(dir) => nix::unistd::fchdir(dir).map_err(|errno| Error::Os {
                operation: "fchdir to the caller's (removed) working directory",
                path: None,
                source: errno.into(),
            }),
        }
    }
}

/// Replaces `/sys` (in the thread's private mount namespace) with a sysfs of the current
/// network namespace.
fn mount_sysfs(name: Option<&str>) -> Result<()> {
    let sys = Path::new("/sys");
    let flags = if sys_is_read_only() {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    // Fails when nothing is mounted there; the new sysfs then simply goes on top.
    let _ = umount2(sys, MntFlags::MNT_DETACH);
    let source = name.unwrap_or("sysfs");
    mount(Some(source), sys, Some("sysfs"), flags, None::<&str>)
        .map_err(|e| Error::from_errno("mount sysfs", Some(sys), e))
}

/// Makes `/proc/net` and `/proc/self/net` (in the thread's private mount namespace) list the
/// calling thread's network namespace. Both lead to `/proc/PID/net`, which describes the
/// process's main thread, elsewhere; `/proc/thread-self/net` describes this thread, so it is
/// bound over `/proc/PID/net`. (`/proc/self` itself stays the process.)
///
/// A bind already there (of the thread that set up the view, or of an enclosing view) is
/// detached first rather than covered: procfs detaches every mount on a thread's directory when
/// that thread ends, so a bind stacked on another thread's would vanish with it.
fn bind_proc_net() -> Result<()> {
    let process_net = PathBuf::from(format!("/proc/{}/net", std::process::id()));
    // EINVAL: nothing is bound there yet.
    let _ = umount2(&process_net, MntFlags::MNT_DETACH);
    mount(
        Some("/proc/thread-self/net"),
        &process_net,
        Some("none"),
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| Error::from_errno("bind /proc/thread-self/net over", Some(&process_net), e))
}

/// Whether the host's `/sys` is read-only, so the namespace's sysfs should be too.
pub(crate) fn sys_is_read_only() -> bool {
    statvfs("/sys").is_ok_and(|fs| fs.flags().contains(FsFlags::ST_RDONLY))
}

/// Binds each entry of `/etc/netns/NAME/` over the same name in `/etc/`, as `ip netns exec`
/// does, and like it carries on past an entry that cannot be bound (no counterpart in `/etc`, a
/// dangling symlink on either side, a directory over a file): each one skipped is a `log`
/// warning naming both paths and the reason.
fn bind_etc(name: &str) {
    for (source, target) in etc_bind_pairs(name) {
        let bound = mount(
            Some(&source),
            &target,
            Some("none"),
            MsFlags::MS_BIND,
            None::<&str>,
        );
        if let Err(errno) = bound {
            log::warn!(
                target: LOG_TARGET,
                "{} was not bound over {}: {} (the other entries are bound, as `ip netns exec` does)",
                source.display(),
                target.display(),
                io::Error::from(errno),
            );
        }
    }
}

/// The (source, target) bind mounts that give `/etc` the view of `/etc/netns/NAME/`. A missing
/// `/etc/netns/NAME/` means there is nothing to bind; a directory or an entry that cannot be
/// read is a `log` warning, and what can be read is still bound.
pub(crate) fn etc_bind_pairs(name: &str) -> Vec<(PathBuf, PathBuf)> {
    let dir = Path::new(ETC_DIR).join(name);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(err) => {
            log::warn!(
                target: LOG_TARGET,
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
            Err(err) => log::warn!(
                target: LOG_TARGET,
                "an entry of {} was skipped: {err}",
                dir.display()
            ),
        }
    }
    pairs
}
