//! Processes started inside a namespace, as `ip netns exec` starts its command; no thread of the
//! parent moves.
//!
//! One way in ([`Views`], prepared before the fork): the child enters between `fork` and `exec`,
//! in a `pre_exec` closure that makes system calls only. A child that can no longer enter there,
//! because std dropped its credentials first (`uid`, `gid`: std runs `setgid`/`setuid` before any
//! `pre_exec` closure), says so in a word it shares with the parent; [`NetnsCommand`]'s `spawn`,
//! `output` and `status` then fork it again, from a thread that is already inside, where it has
//! nothing left to enter.

use std::cell::Cell;
use std::ffi::CStr;
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use nix::libc;

use crate::entry::Options;
use crate::entry::views::{For, Views};
use crate::error::{Error, Result};
use crate::namespace::NetNs;
use crate::sys::{self, SharedWord};

/// Starts processes inside a network namespace: `std::process::Command` and, with the `tokio`
/// feature, `tokio::process::Command`.
///
/// The child enters the namespace between `fork` and `exec` (and, with [`Options`], gets the
/// `/sys` and `/etc` views `ip netns exec` gives its command, in a mount namespace of its own),
/// so no thread of the parent ever moves: it works from any thread, and from an async task
/// without blocking the runtime. Everything the child needs is prepared before the fork; the
/// child only makes system calls.
///
/// [`netns`](CommandExt::netns) returns the command as a [`NetnsCommand`]. Its `spawn`, `output`
/// and `status` also start, inside, a child that runs as another user (`uid`, `gid`), which has
/// dropped its privileges before it could enter: such a child is forked again, from a thread of
/// the handle that is already inside.
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
/// A failure in the child makes the spawn fail with that errno; since the standard library
/// carries only the errno back, the child also writes the failed operation to its standard
/// error first (`in-netns: setns failed`). A command that runs as another user and is spawned by
/// its own methods (configured further through the `NetnsCommand`'s `DerefMut` and spawned
/// after) fails with `EPERM` that way.
pub trait CommandExt: sealed::Sealed + Sized {
    /// Runs the child inside `ns`.
    fn netns(&mut self, ns: &NetNs) -> NetnsCommand<'_, Self>;

    /// Runs the child inside `ns`, with the `/sys` and `/etc` view of `options`. Fails, before
    /// anything is spawned, when the options cannot apply to `ns` ([`Error::Unnamed`] for
    /// `etc` on a namespace without a name), or are about how a call finds its thread
    /// (`fresh_thread`, `idle_timeout`: [`Error::NotApplicable`]).
    fn netns_with(&mut self, ns: &NetNs, options: &Options) -> Result<NetnsCommand<'_, Self>>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::process::Command {}
    #[cfg(feature = "tokio")]
    impl Sealed for tokio::process::Command {}
}

/// A command whose child starts inside a namespace ([`CommandExt::netns`]). Dereferences to the
/// command, to configure it further.
///
/// `spawn`, `output` and `status` spawn the child as the command's own methods do, entering
/// after the fork; a child that dropped its privileges first (`uid`, `gid`) is forked again from
/// a thread of the handle that is already inside, so that it starts inside too. Such a child's
/// parent thread is that thread: a parent-death signal (`PR_SET_PDEATHSIG`) it sets fires when
/// that thread ends (when it idles out, or the handle's last clone drops), and it starts with
/// that thread's scheduling and CPU affinity (the process's main thread's), not the caller's.
#[derive(Debug)]
pub struct NetnsCommand<'a, C> {
    command: &'a mut C,
    ns: NetNs,
    /// How the spawning thread is set up when the child must be forked inside: the views, on a
    /// thread of its own (a child shares its parent thread's mount namespace, which a warm
    /// thread would reuse).
    spawner: Options,
    /// Set by a child that could not enter because it had dropped its privileges (`None`: no
    /// page could be had for it, and such a child fails the spawn).
    refused: Option<Arc<SharedWord>>,
}

