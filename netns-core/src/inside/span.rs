//! The caller's `tracing` span, carried into the body (feature `tracing`): a body runs on
//! another thread, where the caller's current span would otherwise be none. Every way a body
//! crosses (a call, a spawn, an async body) wraps it here; without the feature this is nothing.

/// `f`, run under the current subscriber and with the current span entered (the caller's, read
/// now): a subscriber set for the caller's thread only (`set_default`) is the body's too.
#[cfg(feature = "tracing")]
pub(crate) fn carried<F: FnOnce() -> T, T>(f: F) -> impl FnOnce() -> T {
    let span = tracing::Span::current();
    let dispatch = callers_subscriber();
    move || match &dispatch {
        Some(dispatch) => tracing::dispatcher::with_default(dispatch, || span.in_scope(f)),
        None => span.in_scope(f),
    }
}

/// The caller's subscriber, unless it has none: a thread that looked for one before the
/// program set its global subscriber may still see none (tracing keeps what a thread found),
/// and carrying that would hide the global one from the body.
#[cfg(feature = "tracing")]
fn callers_subscriber() -> Option<tracing::Dispatch> {
    tracing::dispatcher::get_default(|dispatch| {
        let none = dispatch.is::<tracing::subscriber::NoSubscriber>();
        (!none).then(|| dispatch.clone())
    })
}

/// `f` itself (no `tracing`).
#[cfg(not(feature = "tracing"))]
pub(crate) fn carried<F: FnOnce() -> T, T>(f: F) -> F {
    f
}

/// `future`, polled with the current span (the caller's, read now) entered.
#[cfg(all(feature = "tracing", feature = "tokio"))]
pub(crate) fn carried_future<Fut: std::future::Future>(
    future: Fut,
) -> impl std::future::Future<Output = Fut::Output> {
    tracing::Instrument::instrument(future, tracing::Span::current())
}

/// `future` itself (no `tracing`).
#[cfg(all(not(feature = "tracing"), feature = "tokio"))]
pub(crate) fn carried_future<Fut: std::future::Future>(future: Fut) -> Fut {
    future
}

/// An async body `f` whose call and whose future run with the current span (the caller's,
/// read now) entered.
#[cfg(feature = "tokio")]
pub(crate) fn carried_async<F, Fut>(
    f: F,
) -> impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = Fut::Output> + Send>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future + Send + 'static,
{
    #[cfg(feature = "tracing")]
    let (span, dispatch) = (tracing::Span::current(), callers_subscriber());
    move || {
        #[cfg(feature = "tracing")]
        {
            use tracing::instrument::WithSubscriber as _;
            let future = match &dispatch {
                Some(dispatch) => tracing::dispatcher::with_default(dispatch, || span.in_scope(f)),
                None => span.in_scope(f),
            };
            let future = tracing::Instrument::instrument(future, span);
            Box::pin(async move {
                match dispatch {
                    Some(dispatch) => future.with_subscriber(dispatch).await,
                    None => future.await,
                }
            })
        }
        #[cfg(not(feature = "tracing"))]
        Box::pin(f())
    }
}
