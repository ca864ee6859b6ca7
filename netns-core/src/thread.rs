//! Running code on dedicated threads inside a namespace: the handle's warm threads
//! ([`crate::warm`]), or a fresh scoped thread that enters and ends.
//!
//! Either way a thread enters one namespace once and never leaves it, so no thread is ever
//! switched back or stranded, and the calling thread's namespace never changes.

use std::os::fd::{AsFd, BorrowedFd};
use std::panic;
use std::path::Path;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};

use crate::error::{Error, Result};
use crate::handle::NetNs;
use crate::options::Options;

/// The name of every thread this crate starts, so tools (and tests) tell them from the caller's
/// threads, whose name a new thread would otherwise inherit.
pub(crate) const THREAD_NAME: &str = "in-netns";

/// How every thread this crate starts is made: named [`THREAD_NAME`], with the stack `options`
/// asks for.
pub(crate) fn builder(options: &Options) -> thread::Builder {
    thread::Builder::new()
        .name(String::from(THREAD_NAME))
        .stack_size(options.thread_stack_size())
}

/// Runs `f` on a new scoped thread made as `options` asks, and returns its result.
///
/// A panic in `f` is resumed in the caller with its original payload; a failure to start the
/// thread is [`Error::ThreadSpawn`].
pub(crate) fn on_scoped_thread<F, T>(options: &Options, f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send,
    T: Send,
{
    thread::scope(|scope| {
        let thread = builder(options)
            .spawn_scoped(scope, f)
            .map_err(|source| Error::ThreadSpawn { source })?;
        thread
            .join()
            .unwrap_or_else(|payload| panic::resume_unwind(payload))
    })
}

/// Moves the calling thread into the network namespace `fd` refers to (`path`, when known, is
/// what errors name).
pub(crate) fn enter_net(fd: BorrowedFd<'_>, path: Option<&Path>) -> Result<()> {
    setns(fd, CloneFlags::CLONE_NEWNET).map_err(|errno| match (errno, path) {
        (Errno::EINVAL, Some(path)) => Error::NotNetns {
            path: path.to_path_buf(),
            found: "a namespace that setns(CLONE_NEWNET) refuses".to_owned(),
        },
        (errno, path) => Error::from_errno("setns", path, errno),
    })
}

impl NetNs {
    /// Moves the calling thread into this namespace and applies `options`: for a thread that
    /// runs one call and ends (a reused one enters through [`crate::worker::home`]).
    pub(crate) fn enter_current_thread(&self, options: &Options) -> Result<()> {
        enter_net(self.as_fd(), self.path())?;
        options.apply_views(self.name())
    }

    /// Runs `f` inside this namespace on a dedicated thread and returns its result.
    ///
    /// The thread is one of the handle's warm threads, which are inside the namespace: a warm
    /// call is a hand-off, with no thread to start. The handle's first call, and calls past [`MAX_WARM`](crate::MAX_WARM)
    /// concurrent ones, get a fresh thread that enters and ends instead. Callers never wait
    /// for each other, and a body may call into the same handle. The calling thread never
    /// changes namespace; `f` may borrow from the caller, since this returns only when `f` is
    /// done. Threads that `f` starts begin in the namespace, and sockets made in `f` belong to
    /// it for life, wherever they are used afterwards.
    ///
    /// After each call a warm thread puts itself back as it entered (off the caller's path:
    /// the caller already has its result): it re-enters the namespace, and puts back its signal
    /// mask, name, affinity, scheduling and capabilities; one that a body gave a file table,
    /// directory or mount namespace of its own (`unshare`) is retired instead, so every call
    /// runs inside, in the process's file table and directory. Warm threads keep their
    /// thread-locals between calls into the same namespace (use [`Options::fresh_thread`] for
    /// fresh ones), end after [`Options::idle_timeout`] without a call, and end with the last
    /// clone of the handle, before its drop returns. A path target
    /// (`#[in_netns("/run/netns/blue")]`) opens a handle per call: hold a `NetNs` on hot paths.
    ///
    /// A panic in `f` is resumed in the caller with its original payload, and the thread it ran
    /// on is retired. A failure to start the thread or to enter the namespace is an `Err`, and
    /// `f` does not run.
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let ns = in_netns::NetNs::named("blue")?;
    /// // The outer `?` is entering the namespace, the inner one binding the socket.
    /// let listener = ns.run(|| std::net::TcpListener::bind("127.0.0.1:0"))??;
    /// # Ok(()) }
    /// ```
    pub fn run<F, T>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        self.run_with(&Options::DEFAULT, f)
    }

    /// [`NetNs::run`] with [`Options`]: a private `/sys` or `/etc` view for the body, or another
    /// stack size.
    pub fn run_with<F, T>(&self, options: &Options, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        options.check(self)?;
        if options.has_fresh_thread() {
            return self.run_on_fresh_thread(options, f);
        }
        self.warm_threads().run(self, options, f)
    }

    /// Runs `f` inside this namespace on a new scoped thread that ends after it.
    pub(crate) fn run_on_fresh_thread<F, T>(&self, options: &Options, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        on_scoped_thread(options, || {
            self.enter_current_thread(options)?;
            Ok(f())
        })
    }

    /// Starts a long-lived thread inside this namespace and returns its handle.
    ///
    /// Returns only once the thread is in the namespace, so an entry failure is this call's
    /// `Err`. (A short-lived scoped thread enters the namespace and starts the long-lived one,
    /// which is born inside it.)
    pub fn spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_with(&Options::DEFAULT, f)
    }

    /// [`NetNs::spawn`] with [`Options`].
    pub fn spawn_with<F, T>(&self, options: &Options, f: F) -> Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let view = *options;
        options.check(self)?;
        // On a thread of its own, not a warm one: a spawn is rare, and leaves no thread behind.
        self.run_on_fresh_thread(options, || {
            let (followed, following) = mpsc::sync_channel(1);
            let thread = builder(&view).spawn(move || {
                view.follow_current_thread();
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
}
