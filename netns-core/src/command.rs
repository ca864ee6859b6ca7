//! Processes started inside a namespace, as `ip netns exec` starts its command; no thread of the
//! parent moves.
//!
//! Two ways in, one plan ([`Views`]): [`NetnsCommand::spawn`] (and `output`, `status`) forks
//! the child from a thread that is already inside, so the child starts inside and needs no
//! privilege after the fork (std drops a `uid`/`gid` before `pre_exec` closures run); a command
//! spawned any other way enters between `fork` and `exec`, in a `pre_exec` closure that makes
//! system calls only.

use std::ffi::CStr;
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::libc;

use crate::entry::Options;
use crate::entry::views::{For, Views};
use crate::error::Result;
use crate::namespace::NetNs;
use crate::sys;

/// Starts processes inside a network namespace: `std::process::Command` and, with the `tokio`
/// feature, `tokio::process::Command`.
///
/// [`netns`](CommandExt::netns) returns the command as a [`NetnsCommand`], whose `spawn`,
/// `output` and `status` start the child from a thread already inside the namespace (with
/// [`Options`], inside the `/sys` and `/etc` views `ip netns exec` gives its command), so the
/// child is born inside: no thread of the parent moves, and a child that runs as another user
/// (`uid`, `gid`) starts inside too.
///
/// ```no_run
/// # use netns_core as in_netns;
/// use in_netns::CommandExt;
/// use std::os::unix::process::CommandExt as _;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let ns = in_netns::NetNs::named("blue")?;
/// let links = std::process::Command::new("ip").arg("link").netns(&ns).output()?;
/// let whoami = std::process::Command::new("id").uid(65534).gid(65534).netns(&ns).output()?;
/// # Ok(()) }
/// ```
///
/// Spawned any other way (configured after `netns`, through the `NetnsCommand`'s
/// `DerefMut`, then spawned with the command's own methods), the child still starts inside: it
/// enters between `fork` and `exec`, with system calls only, on data prepared beforehand. That
/// needs the privilege to enter in the child, which std has already dropped there when the
/// command sets `uid` or `gid`: such a child fails with `EPERM` and says so on its standard
/// error. A failure in the child makes the spawn fail with that errno; since the standard
/// library carries only the errno back, the child also writes the failed operation to its
/// standard error first (`in-netns: setns failed`).
pub trait CommandExt: sealed::Sealed + Sized {
    /// Runs the child inside `ns`.
    fn netns(&mut self, ns: &NetNs) -> NetnsCommand<'_, Self>;

    /// Runs the child inside `ns`, with the `/sys` and `/etc` view of `options`. Fails, before
    /// anything is spawned, when the options cannot apply to `ns` ([`Error::Unnamed`](crate::Error::Unnamed) for
    /// `etc` on a namespace without a name).
    fn netns_with(&mut self, ns: &NetNs, options: &Options) -> Result<NetnsCommand<'_, Self>>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::process::Command {}
    #[cfg(feature = "tokio")]
    impl Sealed for tokio::process::Command {}
}

/// A command that starts inside a namespace ([`CommandExt::netns`]): its `spawn`, `output` and
/// `status` start the child from a thread inside. Dereferences to the command, to configure it
/// further.
#[derive(Debug)]
pub struct NetnsCommand<'a, C> {
    command: &'a mut C,
    ns: NetNs,
    /// How the spawning thread is set up: the options' views, on a thread of its own (a child
    /// shares its spawner's mount namespace, which a warm thread would reuse).
    spawner: Options,
    /// Raised while the command is spawned from inside: the child, a copy of that moment, then
    /// has nothing to enter.
    spawning_inside: Arc<AtomicBool>,
}

impl<C> NetnsCommand<'_, C> {
    /// Runs `spawn` on a thread inside the namespace, with the flag that tells the child so.
    fn spawn_inside<R: Send>(
        &mut self,
        spawn: impl FnOnce(&mut C) -> io::Result<R> + Send,
    ) -> io::Result<R>
    where
        C: Send,
    {
        let _raised = Raised::new(&self.spawning_inside);
        let command = &mut *self.command;
        self.ns.run_with(&self.spawner, move || spawn(command))?
    }
}

impl NetnsCommand<'_, std::process::Command> {
    /// Starts the child from a thread inside the namespace ([`std::process::Command::spawn`]).
    pub fn spawn(&mut self) -> io::Result<std::process::Child> {
        self.spawn_inside(|command| command.spawn())
    }

    /// Starts the child from a thread inside the namespace and collects its output
    /// ([`std::process::Command::output`]).
    pub fn output(&mut self) -> io::Result<std::process::Output> {
        self.spawn_inside(|command| command.output())
    }

    /// Starts the child from a thread inside the namespace and waits for it
    /// ([`std::process::Command::status`]).
    pub fn status(&mut self) -> io::Result<std::process::ExitStatus> {
        self.spawn_inside(|command| command.status())
    }
}

#[cfg(feature = "tokio")]
impl NetnsCommand<'_, tokio::process::Command> {
    /// Starts the child from a thread inside the namespace ([`tokio::process::Command::spawn`]),
    /// registered with the caller's runtime. Blocks only for the fork and `exec`, as tokio's
    /// own `spawn` does.
    pub fn spawn(&mut self) -> io::Result<tokio::process::Child> {
        let runtime = tokio::runtime::Handle::try_current().ok();
        self.spawn_inside(move |command| {
            let _entered = runtime.as_ref().map(tokio::runtime::Handle::enter);
            command.spawn()
        })
    }

    /// Starts the child from a thread inside the namespace and collects its output, as
    /// [`tokio::process::Command::output`] does (standard output and error piped).
    pub async fn output(&mut self) -> io::Result<std::process::Output> {
        self.command.stdout(std::process::Stdio::piped());
        self.command.stderr(std::process::Stdio::piped());
        self.spawn()?.wait_with_output().await
    }

    /// Starts the child from a thread inside the namespace and waits for it
    /// ([`tokio::process::Command::status`]).
    pub async fn status(&mut self) -> io::Result<std::process::ExitStatus> {
        self.spawn()?.wait().await
    }
}

