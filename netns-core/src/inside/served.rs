//! A served thread: a long-lived thread that entered a namespace and runs calls handed to it,
//! kept as it entered between them ([`home`](super::home)). The one kind of reused thread
//! behind warm threads and the `Worker`.
//!
//! It is born outside (from the caller that needs it), enters on its own first thing, and the
//! caller's first call waits for that. A thread that could not enter, or that a call left in
//! a state it cannot be put back from, refuses its next call (the caller gets the task back)
//! and ends: its caller retires it (a warm thread) or replaces it (a `Worker`'s).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::handoff::{After, Caller, Handoff, Keeper, Outcome};
use super::home::{Home, Left, Target};
use super::own::{self, Owner};
use crate::error::{Error, Result};
use crate::fork::Born;
use crate::report;
use crate::sync::lock;
use crate::sys;
use crate::thread::{self, builder};

/// How a served thread ended.
pub(crate) enum Ended {
    /// Stopped, expired, or a copy in a forked child: nothing to report.
    Served,
    /// It could not enter: the error its first caller gets.
    NotEntered(Error),
    /// A call left it in a state it could not be put back from.
    Retired(Left),
}

/// A served thread and the hand-off its callers reach it through.
pub(crate) struct Served {
    handoff: Handoff,
    thread: Mutex<Option<ServedThread>>,
    /// Marks the thread as this one's ([`own`]), so that a call made on it runs inline and
    /// nothing waits on it for itself.
    owner: Owner,
    /// Whether the thread entered (and so may have served calls).
    entered: std::sync::atomic::AtomicBool,
}

/// A served thread's handle, to join it: [`join`] knows when it must not.
pub(crate) struct ServedThread {
    owner: Owner,
    handle: JoinHandle<Ended>,
    /// Its thread id once it runs (0 before), to tell a thread that ended without returning.
    tid: Arc<AtomicI32>,
}

impl Served {
    /// A hand-off with no thread yet: [`Served::start`] gives it one.
    pub(crate) fn new(spin_for: Duration) -> Arc<Served> {
        Arc::new(Served {
            handoff: Handoff::new(spin_for),
            thread: Mutex::new(None),
            owner: Owner::new(),
            entered: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Starts the thread that serves `self` from the `from`th call on: it enters `target`,
    /// runs `entered` (dropped unrun if it could not enter), then serves. With an `idle` time it
    /// asks `expire` whether to end after that long without a call.
    pub(crate) fn start(
        self: &Arc<Served>,
        target: Arc<Target>,
        from: u32,
        idle: Option<Duration>,
        expire: impl Fn(&Arc<Served>) -> bool + Send + 'static,
        entered: impl FnOnce() + Send + 'static,
    ) -> Result<()> {
        let served = Arc::clone(self);
        let born = Born::here()?;
        let owner = self.owner;
        let tid = Arc::new(AtomicI32::new(0));
        let its_tid = Arc::clone(&tid);
        let started = builder(Some(target.setup().stack_size)).spawn(move || {
            its_tid.store(sys::gettid(), Ordering::Release);
            owner.adopt_current_thread();
            let ended = serve(&served, &target, born, from, idle, expire, entered);
            // From here on (its thread-locals' destructors too) the thread joins no one.
            own::mark_ending();
            ended
        });
        let handle = started.map_err(|source| Error::ThreadSpawn { source })?;
        *lock(&self.thread) = Some(ServedThread { owner, handle, tid });
        Ok(())
    }

    /// Runs `task` on the thread ([`Handoff::call`]).
    pub(crate) fn call<F, T>(&self, task: F) -> Outcome<F, T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        self.handoff.call(task)
    }

    /// Becomes the one caller ([`Handoff::caller`]).
    pub(crate) fn caller(&self) -> Caller<'_> {
        self.handoff.caller()
    }

    /// Whether the calling thread is this one's thread (also in a child forked from inside a
    /// call, whose one thread is a copy of it).
    pub(crate) fn is_current_thread(&self) -> bool {
        self.owner.owns_current_thread()
    }

    /// Whether the thread entered its target: one that did not refuses its first call and ends
    /// at once, with the entry error for its joiner.
    pub(crate) fn entered(&self) -> bool {
        self.entered.load(Ordering::Acquire)
    }

    /// Takes the thread's handle, leaving none (to join it, or to move it to a list of ended
    /// threads).
    pub(crate) fn take_thread(&self) -> Option<ServedThread> {
        lock(&self.thread).take()
    }

    /// Makes the thread end: at once, waiting for an in-flight call first; or, called on the
    /// thread itself (`own`, inside a call), after the current call.
    pub(crate) fn stop(&self, own: bool) {
        self.handoff.stop(!own);
    }
}

/// The life of a served thread: enter, then serve calls until stopped, expired or retired.
fn serve(
    served: &Arc<Served>,
    target: &Target,
    born: Born,
    from: u32,
    idle: Option<Duration>,
    expire: impl Fn(&Arc<Served>) -> bool,
    entered: impl FnOnce(),
) -> Ended {
    let home = match Home::enter(target) {
        Ok(home) => home,
        Err(err) => {
            drop(entered);
            // The first call is refused, and its caller gets `err` from the join.
            served.handoff.serve(from, None, &mut Refuse);
            return Ended::NotEntered(err);
        }
    };
    served.entered.store(true, Ordering::Release);
    entered();
    let mut kept = Kept {
        home,
        target,
        born,
        expire: || expire(served),
        left: None,
    };
    served.handoff.serve(from, idle, &mut kept);
    match kept.left {
        Some(left) => Ended::Retired(left),
        None => Ended::Served,
    }
}

/// Joins `thread`, logging why it was retired: the entry error, when it could not enter.
///
/// Joins nothing on the thread itself, which cannot wait for itself, nor on one of our threads
/// that is ending ([`own::ending`]): what such a thread drops may hold the last clone of a handle
/// whose threads hold the last clone of its own, and two threads that join each other never
/// end. Those threads are left to end on their own (they have been told to stop).
pub(crate) fn join(thread: Option<ServedThread>) -> Option<Error> {
    let thread = thread?;
    if thread.owner.owns_current_thread() || own::ending() {
        return None;
    }
    if thread.ended_without_returning() {
        // Nothing to join: its result never comes (std's join would panic). Dropping the
        // handle lets the C library free what is left of the thread.
        report::debug!("a namespace thread had ended without returning (its body ended it)");
        return None;
    }
    match thread.handle.join() {
        Ok(Ended::NotEntered(err)) => Some(err),
        Ok(Ended::Retired(left)) => {
            close_orphans(left.orphaned);
            None
        }
        Ok(Ended::Served) | Err(_) => None,
    }
}

impl ServedThread {
    /// Whether joining it would not wait: the thread is gone (std's `is_finished` says true
    /// before its thread-locals' destructors, which may take long, have run).
    pub(crate) fn is_finished(&self) -> bool {
        match self.tid.load(Ordering::Acquire) {
            0 => false,
            tid => !sys::thread_exists(sys::getpid(), tid),
        }
    }

