//! The caller's `tracing` span, carried into the body (feature `tracing`): a body runs on
//! another thread, where the caller's current span would otherwise be none. Every way a body
//! crosses (a call, a spawn, an async body) wraps it here; without the feature this is nothing.

/// `f`, run with the current span (the caller's, read now) entered.
#[cfg(feature = "tracing")]
pub(crate) fn carried<F: FnOnce() -> T, T>(f: F) -> impl FnOnce() -> T {
    let span = tracing::Span::current();
    move || span.in_scope(f)
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
    let span = tracing::Span::current();
    move || {
        #[cfg(feature = "tracing")]
        {
            let future = span.in_scope(f);
            Box::pin(tracing::Instrument::instrument(future, span))
        }
        #[cfg(not(feature = "tracing"))]
        Box::pin(f())
    }
}
