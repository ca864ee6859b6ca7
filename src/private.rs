//! Runtime helpers that `#[in_netns]` expansions call. Not public API: names and signatures
//! may change in any release.
//!
//! Every check the macro relies on is a trait bound here, so rustc reports it at the span the
//! macro chose (the user's argument, receiver, return type or target).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use netns_core::{Error, NetNs, Options, Result, Worker};

/// Something `#[in_netns(TARGET)]` can run in.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a namespace target for `#[in_netns]`",
    label = "expected a path (`&str`, `String`, `&Path`, `PathBuf`), a `NetNs` or a `Worker` (owned, borrowed or in an `Arc`)",
    note = "name a namespace with `#[in_netns(name = \"NAME\")]` or a process with `#[in_netns(pid = PID)]`"
)]
pub trait Target {
    /// Opens or duplicates the namespace on the calling thread, into an owned value that
    /// borrows nothing, so the body may move what the target expression named.
    fn resolve(self) -> Result<Resolved>;
}

/// A resolved target: what runs the body. A concrete type, so that a wrong target gives one
/// error (at the target) and nothing downstream.
pub enum Resolved {
    /// A fresh scoped thread enters this namespace for the call.
    Namespace(NetNs),
    /// A worker's long-lived thread runs the call.
    Worker(Worker),
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
        }
    }
}

/// Targets that take per-call options; a long-lived worker is configured when it is made.
#[diagnostic::on_unimplemented(
    message = "`sysfs`, `etc` and `stack_size` cannot be set per call on `{Self}`",
    label = "a worker's options are set when it is made",
    note = "make the worker with `Worker::with_options(&ns, &Options::default().sysfs(true))` and remove the flags here"
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

/// [`resolve`] for a call with `sysfs`, `etc` or `stack_size`: fails to compile, at the option,
/// when the target does not take per-call options.
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
impl<T: ?Sized> Target for Arc<T>
where
    for<'a> &'a T: Target,
{
    fn resolve(self) -> Result<Resolved> {
        (&*self).resolve()
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
        NetNs::from_pid(self.0).map(Resolved::Namespace)
    }
}

/// The return types `#[in_netns]` accepts: a `Result` whose error type can hold a
/// [`in_netns::Error`](Error), so a failure to enter becomes the function's `Err`.
#[diagnostic::on_unimplemented(
    message = "`#[in_netns]` functions must return `Result<_, E>` with `E: From<in_netns::Error>`, not `{Self}`",
    label = "entering the namespace can fail, so this must be a `Result`",
    note = "`in_netns::Error`, `std::io::Error` and `anyhow::Error` all work as `E`"
)]
pub trait NsReturn {
    /// The function's result when the namespace cannot be entered.
    fn from_netns_error(err: Error) -> Self;
}

impl<T, E: From<Error>> NsReturn for Result<T, E> {
    fn from_netns_error(err: Error) -> Self {
        Err(E::from(err))
    }
}

/// Proof that the function's return type `R` may cross threads and can report entry failures.
/// Only [`Returns::checked`] makes one, and only when `R: Send + NsReturn`.
pub struct Returns<R> {
    from_error: fn(Error) -> R,
}

impl<R: Send + NsReturn> Returns<R> {
    /// Checks, at the return type, that `R` is `Send` and a suitable `Result`.
    pub fn checked() -> Returns<R> {
        Returns {
            from_error: R::from_netns_error,
        }
    }
}

impl<R: Send + NsReturn + 'static> Returns<R> {
    /// [`Returns::checked`] for an `async fn`, whose result may outlive the caller's borrows.
    pub fn checked_owned() -> Returns<R> {
        Returns::checked()
    }
}

impl<R> Clone for Returns<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Returns<R> {}

impl<R> Returns<R> {
    fn wrap(&self, value: R) -> Sendable<R> {
        Sendable(Some(value))
    }
}

/// A value proven `Send` where it was wrapped, so the check's error points there. Also the slot
/// a sync body takes its argument from ([`Sendable::take`]), so the argument is moved only once.
pub struct Sendable<T>(Option<T>);

// SAFETY: a `Sendable<T>` is only ever made where `T: Send` was proven: by `Sendable::new` or
// `Sendable::new_owned`, which require it, or by `Returns::wrap`, whose `Returns<T>` only
// `Returns::checked` makes, which requires it. So every `Sendable<T>` that exists holds a `T: Send`.
unsafe impl<T> Send for Sendable<T> {}

impl<T: Send> Sendable<T> {
    /// Wraps an argument or receiver; fails to compile, at the caller's span, unless `T: Send`.
    pub fn new(value: T) -> Sendable<T> {
        Sendable(Some(value))
    }
}

impl<T: Send + 'static> Sendable<T> {
    /// Wraps an argument or receiver of an `async fn`: it moves to a thread that may outlive
    /// the caller's future, so it must also own its data.
    pub fn new_owned(value: T) -> Sendable<T> {
        Sendable(Some(value))
    }
}

impl<T> Sendable<T> {
    /// Unwraps the value on the namespace thread.
    pub fn into_inner(mut self) -> T {
        self.take()
    }

    /// Takes the value out of its slot in the caller's frame, on the namespace thread.
    pub fn take(&mut self) -> T {
        match self.0.take() {
            Some(value) => value,
            // Each slot is taken once, by the one body that owns it.
            None => unreachable!("an `#[in_netns]` argument was taken twice"),
        }
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
    Fut: std::future::Future<Output = R> + 'static,
    R: 'static,
{
    let body = move || {
        let future = f();
        async move { returns.wrap(future.await) }
    };
    let call = match target {
        Ok(Resolved::Namespace(ns)) => ns.run_async_with(&options, body),
        Ok(Resolved::Worker(worker)) => worker.run_async(body),
        Err(err) => return (returns.from_error)(err),
    };
    match call.await {
        Ok(value) => value.into_inner(),
        Err(err) => (returns.from_error)(err),
    }
}
