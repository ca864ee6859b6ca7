//! Async bodies inside a namespace: each body runs as a task on a tokio runtime whose every
//! thread is inside (see [`crate::runtime`]), and the caller awaits its result through a waker,
//! from any runtime or none, without ever blocking a thread.

use std::future::Future;
use std::panic;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::handle::NetNs;
use crate::options::Options;
use crate::runtime::Runtime;
use crate::worker::Worker;

/// The future of an async body running inside a namespace ([`NetNs::run_async`],
/// [`Worker::run_async`], [`Runtime::spawn`]): resolves to the body's output, or to the error
/// that kept it from running. A panic in the body is resumed in the task that polls this
/// future. Dropping it aborts the body's task (at its next `.await`, inside the namespace).
#[must_use = "dropping this future aborts the body; await it for its result"]
pub struct RunAsync<T> {
    state: State<T>,
}

enum State<T> {
    Running {
        task: JoinHandle<T>,
        /// Keeps the handle's body runtime alive until the body is done, even when the caller
        /// dropped every handle meanwhile.
        _runtime: Option<Arc<Runtime>>,
        /// Names the namespace in the error of a task its runtime cancelled.
        namespace: String,
    },
    Failed(Error),
    Done,
}

impl<T: Send + 'static> RunAsync<T> {
    /// Spawns `future` on `handle`, which must be the handle of a namespace [`Runtime`] (the
    /// only runtimes whose tasks run inside). For `#[in_netns]` expansions; use
    /// [`Runtime::spawn`].
    /// `namespace` names it in errors.
    #[doc(hidden)]
    pub fn spawn<F>(handle: &Handle, namespace: String, future: F) -> RunAsync<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        RunAsync {
            state: State::Running {
                task: handle.spawn(future),
                _runtime: None,
                namespace,
            },
        }
    }

    /// Spawns the body `f` makes on `runtime`; `f` itself runs inside, on the runtime.
    fn on_runtime<F, Fut>(runtime: Arc<Runtime>, namespace: String, f: F) -> RunAsync<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let task = runtime.handle().spawn(async move { f().await });
        RunAsync {
            state: State::Running {
                task,
                _runtime: Some(runtime),
                namespace,
            },
        }
    }

    fn failed(err: Error) -> RunAsync<T> {
        RunAsync {
            state: State::Failed(err),
        }
    }
}

impl<T> Future for RunAsync<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        let outcome = match &mut this.state {
            State::Running { task, .. } => match Pin::new(task).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(outcome) => outcome,
            },
            State::Failed(_) => {
                let State::Failed(err) = std::mem::replace(&mut this.state, State::Done) else {
                    unreachable!("matched just above")
                };
                return Poll::Ready(Err(err));
            }
            State::Done => panic!("`RunAsync` polled after it completed"),
        };
        // Done: release the runtime (and the task) before handing out the outcome.
        let State::Running { namespace, .. } = std::mem::replace(&mut this.state, State::Done)
        else {
            unreachable!("matched just above")
        };
        match outcome {
            Ok(value) => Poll::Ready(Ok(value)),
            Err(err) if err.is_panic() => panic::resume_unwind(err.into_panic()),
            // Only the runtime's shutdown cancels a task this future still owns.
            Err(_) => Poll::Ready(Err(Error::RuntimeShutDown { namespace })),
        }
    }
}

impl<T> Drop for RunAsync<T> {
    fn drop(&mut self) {
        if let State::Running { task, .. } = &self.state {
            task.abort();
        }
    }
}

impl NetNs {
    /// Runs an async body inside this namespace and returns a future of its output.
    ///
    /// The body runs as a task on the handle's own runtime for async bodies: a current-thread
    /// tokio runtime whose driver thread and blocking pool are inside the namespace, made on
    /// the first call and shared by the handle's clones. So everything the body does stays
    /// inside: its `tokio::spawn`ed tasks, `spawn_blocking`, `tokio::fs`, DNS lookups, timers,
    /// `tokio::process` children. The caller's runtime is never entered and none of its threads
    /// moves; awaiting the result only registers a waker, from any runtime or none.
    ///
    /// Sockets, timers and netlink connections made in the body are driven by that runtime, so
    /// they stay usable, from anywhere, as long as a clone of this handle (or the returned
    /// value's own use of it) lives; a socket made in the body keeps the namespace for life.
    /// To drive a socket from your own runtime instead, make a `std` socket in the body and
    /// convert it with `from_std` outside.
    ///
    /// `f`, its future and the output are `Send + 'static`, as for `tokio::spawn`. Dropping the
    /// returned future aborts the body at its next `.await`; a panic in the body resumes in the
    /// caller.
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
    pub fn run_async<F, Fut, T>(&self, f: F) -> RunAsync<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_async_with(&Options::DEFAULT, f)
    }

    /// [`NetNs::run_async`] with [`Options`]: the body's runtime has the `/sys` and `/etc`
    /// view of `options` on every thread (one runtime per set of options).
    pub fn run_async_with<F, Fut, T>(&self, options: &Options, f: F) -> RunAsync<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        match self.body_runtime(options) {
            Ok(runtime) => RunAsync::on_runtime(runtime, self.describe(), f),
            Err(err) => RunAsync::failed(err),
        }
    }
}

impl Worker {
    /// Runs an async body inside the worker's namespace, with the worker's options.
    ///
    /// The body runs as a task on the namespace runtime of the handle the worker was made from
    /// (as [`NetNs::run_async_with`] with the worker's options), not on the worker's own
    /// thread, so it never waits for, or blocks, the worker's blocking calls; and the caller
    /// waits on a waker, never on a thread.
    pub fn run_async<F, Fut, T>(&self, f: F) -> RunAsync<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.namespace().run_async_with(&self.options(), f)
    }
}
