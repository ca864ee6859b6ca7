//! The future of an async body inside a namespace, in one of two ways:
//!
//! - [`NetNs::run_async`](crate::NetNs::run_async): each poll of the body is a call on a warm
//!   thread inside (as [`NetNs::run`](crate::NetNs::run)), with the handle's namespace runtime
//!   entered, so that what the body spawns, and the I/O and timers it registers, belong to that
//!   runtime, whose every thread is inside. The caller's runtime thread waits for the poll as
//!   it waits for a `run` (a hand-off, not a wake-up of a sleeping runtime thread), and the
//!   body's wakers are the caller's.
//! - [`NetnsRuntime::spawn`](crate::NetnsRuntime::spawn): the body is a task of that runtime,
//!   and the caller awaits its result through a waker.

use std::any::Any;
use std::future::Future;
use std::panic;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::entry::Options;
use crate::error::{Error, Result};
use crate::namespace::NetNs;
use crate::security::Context as SecurityContext;

/// The future of an async body running inside a namespace ([`NetNs::run_async`](crate::NetNs::run_async),
/// [`Worker::run_async`](crate::Worker::run_async), [`NetnsRuntime::spawn`](crate::NetnsRuntime::spawn)): resolves to the body's output, or to the error
/// that kept it from running. A panic in the body is resumed in the task that polls this
/// future. Dropping it aborts the body (at the `.await` it waits at, inside the namespace).
#[must_use = "dropping this future aborts the body; await it for its result"]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct RunAsync<T> {
    state: State<T>,
}

enum State<T> {
    /// A body polled on warm threads inside ([`RunAsync::polled`]).
    Polled(Box<Polled<T>>),
    Running {
        task: JoinHandle<T>,
        /// Keeps the runtime the task runs on alive until the body is done (a runtime for
        /// bodies, which the caller may drop every handle of meanwhile).
        _kept: Option<Arc<dyn Any + Send + Sync>>,
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
                _kept: None,
                namespace,
            },
        }
    }

    /// The body `make` makes, made and polled inside `ns` with `options`, each poll a call on a
    /// thread inside in `maker`'s security context (the caller's) with `runtime` entered: the
    /// handle of the namespace runtime for bodies of that context, which `kept` keeps alive until
    /// the body is done.
    pub(crate) fn polled(
        ns: &NetNs,
        options: Options,
        maker: SecurityContext,
        (runtime, kept): (Handle, Arc<dyn Any + Send + Sync>),
        make: impl FnOnce() -> Pin<Box<dyn Future<Output = T> + Send>> + Send + 'static,
    ) -> RunAsync<T> {
        RunAsync {
            state: State::Polled(Box::new(Polled {
                ns: ns.clone(),
                options,
                maker,
                runtime,
                kept,
                drop_on: drop_on::<T>,
                // Made on the first poll, so inside: `make` runs the user's closure.
                body: Some(Exclusive::new(Box::pin(async move { make().await }))),
            })),
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
            State::Polled(polled) => f
                .debug_struct("RunAsync::Polled")
                .field("namespace", &polled.ns.describe())
                .finish_non_exhaustive(),
            State::Running { namespace, .. } => f
                .debug_struct("RunAsync::Running")
                .field("namespace", namespace)
                .finish_non_exhaustive(),
            State::Failed(err) => f.debug_tuple("RunAsync::Failed").field(err).finish(),
            State::Done => f.write_str("RunAsync::Done"),
        }
    }
}

impl<T: Send + 'static> Future for RunAsync<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        let outcome = match &mut this.state {
            State::Polled(polled) => {
                let poller = SecurityContext::current();
                if poller != polled.maker {
                    // Polled from another security context than its maker's (the future moved
                    // to another thread, or this one's rights changed): the body goes on as a
                    // task of the maker's runtime, whose threads have the maker's context, as
                    // the tasks it spawns do. It never runs with the poller's rights.
                    this.state = polled.take_as_task();
                    return Pin::new(this).poll(cx);
                }
                let polled = polled.poll(poller, cx);
                if polled.is_ready() {
                    this.state = State::Done;
                }
                return polled;
            }
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

