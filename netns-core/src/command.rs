//! Processes started inside a namespace, as `ip netns exec` starts its command; no thread of the
//! parent moves, and nothing of a caller's thread changes.
//!
//! One way in ([`Views`], prepared before the fork): the child, forked from the caller's thread
//! as always, enters between `fork` and `exec`, in a `pre_exec` closure that makes system calls
//! only. A child that runs as another user switches in that same closure, once inside: std runs
//! its own `setgid`/`setuid` before any `pre_exec` closure, and a `setuid` away from root drops
//! the capability `setns` needs, so the user is set on the [`NetnsCommand`] instead
//! ([`NetnsCommand::uid`], [`gid`](NetnsCommand::gid), [`groups`](NetnsCommand::groups)),
//! which the closure reads in the child from a cell it shares with the command (the ids may be
//! set after `netns` made the closure). Runc and crun do the same: namespaces first, the user
//! last, in the child. A child whose user std changed is told so on its standard error.

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt as _;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::libc;

use crate::entry::Setup;
use crate::entry::views::{For, Views};
use crate::error::Result;
use crate::namespace::NetNs;
use crate::sync::lock;
use crate::sys::{self, CAP_SYS_ADMIN, CapData};

/// Starts processes inside a network namespace: `std::process::Command` and, with the `tokio`
/// feature, `tokio::process::Command`.
///
/// The child enters the namespace between `fork` and `exec` (and, with a [`Setup`], gets the
/// `/sys` and `/etc` views `ip netns exec` gives its command, in a mount namespace of its own),
/// so no thread of the parent ever moves: it works from any thread, and from an async task
/// without blocking the runtime. The child is the caller's, forked from the calling thread as
/// any child is, with its signal mask, scheduling, sandbox (`no_new_privs`, seccomp, Landlock),
/// capabilities and parent-death signal; nothing of the calling thread changes, for the spawn or
/// after. Everything the child needs is prepared before the fork; the child only makes system
/// calls.
///
/// [`netns`](NetnsCommandExt::netns) returns the command as a [`NetnsCommand`], which dereferences to
/// it: configure and spawn it as usual, with the command's own methods. To run the child as
/// another user, set the user on the `NetnsCommand` ([`NetnsCommand::uid`], `gid`, `groups`),
/// not with std's `CommandExt::uid`/`gid`: the child switches once inside, because std's switch
/// comes before the entry, and away from root it drops the capability to enter (such a child
/// fails to spawn, and its standard error says to use `NetnsCommand::uid`).
///
/// ```no_run
/// # use netns_core as in_netns;
/// use in_netns::NetnsCommandExt;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let ns = in_netns::NetNs::named("blue")?;
/// let links = std::process::Command::new("ip").arg("link").netns(&ns).output()?;
/// let whoami = std::process::Command::new("id")
///     .netns(&ns)
///     .uid(65534) // NetnsCommand::uid: switched to once inside
///     .gid(65534)
///     .arg("-u") // the command's own methods, through Deref
///     .output()?;
/// # Ok(()) }
/// ```
///
/// A failure in the child makes the spawn fail with that errno; since the standard library
/// carries only the errno back, the child also writes the failed operation to its standard
/// error first (`in-netns: setns failed: ...`).
pub trait NetnsCommandExt: sealed::Sealed + Sized {
    /// Runs the child inside `ns`.
    fn netns(&mut self, ns: &NetNs) -> NetnsCommand<'_, Self>;

    /// Runs the child inside `ns`, with the `/sys` and `/etc` view of `setup`. Fails, before
    /// anything is spawned, when the setup cannot apply to `ns` ([`Error::Unnamed`](crate::Error::Unnamed) for `etc`
    /// on a namespace without a name).
    ///
    /// The views are prepared here, once, and every child of the command gets the same: the
    /// entries of `/etc/netns/NAME` are listed now (an entry added later is not bound, one
    /// removed later is skipped), and whether `/sys` is read-only is read now. `ip netns exec`
    /// lists them as its command starts; to do the same, call `netns_with` on a new command for
    /// each spawn.
    fn netns_with(&mut self, ns: &NetNs, setup: &Setup) -> Result<NetnsCommand<'_, Self>>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::process::Command {}
    #[cfg(feature = "tokio")]
    impl Sealed for tokio::process::Command {}
}

