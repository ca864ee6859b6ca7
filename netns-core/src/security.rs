//! A thread's security context: what the kernel checks a body's system calls against, kept per
//! thread. A reused namespace thread runs a call only for a caller whose context is its own, so
//! a body never runs with more rights than its caller, nor fewer.
//!
//! What is compared ([`Context::current`], ten system calls, about 2.5 us on a VM):
//!
//! - credentials: real, effective and saved user and group ids, filesystem ids, supplementary
//!   groups, the session keyring;
//! - capabilities: effective, permitted and inheritable sets, and the securebits;
//! - `no_new_privs`;
//! - seccomp: whether filters apply and, only then, how many (from procfs: about 12 us more).
//!
//! What the kernel does not show cheaply, and so is not compared: which seccomp filters they
//! are (two threads that installed as many different filters look alike), the Landlock domain,
//! and the bounding and ambient capability sets (read one capability per system call). A thread
//! born from the caller inherits all of them; reused threads are born from a caller with the
//! same context, which is not always the same caller. A context with a part that cannot be read
//! is [unknown](Context::is_known): it matches no other, and its calls get threads of their own.

use nix::errno::Errno;
use nix::libc;

use crate::sys::{self, CapData};

/// How many supplementary groups a context holds without allocating.
const INLINE_GROUPS: usize = 16;

/// A thread's security context, as far as the kernel shows it ([module docs](self)).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Context {
    uids: [libc::uid_t; 3],
    gids: [libc::gid_t; 3],
    filesystem: (libc::uid_t, libc::gid_t),
    groups: Groups,
    capabilities: Option<[CapData; 2]>,
    no_new_privs: Option<bool>,
    seccomp: Seccomp,
    /// What procfs does not show ([`Context::of_thread`] leaves it out): `PR_GET_SECUREBITS`
    /// and the session keyring's serial number (an error, such as a seccomp filter's, is a
    /// state like any other).
    unseen: Option<Unseen>,
}

/// The part of a context that procfs does not show.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Unseen {
    securebits: Result<libc::c_int, Errno>,
    session_keyring: Result<i64, Errno>,
}

/// Supplementary groups, in the kernel's order.
#[derive(Clone, Debug)]
enum Groups {
    /// Up to [`INLINE_GROUPS`]: the common case, with no allocation per call.
    Inline(u8, [libc::gid_t; INLINE_GROUPS]),
    /// More, or `None` when they could not be read.
    Many(Option<Box<[libc::gid_t]>>),
}

/// A thread's seccomp state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Seccomp {
    Off,
    /// Filters apply: how many (`None` when procfs does not say).
    Filters(Option<u32>),
    /// `PR_GET_SECCOMP` failed.
    Unknown(Errno),
}

impl Context {
    /// The calling thread's context.
    pub(crate) fn current() -> Context {
        Context {
            uids: sys::getresuid(),
            gids: sys::getresgid(),
            filesystem: sys::filesystem_ids(),
            groups: Groups::current(),
            capabilities: sys::capget(0).ok(),
            no_new_privs: sys::no_new_privs().ok(),
            seccomp: Seccomp::current(),
            unseen: Some(Unseen {
                securebits: sys::securebits(),
                session_keyring: sys::keyring_id(sys::SESSION_KEYRING),
            }),
        }
    }

    /// Whether every part could be read. An unknown context equals no other, so a caller in one
    /// gets a thread of its own (pooling by it would make a pool per call).
    pub(crate) fn is_known(&self) -> bool {
        self.groups.as_slice().is_some()
            && self.capabilities.is_some()
            && self.no_new_privs.is_some()
            && matches!(self.seccomp, Seccomp::Off | Seccomp::Filters(Some(_)))
            && self.unseen.is_some()
    }

    /// Whether `self` and `other` agree on what procfs shows (for a context from
    /// [`Context::of_thread`], which has only that).
    pub(crate) fn agrees_with(&self, other: &Context) -> bool {
        let visible = |context: &Context| Context {
            unseen: None,
            ..context.clone()
        };
        visible(self) == visible(other)
    }
}

