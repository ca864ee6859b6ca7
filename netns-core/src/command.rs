//! Processes started inside a namespace, as `ip netns exec` starts its command; no thread of the
//! parent moves.
//!
//! One way in ([`Views`], prepared before the fork): the child, forked from the caller's thread
//! as always, enters between `fork` and `exec`, in a `pre_exec` closure that makes system calls
//! only. std runs a command's `setgid`/`setuid` before any `pre_exec` closure, and a `setuid`
//! away from root drops every capability, the one `setns` needs included. So [`NetnsCommand`]'s
//! `spawn`, `output` and `status` fork with the caller thread's keep-capabilities flag raised
//! for the moment of the spawn: the child keeps its permitted capabilities through std's
//! `setuid`, makes them effective to enter, and gives them all up once inside, as the `setuid`
//! would have.

use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt as _;

use nix::errno::Errno;
use nix::libc;

use crate::entry::Options;
use crate::entry::views::{For, Views};
use crate::error::{Error, Result};
use crate::namespace::NetNs;
use crate::sys::{self, CapData};

/// Starts processes inside a network namespace: `std::process::Command` and, with the `tokio`
/// feature, `tokio::process::Command`.
///
/// The child enters the namespace between `fork` and `exec` (and, with [`Options`], gets the
/// `/sys` and `/etc` views `ip netns exec` gives its command, in a mount namespace of its own),
/// so no thread of the parent ever moves: it works from any thread, and from an async task
/// without blocking the runtime. The child is the caller's, forked from the calling thread as
/// any child is, with its signal mask, scheduling, sandbox (`no_new_privs`, seccomp, Landlock)
/// and parent-death signal. Everything the child needs is prepared before the fork; the child
/// only makes system calls.
///
/// [`netns`](CommandExt::netns) returns the command as a [`NetnsCommand`], whose `spawn`,
/// `output` and `status` also start inside a child that runs as another user (`uid`).
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
/// error first (`in-netns: setns failed`).
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
/// Its `spawn`, `output` and `status` are the command's own, with the calling thread's
/// keep-capabilities flag (`PR_SET_KEEPCAPS`) raised for the moment of the spawn, so that a
/// child that runs as another user (`uid`) still has the capability to enter after std's
/// `setuid`; once inside it gives up every capability but its inheritable ones, as the `setuid`
/// would have, and the flag is put back before the call returns. Between std's `setuid` and the
/// entry (in `pre_exec` closures added before `netns`) such a child still holds its permitted
/// capabilities, none effective. Spawned by the command's own methods instead, it fails with
/// `EPERM`, and says so on its standard error.
///
/// Each `netns` call adds its entry to the command (std keeps every `pre_exec` closure): the
/// child enters each in turn and ends up in the latest's namespace, but a child that runs as
/// another user can make only the first entry, which gives up its capabilities. Make a new
/// command for each namespace rather than re-pointing one.
#[derive(Debug)]
pub struct NetnsCommand<'a, C> {
    command: &'a mut C,
}

impl<C> NetnsCommand<'_, C> {
    /// Runs `spawn` (on the calling thread) with the thread keeping its capabilities through a
    /// child's `setuid`.
    fn spawn_with<R>(&mut self, spawn: impl FnOnce(&mut C) -> io::Result<R>) -> io::Result<R> {
        let _kept = KeepCapabilities::raise();
        spawn(self.command)
    }
}

impl NetnsCommand<'_, std::process::Command> {
    /// Starts the child inside the namespace ([`std::process::Command::spawn`]).
    pub fn spawn(&mut self) -> io::Result<std::process::Child> {
        self.spawn_with(std::process::Command::spawn)
    }

    /// Starts the child inside the namespace and collects its output
    /// ([`std::process::Command::output`]).
    pub fn output(&mut self) -> io::Result<std::process::Output> {
        self.spawn_with(std::process::Command::output)
    }

    /// Starts the child inside the namespace and waits for it
    /// ([`std::process::Command::status`]).
    pub fn status(&mut self) -> io::Result<std::process::ExitStatus> {
        self.spawn_with(std::process::Command::status)
    }
}

