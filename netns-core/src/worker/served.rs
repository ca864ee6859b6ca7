//! A served thread: a long-lived thread that entered a namespace and runs calls handed to it,
//! kept as it entered between them ([`home`](super::home)). The one kind of reused thread
//! behind warm threads and the `Worker`.
//!
//! It is born outside (from the caller that needs it), enters on its own first thing, and the
//! caller's first call waits for that. A thread that could not enter, or that a call left in
//! a state it cannot be put back from, refuses its next call (the caller gets the task back)
//! and ends: its caller retires it (a warm thread) or replaces it (a `Worker`'s).

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::fork;
use super::handoff::{After, Caller, Handoff, Keeper, Outcome};
use super::home::{Home, Left, Target};
use crate::error::{Error, Result};
use crate::options::LOG_TARGET;
use crate::thread::builder;

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
    thread: Mutex<Option<JoinHandle<Ended>>>,
}

impl Served {
    /// A hand-off with no thread yet: [`Served::start`] gives it one.
    pub(crate) fn new(spin_for: Duration) -> Arc<Served> {
        Arc::new(Served {
            handoff: Handoff::new(spin_for),
            thread: Mutex::new(None),
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
        let started = builder(target.options()).spawn(move || {
            let generation = fork::generation();
            let home = match Home::enter(&target) {
                Ok(home) => home,
                Err(err) => {
                    drop(entered);
                    // The first call is refused, and its caller gets `err` from the join.
                    served.handoff.serve(from, None, &mut Refuse);
                    return Ended::NotEntered(err);
                }
            };
            entered();
            let mut kept = Kept {
                home,
                target: &target,
                generation,
                expire: || expire(&served),
                left: None,
            };
            served.handoff.serve(from, idle, &mut kept);
            match kept.left {
                Some(left) => Ended::Retired(left),
                None => Ended::Served,
            }
        });
        let thread = started.map_err(|source| Error::ThreadSpawn { source })?;
        *lock(&self.thread) = Some(thread);
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

    /// The hand-off's address: tells a call made on the served thread itself.
    pub(crate) fn handoff(&self) -> *const Handoff {
        &self.handoff
    }

    /// Takes the thread's handle, leaving none (to join it, or to move it to a list of ended
    /// threads).
    pub(crate) fn take_thread(&self) -> Option<JoinHandle<Ended>> {
        lock(&self.thread).take()
    }

    /// Makes the thread end: at once, waiting for an in-flight call first; or, called on the
    /// thread itself (`own`, inside a call), after the current call.
    pub(crate) fn stop(&self, own: bool) {
        self.handoff.stop(!own);
    }
}

/// Joins `thread`, logging why it was retired: the entry error, when it could not enter.
pub(crate) fn join(thread: Option<JoinHandle<Ended>>) -> Option<Error> {
    match thread?.join() {
        Ok(Ended::NotEntered(err)) => Some(err),
        Ok(Ended::Retired(left)) => {
            log::debug!(target: LOG_TARGET, "a namespace thread was retired: {}", left.reason);
            close_orphans(left.orphaned);
            None
        }
        Ok(Ended::Served) | Err(_) => None,
    }
}

/// The keeper of a thread that entered.
struct Kept<'a, E> {
    home: Home,
    target: &'a Target,
    /// The fork generation the thread was born in: a copy in a child ends after its call.
    generation: u32,
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
                self.left = Some(format!("its view could not be built again: {err}").into());
                false
            }
        }
    }

    fn after_call(&mut self) -> After {
        // A fork inside the call copied this thread into the child, as its only thread: there it
        // ends after the call, as a fresh thread would.
        if fork::generation() != self.generation {
            return After::End;
        }
        match self.home.restore(self.target) {
            Ok(()) => After::Serve,
            Err(left) => {
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

/// Locks `mutex`, also after a panic elsewhere left it poisoned: nothing panics while holding
/// the locks of served threads and their pools, so what they guard stays consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
