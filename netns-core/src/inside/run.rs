//! Running code inside a handle's namespace: [`NetNs::run`] on a warm thread (or a fresh
//! one), [`NetNs::spawn`] on a long-lived thread born inside.

use std::thread::JoinHandle;

use super::fresh;
use super::span;
use super::state::State;
use crate::entry::Options;
use crate::error::Result;
use crate::namespace::NetNs;
use crate::security::Context;

impl NetNs {
    /// Runs `f` inside this namespace on a dedicated thread and returns its result.
    ///
    /// The thread is a warm thread: a call is a hand-off, with no thread to start, to a thread
    /// that enters the namespace for the call (or, with views, is in it already). The first
    /// call of a pool, and calls past 16 concurrent ones, get a fresh thread that enters and
    /// ends instead. Callers never wait
    /// for each other, and a body may call into the same handle. The calling thread never
    /// changes namespace; `f` may borrow from the caller, since this returns only when `f` is
    /// done. Threads that `f` starts begin in the namespace, and sockets made in `f` belong to
    /// it for life, wherever they are used afterwards.
    ///
    /// The body runs with the caller's security context (credentials, capabilities,
    /// `no_new_privs`, seccomp filters): a warm thread serves only callers whose context is
    /// that of the caller that started it, compared at each call. After each call a warm
    /// thread puts itself back as it entered (off the caller's path: the caller already has its
    /// result): it re-enters the namespace, and puts back its signal mask, name, affinity,
    /// scheduling and the like; one whose security context a body changed, or that a body gave
    /// a file table, directory or mount namespace of its own (`unshare`), is retired instead,
    /// so every call runs inside, in the process's file table and directory. Plain calls share
    /// warm threads across handles: the thread enters the call's namespace and goes back to
    /// the process's after it, so no thread is left in the namespace once the handle's last
    /// clone is dropped, and thread-locals a body leaves may be read by a later body of another
    /// namespace (a [`Worker`](crate::Worker) keeps one thread in one namespace;
    /// [`Options::fresh_thread`] gives fresh ones). Calls with views, a stack size or an
    /// [`Options::idle_timeout`] of their own get the handle's own warm threads. Warm threads
    /// end after [`Options::idle_timeout`] without a call. A path target
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
        self.run_in_context(options, None, f)
    }

    /// [`NetNs::run_with`] for a caller in `context` when it was read just before (else it
    /// is read when a warm thread is looked for).
    pub(crate) fn run_in_context<F, T>(
        &self,
        options: &Options,
        context: Option<Context>,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        options.setup().check(self)?;
        let f = span::carried(f);
        if options.has_fresh_thread() {
            return fresh::run(self, &options.setup(), f);
        }
        let warm = &State::of(self).warm;
        match context {
            Some(context) => warm.run_in(self, options, context, f),
            None => warm.run(self, options, f),
        }
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
        // On a thread of its own, not a warm one: a spawn is rare, and leaves no thread behind.
        fresh::spawn(self, &options.setup(), span::carried(f))
    }
}
