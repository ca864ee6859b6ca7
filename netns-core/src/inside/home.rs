//! What a reused namespace thread is kept in: the state it entered with, recorded once, put
//! back (or found impossible to put back) after every call, and its `/sys` and `/etc` view
//! brought up to date before every call.
//!
//! A body may change its own thread: `setns`, `unshare`, `chroot` or `chdir` in a private
//! `fs`, its signal mask, affinity, name, scheduling, its security context. A thread that
//! serves the next call must not carry that into it. After each call, once the caller has its result (so
//! none of this is on the caller's path), the thread:
//!
//! - re-enters its network namespace (`setns` with the target's descriptor: cheaper than
//!   reading `/proc/thread-self/ns/net` to see whether it left);
//! - checks with `kcmp` that it still shares the process's file table and, for a thread without
//!   a view, its `fs` (root, working directory, umask: `unshare(CLONE_FS)` and
//!   `unshare(CLONE_NEWNS)` both leave it with one of its own), since neither can be shared
//!   again once left; a thread with a view re-enters its view's mount namespace instead, which
//!   also puts back its root;
//! - checks that its security context ([`Context`]) is still its target's (a change the whole
//!   process made is taken on by a `Worker`'s thread);
//! - discards signals a body left pending for it, and puts back its signal mask, name,
//!   affinity, scheduling policy and nice value, I/O priority, personality, timer slack and a
//!   default memory policy, where they changed (a view thread also its umask); checks its
//!   keyrings and restartable sequences.
//!
//! What cannot be put back retires the thread (see [`Home::restore`]): it runs no more calls.

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::libc;
use nix::sched::{CloneFlags, CpuSet, sched_getaffinity, sched_setaffinity, setns};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::inotify::{InitFlags, Inotify};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::entry::{Setup, views};
use crate::error::{Error, Result};
use crate::fork::Born;
use crate::namespace::{DIRECTORY_CHANGES, ETC_DIR, NetNs};
use crate::report;
use crate::security::Context;
use crate::sync::lock;
use crate::sys;
use crate::thread::THREAD_NAME;

/// The calling thread's mount namespace.
const THREAD_SELF_MNT: &str = "/proc/thread-self/ns/mnt";
/// The calling thread's mount table, whose readiness (`EPOLLPRI`) says it changed.
const THREAD_SELF_MOUNTINFO: &str = "/proc/thread-self/mountinfo";

/// What the threads of one pool (or one `Worker`) enter: the namespace, by a descriptor of the
/// target's own (the handle's may be closed while a thread still restores itself), and the
/// views `options` ask for.
pub(crate) struct Target {
    net: OwnedFd,
    /// The handle's name: the source of `/etc/netns/NAME` and of the sysfs mount.
    name: Option<Box<str>>,
    /// How records name the namespace: its path, else its id.
    pub(crate) described: Box<str>,
    setup: Setup,
    views: Option<Views>,
    /// The security context every call on the target's threads runs with: that of the thread
    /// that made the target (the caller that started a warm pool, a `Worker`'s maker).
    context: Mutex<Expected>,
    /// What a thread does when its context changed in a call: `Follow` takes on a change that
    /// the whole process made (the C library's `setuid` changes every thread), as a `Worker`
    /// does; `Retire` retires it whatever the change, as a warm thread does (its pool serves
    /// callers of one context only).
    on_change: OnContextChange,
}

/// The context a target's threads must have, and (for [`OnContextChange::Follow`]) the main
/// thread's when it was set, to tell a change the whole process made.
#[derive(Clone)]
struct Expected {
    context: Context,
    main: Option<Context>,
}

/// What a thread whose security context changed in a call does ([`Target::context`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnContextChange {
    /// Takes on a change the whole process made (the main thread has the same new context);
    /// retires otherwise.
    Follow,
    /// Retires.
    Retire,
}

/// Where a thread's view comes from, and what tells it that the view went stale.
struct Views {
    /// The mount namespace the target was made in (the process's): each view is a private copy
    /// of it, made again when it changed.
    host: OwnedFd,
    changes: Mutex<Changes>,
}

