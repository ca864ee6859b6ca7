//! The future of an async body inside a namespace: the body runs as a task on a tokio runtime
//! whose every thread is inside (a [`NetnsRuntime`](super::runtime::NetnsRuntime)), and the caller awaits
//! its result through a waker, from any runtime or none, without ever blocking a thread.

use std::any::Any;
use std::future::Future;
use std::panic;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// The future of an async body running inside a namespace ([`NetNs::run_async`](crate::NetNs::run_async),
/// [`Worker::run_async`](crate::Worker::run_async), [`NetnsRuntime::spawn`](crate::NetnsRuntime::spawn)): resolves to the body's output, or to the error
/// that kept it from running. A panic in the body is resumed in the task that polls this
/// future. Dropping it aborts the body's task (at its next `.await`, inside the namespace).
#[must_use = "dropping this future aborts the body; await it for its result"]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct RunAsync<T> {
    state: State<T>,
}

enum State<T> {
    Running {
        task: JoinHandle<T>,
        /// Keeps the runtime the body runs on alive until the body is done, even when the
        /// caller dropped every handle meanwhile.
        _runtime: Option<Arc<dyn Any + Send + Sync>>,
        /// Names the namespace in the error of a task its runtime cancelled.
        namespace: String,
    },
    Failed(Error),
    Done,
}

impl<T: Send + 'static> RunAsync<T> {
    /// Spawns `future` on `handle`, which must be the handle of a namespace
    /// [`NetnsRuntime`](super::runtime::NetnsRuntime) (the only runtimes whose tasks run inside).
    /// `namespace` names it in errors.
    pub(crate) fn on_handle<F>(handle: &Handle, namespace: String, future: F) -> RunAsync<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        RunAsync {
            state: State::Running {
                // The spawning caller's span, inside the task (feature `tracing`).
                task: handle.spawn(super::span::carried_future(future)),
                _runtime: None,
                namespace,
            },
        }
    }

    /// Spawns the body `f` makes on `handle`, which `runtime` (kept alive until the body is
    /// done) owns; `f` itself runs inside, on the runtime.
    pub(crate) fn on_runtime<F, Fut>(
        handle: &Handle,
        runtime: Arc<dyn Any + Send + Sync>,
        namespace: String,
        f: F,
    ) -> RunAsync<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let task = handle.spawn(async move { f().await });
        RunAsync {
            state: State::Running {
                task,
                _runtime: Some(runtime),
                namespace,
            },
        }
    }

    pub(crate) fn failed(err: Error) -> RunAsync<T> {
        RunAsync {
            state: State::Failed(err),
        }
    }
}

/// Where the body is: running (inside which namespace), failed to start (with the error), or
/// done.
impl<T> std::fmt::Debug for RunAsync<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.state {
            State::Running { namespace, .. } => f
                .debug_struct("RunAsync::Running")
                .field("namespace", namespace)
                .finish_non_exhaustive(),
            State::Failed(err) => f.debug_tuple("RunAsync::Failed").field(err).finish(),
            State::Done => f.write_str("RunAsync::Done"),
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
