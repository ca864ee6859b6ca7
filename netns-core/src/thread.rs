//! How every thread this crate starts is made, and the throwaway scoped thread that runs one
//! task and ends. Knows nothing of namespaces: the layers above enter them.

use std::panic;
use std::thread;

use crate::error::{Error, Result};

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

/// Runs `f` on a new scoped thread made by [`builder`], and returns its result.
///
/// A panic in `f` is resumed in the caller with its original payload; a failure to start the
/// thread is [`Error::ThreadSpawn`].
pub(crate) fn on_scoped_thread<F, T>(stack_size: Option<usize>, f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send,
    T: Send,
{
    thread::scope(|scope| {
        let thread = builder(stack_size)
            .spawn_scoped(scope, f)
            .map_err(|source| Error::ThreadSpawn { source })?;
        thread
            .join()
            .unwrap_or_else(|payload| panic::resume_unwind(payload))
    })
}