impl Target {
    /// The target for threads of `ns` set up as `options` say, whose calls run with `context`;
    /// made on the caller's thread, so views copy the caller's mount namespace.
    pub(crate) fn new(
        ns: &NetNs,
        setup: &Setup,
        context: Context,
        on_change: OnContextChange,
    ) -> Result<Target> {
        let net = ns
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| Error::Os {
                operation: "dup (a descriptor of the namespace for its threads)",
                path: None,
                source,
            })?;
        let views = match setup.needs_mounts() {
            false => None,
            true => Some(Views {
                host: open_file(THREAD_SELF_MNT)?,
                changes: Mutex::new(Changes::new(setup, ns.name())?),
            }),
        };
        Ok(Target {
            net,
            name: ns.name().map(Box::from),
            described: ns.describe().into(),
            setup: *setup,
            views,
            context: Mutex::new(Expected {
                main: match on_change {
                    OnContextChange::Follow => Context::of_thread(sys::getpid()),
                    OnContextChange::Retire => None,
                },
                context,
            }),
            on_change,
        })
    }

    /// Whether a thread in `context` may serve the target's calls: it has the target's context,
    /// or (for a `Worker`) the whole process moved to it since the target's was set, which then
    /// becomes the target's.
    pub(crate) fn admits(&self, context: &Context) -> bool {
        // No system call is made under the lock: a body's seccomp filter may kill the thread
        // in one, and the lock would stay held.
        let expected = lock(&self.context).clone();
        if *context == expected.context {
            return true;
        }
        if self.on_change != OnContextChange::Follow {
            return false;
        }
        // The process moved when the main thread's context changed since, and is now this one:
        // a change only the calling thread made (a body's `setfsuid`) is not the process's.
        let Some(main) = Context::of_thread(sys::getpid()) else {
            return false;
        };
        let moved = expected
            .main
            .as_ref()
            .is_none_or(|then| !then.agrees_with(&main));
        if !moved || !context.agrees_with(&main) {
            return false;
        }
        report::debug!(
            "the threads of {} take on the process's new security context",
            self.described
        );
        *lock(&self.context) = Expected {
            context: context.clone(),
            main: Some(main),
        };
        true
    }

    /// How the threads are set up.
    pub(crate) fn setup(&self) -> &Setup {
        &self.setup
    }

    /// Moves the calling thread into the namespace: the network namespace, then the views.
    fn enter(&self) -> Result<()> {
        crate::entry::enter_thread(self.net.as_fd(), None, self.name.as_deref(), &self.setup)
    }

    /// After a call: whether the calling thread still has the target's security context, or
    /// (as a `Worker`'s thread may) followed a change the whole process made.
    fn keep_context(&self) -> Result<(), Left> {
        match self.admits(&Context::current()) {
            true => Ok(()),
            false => Err("its security context changed (credentials, capabilities, \
                          securebits, session keyring, no_new_privs or seccomp)"
                .into()),
        }
    }

    /// How many times the view's sources have changed so far (0 without views). A view built
    /// after reading `n` is as new as the sources were when `n` was read.
    fn view_generation(&self) -> u64 {
        self.views.as_ref().map_or(0, |views| {
            let mut changes = lock(&views.changes);
            changes.generation()
        })
    }
}

/// What a view thread keeps of its view.
struct View {
    /// The view's mount namespace, re-entered after each call (which also puts back the root).
    mount: OwnedFd,
    /// The view's mount table, whose readiness (`POLLPRI`) says a body mounted or unmounted
    /// something in the view: it is then built again before the next call.
    mounts: OwnedFd,
    /// [`Target::view_generation`] when the view was built.
    built: u64,
    umask: Mode,
}

impl View {
    /// The view the calling thread has just built, as new as generation `built`.
    fn built(built: u64) -> Result<View> {
        Ok(View {
            mount: open_file(THREAD_SELF_MNT)?,
            mounts: open_file(THREAD_SELF_MOUNTINFO)?,
            built,
            umask: current_umask(),
        })
    }

    /// Whether a body changed the view's mounts since the last look.
    fn changed_by_a_body(&self) -> bool {
        // A failed poll counts as a change: the view is built again.
        sys::poll_ready(self.mounts.as_fd(), libc::POLLPRI) != Ok(false)
    }

    /// Its descriptors' numbers, no longer owned here: for a thread that has left the process's
    /// file table, whose own copy of them closes when it ends, while the process's copy must be
    /// closed by the thread that joins it ([`Left::orphaned`]).
    fn into_raw_fds(self) -> [RawFd; 2] {
        [self.mount.into_raw_fd(), self.mounts.into_raw_fd()]
    }
}