    fn ended_without_returning(&self) -> bool {
        thread::ended_without_returning(&self.handle, self.tid.load(Ordering::Acquire))
    }
}

/// The keeper of a thread that entered.
struct Kept<'a, E> {
    home: Home,
    target: &'a Target,
    /// The process the thread was born in: a copy in a forked child ends after its call.
    born: Born,
    expire: E,
    left: Option<Left>,
}

impl<E: Fn() -> bool> Keeper for Kept<'_, E> {
    fn before_call(&mut self) -> bool {
        match self.home.refresh(self.target) {
            Ok(()) => true,
            Err(err) => {
                // The call is refused, and runs on a thread that builds its view from scratch
                // (and reports the error should it fail there too).
                self.left = Some(format!("its view could not be built again: {err:?}").into());
                false
            }
        }
    }

    fn after_call(&mut self) -> After {
        // A fork inside the call copied this thread into the child, as its only thread: there it
        // ends after the call, as a fresh thread would.
        if !self.born.is_here() {
            return After::End;
        }
        match self.home.restore(self.target) {
            Ok(()) => After::Serve,
            Err(left) => {
                report::debug!(
                    "a thread of {} was retired: {}",
                    self.target.described,
                    left.reason
                );
                self.left = Some(left);
                After::Retire
            }
        }
    }

    fn expire(&self) -> bool {
        (self.expire)()
    }
}

/// The keeper of a thread that could not enter: it refuses its first call.
struct Refuse;

impl Keeper for Refuse {
    fn before_call(&mut self) -> bool {
        false
    }

    fn after_call(&mut self) -> After {
        unreachable!("a thread that refuses its calls runs none")
    }

    fn expire(&self) -> bool {
        false
    }
}

/// Closes, in the process's file table, descriptors that a retired thread opened there before
/// it left the table ([`Left::orphaned`]). Only from a thread that shares that table: in one of
/// its own the numbers could be other files.
fn close_orphans(orphaned: Vec<std::os::fd::RawFd>) {
    if orphaned.is_empty() || !super::home::shares_files_with_process() {
        return;
    }
    for fd in orphaned {
        // SAFETY: the retired thread opened `fd` in the process's file table, which this thread
        // shares, and gave up owning it there (it kept only its own copy): nothing else owns it.
        drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    }
}
