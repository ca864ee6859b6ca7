//! Async bodies: [`NetNs::run_async`] and [`Worker::run_async`] poll a body on the handle's warm
//! threads with its runtime for async bodies entered (made on first use and kept in the
//! handle's state), one hand-off per poll.

use std::future::Future;

use super::run_async::RunAsync;
use super::span;
use super::state::State;
use super::worker::Worker;
use crate::entry::Options;
use crate::namespace::NetNs;
use crate::security::Context;

impl NetNs {
    /// Runs an async body inside this namespace and returns a future of its output.
    ///
    /// Each poll of the body is a call on a warm thread inside, as [`NetNs::run`] is, with the
    /// security context of the thread that called `run_async` (a future awaited from a thread
    /// in another context goes on as a task of that runtime), with the handle's own runtime for
    /// async bodies
    /// entered: a current-thread tokio runtime whose driver thread and blocking pool are inside
    /// the namespace, made on the first call and shared by the handle's clones. So everything
    /// the body does stays inside: its `tokio::spawn`ed tasks, `spawn_blocking`, `tokio::fs`,
    /// DNS lookups, timers, `tokio::process` children. The caller's runtime is never entered
    /// and none of its threads moves; between polls the caller waits on a waker, and during one
    /// its thread waits for the warm thread, as for a `run` (so a poll, here as anywhere,
    /// should not block). Awaiting a socket made this way costs about what `run` does, not a
    /// wake-up of a sleeping runtime thread.
    ///
    /// Sockets, timers and netlink connections made in the body are driven by that runtime, so
    /// they stay usable, from anywhere, as long as a clone of this handle (or the returned
    /// value's own use of it) lives; a socket made in the body keeps the namespace for life.
    /// To drive a socket from your own runtime instead, make a `std` socket in the body and
    /// convert it with `from_std` outside.
    ///
    /// `f`, its future and the output are `Send + 'static`, as for `tokio::spawn`. Dropping the
    /// returned future drops the body inside, at the `.await` it waits at; a panic in the body
    /// resumes in the caller.
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let ns = in_netns::NetNs::named("blue")?;
    /// let socket = ns
    ///     .run_async(|| async { tokio::net::UdpSocket::bind("127.0.0.1:0").await })
    ///     .await??; // entering, then binding
    /// # Ok(()) }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn run_async<F, Fut, T>(&self, f: F) -> RunAsync<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_async_with(&Options::DEFAULT, f)
    }

    /// [`NetNs::run_async`] with [`Options`]: the body's runtime has the `/sys` and `/etc`
    /// view of `options` on every thread (one runtime per [`Setup`](crate::Setup): options
    /// that differ only in how a call finds its thread share it).
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn run_async_with<F, Fut, T>(&self, options: &Options, f: F) -> RunAsync<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        // The body runs with this caller's security context, as do the tasks it spawns.
        let maker = Context::current();
        match State::of(self)
            .body_runtimes
            .get(self, &options.setup(), &maker)
        {
            Ok(runtime) => {
                let runtime = (runtime.handle().clone(), runtime as _);
                RunAsync::polled(self, *options, maker, runtime, span::carried_async(f))
            }
            Err(err) => RunAsync::failed(err),
        }
    }
}

impl Worker {
    /// Runs an async body inside the worker's namespace, with the worker's setup.
    ///
    /// The body is polled on warm threads inside (shared ones, for the default setup), with the
    /// namespace runtime of the handle the worker was made from entered (as [`NetNs::run_async_with`] with the worker's setup), not on
    /// the worker's own thread, so it never waits for, or blocks, the worker's blocking calls.
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn run_async<F, Fut, T>(&self, f: F) -> RunAsync<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.namespace()
            .run_async_with(&Options::from(self.setup()), f)
    }
}