/// The state a served thread entered with, and puts back after each call.
pub(crate) struct Home {
    view: Option<View>,
    /// Whether `kcmp` said the thread shares the process's file table and (without a view) its
    /// `fs` when it entered, and it took on the main thread's state. A thread that could not be
    /// compared is never reused: nothing else could tell that it left them.
    comparable: bool,
    /// The process and the thread, for `kcmp` (a copy of the thread in a forked child ends
    /// before it would restore anything).
    ids: (libc::pid_t, libc::pid_t),
    state: ThreadState,
}

/// What a thread's signal mask, affinity, scheduling, I/O priority, personality, timer slack,
/// memory policy, keyrings and restartable sequences are.
struct ThreadState {
    signals: libc::sigset_t,
    affinity: Option<CpuSet>,
    scheduling: Scheduling,
    ioprio: Result<libc::c_int, Errno>,
    personality: Result<libc::c_int, Errno>,
    timer_slack: Result<libc::c_int, Errno>,
    mempolicy: Result<(libc::c_int, u64), Errno>,
    /// The thread's own keyring and its session keyring (part of its credentials, but not of
    /// its [`Context`]: a body that made either could leave a secret to the next call's body).
    keyrings: [Result<i64, Errno>; 2],
    /// Whether the C library's restartable sequences are registered (`None`: not known).
    rseq: Option<bool>,
}

impl ThreadState {
    /// The calling thread's.
    fn current() -> ThreadState {
        ThreadState {
            signals: current_signal_mask(),
            affinity: sched_getaffinity(Pid::from_raw(0)).ok(),
            scheduling: Scheduling::current(),
            ioprio: sys::ioprio(),
            personality: sys::personality(),
            timer_slack: sys::timer_slack(),
            mempolicy: sys::mempolicy(),
            keyrings: keyrings(),
            rseq: sys::rseq_registered(),
        }
    }

    /// Makes the calling thread's what it was, where it changed. A signal a body left pending
    /// for the thread is discarded first, as it would be with a thread that ends: unblocked, it
    /// would be delivered here, and its default action may end the process.
    fn put_back(&self) -> Result<(), Left> {
        discard_thread_signals();
        set_signal_mask(&self.signals);
        if let Some(affinity) = &self.affinity {
            if sched_getaffinity(Pid::from_raw(0)).ok().as_ref() != Some(affinity) {
                sched_setaffinity(Pid::from_raw(0), affinity)
                    .map_err(|e| format!("its CPU affinity could not be put back ({e})"))?;
            }
        }
        self.scheduling.restore()?;
        if let Ok(ioprio) = self.ioprio {
            if sys::ioprio() != Ok(ioprio) {
                sys::set_ioprio(ioprio)
                    .map_err(|e| format!("its I/O priority could not be put back ({e})"))?;
            }
        }
        if let Ok(persona) = self.personality {
            if sys::personality() != Ok(persona) {
                sys::set_personality(persona)
                    .map_err(|e| format!("its personality could not be put back ({e})"))?;
            }
        }
        if let Ok(slack) = self.timer_slack {
            if sys::timer_slack() != Ok(slack) {
                sys::set_timer_slack(slack as libc::c_ulong)
                    .map_err(|e| format!("its timer slack could not be put back ({e})"))?;
            }
        }
        if sys::mempolicy() != self.mempolicy {
            // Only the default policy (the common case) is put back; another is not rebuilt.
            let default = matches!(self.mempolicy, Ok((0, _)));
            if !default || sys::set_default_mempolicy().is_err() {
                return Err("its NUMA memory policy changed".into());
            }
        }
        if keyrings() != self.keyrings {
            return Err("it has a thread or session keyring of its own".into());
        }
        if self.rseq == Some(true) && sys::rseq_registered() == Some(false) {
            return Err("its restartable sequences were unregistered".into());
        }
        Ok(())
    }
}

/// The calling thread's own keyring and session keyring, by serial number (`ENOKEY`: none).
fn keyrings() -> [Result<i64, Errno>; 2] {
    [sys::THREAD_KEYRING, sys::SESSION_KEYRING].map(sys::keyring_id)
}

