//! Options: how a thread inside is set up (a view of `/sys` and `/etc` that describes the
//! namespace, as `ip netns exec` gives its command; its stack), and how a call finds a thread.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::namespace::NetNs;

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
///
/// The settings are of two kinds, and say which: how a thread inside is set up (`sysfs`, `etc`,
/// `stack_size`, which every way in applies, threads and [`CommandExt`](crate::CommandExt)
/// children alike; a child has no use for the stack size), and how a call finds its thread
/// (`fresh_thread`, `idle_timeout`: for [`NetNs::run_with`] and the attribute only; a
/// [`Worker`](crate::Worker) refuses them, since it has one thread that never idles out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Options {
    setup: Setup,
    dispatch: Dispatch,
}

/// How a thread (or child) inside is set up: what it mounts besides entering, and its stack.
/// Everything that lives inside on a handle's behalf (warm threads, runtimes for async bodies)
/// is kept per `Setup`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Setup {
    pub(crate) sysfs: bool,
    pub(crate) etc: bool,
    pub(crate) stack_size: usize,
}

/// How a call finds a thread: a fresh one, or a warm one that idles out after a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Dispatch {
    pub(crate) fresh_thread: bool,
    /// `None`: not set, [`Options::DEFAULT_IDLE_TIMEOUT`].
    pub(crate) idle_timeout: Option<Duration>,
}

impl Options {
    /// The stack of a dedicated thread unless [`Options::stack_size`] says otherwise: 8 MiB, the
    /// usual limit of a Linux main thread, so that code that recurses there also works in a
    /// body (std's threads get 2 MiB). It is address space: only the pages a body touches take
    /// memory.
    pub const DEFAULT_STACK_SIZE: usize = crate::thread::DEFAULT_STACK_SIZE;

    /// How long a warm thread waits for its next call before it ends, unless
    /// [`Options::idle_timeout`] says otherwise: 10 s (as tokio's blocking pool keeps its
    /// threads). An idle warm thread uses no CPU, only its memory.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

    /// No options: the thread only enters the network namespace, with the default stack.
    pub const DEFAULT: Options = Options {
        setup: Setup::DEFAULT,
        dispatch: Dispatch {
            fresh_thread: false,
            idle_timeout: None,
        },
    };

    /// Mount a fresh sysfs on `/sys` for the call (read-only when the host's is), so that
    /// `/sys/class/net` lists the namespace's links, and make `/proc/net` and `/proc/self/net`
    /// the namespace's too.
    pub fn sysfs(mut self, enabled: bool) -> Options {
        self.setup.sysfs = enabled;
        self
    }

    /// Bind each file of `/etc/netns/NAME/` over `/etc/` for the call, so `/etc/resolv.conf`
    /// and `/etc/hosts` are the namespace's. Needs a named namespace ([`Error::Unnamed`]).
    /// An entry that cannot be bound is skipped with a `log` warning, as `ip netns exec`
    /// skips it with a message.
    pub fn etc(mut self, enabled: bool) -> Options {
        self.setup.etc = enabled;
        self
    }

    /// The size in bytes of the dedicated thread's stack (rounded up to whole pages, and to
    /// the minimum the platform allows); [`Options::DEFAULT_STACK_SIZE`] unless set.
    pub fn stack_size(mut self, bytes: usize) -> Options {
        self.setup.stack_size = bytes;
        self
    }

    /// Run each call on a thread of its own, started for it and ended after it, instead of a
    /// warm thread of the handle: for a body that needs fresh thread-locals, or changes thread
    /// state that a warm thread does not put back after a call (see "What a reused thread
    /// carries from one call to the next" in
    /// [GUARANTEES.md](https://docs.rs/crate/in-netns/latest/source/GUARANTEES.md)). Costs a
    /// thread start per call.
    pub fn fresh_thread(mut self, enabled: bool) -> Options {
        self.dispatch.fresh_thread = enabled;
        self
    }

    /// How long the handle's warm threads for calls with these options wait for a call before
    /// they end; [`Options::DEFAULT_IDLE_TIMEOUT`] unless set.
    pub fn idle_timeout(mut self, timeout: Duration) -> Options {
        self.dispatch.idle_timeout = Some(timeout);
        self
    }

    /// Whether each call gets a thread of its own ([`Options::fresh_thread`]).
    pub fn has_fresh_thread(&self) -> bool {
        self.dispatch.fresh_thread
    }

    /// How long an idle warm thread waits before it ends.
    pub fn thread_idle_timeout(&self) -> Duration {
        self.dispatch
            .idle_timeout
            .unwrap_or(Options::DEFAULT_IDLE_TIMEOUT)
    }

    /// Whether a fresh sysfs is mounted on `/sys`.
    pub fn has_sysfs(&self) -> bool {
        self.setup.sysfs
    }

    /// Whether `/etc/netns/NAME/` is bound over `/etc/`.
    pub fn has_etc(&self) -> bool {
        self.setup.etc
    }

    /// The stack size in bytes the dedicated thread is made with.
    pub fn thread_stack_size(&self) -> usize {
        self.setup.stack_size
    }

    /// How a thread inside is set up.
    pub(crate) fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The first setting of how a call finds its thread that was made (`fresh_thread(true)`, any
    /// `idle_timeout`), by its builder method's name: what a [`Worker`](crate::Worker) and a
    /// command refuse.
    pub(crate) fn dispatch_setting(&self) -> Option<&'static str> {
        if self.dispatch.fresh_thread {
            Some("fresh_thread")
        } else if self.dispatch.idle_timeout.is_some() {
            Some("idle_timeout")
        } else {
            None
        }
    }

    /// These options with `setup` in place of their own.
    pub(crate) fn with_setup(mut self, setup: Setup) -> Options {
        self.setup = setup;
        self
    }
}

impl Setup {
    /// Only entering, on the default stack.
    pub(crate) const DEFAULT: Setup = Setup {
        sysfs: false,
        etc: false,
        stack_size: Options::DEFAULT_STACK_SIZE,
    };

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
