//! Fresh threads: a scoped thread that enters, runs one call and ends, for what warm threads
//! do not serve (a pool's first call, calls past the warm bound, a forked child's calls,
//! `Options::fresh_thread`), and long-lived threads born inside ([`NetNs::spawn`]).

use std::os::fd::AsFd;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::entry::{self, Setup, views};
use crate::error::{Error, Result};
use crate::namespace::NetNs;
use crate::thread::{builder, on_scoped_thread};

/// Moves the calling thread into `ns` as `setup` says: for a thread that runs one call and
/// ends, or a runtime's thread, which never leaves (a reused one enters through
/// [`home`](super::home), which also puts it back after each call).
pub(crate) fn enter(ns: &NetNs, setup: &Setup) -> Result<()> {
    entry::enter_thread(ns.as_fd(), ns.path(), ns.name(), setup)
}

/// Runs `f` inside `ns` on a new scoped thread, set up as `setup` says, that ends after it.
pub(crate) fn run<F, T>(ns: &NetNs, setup: &Setup, f: F) -> Result<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    on_scoped_thread(
        Some(setup.stack_size),
        || ns.describe(),
        || {
            enter(ns, setup)?;
            Ok(f())
        },
    )
}

/// Starts a long-lived thread inside `ns`, set up as `setup` says, and returns its handle once
/// it is inside. (A short-lived scoped thread enters and starts the long-lived one, which is
/// born inside.)
pub(crate) fn spawn<F, T>(ns: &NetNs, setup: &Setup, f: F) -> Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    setup.check(ns)?;
    let view = *setup;
    run(ns, setup, || {
        let (followed, following) = mpsc::sync_channel(1);
        let thread = builder(Some(view.stack_size)).spawn(move || {
            views::follow_current_thread(&view);
            let _ = followed.send(());
            f()
        })?;
        // Until the new thread has taken the view over, parts of it (`/proc/net`) follow
        // this one, which must not end before. (An error means the new thread has gone.)
        let _ = following.recv();
        Ok(thread)
    })?
    .map_err(|source| Error::ThreadSpawn { source })
}