/// A command whose child starts inside a namespace ([`NetnsCommandExt::netns`]). Dereferences to the
/// command, to configure and spawn it with its own methods (`arg`, `output`, `spawn`, ...).
///
/// Its [`uid`](NetnsCommand::uid), [`gid`](NetnsCommand::gid) and
/// [`groups`](NetnsCommand::groups) shadow the command's own `uid` and `gid`: the child
/// switches to that user after it entered the namespace and applied the views, in std's order
/// (groups, then gid, then uid) and with std's effect (away from root, no capability is left),
/// before any `pre_exec` closure added after `netns` and before the program. Set through std's
/// `CommandExt::uid` instead (before or after `netns`), a switch away from root comes before
/// the entry and drops the capability it needs: the spawn fails with `EPERM` and the child's
/// standard error says to use `NetnsCommand::uid`. (std's `gid` alone drops no capability: such
/// a child enters, having switched group first.)
///
/// A caller whose thread holds `CAP_SYS_ADMIN` permitted but not effective (a service that keeps
/// its capabilities unused until needed) gets a child that makes it effective for the entry and
/// the views, and then puts back exactly the sets it had: the program is executed with the
/// calling thread's capabilities, ambient ones included.
///
/// Each `netns` call adds its entry to the command (std keeps every `pre_exec` closure): the
/// child enters each in turn and ends up in the latest's namespace. A user set on one of them
/// is switched to right after its entry, so the entries after it fail without the privilege:
/// make a new command for each namespace rather than re-pointing one.
pub struct NetnsCommand<'a, C> {
    command: &'a mut C,
    /// Shared with the child's entry, which `netns` made already.
    user: Arc<User>,
}

impl<C> NetnsCommand<'_, C> {
    /// Runs the child as user `id`, switched to once inside (the system call, in the child;
    /// nothing of the parent changes). Without [`groups`](NetnsCommand::groups), the child's
    /// supplementary groups are dropped first, as std's `uid` drops them (unless that is not
    /// permitted, as in a user namespace that denies `setgroups`: then they stay).
    pub fn uid(&mut self, id: u32) -> &mut Self {
        self.user.uid.store(u64::from(id), Ordering::Release);
        self
    }

    /// Runs the child with group id `id`, switched to once inside, before the user id.
    pub fn gid(&mut self, id: u32) -> &mut Self {
        self.user.gid.store(u64::from(id), Ordering::Release);
        self
    }

    /// Gives the child the supplementary groups `groups`, set once inside, before the group and
    /// user ids.
    pub fn groups(&mut self, groups: &[u32]) -> &mut Self {
        self.user.set_groups(groups);
        self
    }
}

impl<C: fmt::Debug> fmt::Debug for NetnsCommand<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetnsCommand")
            .field("command", &self.command)
            .field("uid", &self.user.uid())
            .field("gid", &self.user.gid())
            .field("groups", &self.user.groups())
            .finish()
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

/// An id not set: ids are `u32`, held in a `u64`.
const UNSET: u64 = u64::MAX;

/// The user a child switches to once inside, shared by a [`NetnsCommand`] (which sets it) and
/// the child's entry (which reads it in the child). Atomics, so that the child reads without a
/// lock: a lock another thread held at the fork stays held in the child for ever. The child
/// reads its own copy of the memory, as it was at the fork.
struct User {
    uid: AtomicU64,
    gid: AtomicU64,
    /// The supplementary groups (null: not set), from `Box::into_raw`.
    groups: AtomicPtr<Vec<libc::gid_t>>,
    /// Lists that `groups` pointed to before, kept until the drop so that a list once
    /// published stays valid for every `&User`. Only the parent's setter takes this lock.
    #[allow(
        clippy::vec_box,
        reason = "`groups` pointed into the box: the list's own fields must stay where they are"
    )]
    retired: Mutex<Vec<Box<Vec<libc::gid_t>>>>,
}

impl User {
    fn new() -> User {
        User {
            uid: AtomicU64::new(UNSET),
            gid: AtomicU64::new(UNSET),
            groups: AtomicPtr::new(std::ptr::null_mut()),
            retired: Mutex::new(Vec::new()),
        }
    }

    fn uid(&self) -> Option<libc::uid_t> {
        id(&self.uid)
    }

    fn gid(&self) -> Option<libc::gid_t> {
        id(&self.gid)
    }

    /// Publishes `groups` (the list is complete before its pointer is stored) and retires the
    /// list it replaces.
    fn set_groups(&self, groups: &[u32]) {
        let list = Box::into_raw(Box::new(groups.to_vec()));
        let old = self.groups.swap(list, Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: `old` came from `Box::into_raw` above and was just unpublished; the box
            // keeps the list where it is, so references from `groups()` stay valid.
            let old = unsafe { Box::from_raw(old) };
            lock(&self.retired).push(old);
        }
    }