#[cfg(feature = "tokio")]
impl NetnsCommand<'_, tokio::process::Command> {
    /// Starts the child inside the namespace ([`tokio::process::Command::spawn`]).
    pub fn spawn(&mut self) -> io::Result<tokio::process::Child> {
        self.spawn_with(tokio::process::Command::spawn)
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

/// The calling thread's keep-capabilities flag raised for as long as this lives, and put back
/// as it was after (also when the spawn panics). The flag matters only to a `setuid` away from
/// root, which the calling thread does not make meanwhile (it is spawning), and a child forked
/// meanwhile inherits it until its `exec`.
struct KeepCapabilities {
    /// `None`: nothing to put back (it was raised already, or cannot be read).
    put_back: Option<bool>,
}

impl KeepCapabilities {
    fn raise() -> KeepCapabilities {
        let put_back = match sys::keeps_capabilities() {
            Ok(false) => sys::set_keep_capabilities(true).ok().map(|()| false),
            _ => None,
        };
        KeepCapabilities { put_back }
    }
}

impl Drop for KeepCapabilities {
    fn drop(&mut self) {
        if let Some(keep) = self.put_back {
            let _ = sys::set_keep_capabilities(keep);
        }
    }
}

impl CommandExt for std::process::Command {
    fn netns(&mut self, ns: &NetNs) -> NetnsCommand<'_, Self> {
        enter_in_child(self, ns, None);
        NetnsCommand { command: self }
    }

    fn netns_with(&mut self, ns: &NetNs, options: &Options) -> Result<NetnsCommand<'_, Self>> {
        let views = prepare(ns, options)?;
        enter_in_child(self, ns, views);
        Ok(NetnsCommand { command: self })
    }
}

#[cfg(feature = "tokio")]
impl CommandExt for tokio::process::Command {
    fn netns(&mut self, ns: &NetNs) -> NetnsCommand<'_, Self> {
        enter_in_child(self.as_std_mut(), ns, None);
        NetnsCommand { command: self }
    }

    fn netns_with(&mut self, ns: &NetNs, options: &Options) -> Result<NetnsCommand<'_, Self>> {
        let views = prepare(ns, options)?;
        enter_in_child(self.as_std_mut(), ns, views);
        Ok(NetnsCommand { command: self })
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

/// Makes `command`'s child enter `ns` (and `views`) between `fork` and `exec`.
fn enter_in_child(command: &mut std::process::Command, ns: &NetNs, views: Option<Views>) {
    let entry = ChildEntry {
        ns: ns.clone(),
        views,
    };
    // SAFETY: the closure only makes async-signal-safe system calls on data prepared before
    // the fork (see `ChildEntry::enter`); it neither allocates nor takes locks.
    unsafe { command.pre_exec(move || entry.enter()) };
}

/// What the child does after `fork`, prepared by the parent, so that the child makes system
/// calls only.
struct ChildEntry {
    /// Keeps the descriptor open until the command is dropped.
    ns: NetNs,
    views: Option<Views>,
}

impl ChildEntry {
    /// Runs in the child, between `fork` and `exec`: async-signal-safe system calls only.
    fn enter(&self) -> io::Result<()> {
        let raised = match sys::setns(self.ns.as_fd(), libc::CLONE_NEWNET) {
            Ok(()) => None,
            // std's `setuid` away from root cleared the effective capabilities; a child forked
            // by `NetnsCommand` kept the permitted ones (`KeepCapabilities`): use them to enter.
            Err(Errno::EPERM) => Some(self.enter_with_kept_capabilities()?),
            Err(errno) => return Err(fail(errno, c"in-netns: setns failed\n")),
        };
        if let Some(views) = &self.views {
            // An `/etc` entry that cannot be bound is skipped, as `ip netns exec` does (the
            // child cannot log: it only makes system calls).
            views
                .apply(&mut |_, _, _| {})
                .map_err(|failed| fail(failed.errno, failed.message))?;
        }
        if let Some(sets) = raised {
            // Inside: no capability left, as std's `setuid` would have left the child, so that
            // what runs after this (other `pre_exec` closures, the program) has none.
            sys::capset(&CapData::none_but_inheritable(sets))
                .and_then(|()| sys::set_keep_capabilities(false))
                .map_err(|errno| {
                    fail(errno, c"in-netns: giving up the kept capabilities failed\n")
                })?;
        }
        Ok(())
    }

    /// Makes the permitted capabilities effective and enters; returns the sets as they were.
    fn enter_with_kept_capabilities(&self) -> io::Result<[CapData; 2]> {
        let no_privilege = |errno| {
            fail(
                errno,
                c"in-netns: setns failed: the child has no privilege left (a command that sets uid must be spawned by the NetnsCommand that netns() returns)\n",
            )
        };
        let sets = sys::capget(0).map_err(no_privilege)?;
        sys::capset(&CapData::all_permitted_effective(sets)).map_err(no_privilege)?;
        sys::setns(self.ns.as_fd(), libc::CLONE_NEWNET).map_err(no_privilege)?;
        Ok(sets)
    }
}

/// In the child: `errno` as the spawn's error, after `message` goes to standard error.
fn fail(errno: Errno, message: &std::ffi::CStr) -> io::Error {
    sys::write_stderr(message.to_bytes());
    io::Error::from_raw_os_error(errno as i32)
}
