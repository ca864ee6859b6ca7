//! Feature `tracing`: the caller's current span is the current span inside every kind of body
//! (a call, a spawn, a `Worker` call, the attribute in both orders with `#[tracing::instrument]`,
//! async bodies), and the crate's records are `tracing` events naming the namespace.

mod common;

use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use in_netns::{NetNs, NetnsRuntime, Options, in_netns};
use tracing::Span;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry as Spans};

/// The messages of the crate's events (target `in_netns`), as they come.
static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Keeps the crate's events.
struct Recorder;

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "in_netns" {
            let mut message = String::new();
            event.record(&mut Message(&mut message));
            EVENTS.lock().unwrap().push(message);
        }
    }
}

struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

/// A span registry for the whole process (a body runs on other threads, so a thread-local
/// subscriber would not see it), set once.
fn subscribe() {
    static SET: OnceLock<()> = OnceLock::new();
    SET.get_or_init(|| {
        tracing::subscriber::set_global_default(Spans::default().with(Recorder))
            .expect("the only global subscriber");
    });
}

/// The names of the current span and its parents, innermost first (empty: no span).
fn spans_here() -> Vec<String> {
    let Some(id) = Span::current().id() else {
        return Vec::new();
    };
    tracing::dispatcher::get_default(|dispatch| {
        let spans = dispatch.downcast_ref::<Spans>()?;
        let span = spans.span(&id)?;
        Some(span.scope().map(|span| span.name().to_owned()).collect())
    })
    .unwrap_or_default()
}

/// Runs `f` in a span named `request`, as a service's handler would.
fn in_request<T>(f: impl FnOnce() -> T) -> T {
    subscribe();
    tracing::info_span!("request").in_scope(f)
}

#[in_netns::test]
fn a_call_and_a_call_on_a_fresh_thread_run_in_the_callers_span() {
    let ns = NetNs::new().unwrap();
    let warm = in_request(|| {
        ns.run(|| ()).unwrap(); // the first call is a fresh thread's; the next ones warm
        ns.run(spans_here).unwrap()
    });
    assert_eq!(warm, ["request"]);
    let fresh = in_request(|| ns.run_with(&Options::default().fresh_thread(true), spans_here));
    assert_eq!(fresh.unwrap(), ["request"]);
    assert!(
        spans_here().is_empty(),
        "the caller's own span is left as it was"
    );
}

#[in_netns::test]
fn a_spawned_thread_and_a_worker_call_run_in_the_callers_span() {
    let ns = NetNs::new().unwrap();
    let spawned = in_request(|| ns.spawn(spans_here).unwrap());
    assert_eq!(spawned.join().unwrap(), ["request"]);
    let worker = ns.worker().unwrap();
    assert_eq!(in_request(|| worker.run(spans_here)).unwrap(), ["request"]);
}

#[in_netns(ns)]
#[tracing::instrument(skip_all)]
fn instrumented_inside(ns: &NetNs) -> in_netns::Result<Vec<String>> {
    Ok(spans_here())
}

#[tracing::instrument(skip_all)]
#[in_netns(ns)]
fn instrumented_outside(ns: &NetNs) -> in_netns::Result<Vec<String>> {
    Ok(spans_here())
}

/// A parameter that only the span records: no `unused_variables` warning from the expansion
/// (`cargo clippy -- -D warnings` builds this file), in either order.
#[in_netns(ns)]
#[tracing::instrument(skip(ns), fields(doubled = n * 2))]
fn recorded_only_inside(ns: &NetNs, n: u32) -> in_netns::Result<Vec<String>> {
    Ok(spans_here())
}

#[tracing::instrument(skip(ns))]
#[in_netns(ns)]
fn recorded_only_outside(ns: &NetNs, n: u32) -> in_netns::Result<Vec<String>> {
    Ok(spans_here())
}

/// A subscriber set for the calling thread only (as tests set theirs) is the body's too.
#[in_netns::test]
fn a_thread_scoped_subscriber_is_the_bodys_too() {
    let ns = NetNs::new().unwrap();
    ns.run(|| ()).unwrap();
    let recorded = std::sync::Arc::new(Mutex::new(Vec::new()));
    let local = Spans::default().with(Local(std::sync::Arc::clone(&recorded)));
    tracing::subscriber::with_default(local, || {
        tracing::info_span!("local").in_scope(|| {
            ns.run(|| tracing::info!(target: "local-test", "inside"))
                .unwrap();
            ns.worker()
                .unwrap()
                .run(|| tracing::info!(target: "local-test", "on a worker"))
                .unwrap();
        });
    });
    assert_eq!(
        *recorded.lock().unwrap(),
        ["inside in local", "on a worker in local"]
    );
    assert_eq!(
        in_request(|| recorded_only_inside(&ns, 2)).unwrap(),
        ["recorded_only_inside", "request"]
    );
    assert_eq!(
        in_request(|| recorded_only_outside(&ns, 2)).unwrap(),
        ["recorded_only_outside", "request"]
    );
}