    /// The supplementary groups, when set. Reads one atomic: usable in a child.
    fn groups(&self) -> Option<&[libc::gid_t]> {
        let list = self.groups.load(Ordering::Acquire);
        // SAFETY: a non-null pointer came from `Box::into_raw` in `set_groups`, and the list it
        // points to is freed only by `drop` (replaced ones are kept in `retired`), which cannot
        // run while `&self` lives. The list was complete before its pointer was published.
        (!list.is_null()).then(|| unsafe { (*list).as_slice() })
    }
}

/// The id an atomic holds, if set.
fn id(cell: &AtomicU64) -> Option<u32> {
    u32::try_from(cell.load(Ordering::Acquire)).ok()
}

impl Drop for User {
    fn drop(&mut self) {
        let list = *self.groups.get_mut();
        if !list.is_null() {
            // SAFETY: from `Box::into_raw` in `set_groups`, published until now and freed only
            // here; `&mut self` means no reference from `groups()` is left.
            drop(unsafe { Box::from_raw(list) });
        }
    }
}

impl NetnsCommandExt for std::process::Command {
    fn netns(&mut self, ns: &NetNs) -> NetnsCommand<'_, Self> {
        let user = enter_in_child(self, ns, None);
        NetnsCommand {
            command: self,
            user,
        }
    }

    fn netns_with(&mut self, ns: &NetNs, setup: &Setup) -> Result<NetnsCommand<'_, Self>> {
        let views = prepare(ns, setup)?;
        let user = enter_in_child(self, ns, views);
        Ok(NetnsCommand {
            command: self,
            user,
        })
    }
}

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl NetnsCommandExt for tokio::process::Command {
    fn netns(&mut self, ns: &NetNs) -> NetnsCommand<'_, Self> {
        let user = enter_in_child(self.as_std_mut(), ns, None);
        NetnsCommand {
            command: self,
            user,
        }
    }

    fn netns_with(&mut self, ns: &NetNs, setup: &Setup) -> Result<NetnsCommand<'_, Self>> {
        let views = prepare(ns, setup)?;
        let user = enter_in_child(self.as_std_mut(), ns, views);
        Ok(NetnsCommand {
            command: self,
            user,
        })
    }
}

/// The views of `setup` for a child of `ns`, once they are known to apply.
fn prepare(ns: &NetNs, setup: &Setup) -> Result<Option<Views>> {
    setup.check(ns)?;
    Ok(Views::prepare(setup, ns.name(), For::Child))
}

/// Makes `command`'s child enter `ns` (and `views`) between `fork` and `exec`, then switch to
/// the user set on the returned cell.
fn enter_in_child(
    command: &mut std::process::Command,
    ns: &NetNs,
    views: Option<Views>,
) -> Arc<User> {
    let user = Arc::new(User::new());
    let entry = ChildEntry {
        ns: ns.clone(),
        views,
        user: Arc::clone(&user),
        parent_ids: (sys::getuid(), sys::getgid()),
    };
    // SAFETY: the closure only makes async-signal-safe system calls on data prepared before
    // the fork, and reads atomics (see `ChildEntry::enter`); it neither allocates nor takes
    // locks.
    unsafe { command.pre_exec(move || entry.enter()) };
    user
}

/// In a child: whether one of its entries switched user already. Only `ChildEntry::enter`
/// sets it, and that runs in children only: in the parent it stays `false`, and each child
/// starts from that.
static SWITCHED_USER: AtomicBool = AtomicBool::new(false);

/// What the child does after `fork`, prepared by the parent, so that the child makes system
/// calls only.
struct ChildEntry {
    /// Keeps the descriptor open until the command is dropped.
    ns: NetNs,
    views: Option<Views>,
    user: Arc<User>,
    /// The parent's real user and group ids when `netns` made the entry: a child whose ids
    /// differ before it enters had them changed by std's `uid`/`gid`.
    parent_ids: (libc::uid_t, libc::gid_t),
}

impl ChildEntry {
    /// Runs in the child, between `fork` and `exec`: async-signal-safe system calls only.
    fn enter(&self) -> io::Result<()> {
        let raised = self.enter_net()?;
        let applied = match &self.views {
            // An `/etc` entry that cannot be bound is skipped, as `ip netns exec` does (the
            // child cannot log: it only makes system calls).
            Some(views) => views
                .apply(&mut |_, _, _| {})
                .map_err(|failed| fail(failed.errno, failed.message)),
            None => Ok(()),
        };
        if let Some(sets) = raised {
            // Only the effective set changed: lowering it back is always permitted, and the
            // permitted, inheritable and ambient sets are as the caller's thread had them.
            sys::capset(&sets).map_err(|errno| {
                fail(errno, c"in-netns: putting the capabilities back failed\n")
            })?;
        }
        applied?;
        self.switch_user()
    }

