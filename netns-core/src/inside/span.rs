//! The caller's `tracing` context, carried into the body (feature `tracing`): a body runs on
//! another thread, where the caller's current span would otherwise be none, and a subscriber
//! set for the caller's thread only (`tracing::subscriber::set_default`) would not be seen.
//! Every way a body crosses (a call, a spawn, an async body, a runtime's task) wraps it here,
//! through [`Carried`]; without the feature this is nothing.

/// The caller's span and subscriber, read when it is made.
#[cfg(feature = "tracing")]
struct Carried {
    span: tracing::Span,
    /// `None` when the caller has no subscriber: a thread that looked for one before the
    /// program set its global subscriber may still see none (tracing keeps what a thread
    /// found), and carrying that would hide the global one from the body.
    dispatch: Option<tracing::Dispatch>,
}

#[cfg(feature = "tracing")]
impl Carried {
    /// The calling thread's.
    fn here() -> Carried {
        let dispatch = tracing::dispatcher::get_default(|dispatch| {
            let none = dispatch.is::<tracing::subscriber::NoSubscriber>();
            (!none).then(|| dispatch.clone())
        });
        Carried {
            span: tracing::Span::current(),
            dispatch,
        }
    }

    /// Runs `f` under the caller's subscriber, with the caller's span entered.
    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.dispatch {
            Some(dispatch) => tracing::dispatcher::with_default(dispatch, || self.span.in_scope(f)),
            None => self.span.in_scope(f),
        }
    }

    /// `future`, polled under the caller's subscriber with the caller's span entered, at every
    /// poll (so also after an `.await`, on whichever thread polls it).
    #[cfg(feature = "tokio")]
    fn future<Fut: std::future::Future>(
        self,
        future: Fut,
    ) -> impl std::future::Future<Output = Fut::Output> {
        use tracing::instrument::{Instrument as _, WithSubscriber as _};
        let future = future.instrument(self.span);
        async move {
            match self.dispatch {
                Some(dispatch) => future.with_subscriber(dispatch).await,
                None => future.await,
            }
        }
    }
}

/// `f`, run under the current subscriber and with the current span entered (the caller's, read
/// now).
#[cfg(feature = "tracing")]
pub(crate) fn carried<F: FnOnce() -> T, T>(f: F) -> impl FnOnce() -> T {
    let carried = Carried::here();
    move || carried.run(f)
}

/// `f` itself (no `tracing`).
#[cfg(not(feature = "tracing"))]
pub(crate) fn carried<F: FnOnce() -> T, T>(f: F) -> F {
    f
}

/// `future`, polled under the current subscriber and with the current span entered (the
/// caller's, read now): a task spawned on a runtime of ours.
#[cfg(all(feature = "tracing", feature = "tokio"))]
pub(crate) fn carried_future<Fut: std::future::Future>(
    future: Fut,
) -> impl std::future::Future<Output = Fut::Output> {
    Carried::here().future(future)
}

/// `future` itself (no `tracing`).
#[cfg(all(not(feature = "tracing"), feature = "tokio"))]
pub(crate) fn carried_future<Fut: std::future::Future>(future: Fut) -> Fut {
    future
}

/// An async body `f` whose call and whose future run under the current subscriber and with the
/// current span entered (the caller's, read now).
#[cfg(feature = "tokio")]
pub(crate) fn carried_async<F, Fut>(
    f: F,
) -> impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = Fut::Output> + Send>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future + Send + 'static,
{
    #[cfg(feature = "tracing")]
    {
        let carried = Carried::here();
        move || {
            let future = carried.run(f);
            Box::pin(carried.future(future))
        }
    }
    #[cfg(not(feature = "tracing"))]
    move || Box::pin(f())
}
