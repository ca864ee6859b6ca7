//! Runtime helpers that `#[in_netns]` expansions call. Not public API: names and signatures
//! may change in any release.
//!
//! Every check the macro relies on is a trait bound here, so rustc reports it at the span the
//! macro chose (the user's argument, receiver, return type or target).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use netns_core::{NetNs, Options, Result, Worker};

// `private.rs` is loaded with `#[path]`, so its children are found relative to `src/`.
#[path = "private/sendable.rs"]
mod sendable;

pub use sendable::{NsReturn, Returns, Sendable};

#[path = "test_support.rs"]
pub mod test;

/// Something `#[in_netns(TARGET)]` can run in.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a namespace target for `#[in_netns]`",
    label = "expected a path (`&str`, `String`, `&Path`, `PathBuf`), a `NetNs`, a `Worker` or an `in_netns::NetnsRuntime` (owned, borrowed or in an `Arc`)",
    note = "name a namespace with `#[in_netns(name = \"NAME\")]` or a process with `#[in_netns(pid = PID)]`",
    note = "a tokio runtime is a target only when every thread of it is inside a namespace: make it with `ns.runtime(&mut tokio::runtime::Builder::new_multi_thread())` (an `in_netns::NetnsRuntime`, feature `tokio`)"
)]
pub trait Target {
    /// Opens or duplicates the namespace on the calling thread, into an owned value that
    /// borrows nothing, so the body may move what the target expression named.
    fn resolve(self) -> Result<Resolved>;
}

/// A resolved target: what runs the body. A concrete type, so that a wrong target gives one
/// error (at the target) and nothing downstream.
pub enum Resolved {
    /// The namespace: the call runs as `NetNs::run_with` runs it (a warm thread, or a fresh
    /// one).
    Namespace(NetNs),
    /// A worker's long-lived thread runs the call.
    Worker(Worker),
    /// A runtime inside a namespace: an async body runs as its task; a blocking body runs on a
    /// fresh thread inside, with the runtime entered.
    #[cfg(feature = "tokio")]
    Runtime(RuntimeTarget),
}

/// What a [`NetnsRuntime`](netns_core::NetnsRuntime) target resolves to: enough to reach it without
/// borrowing it, and the runtime itself when the function was given it by value.
#[cfg(feature = "tokio")]
pub struct RuntimeTarget {
    handle: tokio::runtime::Handle,
    ns: NetNs,
    options: Options,
    /// The runtime, or the `Arc` holding it, when the target was given by value: it must
    /// outlive the call.
    _owner: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Resolved {
    /// Keeps `owner` (what the target was given as) alive until the call is done, where it
    /// owns what runs the call: a runtime shuts down with its last handle.
    #[cfg_attr(
        not(feature = "tokio"),
        allow(
            unused_variables,
            reason = "without tokio, no target needs its owner kept"
        )
    )]
    fn keep_alive(self, owner: impl std::any::Any + Send + Sync) -> Resolved {
        match self {
            #[cfg(feature = "tokio")]
            Resolved::Runtime(mut runtime) => {
                runtime._owner = Some(Box::new(owner));
                Resolved::Runtime(runtime)
            }
            other => other,
        }
    }
}

impl Resolved {
    fn execute<F, R>(&self, options: &Options, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        match self {
            Resolved::Namespace(ns) => ns.run_with(options, f),
            // Flags with a worker target do not compile, so `options` is the default here.
            Resolved::Worker(worker) => worker.run(f),
            #[cfg(feature = "tokio")]
            Resolved::Runtime(runtime) => runtime.ns.run_with(&runtime.options, || {
                let _entered = runtime.handle.enter();
                f()
            }),
        }
    }
}

/// Targets that take per-call options; a long-lived worker is configured when it is made.
#[diagnostic::on_unimplemented(
    message = "`sysfs`, `etc`, `fresh_thread` and `stack_size` cannot be set per call on `{Self}`",
    label = "a worker's or a runtime's setup is set when it is made",
    note = "make it with `ns.worker_with(&setup)` or `ns.runtime_with(&setup, &mut builder)` (an `in_netns::Setup`), and remove the flags here"
)]
pub trait AcceptsOptions {}

/// `#[in_netns(name = EXPR)]`.
pub struct Name<N>(pub N);

/// `#[in_netns(pid = EXPR)]`.
pub struct Pid(pub u32);

/// Resolves the target on the calling thread, before the body's captures move.
pub fn resolve<T: Target>(target: T) -> Result<Resolved> {
    target.resolve()
}

/// [`resolve`] for a call with any per-call option (a row of `OPTIONS` in `netns-macros`):
/// fails to compile, at the option, when the target does not take per-call options.
pub fn resolve_with_options<T: Target + AcceptsOptions>(target: T) -> Result<Resolved> {
    target.resolve()
}

