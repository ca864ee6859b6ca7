//! Settings: how a thread inside is set up ([`Setup`]: a view of `/sys` and `/etc` that
//! describes the namespace, as `ip netns exec` gives its command; its stack), and, for calls,
//! how a call finds a thread ([`Options`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::namespace::NetNs;

/// How a thread (or a child) inside is set up: what it mounts besides entering the namespace,
/// and its stack. Every way in takes one: [`NetNs::worker_with`](crate::NetNs::worker_with),
/// [`NetnsCommandExt::netns_with`](crate::NetnsCommandExt::netns_with) and
/// [`NetNs::runtime_with`](crate::NetNs::runtime_with) take only this; calls that look for a
/// thread ([`NetNs::run_with`], the attribute) take [`Options`], a `Setup` and how a call finds
/// its thread. Everything that lives inside on a handle's behalf (its own warm threads,
/// runtimes for async bodies) is kept per `Setup`.
///
/// `sysfs` and `etc` give the thread a private mount namespace (made a recursive slave of the
/// host's, so nothing it mounts propagates back); the host's mounts are never touched, and the
/// private view ends with the thread. The thread then also has a working directory and umask
/// of its own, starting as the caller's. A reused thread's view is as its sources (the host's
/// mounts, `/etc`, `/etc/netns/NAME`) are when each call starts: it is built again when they
/// changed. A child has no use for the stack size.
///
/// Naming, here and in [`Options`]: a setting's builder method has the setting's name
/// (`sysfs(true)`); its getter is `has_` and the name for an on/off setting (`has_sysfs()`)
/// and `thread_` and the name for a size or duration of the thread (`thread_stack_size()`),
/// since the builder method holds the bare name.
///
/// ```no_run
/// # use netns_core as in_netns;
/// # fn main() -> in_netns::Result<()> {
/// let ns = in_netns::NetNs::named("blue")?;
/// let worker = ns.worker_with(&in_netns::Setup::default().sysfs(true).etc(true))?;
/// let links = worker.run(|| std::fs::read_dir("/sys/class/net").map(|d| d.count()))?;
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Setup {
    pub(crate) sysfs: bool,
    pub(crate) etc: bool,
    pub(crate) stack_size: usize,
}

/// A [`Setup`] and how a call finds its thread: the settings of [`NetNs::run_with`],
/// [`NetNs::spawn_with`], [`NetNs::run_async_with`](crate::NetNs::run_async_with) and the
/// `#[in_netns]` attribute.
///
/// The setup's builder methods (`sysfs`, `etc`, `stack_size`) are here too, so options read as
/// one chain; [`Options::setup`] gives the setup back, and a `Setup` converts into options
/// with the default dispatch (`Options::from(setup)`). Equal settings compare equal, whether
/// set or left at their default.
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
    setup: Setup,
    fresh_thread: bool,
    idle_timeout: Duration,
}

impl Setup {
    /// The stack of a dedicated thread unless [`Setup::stack_size`] says otherwise: 8 MiB, the
    /// usual limit of a Linux main thread, so that code that recurses there also works in a
    /// body (std's threads get 2 MiB). It is address space: only the pages a body touches take
    /// memory.
    pub const DEFAULT_STACK_SIZE: usize = crate::thread::DEFAULT_STACK_SIZE;

    /// Only entering the namespace, on the default stack.
    pub const DEFAULT: Setup = Setup {
        sysfs: false,
        etc: false,
        stack_size: Setup::DEFAULT_STACK_SIZE,
    };

    /// Mount a fresh sysfs on `/sys` (read-only when the host's is), so that `/sys/class/net`
    /// lists the namespace's links, and make `/proc/net` and `/proc/self/net` the namespace's
    /// too.
    pub fn sysfs(mut self, enabled: bool) -> Setup {
        self.sysfs = enabled;
        self
    }

    /// Bind each file of `/etc/netns/NAME/` over `/etc/`, so `/etc/resolv.conf` and
    /// `/etc/hosts` are the namespace's. Needs a named namespace ([`Error::Unnamed`]). An entry
    /// that cannot be bound is skipped with a `log` warning, as `ip netns exec` skips it with a
    /// message.
    pub fn etc(mut self, enabled: bool) -> Setup {
        self.etc = enabled;
        self
    }

    /// The size in bytes of the dedicated thread's stack (rounded up to whole pages, and to
    /// the minimum the platform allows); [`Setup::DEFAULT_STACK_SIZE`] unless set.
    pub fn stack_size(mut self, bytes: usize) -> Setup {
        self.stack_size = bytes;
        self
    }

    /// Whether a fresh sysfs is mounted on `/sys` ([`Setup::sysfs`]).
    pub fn has_sysfs(&self) -> bool {
        self.sysfs
    }

