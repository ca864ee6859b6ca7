//! The one fork guard: telling a forked child from the process that made something, without a
//! syscall per call.
//!
//! A fork copies only the calling thread, so in a child the threads that a pool, a `Worker` or a
//! runtime started do not exist, and their locks may be held forever by a thread that was not
//! copied: the child must not wait for them, lock them, or join them. `getpid` is a syscall
//! (about a third of a warm call here); instead a `pthread_atfork` child handler counts forks,
//! and what was made records the count ([`Born`]) and compares it with the current one, a plain
//! atomic load.
//!
//! One policy: whatever keeps threads records a [`Born`], made by [`Born::here`], which fails
//! only when the counter cannot be registered (`pthread_atfork`'s ENOMEM); the first thing that
//! needs it then returns that error rather than guess.

use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;

use crate::error::{Error, Result};
use crate::once::NoWaitOnce;
use crate::sys;

/// How many forks lie between the process that started the program and this one.
static GENERATION: AtomicU32 = AtomicU32::new(0);

extern "C" fn forked_child() {
    // Async-signal-safe, as an atfork child handler must be: one atomic add.
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The process something was made in, as the number of forks before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Born(u32);

impl Born {
    /// This process. Registers the fork counter first, once per process: without it a child
    /// could not tell, so a failure (ENOMEM) is an error. (Threads that race to be first may
    /// each register it, so that a fork counts more than once: harmless, since a [`Born`] is
    /// only compared for equality. A `OnceLock` would be worse: a child forked while a parent
    /// thread registered would wait forever.)
    pub(crate) fn here() -> Result<Born> {
        static REGISTERED: NoWaitOnce<Result<(), Errno>> = NoWaitOnce::new();
        match REGISTERED.get_or_init(|| sys::atfork_child(forked_child)) {
            Ok(()) => Ok(Born(GENERATION.load(Ordering::Relaxed))),
            Err(errno) => Err(Error::from_errno("pthread_atfork", None, *errno)),
        }
    }

    /// Whether this is still the process it was made in (not a forked child of it).
    pub(crate) fn is_here(self) -> bool {
        GENERATION.load(Ordering::Relaxed) == self.0
    }

    /// Whether a body that ran on this thread forked, and this is the copy of the thread in the
    /// child, given the [`Born`] read (`.ok()`) before the body ran (`None`: forks cannot be
    /// counted, and this says no). Such a copy must not touch its caller's frame: the caller
    /// does not exist in the child, and its stack is one the child's C library counts as free
    /// (it unmaps it, or gives it to the next thread it starts).
    pub(crate) fn forked_since(before: Option<Born>) -> bool {
        before.is_some_and(|born| !born.is_here())
    }
}