    /// `setns` into the namespace. A child whose `CAP_SYS_ADMIN` is permitted but not effective
    /// makes it effective to enter: returns the sets to put back once the views are applied.
    fn enter_net(&self) -> io::Result<Option<[CapData; 2]>> {
        match sys::setns(self.ns.as_fd(), libc::CLONE_NEWNET) {
            Ok(()) => return Ok(None),
            Err(Errno::EPERM) => {}
            Err(errno) => return Err(fail(errno, c"in-netns: setns failed\n")),
        }
        let sets = match sys::capget(0) {
            Ok(sets)
                if CapData::permits(&sets, CAP_SYS_ADMIN)
                    && !CapData::in_effect(&sets, CAP_SYS_ADMIN) =>
            {
                sets
            }
            _ => return Err(fail(Errno::EPERM, self.why_not_permitted())),
        };
        sys::capset(&CapData::with_effective(sets, CAP_SYS_ADMIN))
            .map_err(|errno| fail(errno, c"in-netns: making CAP_SYS_ADMIN effective failed\n"))?;
        match sys::setns(self.ns.as_fd(), libc::CLONE_NEWNET) {
            Ok(()) => Ok(Some(sets)),
            // Permitted here, but not over the namespace (owned by another user namespace).
            Err(Errno::EPERM) => {
                let _ = sys::capset(&sets);
                Err(fail(Errno::EPERM, self.why_not_permitted()))
            }
            Err(errno) => {
                let _ = sys::capset(&sets);
                Err(fail(errno, c"in-netns: setns failed\n"))
            }
        }
    }

    /// What to tell a child that may not enter.
    fn why_not_permitted(&self) -> &'static CStr {
        if SWITCHED_USER.load(Ordering::Relaxed) {
            c"in-netns: setns failed: the child switched user (NetnsCommand::uid/gid) after an earlier netns() of this command and has no privilege left; make a new command for each namespace, or set the user after the last netns() only\n"
        } else if (sys::getuid(), sys::getgid()) != self.parent_ids {
            c"in-netns: setns failed: the child runs as another user than its parent did at netns(), switched before the entry by std's CommandExt::uid/gid, which dropped the capability to enter; set the user with NetnsCommand::uid/gid after netns(), not std's CommandExt::uid\n"
        } else {
            c"in-netns: setns failed: entering a network namespace needs CAP_SYS_ADMIN in the user namespace that owns it, and the child does not have it there (run as root, or in the user namespace that owns the network namespace)\n"
        }
    }

    /// Switches to the user set on the `NetnsCommand`, in std's order and with its effect: the
    /// supplementary groups (dropped when only a uid is set, where permitted), the group id,
    /// then the user id.
    fn switch_user(&self) -> io::Result<()> {
        let (uid, gid, groups) = (self.user.uid(), self.user.gid(), self.user.groups());
        let setgroups_failed = |errno| fail(errno, c"in-netns: setgroups failed\n");
        match (groups, uid) {
            (Some(groups), _) => sys::setgroups(groups).map_err(setgroups_failed)?,
            (None, Some(_)) => match sys::setgroups(&[]) {
                // As std does: EPERM where groups may not be set (a user namespace that denies
                // `setgroups`, or no CAP_SETGID); the setuid below says if it matters.
                Ok(()) | Err(Errno::EPERM) => {}
                Err(errno) => return Err(setgroups_failed(errno)),
            },
            (None, None) => {}
        }
        if let Some(gid) = gid {
            sys::setgid(gid).map_err(|errno| fail(errno, c"in-netns: setgid failed\n"))?;
        }
        if let Some(uid) = uid {
            sys::setuid(uid).map_err(|errno| fail(errno, c"in-netns: setuid failed\n"))?;
        }
        if uid.is_some() || gid.is_some() || groups.is_some() {
            SWITCHED_USER.store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// In the child: `errno` as the spawn's error, after `message` goes to standard error.
fn fail(errno: Errno, message: &CStr) -> io::Error {
    sys::write_stderr(message.to_bytes());
    io::Error::from_raw_os_error(errno as i32)
}