/// Discards the signals pending for the calling thread itself (not those pending for the
/// process, which any thread may take): one `sigpending` when there are none.
fn discard_thread_signals() {
    if sys::pending_signals() == 0 {
        return;
    }
    // `sigpending` shows the thread's and the process's together; procfs tells them apart.
    // Bounded: queued real-time signals take one round each, and a signal sent again and again
    // meanwhile is left.
    // The C library's own signals (32 and 33) are its business.
    const THE_C_LIBRARYS: u64 = (1 << 31) | (1 << 32);
    for _ in 0..64 {
        let own = status_bits("SigPnd:").unwrap_or(0) & !THE_C_LIBRARYS;
        if own == 0 {
            return;
        }
        // One of each is taken (the thread's before the process's), then procfs is read again,
        // so that no signal pending for the process is taken along.
        for bit in (0..64).filter(|bit| own & (1 << bit) != 0) {
            let _ = sys::take_pending_signal(&sys::signal_set(1 << bit));
        }
    }
}

/// A hexadecimal signal set from the calling thread's procfs status, by its line's `field`.
fn status_bits(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let hex = status.lines().find_map(|line| line.strip_prefix(field))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Why a thread was retired: what it could not be put back into.
pub(crate) struct Left {
    pub(crate) reason: String,
    /// Descriptors the thread opened in the process's file table before it left it (a view's):
    /// the thread that joins it closes them there, or they would stay open for good.
    pub(crate) orphaned: Vec<RawFd>,
}

impl From<String> for Left {
    fn from(reason: String) -> Left {
        Left {
            reason,
            orphaned: Vec::new(),
        }
    }
}

impl From<&str> for Left {
    fn from(reason: &str) -> Left {
        Left::from(reason.to_owned())
    }
}

impl Home {
    /// Enters `target` on the calling (new) thread and records the state to keep.
    pub(crate) fn enter(target: &Target) -> Result<Home> {
        // The thread's identity, read once.
        THREAD.with(|_| ());
        let ids = (sys::getpid(), sys::gettid());
        let inherited = ThreadState::current();
        let adopted = adopt_main_threads_state(ids.0);
        if !adopted {
            // Its one call then runs as on a fresh thread of its starter.
            let _ = inherited.put_back();
        }
        let built = target.view_generation();
        target.enter()?;
        let view = match target.views {
            None => None,
            Some(_) => Some(View::built(built)?),
        };
        let comparable = shares_with_process(ids, Resource::Files).unwrap_or(false)
            && (view.is_some() || shares_with_process(ids, Resource::Fs).unwrap_or(false));
        if !comparable {
            report::debug!(
                "a namespace thread does not share the main thread's file table or directory \
                 (or kcmp is unavailable): it serves one call only"
            );
        }
        if !adopted {
            report::debug!(
                "a namespace thread could not take on the main thread's signal mask, affinity, \
                 scheduling and capabilities: it serves one call only"
            );
        }
        // Born from a caller of the target's context (a `Worker`'s replacement is started only
        // by one: see `worker`), it has it, unless the caller's context changed meanwhile.
        let in_context = target.admits(&Context::current());
        if !in_context {
            report::debug!(
                "a namespace thread was started by a caller whose security context is not its \
                 pool's: it serves that caller's call only"
            );
        }
        let comparable = comparable && adopted && in_context;
        Ok(Home {
            view,
            comparable,
            ids,
            state: ThreadState::current(),
        })
    }

    /// Before a call: brings the view up to date, when its sources (the host's mount table,
    /// `/etc`, `/etc/netns`, `/etc/netns/NAME`) changed since it was built, by building it again
    /// from the host's mount namespace. One `epoll_wait` when nothing changed.
    pub(crate) fn refresh(&mut self, target: &Target) -> Result<()> {
        let (Some(view), Some(views)) = (&mut self.view, &target.views) else {
            return Ok(());
        };
        let now = target.view_generation();
        if now == view.built {
            return Ok(());
        }
        setns(&views.host, CloneFlags::CLONE_NEWNS)
            .map_err(|e| Error::from_errno("setns(CLONE_NEWNS) to the host's mounts", None, e))?;
        views::apply_on_thread(&target.setup, target.name.as_deref())?;
        *view = View::built(now)?;
        report::debug!(
            "a thread of {} built its view again: its sources changed",
            target.described
        );
        Ok(())
    }

    /// After a call: puts the thread back as it entered, or says what it could not put back.
    pub(crate) fn restore(&mut self, target: &Target) -> Result<(), Left> {
        setns(&target.net, CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("re-entering its network namespace failed ({e})"))?;
        // Out of the namespace a shared thread visited. (One that could not leave it retires,
        // and counts as inside until it has ended.)
        left_visited();
        if !self.comparable {
            return Err("it could not be compared with the main thread, or made like it".into());
        }
        target.keep_context()?;
        if shares_with_process(self.ids, Resource::Files) != Ok(true) {
            let orphaned = self.view.take().map(View::into_raw_fds);
            return Err(Left {
                reason: "it has a file table of its own (unshare(CLONE_FILES))".to_owned(),
                orphaned: orphaned.into_iter().flatten().collect(),
            });
        }
        match &mut self.view {
            None if shares_with_process(self.ids, Resource::Fs) != Ok(true) => {
                return Err("it has a root, working directory and umask of its own \
                            (unshare(CLONE_FS) or unshare(CLONE_NEWNS))"
                    .into());
            }
            None => {}
            Some(view) => {
                setns(&view.mount, CloneFlags::CLONE_NEWNS)
                    .map_err(|e| format!("re-entering its view's mount namespace failed ({e})"))?;
                nix::sys::stat::umask(view.umask);
                if view.changed_by_a_body() {
                    // Built again, from the host's mounts, before the next call.
                    view.built = u64::MAX;
                }
            }
        }
        restore_name();
        self.state.put_back()
    }
}

/// The namespace shared threads go back to after each call: the process's (its main
/// thread's), or, when a thread of the process may not enter that one (a process that made a
/// user namespace of its own, as `rootless::enter` does, is not privileged over the host's
/// namespaces), an empty namespace made for the purpose, which the process owns. Found on a
/// thread of its own, so that no caller's thread moves.
pub(crate) fn shared_home() -> Result<NetNs> {
    const MAIN: &str = "/proc/self/ns/net";
    let main = NetNs::open(MAIN)?;
    let described = || "the home of shared threads".to_owned();
    crate::thread::on_scoped_thread(None, described, move || {
        let refused = match crate::entry::enter_net(main.as_fd(), Some(Path::new(MAIN))) {
            Ok(()) => return Ok(main),
            Err(refused) => refused,
        };
        // A thread that may make no namespace either may enter none: the refusal says why.
        sys::unshare(libc::CLONE_NEWNET).map_err(|_| refused)?;
        NetNs::open("/proc/thread-self/ns/net")
    })
}

/// A thread, told from any other of the process, also one that reuses its id after it ended:
/// its id and its start time (in clock ticks since boot, from procfs).
#[derive(Clone, Copy, PartialEq, Eq)]
struct ThreadIdentity {
    tid: libc::pid_t,
    started: Option<u64>,
}

impl ThreadIdentity {
    fn of(tid: libc::pid_t) -> ThreadIdentity {
        ThreadIdentity {
            tid,
            started: thread_start_time(tid),
        }
    }

    /// Whether the thread still exists: a thread has its id, and did not start at another time
    /// (a start time that cannot be read, procfs hidden from the caller's root or descriptors
    /// used up, tells nothing: the thread counts as the same).
    fn exists(&self) -> bool {
        if !sys::thread_exists(sys::getpid(), self.tid) {
            return false;
        }
        match (self.started, thread_start_time(self.tid)) {
            (Some(then), Some(now)) => then == now,
            _ => true,
        }
    }
}

/// When thread `tid` of this process started (field 22 of its `stat`), if it exists.
fn thread_start_time(tid: libc::pid_t) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // After the name, which may hold anything but ends at the last ')': state is field 3.
    let fields = stat.get(stat.rfind(')')? + 1..)?;
    fields.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// The shared threads inside a handle's namespace for its calls: from entering it ([`visit`])
/// until leaving it (the thread's put-back) or, for one that could not leave, ending.
#[derive(Default)]
pub(crate) struct Visitors(Mutex<Vec<ThreadIdentity>>);

impl Visitors {
    /// Waits until no shared thread is inside: each left, or ended (also one that a body's
    /// seccomp filter killed while it left, which never says so). Not on a thread of ours that
    /// is ending, which never waits for another (two threads that each drop the last handle of
    /// the namespace the other is stuck in would wait for each other), nor for itself.
    pub(crate) fn wait_until_gone(&self) {
        if super::own::ending() {
            return;
        }
        let this_thread = THREAD.with(|this| *this);
        for round in 0_u32.. {
            // Looked at without the lock: no system call is made under it.
            let inside = lock(&self.0).clone();
            let gone: Vec<_> = inside
                .iter()
                .filter(|visitor| **visitor == this_thread || !visitor.exists())
                .collect();
            if gone.len() == inside.len() {
                lock(&self.0).retain(|visitor| !gone.contains(&visitor));
                return;
            }
            match round {
                0..100 => std::thread::yield_now(),
                _ => std::thread::sleep(std::time::Duration::from_micros(200)),
            }
        }
    }

    fn remove(&self, thread: ThreadIdentity) {
        lock(&self.0).retain(|&inside| inside != thread);
    }
}

/// A shared thread's visit: on its handle's visitors from entering until it leaves
/// ([`left_visited`]). A thread that ends without leaving (it could not) stays on them: it is
/// inside until the kernel has ended it, after its thread-locals' destructors, and that is what
/// [`Visitors::wait_until_gone`] waits for.
struct Visit {
    visitors: Arc<Visitors>,
    thread: ThreadIdentity,
    /// The process of the visit: in a forked child (a copy of the thread, ending after its
    /// call), the visitors' lock is not touched, since a parent thread may have held it.
    born: Option<Born>,
}

std::thread_local! {
    /// The visit the calling shared thread is on ([`visit`]), until it goes back
    /// ([`Home::restore`]) or ends.
    static VISITING: std::cell::RefCell<Option<Visit>> = const { std::cell::RefCell::new(None) };
    /// The calling thread, read once.
    static THREAD: ThreadIdentity = ThreadIdentity::of(sys::gettid());
}

/// On a shared thread, at the start of a call of `ns`: enters `ns`'s network namespace, as one of
/// its `visitors` until [`Home::restore`] takes the thread back to its own.
pub(crate) fn visit(ns: &NetNs, visitors: &Arc<Visitors>) -> Result<()> {
    crate::entry::enter_net(ns.as_fd(), ns.path())?;
    let thread = THREAD.with(|thread| *thread);
    lock(&visitors.0).push(thread);
    let visit = Visit {
        visitors: Arc::clone(visitors),
        thread,
        born: Born::here().ok(),
    };
    VISITING.with(|visiting| visiting.borrow_mut().replace(visit));
    Ok(())
}

/// Called by a shared thread once out of the namespace it visited, if any.
fn left_visited() {
    let visit = VISITING.with(|visiting| visiting.borrow_mut().take());
    if let Some(visit) = visit
        && visit.born.is_some_and(Born::is_here)
    {
        visit.visitors.remove(visit.thread);
    }
}

/// What tells a view that its sources changed: the host's mount table and, for `etc`, inotify
/// on `/etc`, `/etc/netns` and `/etc/netns/NAME`, all in one epoll set; and how many changes
/// it has seen.
struct Changes {
    epoll: Epoll,
    inotify: Option<Inotify>,
    /// Watched by inotify (again after each change: a directory may have been made).
    watched: Vec<PathBuf>,
    /// Kept open for the epoll set: nothing is read from it.
    _mounts: File,
    generation: u64,
}

impl Changes {
    fn new(setup: &Setup, name: Option<&str>) -> Result<Changes> {
        let mounts = File::open(THREAD_SELF_MOUNTINFO).map_err(|source| Error::Os {
            operation: "open",
            path: Some(PathBuf::from(THREAD_SELF_MOUNTINFO)),
            source,
        })?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| Error::from_errno("epoll_create1", None, e))?;
        epoll
            .add(&mounts, EpollEvent::new(EpollFlags::EPOLLPRI, 0))
            .map_err(|e| Error::from_errno("epoll_ctl", None, e))?;
        let mut watched = Vec::new();
        let mut inotify = None;
        if let (true, Some(name)) = (setup.etc, name) {
            watched = vec![
                PathBuf::from("/etc"),
                PathBuf::from(ETC_DIR),
                Path::new(ETC_DIR).join(name),
            ];
            // Without inotify (its per-user limit of instances reached) every call builds its
            // view anew.
            inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
                .and_then(|inotify| {
                    epoll.add(&inotify, EpollEvent::new(EpollFlags::EPOLLIN, 1))?;
                    Ok(inotify)
                })
                .map_err(|errno| without_inotify(errno, "no inotify instance"))
                .ok();
        }
        let mut changes = Changes {
            epoll,
            inotify,
            watched,
            _mounts: mounts,
            generation: 0,
        };
        changes.watch();
        Ok(changes)
    }

    /// Watches each directory that exists (one made later is a change of its parent). A
    /// directory that exists but cannot be watched (`ENOSPC`: the per-user limit of watches,
    /// `fs.inotify.max_user_watches`, reached) would have its changes go unseen: inotify is
    /// given up, and every call builds its view anew from then on, as without an instance.
    fn watch(&mut self) {
        let Some(inotify) = &self.inotify else {
            return;
        };
        for dir in &self.watched {
            match inotify.add_watch(dir.as_path(), DIRECTORY_CHANGES) {
                // Missing or not a directory: nothing to watch there yet.
                Ok(_) | Err(Errno::ENOENT | Errno::ENOTDIR) => {}
                Err(errno) => {
                    without_inotify(errno, &format!("{} cannot be watched", dir.display()));
                    // Closing it takes it out of the epoll set, and its watches with it.
                    self.inotify = None;
                    return;
                }
            }
        }
    }

    /// The number of changes so far: one more when anything changed since the last look.
    fn generation(&mut self) -> u64 {
        let mut events = [EpollEvent::empty(); 2];
        let changed = match self.epoll.wait(&mut events, EpollTimeout::ZERO) {
            Ok(0) => false,
            Ok(_) | Err(_) => true,
        };
        let no_inotify = self.inotify.is_none() && !self.watched.is_empty();
        if changed || no_inotify {
            if let Some(inotify) = &self.inotify {
                // Drained, so the next look sees only later changes (EAGAIN when empty).
                while inotify.read_events().is_ok_and(|events| !events.is_empty()) {}
            }
            self.watch();
            self.generation += 1;
        }
        self.generation
    }
}