std::thread_local! {
    /// Raised on a thread inside while it forks a command's child, which, a copy of that thread,
    /// has then nothing to enter. (A `const` cell with no destructor: a plain read in the child.)
    static SPAWNING_INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// The child's word for "I could not enter: I had no privilege left".
const REFUSED: u32 = 1;

impl<C> NetnsCommand<'_, C> {
    /// Spawns with `spawn` as the command would; should the child have had no privilege left to
    /// enter, spawns again from a thread inside.
    fn spawn_with<R: Send>(
        &mut self,
        spawn: impl Fn(&mut C) -> io::Result<R> + Send + Sync,
    ) -> io::Result<R>
    where
        C: Send,
    {
        let refused = |word: &SharedWord| word.get().swap(0, Ordering::SeqCst) == REFUSED;
        if let Some(word) = &self.refused {
            word.get().store(0, Ordering::SeqCst);
        }
        match spawn(self.command) {
            Err(_) if self.refused.as_deref().is_some_and(refused) => {
                let command = &mut *self.command;
                self.ns.run_with(&self.spawner, move || {
                    let _inside = SpawningInside::raise();
                    spawn(command)
                })?
            }
            spawned => spawned,
        }
    }
}

impl NetnsCommand<'_, std::process::Command> {
    /// Starts the child inside the namespace ([`std::process::Command::spawn`]).
    pub fn spawn(&mut self) -> io::Result<std::process::Child> {
        self.spawn_with(|command| command.spawn())
    }

    /// Starts the child inside the namespace and collects its output
    /// ([`std::process::Command::output`]).
    pub fn output(&mut self) -> io::Result<std::process::Output> {
        self.spawn_with(|command| command.output())
    }

    /// Starts the child inside the namespace and waits for it
    /// ([`std::process::Command::status`]).
    pub fn status(&mut self) -> io::Result<std::process::ExitStatus> {
        self.spawn_with(|command| command.status())
    }
}

#[cfg(feature = "tokio")]
impl NetnsCommand<'_, tokio::process::Command> {
    /// Starts the child inside the namespace ([`tokio::process::Command::spawn`]), registered
    /// with the caller's runtime.
    pub fn spawn(&mut self) -> io::Result<tokio::process::Child> {
        let runtime = tokio::runtime::Handle::try_current().ok();
        self.spawn_with(move |command| {
            // Forked from a thread inside, the child is still the caller runtime's to reap.
            let _entered = runtime.as_ref().map(tokio::runtime::Handle::enter);
            command.spawn()
        })
    }

    /// Starts the child inside the namespace and collects its output, as
    /// [`tokio::process::Command::output`] does (standard output and error piped).
    pub async fn output(&mut self) -> io::Result<std::process::Output> {
        self.command.stdout(std::process::Stdio::piped());
        self.command.stderr(std::process::Stdio::piped());
        self.spawn()?.wait_with_output().await
    }

    /// Starts the child inside the namespace and waits for it
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

/// [`SPAWNING_INSIDE`] raised for as long as it lives (also when what runs meanwhile panics).
struct SpawningInside;

impl SpawningInside {
    fn raise() -> SpawningInside {
        SPAWNING_INSIDE.with(|inside| inside.set(true));
        SpawningInside
    }
}

impl Drop for SpawningInside {
    fn drop(&mut self) {
        SPAWNING_INSIDE.with(|inside| inside.set(false));
    }
}

impl CommandExt for std::process::Command {
    fn netns(&mut self, ns: &NetNs) -> NetnsCommand<'_, Self> {
        let refused = enter_in_child(self, ns, None);
        wrap(self, ns, &Options::DEFAULT, refused)
    }

    fn netns_with(&mut self, ns: &NetNs, options: &Options) -> Result<NetnsCommand<'_, Self>> {
        let views = prepare(ns, options)?;
        let refused = enter_in_child(self, ns, views);
        Ok(wrap(self, ns, options, refused))
    }
}