/// A body polled on warm threads inside.
struct Polled<T> {
    ns: NetNs,
    options: Options,
    /// The security context of the caller of `run_async`: every poll runs in it.
    maker: SecurityContext,
    runtime: Handle,
    kept: Arc<dyn Any + Send + Sync>,
    /// How a body not completed is dropped ([`drop_on`] for this output type).
    drop_on: DropOn<T>,
    /// `None` once it completed.
    body: Option<Exclusive<Pin<Box<dyn Future<Output = T> + Send>>>>,
}

/// A value reached only through `&mut` (a future polled through `Pin<&mut RunAsync>`), and so
/// `Sync` whenever it is `Send`, as `RunAsync` is for a `Send` output: a mutex that is never
/// locked, only reached through [`Mutex::get_mut`] (no lock taken, never poisoned).
struct Exclusive<T>(std::sync::Mutex<T>);

impl<T> Exclusive<T> {
    fn new(value: T) -> Exclusive<T> {
        Exclusive(std::sync::Mutex::new(value))
    }

    fn get_mut(&mut self) -> &mut T {
        match self.0.get_mut() {
            Ok(value) => value,
            Err(never_locked) => never_locked.into_inner(),
        }
    }

    fn into_inner(self) -> T {
        match self.0.into_inner() {
            Ok(value) => value,
            Err(never_locked) => never_locked.into_inner(),
        }
    }
}

impl<T: Send> Polled<T> {
    /// Polls the body once, on a thread inside for a caller in `context` (the maker's), with
    /// the namespace runtime entered and the caller's waker. A panic of the body resumes here;
    /// the body stays, to be dropped inside.
    fn poll(&mut self, context: SecurityContext, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let Some(body) = self.body.as_mut().map(Exclusive::get_mut) else {
            panic!("`RunAsync` polled after it completed")
        };
        let runtime = &self.runtime;
        let waker = cx.waker();
        let polled = self.ns.run_in_context(&self.options, Some(context), || {
            let _entered = runtime.enter();
            body.as_mut().poll(&mut Context::from_waker(waker))
        });
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => {
                // What the body held was dropped inside, as it completed.
                self.body = None;
                Poll::Ready(Ok(value))
            }
            Err(err) => Poll::Ready(Err(err)),
        }
    }
}

impl<T: Send + 'static> Polled<T> {
    /// The body, not completed, as a task of the runtime.
    fn take_as_task(&mut self) -> State<T> {
        let Some(body) = self.body.take().map(Exclusive::into_inner) else {
            panic!("`RunAsync` polled after it completed")
        };
        State::Running {
            task: self.runtime.spawn(body),
            _kept: Some(Arc::clone(&self.kept)),
            namespace: self.ns.describe(),
        }
    }
}

impl<T> Drop for Polled<T> {
    fn drop(&mut self) {
        // A body dropped before it completed drops what it holds on the namespace runtime: on
        // a thread inside, in the maker's context, with the runtime entered (as a task aborted
        // there is dropped).
        if let Some(body) = self.body.take().map(Exclusive::into_inner) {
            (self.drop_on)(body, &self.runtime);
        }
    }
}

/// A body, and the runtime to drop it on.
type DropOn<T> = fn(Pin<Box<dyn Future<Output = T> + Send>>, &Handle);

/// Drops `body` in a task of `runtime` (a `Drop` impl cannot ask for the `'static` output
/// a task needs; the constructor, which can, picks this).
fn drop_on<T: Send + 'static>(body: Pin<Box<dyn Future<Output = T> + Send>>, runtime: &Handle) {
    drop(runtime.spawn(async move { drop(body) }));
}

impl<T> Drop for RunAsync<T> {
    fn drop(&mut self) {
        if let State::Running { task, .. } = &self.state {
            task.abort();
        }
    }
}