/// Warns that the `etc` view goes without inotify, and why (`what` failed with `errno`).
fn without_inotify(errno: Errno, what: &str) {
    report::warning!(
        "{what} for the `etc` view ({errno}): it is built anew for each call (inotify's \
         per-user limits: fs.inotify.max_user_instances, fs.inotify.max_user_watches)"
    );
}

fn open_file(path: &str) -> Result<OwnedFd> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| Error::Os {
            operation: "open",
            path: Some(PathBuf::from(path)),
            source,
        })
}

/// What `kcmp` compares between the calling thread and the main thread.
#[derive(Clone, Copy)]
enum Resource {
    /// `KCMP_FILES`: the file table.
    Files = 2,
    /// `KCMP_FS`: root, working directory and umask.
    Fs = 3,
}

/// Whether thread `tid` of process `pid` shares `resource` with the process's main thread
/// (`kcmp`); an error where `kcmp` is unavailable.
fn shares_with_process(
    (pid, tid): (libc::pid_t, libc::pid_t),
    resource: Resource,
) -> Result<bool, Errno> {
    sys::kcmp(pid, tid, resource as libc::c_int)
}

/// Whether the calling thread shares the process's file table (`false` when that cannot be
/// told).
pub(crate) fn shares_files_with_process() -> bool {
    let ids = (sys::getpid(), sys::gettid());
    shares_with_process(ids, Resource::Files) == Ok(true)
}