impl Context {
    /// The context of thread `tid` of this process, from its procfs status (the only place one
    /// thread can read another's); `None` when it cannot be read.
    pub(crate) fn of_thread(tid: libc::pid_t) -> Option<Context> {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let ids = |name: &str| -> Option<[u32; 4]> {
            let mut ids = field(name)?.split_whitespace().map(str::parse);
            let mut next = || ids.next()?.ok();
            Some([next()?, next()?, next()?, next()?])
        };
        let mask = |name: &str| u64::from_str_radix(field(name)?, 16).ok();
        let [uid, euid, suid, fsuid] = ids("Uid")?;
        let [gid, egid, sgid, fsgid] = ids("Gid")?;
        let groups: Vec<libc::gid_t> = field("Groups")?
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let seccomp = match field("Seccomp")? {
            "0" => Seccomp::Off,
            _ => Seccomp::Filters(field("Seccomp_filters").and_then(|n| n.parse().ok())),
        };
        Some(Context {
            uids: [uid, euid, suid],
            gids: [gid, egid, sgid],
            filesystem: (fsuid, fsgid),
            groups: Groups::from_slice(&groups),
            capabilities: Some(CapData::from_masks(
                mask("CapEff")?,
                mask("CapPrm")?,
                mask("CapInh")?,
            )),
            no_new_privs: Some(field("NoNewPrivs")? == "1"),
            seccomp,
            unseen: None,
        })
    }
}

impl Groups {
    fn from_slice(groups: &[libc::gid_t]) -> Groups {
        match groups.len() {
            count @ 0..=INLINE_GROUPS => {
                let mut inline = [0; INLINE_GROUPS];
                inline[..count].copy_from_slice(groups);
                Groups::Inline(count as u8, inline)
            }
            _ => Groups::Many(Some(groups.into())),
        }
    }

    fn current() -> Groups {
        let mut inline = [0; INLINE_GROUPS];
        match sys::getgroups(&mut inline) {
            Ok(count) => Groups::Inline(count as u8, inline),
            // More than fit (EINVAL): counted, then read whole. The count may grow in between
            // (another thread's `setgroups`): then they read as unknown, which matches nothing.
            Err(_) => {
                let read = || -> Option<Box<[libc::gid_t]>> {
                    let count = sys::getgroups(&mut []).ok()?;
                    let mut groups = vec![0; count].into_boxed_slice();
                    let read = sys::getgroups(&mut groups).ok()?;
                    (read == count).then_some(groups)
                };
                Groups::Many(read())
            }
        }
    }
}

impl PartialEq for Groups {
    /// Groups that could not be read equal none: such a context matches no other.
    fn eq(&self, other: &Groups) -> bool {
        self.as_slice()
            .is_some_and(|groups| Some(groups) == other.as_slice())
    }
}

impl Eq for Groups {}

impl Groups {
    fn as_slice(&self) -> Option<&[libc::gid_t]> {
        match self {
            Groups::Inline(count, groups) => Some(&groups[..usize::from(*count)]),
            Groups::Many(groups) => groups.as_deref(),
        }
    }
}

impl Seccomp {
    fn current() -> Seccomp {
        match sys::seccomp_mode() {
            Ok(0) => Seccomp::Off,
            Ok(_) => Seccomp::Filters(filter_count()),
            Err(errno) => Seccomp::Unknown(errno),
        }
    }
}

/// How many seccomp filters apply to the calling thread: `Seccomp_filters:` in its procfs
/// status (Linux 5.9), read only when filters apply.
fn filter_count() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let count = status
        .lines()
        .find_map(|line| line.strip_prefix("Seccomp_filters:"))?;
    count.trim().parse().ok()
}

/// Whose a socket is, as far as the kernel records its maker: the filesystem ids and groups
/// (the socket's uid for uid routing, the netfilter `owner` match). A socket made ahead by a
/// thread inside goes only to a caller who would have made the same one: the same owner, and no
/// seccomp filter (which might forbid `socket()`; such a caller's sockets are made by a thread
/// of its whole context). What else a TCP or UDP socket does is checked against the thread that
/// does it (`bind`, `connect`, `setsockopt`: the caller's), not against its maker.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct SocketOwner {
    filesystem: (libc::uid_t, libc::gid_t),
    groups: Groups,
}

impl SocketOwner {
    /// The calling thread's, or `None` when seccomp filters apply to it (or that cannot be
    /// told): four system calls.
    pub(crate) fn current() -> Option<SocketOwner> {
        if sys::seccomp_mode() != Ok(0) {
            return None;
        }
        let groups = Groups::current();
        groups.as_slice()?;
        Some(SocketOwner {
            filesystem: sys::filesystem_ids(),
            groups,
        })
    }
}
