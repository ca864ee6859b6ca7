//! How every thread this crate starts is made, and the throwaway scoped thread that runs one
//! task and ends. Knows nothing of namespaces: the layers above enter them.

use std::panic;
use std::sync::atomic::AtomicI32;
use std::thread;

use crate::error::{Error, Result};
use crate::fork::Born;
use crate::sync::{self, AtomicU32, Ordering, Spin};
use crate::sys;

/// The name of every thread this crate starts, so tools (and tests) tell them from the caller's
/// threads, whose name a new thread would otherwise inherit.
pub(crate) const THREAD_NAME: &str = "in-netns";

/// The stack of a thread unless its setup says otherwise: 8 MiB, the usual limit of a Linux
/// main thread (see `Setup::DEFAULT_STACK_SIZE`).
pub(crate) const DEFAULT_STACK_SIZE: usize = 8 << 20;

/// How every thread this crate starts is made: named [`THREAD_NAME`], with a stack of
/// `stack_size` bytes ([`DEFAULT_STACK_SIZE`] when `None`).
pub(crate) fn builder(stack_size: Option<usize>) -> thread::Builder {
    thread::Builder::new()
        .name(String::from(THREAD_NAME))
        .stack_size(stack_size.unwrap_or(DEFAULT_STACK_SIZE))
}

/// Whether the thread of `handle`, whose id is `tid` (0: not known yet), is gone without having
/// returned (killed by a seccomp filter, ended by a raw `exit`): std sets a thread's result
/// before the thread ends, so one that no longer exists and has no result never returned, and
/// joining it would panic. Drop such a handle instead.
pub(crate) fn ended_without_returning<T>(handle: &thread::JoinHandle<T>, tid: i32) -> bool {
    // Looked at again after the thread is seen gone: one that returned meanwhile has its result
    // by then.
    tid != 0
        && !handle.is_finished()
        && !sys::thread_exists(sys::getpid(), tid)
        && !handle.is_finished()
}

/// Runs `f` on a new thread made by [`builder`] that may borrow from the caller, and returns
/// its result, as `std::thread::scope` would; but a thread that ends without returning (its
/// body ended it: a seccomp filter's kill, a raw `exit`) is [`Error::ThreadEnded`], naming
/// `described()`, where std's scope would panic and then wait for it forever.
///
/// A panic in `f` is resumed in the caller with its original payload; a failure to start the
/// thread is [`Error::ThreadSpawn`].
pub(crate) fn on_scoped_thread<F, T>(
    stack_size: Option<usize>,
    described: impl FnOnce() -> String,
    f: F,
) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send,
    T: Send,
{
    /// The thread's signal: running (its caller spinning or asleep), then done.
    const RUNNING: u32 = 0;
    const SLEEPING: u32 = 1;
    const DONE: u32 = 2;
    let signal = AtomicU32::new(RUNNING);
    let tid = AtomicI32::new(0);
    let body = || {
        tid.store(sys::gettid(), Ordering::Release);
        let born = Born::here().ok();
        let outcome = panic::catch_unwind(panic::AssertUnwindSafe(f));
        if Born::forked_since(born) {
            // A copy in a child forked by the body: it only ends (the child with it).
            return outcome;
        }
        // The last touch of the caller's frame: it may return once it sees DONE.
        if signal.swap(DONE, Ordering::AcqRel) == SLEEPING {
            sync::futex_wake(&signal);
        }
        outcome
    };
    // SAFETY: `body` borrows `signal`, `tid` and what `f` borrows, all of which outlive the
    // thread's use of them: this function returns only after the thread marked DONE (its last
    // access; it then only ends) and was joined, or after it no longer exists (it ended
    // without returning, and will never run again). Nothing below unwinds before that.
    let spawned = unsafe { builder(stack_size).spawn_unchecked(body) };
    let thread = spawned.map_err(|source| Error::ThreadSpawn { source })?;
    let alive = || match tid.load(Ordering::Acquire) {
        0 => true,
        tid => sys::thread_exists(sys::getpid(), tid),
    };
    let done = |signal| signal == DONE;
    let waited = sync::wait_until_marked(&signal, done, (RUNNING, SLEEPING), Spin::NONE, alive);
    if waited.is_none() {
        // Gone without a result: its handle is dropped, not joined (std would panic).
        drop(thread);
        return Err(Error::ThreadEnded {
            namespace: described(),
        });
    }
    match thread.join() {
        Ok(Ok(result)) => result,
        Ok(Err(payload)) | Err(payload) => panic::resume_unwind(payload),
    }
}
