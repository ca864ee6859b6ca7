//! Async bodies inside a namespace: the body's future runs on a dedicated thread (a fresh one,
//! or a worker's) that entered the namespace, and the caller awaits its result without ever
//! blocking its executor thread.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use crate::error::{Error, Result};
use crate::handle::NetNs;
use crate::options::Options;
use crate::thread::builder;
use crate::worker::Worker;

/// What the caller's future and the namespace thread share.
struct Shared<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    /// The body's outcome: its value, an entry error, or its panic payload.
    outcome: Option<thread::Result<Result<T>>>,
    /// Set when the caller's future is dropped before the outcome arrived.
    cancelled: bool,
    caller: Option<Waker>,
    body: Option<Waker>,
}

impl<T> Shared<T> {
    fn new() -> Arc<Shared<T>> {
        Arc::new(Shared {
            state: Mutex::new(State {
                outcome: None,
                cancelled: false,
                caller: None,
                body: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock, but stay usable if something did.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the outcome to the caller (dropped if the caller has gone).
    fn finish(&self, outcome: thread::Result<Result<T>>) {
        let waker = {
            let mut state = self.lock();
            if state.cancelled {
                return;
            }
            state.outcome = Some(outcome);
            state.caller.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The future of [`NetNs::run_async`] and [`Worker::run_async`]: resolves to the body's output,
/// or to the error that kept it from running. A panic in the body is resumed in the task that
/// polls this future. Dropping it cancels the body at its next wake-up: the body's future is
/// dropped on the namespace thread, which then ends (or, for a worker, serves the next call).
#[must_use = "the body runs in any case, but its result and panics arrive only through this future"]
pub struct RunAsync<T> {
    shared: Option<Arc<Shared<T>>>,
    failed: Option<Error>,
}

impl<T> RunAsync<T> {
    fn failed(err: Error) -> RunAsync<T> {
        RunAsync {
            shared: None,
            failed: Some(err),
        }
    }

    /// Starts a body with `launch`, which is given where the body reports its outcome and the
    /// caller's runtime; a failure to launch is this future's `Err`.
    fn start(
        launch: impl FnOnce(Arc<Shared<T>>, Option<tokio::runtime::Handle>) -> std::io::Result<()>,
    ) -> RunAsync<T> {
        let shared = Shared::new();
        let runtime = tokio::runtime::Handle::try_current().ok();
        match launch(Arc::clone(&shared), runtime) {
            Ok(()) => RunAsync {
                shared: Some(shared),
                failed: None,
            },
            Err(source) => RunAsync::failed(Error::ThreadSpawn { source }),
        }
    }
}

impl<T> Future for RunAsync<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        if let Some(err) = this.failed.take() {
            return Poll::Ready(Err(err));
        }
        let Some(shared) = &this.shared else {
            panic!("`RunAsync` polled after it completed");
        };
        let outcome = {
            let mut state = shared.lock();
            match state.outcome.take() {
                Some(outcome) => outcome,
                None => {
                    state.caller = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        };
        this.shared = None;
        match outcome {
            Ok(result) => Poll::Ready(result),
            Err(payload) => panic::resume_unwind(payload),
        }
    }
}

impl<T> Drop for RunAsync<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let waker = {
                let mut state = shared.lock();
                state.cancelled = true;
                state.body.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

/// The body's future, ending early (with `None`) once the caller has dropped its future.
struct Cancellable<'a, F, T> {
    future: Pin<Box<F>>,
    shared: &'a Shared<T>,
}

impl<F: Future, T> Future for Cancellable<'_, F, T> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        {
            let mut state = self.shared.lock();
            if state.cancelled {
                return Poll::Ready(None);
            }
            state.body = Some(cx.waker().clone());
        }
        self.future.as_mut().poll(cx).map(Some)
    }
}

/// Runs the body on the current thread (already inside the namespace) and delivers its outcome.
fn drive<F, Fut, T>(make: F, shared: &Shared<T>, runtime: Option<tokio::runtime::Handle>)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let body = Cancellable {
            future: Box::pin(make()),
            shared,
        };
        match runtime {
            Some(runtime) => runtime.block_on(body),
            None => block_on(body),
        }
    }));
    match outcome {
        Ok(Some(value)) => shared.finish(Ok(Ok(value))),
        Ok(None) => {} // cancelled: nobody is waiting
        Err(payload) => shared.finish(Err(payload)),
    }
}

/// A minimal executor for bodies awaited outside any tokio runtime: polls on this thread and
/// parks between wake-ups.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unparker(thread::Thread);
    impl Wake for Unparker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unparker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

impl NetNs {
    /// Runs an async body inside this namespace and returns a future of its output.
    ///
    /// `f` makes the body's future on a new dedicated thread that entered the namespace; the
    /// future is polled there, so nothing it does moves the caller's executor threads, and
    /// awaiting the result never blocks them. Inside a tokio runtime the body runs with that
    /// runtime entered (`Handle::block_on`), so sockets, timers and netlink connections made in
    /// the body register with the caller's runtime and stay usable after it returns; they keep
    /// the namespace they were made in. Outside a runtime a minimal executor polls the body.
    ///
    /// The thread may outlive a dropped future, so `f` and the output are `Send + 'static`; the
    /// body's future itself need not be `Send`. On a current-thread runtime the body makes
    /// progress only while that runtime runs (as it does while the caller awaits).
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let ns = in_netns::NetNs::named("blue")?;
    /// let socket = ns
    ///     .run_async(|| async { std::net::UdpSocket::bind("127.0.0.1:0") })
    ///     .await??; // entering, then binding
    /// # Ok(()) }
    /// ```
    pub fn run_async<F, Fut, T>(&self, f: F) -> RunAsync<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        self.run_async_with(&Options::DEFAULT, f)
    }

    /// [`NetNs::run_async`] with [`Options`].
    pub fn run_async_with<F, Fut, T>(&self, options: &Options, f: F) -> RunAsync<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if let Err(err) = options.check(self) {
            return RunAsync::failed(err);
        }
        let ns = self.clone();
        let options = *options;
        RunAsync::start(|shared, runtime| {
            builder(&options)
                .spawn(move || match ns.enter_current_thread(&options) {
                    Ok(()) => drive(f, &shared, runtime),
                    Err(err) => shared.finish(Ok(Err(err))),
                })
                .map(drop)
        })
    }
}

impl Worker {
    /// Runs an async body on the worker's thread, as [`NetNs::run_async`] does on a fresh one.
    ///
    /// The worker's thread polls the body until it completes, serving no other call meanwhile.
    /// The wait for the worker happens on tokio's blocking pool inside a runtime (on a helper
    /// thread outside one), never on the caller's executor thread.
    pub fn run_async<F, Fut, T>(&self, f: F) -> RunAsync<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let worker = self.clone();
        RunAsync::start(|shared, runtime| {
            let body_runtime = runtime.clone();
            let wait_for_worker = move || {
                if let Err(err) = worker.run(|| drive(f, &shared, body_runtime)) {
                    shared.finish(Ok(Err(err)));
                }
            };
            match runtime {
                Some(runtime) => {
                    drop(runtime.spawn_blocking(wait_for_worker));
                    Ok(())
                }
                None => thread::Builder::new().spawn(wait_for_worker).map(drop),
            }
        })
    }
}