#[cfg(feature = "tokio")]
impl CommandExt for tokio::process::Command {
    fn netns(&mut self, ns: &NetNs) -> NetnsCommand<'_, Self> {
        let refused = enter_in_child(self.as_std_mut(), ns, None);
        wrap(self, ns, &Options::DEFAULT, refused)
    }

    fn netns_with(&mut self, ns: &NetNs, options: &Options) -> Result<NetnsCommand<'_, Self>> {
        let views = prepare(ns, options)?;
        let refused = enter_in_child(self.as_std_mut(), ns, views);
        Ok(wrap(self, ns, options, refused))
    }
}

/// The views of `options` for a child of `ns`, once they are known to apply.
fn prepare(ns: &NetNs, options: &Options) -> Result<Option<Views>> {
    if let Some(option) = options.dispatch_setting() {
        return Err(Error::NotApplicable {
            option,
            to: "a command",
        });
    }
    options.setup().check(ns)?;
    Ok(Views::prepare(options.setup(), ns.name(), For::Child))
}

/// Makes `command`'s child enter `ns` (and `views`) between `fork` and `exec`, unless it was
/// forked inside; returns the word where a child that had no privilege left says so.
fn enter_in_child(
    command: &mut std::process::Command,
    ns: &NetNs,
    views: Option<Views>,
) -> Option<Arc<SharedWord>> {
    // Without the shared word (no memory for one page), a child that cannot enter fails the
    // spawn with its errno, as any other failure in the child does.
    let refused = SharedWord::new().ok().map(Arc::new);
    let entry = ChildEntry {
        ns: ns.clone(),
        views,
        refused: refused.clone(),
    };
    // SAFETY: the closure only makes async-signal-safe system calls on data prepared before
    // the fork, and reads a thread-local cell (see `ChildEntry::enter`); it neither allocates
    // nor takes locks.
    unsafe { command.pre_exec(move || entry.enter()) };
    refused
}

/// The command, spawned (when it must be) from a thread inside `ns` set up as `options` say.
fn wrap<'a, C>(
    command: &'a mut C,
    ns: &NetNs,
    options: &Options,
    refused: Option<Arc<SharedWord>>,
) -> NetnsCommand<'a, C> {
    let needs_own_thread = options.setup().needs_mounts();
    NetnsCommand {
        command,
        ns: ns.clone(),
        spawner: options.fresh_thread(needs_own_thread),
        refused,
    }
}

/// What the child does after `fork`, prepared by the parent, so that the child makes system
/// calls only.
struct ChildEntry {
    /// Keeps the descriptor open until the command is dropped.
    ns: NetNs,
    views: Option<Views>,
    refused: Option<Arc<SharedWord>>,
}

impl ChildEntry {
    /// Runs in the child, between `fork` and `exec`: async-signal-safe system calls only.
    fn enter(&self) -> io::Result<()> {
        if SPAWNING_INSIDE.with(Cell::get) {
            // Forked from a thread inside, with the views: the child is where it should be.
            return Ok(());
        }
        let no_privilege = |errno| {
            if let (Errno::EPERM, Some(word)) = (errno, &self.refused) {
                word.get().store(REFUSED, Ordering::SeqCst);
            }
        };
        sys::setns(self.ns.as_fd(), libc::CLONE_NEWNET).map_err(|errno| {
            no_privilege(errno);
            fail(errno, c"in-netns: setns failed\n")
        })?;
        if let Some(views) = &self.views {
            // An `/etc` entry that cannot be bound is skipped, as `ip netns exec` does (the
            // child cannot log: it only makes system calls).
            views.apply(&mut |_, _, _| {}).map_err(|failed| {
                no_privilege(failed.errno);
                fail(failed.errno, failed.message)
            })?;
        }
        Ok(())
    }
}

/// In the child: `errno` as the spawn's error, after `message` goes to standard error.
fn fail(errno: Errno, message: &CStr) -> io::Error {
    sys::write_stderr(message.to_bytes());
    io::Error::from_raw_os_error(errno as i32)
}
