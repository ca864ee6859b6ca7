//! Telling a forked child from the process that made a worker, without a syscall per call.
//!
//! A fork copies only the calling thread, so in a child a worker's thread does not exist and a
//! call must not wait for it. `getpid` is a syscall (about a third of a warm call here); instead
//! a `pthread_atfork` child handler counts forks, and a worker compares the count it was made
//! with against the current one, a plain atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;

use crate::error::{Error, Result};

/// How many forks lie between the process that started the program and this one.
static GENERATION: AtomicU32 = AtomicU32::new(0);

extern "C" fn forked_child() {
    // Async-signal-safe, as an atfork child handler must be: one atomic add.
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Registers the fork counter, once per process, before the first worker exists. Without it a
/// child could not tell, so a failure (ENOMEM) fails the worker's creation.
pub(crate) fn watch() -> Result<()> {
    static REGISTERED: OnceLock<i32> = OnceLock::new();
    let code = *REGISTERED.get_or_init(|| {
        // SAFETY: registers a child handler that only does an atomic add, and no prepare or
        // parent handler; the handler is a plain function, valid for the life of the process.
        unsafe { nix::libc::pthread_atfork(None, None, Some(forked_child)) }
    });
    match code {
        0 => Ok(()),
        code => Err(Error::from_errno(
            "pthread_atfork",
            None,
            Errno::from_raw(code),
        )),
    }
}

/// The number of forks seen by this process (0 in the original one).
pub(crate) fn generation() -> u32 {
    GENERATION.load(Ordering::Relaxed)
}