fn current_umask() -> Mode {
    // umask(2) has no query: set and set back. The thread's `fs` is its own (it has a view).
    let mask = nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(mask);
    mask
}

fn current_signal_mask() -> libc::sigset_t {
    let mask = sys::signal_mask();
    debug_assert!(mask.is_ok(), "pthread_sigmask query cannot fail");
    // An empty set, should it fail all the same.
    mask.unwrap_or_else(|_| sys::signal_set(0))
}

fn set_signal_mask(set: &libc::sigset_t) {
    let result = sys::set_signal_mask(set);
    debug_assert!(
        result.is_ok(),
        "pthread_sigmask cannot fail with valid arguments"
    );
}

/// Gives the thread its name back ([`THREAD_NAME`]) if a body renamed it.
fn restore_name() {
    const NAME: &CStr = c"in-netns";
    const _: () = assert!(NAME.to_bytes().len() == THREAD_NAME.len());
    let named =
        sys::thread_name().is_ok_and(|current| current.starts_with(NAME.to_bytes_with_nul()));
    if !named {
        let _ = sys::set_thread_name(NAME);
    }
}

/// The thread's scheduling: policy, flags, nice value and priority (`None`, and so never
/// restored, should it not be read).
#[derive(PartialEq, Eq)]
struct Scheduling(Option<sys::SchedAttr>);