impl AcceptsOptions for NetNs {}
impl AcceptsOptions for &NetNs {}
impl<T: ?Sized> AcceptsOptions for Arc<T> where for<'a> &'a T: AcceptsOptions {}
impl<T: ?Sized> AcceptsOptions for &Arc<T> where for<'a> &'a T: AcceptsOptions {}
impl<N> AcceptsOptions for Name<N> {}
impl AcceptsOptions for Pid {}
impl<T: ?Sized> AcceptsOptions for &&T where for<'a> &'a T: AcceptsOptions {}

impl Target for NetNs {
    fn resolve(self) -> Result<Resolved> {
        Ok(Resolved::Namespace(self))
    }
}

/// A borrowed handle resolves to a clone sharing its descriptor: no syscall per call.
impl Target for &NetNs {
    fn resolve(self) -> Result<Resolved> {
        Ok(Resolved::Namespace(self.clone()))
    }
}

impl Target for Worker {
    fn resolve(self) -> Result<Resolved> {
        Ok(Resolved::Worker(self))
    }
}

impl Target for &Worker {
    fn resolve(self) -> Result<Resolved> {
        Ok(Resolved::Worker(self.clone()))
    }
}

/// A shared handle: `Arc<NetNs>`, `Arc<Worker>` (owned, as async functions need, or borrowed).
impl<T: ?Sized + Send + Sync + 'static> Target for Arc<T>
where
    for<'a> &'a T: Target,
{
    fn resolve(self) -> Result<Resolved> {
        Ok((&*self).resolve()?.keep_alive(self))
    }
}

impl<T: ?Sized> Target for &Arc<T>
where
    for<'a> &'a T: Target,
{
    fn resolve(self) -> Result<Resolved> {
        (&**self).resolve()
    }
}

/// A reference to a reference, as `&ns` gives when `ns` is already a `&NetNs` or a `&str`.
impl<'a, T: ?Sized> Target for &&'a T
where
    &'a T: Target,
{
    fn resolve(self) -> Result<Resolved> {
        (*self).resolve()
    }
}

#[cfg(feature = "tokio")]
impl Target for netns_core::NetnsRuntime {
    fn resolve(self) -> Result<Resolved> {
        Ok((&self).resolve()?.keep_alive(self))
    }
}

/// A borrowed runtime: its tasks run while the caller keeps it.
#[cfg(feature = "tokio")]
impl Target for &netns_core::NetnsRuntime {
    fn resolve(self) -> Result<Resolved> {
        Ok(Resolved::Runtime(RuntimeTarget {
            handle: self.handle().clone(),
            ns: self.namespace().clone(),
            options: Options::from(self.setup()),
            _owner: None,
        }))
    }
}

/// Path-like targets open the path.
macro_rules! path_targets {
    ($($ty:ty),*) => {$(
        impl Target for $ty {
            fn resolve(self) -> Result<Resolved> {
                NetNs::open(self).map(Resolved::Namespace)
            }
        }

        impl AcceptsOptions for $ty {}
    )*};
}

path_targets!(&str, String, &String, &Path, PathBuf, &PathBuf);

impl<N: AsRef<str>> Target for Name<N> {
    fn resolve(self) -> Result<Resolved> {
        NetNs::named(self.0.as_ref()).map(Resolved::Namespace)
    }
}

impl Target for Pid {
    fn resolve(self) -> Result<Resolved> {
        NetNs::of_pid(self.0).map(Resolved::Namespace)
    }
}

/// Runs the rewritten body `f` in `target`; entry failures become the function's `Err`.
pub fn run<F, R>(target: Result<Resolved>, options: Options, returns: Returns<R>, f: F) -> R
where
    F: FnOnce() -> R + Send,
{
    let outcome = target.and_then(|executor| executor.execute(&options, || returns.wrap(f())));
    match outcome {
        Ok(value) => value.into_inner(),
        Err(err) => (returns.from_error)(err),
    }
}

/// Runs the rewritten body of an `async fn` in `target`; entry failures become its `Err`.
#[cfg(feature = "tokio")]
pub async fn run_async<F, Fut, R>(
    target: Result<Resolved>,
    options: Options,
    returns: Returns<R>,
    f: F,
) -> R
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = R> + Send + 'static,
    R: 'static,
{
    let body = move || {
        let future = f();
        async move { returns.wrap(future.await) }
    };
    // Held until the call is done, so an owned runtime target outlives its task.
    let target = match target {
        Ok(target) => target,
        Err(err) => return (returns.from_error)(err),
    };
    let call = match &target {
        Resolved::Namespace(ns) => ns.run_async_with(&options, body),
        Resolved::Worker(worker) => worker.run_async(body),
        // Flags with a runtime target do not compile: the runtime has its options.
        Resolved::Runtime(runtime) => {
            let namespace = runtime.ns.to_string();
            netns_core::__private::spawn_on_runtime(&runtime.handle, namespace, async move {
                body().await
            })
        }
    };
    match call.await {
        Ok(value) => value.into_inner(),
        Err(err) => (returns.from_error)(err),
    }
}