    /// Whether `/etc/netns/NAME/` is bound over `/etc/` ([`Setup::etc`]).
    pub fn has_etc(&self) -> bool {
        self.etc
    }

    /// The stack size in bytes the dedicated thread is made with ([`Setup::stack_size`]).
    pub fn thread_stack_size(&self) -> usize {
        self.stack_size
    }

    /// Whether the setup needs a private mount namespace (and so private working directory
    /// and umask) at all.
    pub(crate) fn needs_mounts(&self) -> bool {
        self.sysfs || self.etc
    }

    /// Refuses what cannot work for `ns`, before any thread or child is started.
    pub(crate) fn check(&self, ns: &NetNs) -> Result<()> {
        if self.etc && ns.name().is_none() {
            return Err(Error::Unnamed {
                namespace: ns.describe(),
            });
        }
        Ok(())
    }
}

impl Default for Setup {
    fn default() -> Setup {
        Setup::DEFAULT
    }
}

impl Options {
    /// How long a warm thread waits for its next call before it ends, unless
    /// [`Options::idle_timeout`] says otherwise: 10 s (as tokio's blocking pool keeps its
    /// threads). An idle warm thread uses no CPU, only its memory.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

    /// No options: a warm thread that only enters the network namespace, with the default
    /// stack.
    pub const DEFAULT: Options = Options {
        setup: Setup::DEFAULT,
        fresh_thread: false,
        idle_timeout: Options::DEFAULT_IDLE_TIMEOUT,
    };

    /// [`Setup::sysfs`] for the call's thread.
    pub fn sysfs(mut self, enabled: bool) -> Options {
        self.setup = self.setup.sysfs(enabled);
        self
    }

    /// [`Setup::etc`] for the call's thread.
    pub fn etc(mut self, enabled: bool) -> Options {
        self.setup = self.setup.etc(enabled);
        self
    }

    /// [`Setup::stack_size`] for the call's thread.
    pub fn stack_size(mut self, bytes: usize) -> Options {
        self.setup = self.setup.stack_size(bytes);
        self
    }

    /// Run each call on a thread of its own, started for it and ended after it, instead of a
    /// warm thread: for a body that needs fresh thread-locals, or changes thread
    /// state that a warm thread does not put back after a call (see "What a reused thread
    /// carries from one call to the next" in
    /// [GUARANTEES.md](https://docs.rs/crate/in-netns/latest/source/GUARANTEES.md)), or a caller
    /// whose sandbox the crate cannot compare (Landlock): a thread born from the caller has
    /// exactly its rights. Costs a thread start per call.
    pub fn fresh_thread(mut self, enabled: bool) -> Options {
        self.fresh_thread = enabled;
        self
    }

    /// How long warm threads for calls with these options wait for a call before they end;
    /// [`Options::DEFAULT_IDLE_TIMEOUT`] unless set. Plain calls with the default share warm
    /// threads across handles; calls with another timeout get the handle's own, which stay in
    /// its namespace between calls.
    pub fn idle_timeout(mut self, timeout: Duration) -> Options {
        self.idle_timeout = timeout;
        self
    }

    /// How the call's thread is set up.
    pub fn setup(&self) -> Setup {
        self.setup
    }

    /// Whether each call gets a thread of its own ([`Options::fresh_thread`]).
    pub fn has_fresh_thread(&self) -> bool {
        self.fresh_thread
    }

    /// How long an idle warm thread waits before it ends ([`Options::idle_timeout`]).
    pub fn thread_idle_timeout(&self) -> Duration {
        self.idle_timeout
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::DEFAULT
    }
}

/// The setup with the default dispatch: a warm thread, idling out after
/// [`Options::DEFAULT_IDLE_TIMEOUT`].
impl From<Setup> for Options {
    fn from(setup: Setup) -> Options {
        Options {
            setup,
            ..Options::DEFAULT
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_settings_compare_equal_whether_set_or_left_at_their_default() {
        assert_eq!(
            Options::default(),
            Options::default().idle_timeout(Options::DEFAULT_IDLE_TIMEOUT)
        );
        assert_eq!(
            Options::default(),
            Options::default()
                .fresh_thread(false)
                .stack_size(Setup::DEFAULT_STACK_SIZE)
        );
        assert_eq!(Setup::default(), Setup::default().sysfs(false).etc(false));
        let setup = Setup::default().sysfs(true).etc(true).stack_size(1 << 20);
        let options = Options::default().sysfs(true).etc(true).stack_size(1 << 20);
        assert_eq!(Options::from(setup), options);
        assert_eq!(options.setup(), setup);
        assert_ne!(options, options.fresh_thread(true));
    }
}