impl<C> Deref for NetnsCommand<'_, C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.command
    }
}

impl<C> DerefMut for NetnsCommand<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        self.command
    }
}

/// Raises a flag for as long as it lives (also when what runs meanwhile panics).
struct Raised<'a>(&'a AtomicBool);

impl<'a> Raised<'a> {
    fn new(flag: &'a AtomicBool) -> Raised<'a> {
        flag.store(true, Ordering::SeqCst);
        Raised(flag)
    }
}

impl Drop for Raised<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl CommandExt for std::process::Command {
    fn netns(&mut self, ns: &NetNs) -> NetnsCommand<'_, Self> {
        let spawning_inside = enter_in_child(self, ns, None);
        wrap(self, ns, &Options::DEFAULT, spawning_inside)
    }

    fn netns_with(&mut self, ns: &NetNs, options: &Options) -> Result<NetnsCommand<'_, Self>> {
        let views = prepare(ns, options)?;
        let spawning_inside = enter_in_child(self, ns, views);
        Ok(wrap(self, ns, options, spawning_inside))
    }
}

#[cfg(feature = "tokio")]
impl CommandExt for tokio::process::Command {
    fn netns(&mut self, ns: &NetNs) -> NetnsCommand<'_, Self> {
        let spawning_inside = enter_in_child(self.as_std_mut(), ns, None);
        wrap(self, ns, &Options::DEFAULT, spawning_inside)
    }

    fn netns_with(&mut self, ns: &NetNs, options: &Options) -> Result<NetnsCommand<'_, Self>> {
        let views = prepare(ns, options)?;
        let spawning_inside = enter_in_child(self.as_std_mut(), ns, views);
        Ok(wrap(self, ns, options, spawning_inside))
    }
}

/// The views of `options` for a child of `ns`, once they are known to apply.
fn prepare(ns: &NetNs, options: &Options) -> Result<Option<Views>> {
    options.setup().check(ns)?;
    Ok(Views::prepare(options.setup(), ns.name(), For::Child))
}

/// Makes `command`'s child enter `ns` (and `views`) between `fork` and `exec`, unless it was
/// spawned from inside: returns the flag that says so.
fn enter_in_child(
    command: &mut std::process::Command,
    ns: &NetNs,
    views: Option<Views>,
) -> Arc<AtomicBool> {
    let entry = ChildEntry::new(ns, views);
    let spawning_inside = Arc::clone(&entry.spawning_inside);
    // SAFETY: the closure only makes async-signal-safe system calls on data prepared before
    // the fork (see `ChildEntry::enter`); it neither allocates nor takes locks.
    unsafe { command.pre_exec(move || entry.enter()) };
    spawning_inside
}

/// The command, spawned from a thread inside `ns` set up as `options` say.
fn wrap<'a, C>(
    command: &'a mut C,
    ns: &NetNs,
    options: &Options,
    spawning_inside: Arc<AtomicBool>,
) -> NetnsCommand<'a, C> {
    let needs_own_thread = options.setup().needs_mounts();
    NetnsCommand {
        command,
        ns: ns.clone(),
        spawner: options.fresh_thread(needs_own_thread),
        spawning_inside,
    }
}

/// What the child does after `fork`, prepared by the parent, so that the child makes system
/// calls only.
struct ChildEntry {
    /// Keeps the descriptor open until the command is dropped.
    ns: NetNs,
    views: Option<Views>,
    /// Raised while a [`NetnsCommand`] spawns from inside: the child has nothing to enter.
    spawning_inside: Arc<AtomicBool>,
}

impl ChildEntry {
    fn new(ns: &NetNs, views: Option<Views>) -> ChildEntry {
        ChildEntry {
            ns: ns.clone(),
            views,
            spawning_inside: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Runs in the child, between `fork` and `exec`: async-signal-safe system calls only.
    fn enter(&self) -> io::Result<()> {
        if self.spawning_inside.load(Ordering::SeqCst) {
            // Forked from a thread inside, with the views: the child is where it should be.
            return Ok(());
        }
        sys::setns(self.ns.as_fd(), libc::CLONE_NEWNET).map_err(|errno| match errno {
            Errno::EPERM => fail(
                errno,
                c"in-netns: setns failed: no privilege left in the child (a command that sets uid or gid must be spawned through the NetnsCommand that netns() returns)\n",
            ),
            errno => fail(errno, c"in-netns: setns failed\n"),
        })?;
        if let Some(views) = &self.views {
            // An `/etc` entry that cannot be bound is skipped, as `ip netns exec` does (the
            // child cannot log: it only makes system calls).
            views
                .apply(&mut |_, _, _| {})
                .map_err(|failed| fail(failed.errno, failed.message))?;
        }
        Ok(())
    }
}

/// In the child: `errno` as the spawn's error, after `message` goes to standard error.
fn fail(errno: Errno, message: &CStr) -> io::Error {
    sys::write_stderr(message.to_bytes());
    io::Error::from_raw_os_error(errno as i32)
}