impl Scheduling {
    /// The calling thread's.
    fn current() -> Scheduling {
        Scheduling::of(0)
    }

    /// Thread `tid`'s (0: the calling thread).
    fn of(tid: libc::pid_t) -> Scheduling {
        Scheduling(sys::sched_getattr(tid).ok())
    }

    fn restore(&self) -> Result<(), Left> {
        let Some(attr) = &self.0 else {
            return Ok(());
        };
        if Scheduling::current() == *self {
            return Ok(());
        }
        sys::sched_setattr(attr)
            .map_err(|e| format!("its scheduling or nice value could not be put back ({e})").into())
    }
}

/// Gives the calling (new) thread the signal mask, CPU affinity and scheduling of the process's
/// main thread `pid`, rather than those of whichever caller happened to start it: a reused
/// thread serves every caller of its security context, and puts itself back to this state after
/// each call. (Its security context, capabilities included, stays its starter's: that is the
/// context of every caller it serves.) `false` when some of it could not be adopted (a nice
/// value the starting caller raised, which only `CAP_SYS_NICE` lowers): such a thread serves
/// its starter's call and is not reused.
fn adopt_main_threads_state(pid: libc::pid_t) -> bool {
    let Some(mask) = signal_mask_of(pid) else {
        return false;
    };
    set_signal_mask(&mask);
    let affinity = sched_getaffinity(Pid::from_raw(pid))
        .is_ok_and(|affinity| sched_setaffinity(Pid::from_raw(0), &affinity).is_ok());
    let scheduling = Scheduling::of(pid);
    let scheduled = scheduling.0.is_some() && scheduling.restore().is_ok();
    adopt_main_threads_extras(pid);
    affinity && scheduled
}