#[in_netns(runtime)]
async fn event_on_a_runtime(runtime: &NetnsRuntime) -> in_netns::Result<()> {
    tokio::task::yield_now().await;
    tracing::info!(target: "local-test", "in an async fn");
    Ok(())
}

/// A subscriber set for the calling thread only is also that of a task spawned on a namespace
/// runtime and of an `#[in_netns(runtime)] async fn`, after an `.await` too.
#[in_netns::test]
fn a_thread_scoped_subscriber_is_a_runtime_tasks_too() {
    let ns = NetNs::new().unwrap();
    let runtime = ns
        .runtime(tokio::runtime::Builder::new_multi_thread().worker_threads(1))
        .unwrap();
    let host = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let recorded = std::sync::Arc::new(Mutex::new(Vec::new()));
    let local = Spans::default().with(Local(std::sync::Arc::clone(&recorded)));
    tracing::subscriber::with_default(local, || {
        tracing::info_span!("local").in_scope(|| {
            let spawned = runtime.spawn(async {
                tokio::task::yield_now().await;
                tracing::info!(target: "local-test", "spawned");
            });
            host.block_on(spawned).unwrap();
            host.block_on(event_on_a_runtime(&runtime)).unwrap();
        });
    });
    assert_eq!(
        *recorded.lock().unwrap(),
        ["spawned in local", "in an async fn in local"]
    );
}

/// Keeps the events of target `local-test` with the name of the span they were in.
struct Local(std::sync::Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Local {
    fn on_event(&self, event: &tracing::Event<'_>, context: Context<'_, S>) {
        if event.metadata().target() == "local-test" {
            let mut message = String::new();
            event.record(&mut Message(&mut message));
            let span = context.event_span(event).map(|span| span.name().to_owned());
            let in_span = span.unwrap_or_default();
            self.0
                .lock()
                .unwrap()
                .push(format!("{message} in {in_span}"));
        }
    }
}

/// `#[tracing::instrument]` under `#[in_netns]` or over it: either way the body runs in the
/// function's span, itself in the caller's.
#[in_netns::test]
fn the_attribute_keeps_the_functions_span_in_both_orders() {
    let ns = NetNs::new().unwrap();
    let under = in_request(|| instrumented_inside(&ns)).unwrap();
    assert_eq!(under, ["instrumented_inside", "request"]);
    let over = in_request(|| instrumented_outside(&ns)).unwrap();
    assert_eq!(over, ["instrumented_outside", "request"]);
}

#[in_netns(ns)]
async fn async_body(ns: &NetNs) -> in_netns::Result<Vec<String>> {
    tokio::task::yield_now().await;
    Ok(spans_here())
}

/// Async bodies, on the handle's runtime, on a `Worker`'s, in an `#[in_netns] async fn` and on
/// a runtime target: the span of the caller that started them, also after an `.await`.
#[in_netns::test]
fn async_bodies_run_in_the_span_of_the_caller_that_started_them() {
    let ns = NetNs::new().unwrap();
    let host = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = || async {
        tokio::task::yield_now().await;
        spans_here()
    };
    let on_handle = in_request(|| host.block_on(ns.run_async(body)));
    assert_eq!(on_handle.unwrap(), ["request"]);
    let worker = ns.worker().unwrap();
    let on_worker = in_request(|| host.block_on(worker.run_async(body)));
    assert_eq!(on_worker.unwrap(), ["request"]);
    let attribute = in_request(|| host.block_on(async_body(&ns)));
    assert_eq!(attribute.unwrap(), ["request"]);
    let runtime = ns
        .runtime(tokio::runtime::Builder::new_multi_thread().worker_threads(1))
        .unwrap();
    let spawned = in_request(|| host.block_on(runtime.spawn(body())));
    assert_eq!(spawned.unwrap(), ["request"]);
    let blocked_on = in_request(|| runtime.block_on(body()));
    assert_eq!(blocked_on.unwrap(), ["request"]);
}

/// Making, naming and removing a namespace are debug events that name it.
#[in_netns::test]
fn namespace_operations_are_events_naming_the_namespace() {
    subscribe();
    let temp = common::TempRegistry::new("tracing-registry");
    let (registry, dir) = (&temp.registry, temp.dir().to_path_buf());
    let name = common::unique_name("traced");
    let ns = registry.create(&name).unwrap();
    let path = dir.join(&name).display().to_string();
    let alias = format!("{name}-alias");
    registry.attach(&ns, &alias).unwrap();
    registry.remove(&alias).unwrap();
    registry.remove(&name).unwrap();
    let events = EVENTS.lock().unwrap().clone();
    let about = |what: &str, path: &str| {
        events
            .iter()
            .any(|event| event.contains(what) && event.contains(path))
    };
    assert!(about("created the namespace", &path), "{events:#?}");
    assert!(about("named the namespace", &alias), "{events:#?}");
    assert!(about("removed the namespace", &path), "{events:#?}");
}