/// Gives the calling (new) thread the main thread's I/O priority, personality and timer slack,
/// where they can be read (else the defaults), rather than its starter's: best effort, since a
/// thread serves as well without.
fn adopt_main_threads_extras(pid: libc::pid_t) {
    let _ = sys::set_ioprio(sys::ioprio_of(pid).unwrap_or(0));
    let read = |path: String, radix| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| u64::from_str_radix(text.trim(), radix).ok())
    };
    let persona = read(format!("/proc/self/task/{pid}/personality"), 16);
    let _ = sys::set_personality(persona.unwrap_or(0) as libc::c_int);
    // 0 is the default slack.
    let slack = read(format!("/proc/{pid}/timerslack_ns"), 10);
    let _ = sys::set_timer_slack(slack.unwrap_or(0) as libc::c_ulong);
}

/// Thread `tid`'s blocked signals, from its `SigBlk:` line in procfs (the only place one thread
/// can read another's mask).
///
/// While a thread starts another (as the main thread may be doing right now), glibc blocks every
/// signal it can in it for a moment: that mask, which no program runs with (it blocks `SIGSEGV`
/// and `SIGBUS` too), is read again after a pause, for up to about 2 ms; `None` after that.
fn signal_mask_of(tid: libc::pid_t) -> Option<libc::sigset_t> {
    // Every signal but SIGKILL, SIGSTOP and glibc's two internal ones (32, 33) blocked.
    const STARTING_A_THREAD: u64 = !((1 << 8) | (1 << 18) | (1 << 31) | (1 << 32));
    let read = || -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
        let hex = status
            .lines()
            .find_map(|line| line.strip_prefix("SigBlk:"))?;
        u64::from_str_radix(hex.trim(), 16).ok()
    };
    let starting_a_thread = |blocked: u64| blocked & STARTING_A_THREAD == STARTING_A_THREAD;
    let mut blocked = read()?;
    for _ in 0..100 {
        if !starting_a_thread(blocked) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(20));
        blocked = read()?;
    }
    if starting_a_thread(blocked) {
        return None;
    }
    Some(sys::signal_set(blocked))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::ThreadIdentity;
    use crate::sys;

    /// A thread is told from one that later has its id: by its start time.
    #[test]
    fn a_thread_identity_tells_a_thread_from_another_with_its_id() {
        let this = ThreadIdentity::of(sys::gettid());
        assert!(this.started.is_some(), "the start time is read");
        assert!(this.exists());
        let started_later = ThreadIdentity {
            started: this.started.map(|started| started + 1),
            ..this
        };
        assert!(!started_later.exists(), "another thread with this id");
        let unread = ThreadIdentity {
            started: None,
            ..this
        };
        assert!(unread.exists(), "a start time not read tells nothing");
        let ended = std::thread::spawn(|| ThreadIdentity::of(sys::gettid()))
            .join()
            .unwrap();
        // A joined thread may still be found for a moment while the kernel releases it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while ended.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!ended.exists(), "a thread that ended");
    }
}
