//! Tokio runtimes whose every thread lives inside one network namespace.
//!
//! A [`NetnsRuntime`] is a tokio runtime built from the user's `Builder` with one addition: every
//! thread it starts (workers, the blocking pool, threads started later on demand, whoever asked
//! for them) enters the namespace, and the `/sys` and `/etc` views of its [`Setup`], in
//! `on_thread_start`, before it runs anything. A current-thread runtime also gets one driver
//! thread inside, so that its tasks, sockets and timers make progress without anyone calling
//! `block_on`. Nothing the runtime runs ever runs outside, and no thread of any other runtime
//! ever moves.
//!
//! Each [`NetNs`] handle also owns, lazily, one current-thread runtime per setup and security
//! context of its callers ([`BodyRuntimes`], in the handle's [`State`](super::state::State)):
//! the runtime that `run_async` and `#[in_netns] async fn` bodies run on. It ends with the last
//! clone of the handle.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, RuntimeFlavor};
use tokio::sync::oneshot;

use super::fresh;
use super::own::{self, Owner};
use super::run_async::RunAsync;
use super::span;
use super::warm::WarmThreads;
use crate::entry::{Options, Setup};
use crate::error::{Error, Result};
use crate::fork::Born;
use crate::namespace::{NetNs, NsId};
use crate::security::Context;
use crate::sync::lock;

/// How long dropping a [`NetnsRuntime`] waits for its blocking tasks before leaving them to finish
/// on their own (their threads stay inside the namespace until then).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The thread that drives a current-thread runtime, and its stop signal.
type Driver = Option<(oneshot::Sender<()>, JoinHandle<()>, Arc<AtomicI32>)>;

/// A tokio runtime whose every thread is inside one network namespace.
///
/// Made by [`NetNs::runtime`], [`NetNs::runtime_with`] or [`NetNs::runtime_with_hooks`] from
/// your own `tokio` `Builder`, so every tokio setting stays yours (flavor, worker count,
/// `enable_all`, thread names, stack sizes) but its thread hooks, which the runtime needs for
/// itself: give yours as [`RuntimeHooks`]. Tasks spawned onto it, from any thread or any other
/// runtime, run inside; so do their `spawn_blocking` calls, `tokio::fs`, DNS lookups
/// (`lookup_host`, `connect("name:port")`, through the namespace's `/etc` view with
/// [`Setup::etc`]), `tokio::process` children and timers.
///
/// A current-thread runtime gets one dedicated driver thread inside the namespace, so its tasks
/// run in the background just as on a multi-thread runtime.
///
/// Dropping it shuts the runtime down: its threads end before the drop returns, except threads
/// still running a blocking task after 5 seconds, which finish that task (inside) on their own.
/// It may be dropped anywhere: in an async context, or on one of its own threads, the drop
/// returns at once and the threads end in the background.
///
/// ```no_run
/// # use netns_core as in_netns;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let ns = in_netns::NetNs::named("blue")?;
/// let runtime = ns.runtime(tokio::runtime::Builder::new_multi_thread().enable_all())?;
/// let addrs = runtime.block_on(async {
///     // Resolved by a thread inside `blue`, with its own view of `/etc` under `Setup::etc`.
///     tokio::net::lookup_host("localhost:80").await.map(|a| a.count())
/// })?;
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct NetnsRuntime {
    /// `None` only while dropping.
    runtime: Option<Arc<tokio::runtime::Runtime>>,
    /// The current-thread flavor's driver: its stop signal and thread.
    driver: Driver,
    /// A handle with a descriptor of its own, so the runtime never keeps its creator's lazily
    /// made runtimes alive (which would be a cycle).
    ns: NetNs,
    setup: Setup,
    /// The threads that poll [`NetnsRuntime::block_on`]'s futures: warm threads inside the
    /// namespace with its setup (shared ones, which visit it, for the default setup).
    block_on_threads: WarmThreads,
    /// Marks the runtime's threads, so that one of them never waits for the runtime.
    owner: Owner,
    /// The process the runtime was made in: in a forked child its threads do not exist.
    born: Born,
}

/// Your hooks for the threads of a namespace [`NetnsRuntime`]: what you would give `tokio`'s
/// `Builder::on_thread_start` and `on_thread_stop`, given to [`NetNs::runtime_with_hooks`]
/// instead.
///
/// A namespace runtime needs both of the builder's hooks for itself (to enter the namespace,
/// and to mark the thread as ending), and `tokio` offers no way to read hooks set on a builder,
/// so they cannot be chained: hooks set on the builder before [`NetNs::runtime`] are replaced
/// and never run. Hooks given here run on every thread `tokio` starts for the runtime (its
/// workers and blocking threads), after the crate's: a start hook inside the namespace, before
/// the thread runs anything else; a stop hook as the thread ends. (Not on the thread that
/// drives a current-thread runtime, nor on those that poll [`NetnsRuntime::block_on`]'s futures:
/// the crate starts those, as `tokio` runs no hook on a thread that calls its `block_on`.)
/// When the runtime is built they are also put back on the builder, so that it builds what you
/// meant afterwards.
///
/// ```no_run
/// # use netns_core as in_netns;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use in_netns::{NetNs, RuntimeHooks, Setup};
/// let ns = NetNs::named("blue")?;
/// let hooks = RuntimeHooks::new()
///     .on_thread_start(|| println!("a thread starts, inside blue"))
///     .on_thread_stop(|| println!("a thread stops"));
/// let mut builder = tokio::runtime::Builder::new_current_thread();
/// let runtime = ns.runtime_with_hooks(&Setup::default(), hooks, builder.enable_all())?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct RuntimeHooks {
    start: Option<Hook>,
    stop: Option<Hook>,
}

/// A hook of the user's, shared by the runtime and the builder it is put back on.
type Hook = Arc<dyn Fn() + Send + Sync>;

impl RuntimeHooks {
    /// No hooks.
    pub fn new() -> RuntimeHooks {
        RuntimeHooks::default()
    }

    /// Runs `f` on each thread the runtime starts, inside the namespace (and its views), before
    /// the thread runs anything else; as `tokio`'s `Builder::on_thread_start`.
    pub fn on_thread_start(mut self, f: impl Fn() + Send + Sync + 'static) -> RuntimeHooks {
        self.start = Some(Arc::new(f));
        self
    }

    /// Runs `f` on each thread of the runtime as it stops; as `tokio`'s
    /// `Builder::on_thread_stop`.
    pub fn on_thread_stop(mut self, f: impl Fn() + Send + Sync + 'static) -> RuntimeHooks {
        self.stop = Some(Arc::new(f));
        self
    }

    /// Sets these hooks as `builder`'s, or hooks that do nothing where there are none (a
    /// builder's hooks can be replaced, never removed): what a builder is left with once a
    /// namespace runtime is built from it.
    fn put_on(&self, builder: &mut Builder) {
        let (start, stop) = (self.start.clone(), self.stop.clone());
        builder.on_thread_start(move || run_hook(start.as_ref()));
        builder.on_thread_stop(move || run_hook(stop.as_ref()));
    }
}

fn run_hook(hook: Option<&Hook>) {
    if let Some(hook) = hook {
        hook();
    }
}

impl fmt::Debug for RuntimeHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |hook: &Option<Hook>| if hook.is_some() { "set" } else { "none" };
        f.debug_struct("RuntimeHooks")
            .field("on_thread_start", &set(&self.start))
            .field("on_thread_stop", &set(&self.stop))
            .finish()
    }
}

/// A builder lent to the crate for one build: its hooks are the crate's until this is dropped,
/// then the user's again ([`RuntimeHooks::put_on`]), also when `build` panics (as it does where
/// it cannot start a worker thread). So no builder keeps a hook of the crate's, which would
/// move the threads of every later runtime built from it into the namespace, and keep the
/// namespace alive as long as the builder.
struct Lent<'a> {
    builder: &'a mut Builder,
    hooks: &'a RuntimeHooks,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        self.hooks.put_on(self.builder);
    }
}

impl NetNs {
    /// Builds a tokio runtime whose every thread is inside this namespace.
    ///
    /// **Hooks set on `builder` with `on_thread_start` and `on_thread_stop` never run**: this
    /// call replaces both, and `tokio` offers no way to see that they were set. Give yours to
    /// [`NetNs::runtime_with_hooks`] instead, which runs them too. Either way, once the runtime
    /// is built from it (or fails to build), `builder` has no hook of the crate's: its hooks are
    /// those given there, or hooks that do nothing, so a runtime built from it afterwards is an
    /// ordinary one.
    ///
    /// The runtime's hooks enter the namespace before the thread runs anything, and mark the
    /// thread as ending when it stops (what its thread-locals drop then joins no thread of this
    /// crate, which could be waiting for it). The namespace is entered once first, so a
    /// failure to enter (privilege, setup) is this call's `Err`. Should a later thread fail
    /// to enter it all the same (the kernel out of memory), the process aborts with a message
    /// on stderr, rather than let a task run outside. A runtime `tokio` cannot build (its
    /// driver's descriptors: the descriptor limit, `EMFILE`) is [`Error::Os`], with `tokio`'s
    /// error as its source.
    ///
    /// Build the runtime with the features your tasks need (`enable_all`); this crate's own
    /// `tokio` dependency enables only what it uses.
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn runtime(&self, builder: &mut Builder) -> Result<NetnsRuntime> {
        self.runtime_with(&Setup::DEFAULT, builder)
    }

    /// [`NetNs::runtime`] with a [`Setup`]: every thread of the runtime also has the `/sys`
    /// and `/etc` view of `setup`. (Hooks set on `builder` never run: see
    /// [`NetNs::runtime_with_hooks`].)
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn runtime_with(&self, setup: &Setup, builder: &mut Builder) -> Result<NetnsRuntime> {
        self.runtime_with_hooks(setup, RuntimeHooks::new(), builder)
    }

    /// [`NetNs::runtime_with`] that also runs your thread hooks, `hooks`, on every thread
    /// `tokio` starts for the runtime, after the crate's own (a start hook inside the
    /// namespace). Once the runtime is built from it (or fails to build), `builder`'s hooks
    /// are `hooks`, as if you had set them there, and none of the crate's.
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn runtime_with_hooks(
        &self,
        setup: &Setup,
        hooks: RuntimeHooks,
        builder: &mut Builder,
    ) -> Result<NetnsRuntime> {
        let setup = *setup;
        setup.check(self)?;
        let born = Born::here()?;
        // Enter once, so that anything that keeps threads out is an `Err` here.
        fresh::run(self, &setup, || ())?;
        let ns = self.try_clone()?;
        let owner = Owner::new();
        let entering = ns.clone();
        let RuntimeHooks { start, stop } = hooks.clone();
        let lent = Lent {
            builder,
            hooks: &hooks,
        };
        lent.builder.on_thread_start(move || {
            if let Err(err) = fresh::enter(&entering, &setup) {
                // Running the thread's tasks outside would break the promise this runtime
                // makes, and tokio offers no way to refuse a thread: stop here.
                eprintln!(
                    "in-netns: a thread of the runtime of {} could not enter it: {err:?}; \
                     aborting rather than run tasks outside the namespace",
                    entering.describe()
                );
                std::process::abort();
            }
            owner.adopt_current_thread();
            run_hook(start.as_ref());
        });
        lent.builder.on_thread_stop(move || {
            // First, so that what the user's hook drops joins no thread of ours either.
            own::mark_ending();
            run_hook(stop.as_ref());
        });
        let built = lent.builder.build();
        drop(lent);
        let runtime = Arc::new(built.map_err(|source| Error::Os {
            operation: "build the tokio runtime",
            path: None,
            source,
        })?);
        let driver = match runtime.handle().runtime_flavor() {
            RuntimeFlavor::CurrentThread => Some(start_driver(&ns, &setup, &runtime, owner)?),
            _ => None,
        };
        Ok(NetnsRuntime {
            runtime: Some(runtime),
            driver,
            ns,
            setup,
            block_on_threads: WarmThreads::new(),
            owner,
            born,
        })
    }
}

/// Starts the thread that drives a current-thread runtime, inside the namespace, until its
/// stop signal.
fn start_driver(
    ns: &NetNs,
    setup: &Setup,
    runtime: &Arc<tokio::runtime::Runtime>,
    owner: Owner,
) -> Result<(oneshot::Sender<()>, JoinHandle<()>, Arc<AtomicI32>)> {
    let (stop, stopped) = oneshot::channel();
    let runtime = Arc::clone(runtime);
    let tid = Arc::new(AtomicI32::new(0));
    let its_tid = Arc::clone(&tid);
    let thread = fresh::spawn(ns, setup, move || {
        its_tid.store(crate::sys::gettid(), Ordering::Release);
        owner.adopt_current_thread();
        // An error means the sender is gone: stop as well.
        let _ = runtime.block_on(stopped);
        own::mark_ending();
    })?;
    Ok((stop, thread, tid))
}

impl NetnsRuntime {
    /// Runs `future` to completion on a thread inside the namespace and returns its output.
    ///
    /// The calling thread only waits: the future is polled by a dedicated thread that entered
    /// the namespace (with the runtime's setup) and has the runtime entered. Like tokio's
    /// `block_on`, it must not be called from within an async context; `.await` a
    /// [`NetnsRuntime::spawn`]ed task there instead.
    ///
    /// # Panics
    ///
    /// When called on one of the runtime's own threads (from one of its tasks), which would
    /// wait for itself forever.
    pub fn block_on<F>(&self, future: F) -> Result<F::Output>
    where
        F: Future + Send,
        F::Output: Send,
    {
        assert!(
            !self.owner.owns_current_thread(),
            "NetnsRuntime::block_on called from one of the runtime's own threads, which would wait \
             for itself: `.await` the future (or `NetnsRuntime::spawn` it) instead"
        );
        let runtime = self.tokio();
        let block_on = span::carried(|| runtime.block_on(future));
        self.block_on_threads
            .run(&self.ns, &Options::from(self.setup), block_on)
    }

    /// Spawns `future` as a task of this runtime, inside the namespace, and returns a future of
    /// its output that any runtime (or none) may await.
    ///
    /// Dropping the returned future aborts the task; a panic in the task resumes in the
    /// awaiting caller.
    pub fn spawn<F>(&self, future: F) -> RunAsync<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        RunAsync::on_handle(self.handle(), self.ns.describe(), future)
    }

    /// A handle to the runtime, to spawn tasks onto it (`Handle::spawn`, `spawn_blocking`) from
    /// anywhere: what it spawns runs inside. (`Handle::block_on` is the exception: it polls its
    /// future on the calling thread, wherever that is; use [`NetnsRuntime::block_on`].)
    pub fn handle(&self) -> &Handle {
        self.tokio().handle()
    }

    /// The namespace every thread of the runtime is in.
    pub fn id(&self) -> NsId {
        self.ns.id()
    }

    /// A handle to the namespace the runtime lives in.
    pub fn namespace(&self) -> &NetNs {
        &self.ns
    }

    /// How the runtime's threads are set up (their views of `/sys` and `/etc`).
    pub fn setup(&self) -> Setup {
        self.setup
    }

    /// Shuts the runtime down, waiting up to `timeout` for its blocking tasks (as tokio's
    /// `shutdown_timeout`); threads still busy after it finish their task inside.
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shut_down(timeout, true);
    }

    /// Shuts the runtime down without waiting for its threads (as tokio's
    /// `shutdown_background`).
    pub fn shutdown_background(mut self) {
        self.shut_down(Duration::ZERO, false);
    }

    fn tokio(&self) -> &tokio::runtime::Runtime {
        match &self.runtime {
            Some(runtime) => runtime,
            None => unreachable!("the runtime is only taken while dropping"),
        }
    }

    /// Stops the driver, then the runtime, giving its blocking tasks up to `grace`; waits for
    /// that with `wait`, unless on one of the runtime's own threads, which cannot wait for
    /// themselves.
    fn shut_down(&mut self, grace: Duration, wait: bool) {
        let driver = self.driver.take();
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        if !self.born.is_here() {
            // A forked child: the runtime's threads do not exist here, there is nothing to
            // stop or join, and tokio would fail trying.
            std::mem::forget((driver, runtime));
            return;
        }
        let own_thread = self.owner.owns_current_thread();
        // tokio refuses to shut a runtime down in an async context or on its own threads (it
        // panics or waits for itself), so a thread of our own, which has neither, does it.
        let (hand_over, receive) =
            std::sync::mpsc::channel::<(Driver, Arc<tokio::runtime::Runtime>)>();
        let reaper = crate::thread::builder(None).spawn(move || {
            let Ok((driver, runtime)) = receive.recv() else {
                return;
            };
            if let Some((stop, driver, tid)) = driver {
                let _ = stop.send(());
                // A driver an async body ended (a seccomp kill, a raw exit) never returns.
                if !crate::thread::ended_without_returning(&driver, tid.load(Ordering::Acquire)) {
                    let _ = driver.join();
                }
            }
            // The driver's clone went with it: this is the last.
            if let Some(runtime) = Arc::into_inner(runtime) {
                runtime.shutdown_timeout(grace);
            }
        });
        match reaper {
            Ok(reaper) => {
                let _ = hand_over.send((driver, runtime));
                // Nor on an ending thread of this crate: what it drops must not wait for threads
                // that may be waiting for it (see `own`).
                if wait && !own_thread && !own::ending() {
                    let _ = reaper.join();
                }
            }
            // No thread to be had: leave the runtime's threads running rather than hang here.
            Err(_) => std::mem::forget((driver, runtime)),
        }
    }
}

impl Drop for NetnsRuntime {
    fn drop(&mut self) {
        // Wait for the threads to end, except in an async context, whose thread must not block.
        let in_async_context = Handle::try_current().is_ok();
        self.shut_down(SHUTDOWN_GRACE, !in_async_context);
    }
}

impl fmt::Debug for NetnsRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetnsRuntime")
            .field("id", &self.ns.id())
            .field("setup", &self.setup)
            .field("flavor", &self.handle().runtime_flavor())
            .finish()
    }
}

/// How many runtimes for async bodies a handle keeps (per setup and callers' security context);
/// a body whose pair finds none kept gets a runtime of its own.
const MAX_CONTEXTS: usize = 8;

/// A handle's runtimes for its async bodies, one per setup and callers' security context (not
/// per set of options: the idle timeout of warm threads does not make another runtime), made on
/// first use and shut down with the handle's last clone.
pub(crate) struct BodyRuntimes {
    /// Per setup and security context: a runtime's threads have their maker's context, and a
    /// body runs with its caller's.
    made: Mutex<Vec<(Setup, Context, Arc<NetnsRuntime>)>>,
    /// The process the handle's state was made in (`None`: forks cannot be counted): in a
    /// forked child the runtimes' threads do not exist, and the lock may be held forever.
    born: Option<Born>,
}

impl BodyRuntimes {
    pub(crate) fn new() -> BodyRuntimes {
        BodyRuntimes {
            made: Mutex::new(Vec::new()),
            born: Born::here().ok(),
        }
    }

    /// The runtime for async bodies of `ns` set up as `setup` says: a current-thread runtime
    /// with I/O and timers, driven by its own thread inside, made on first use. In a forked
    /// child, where the parent's runtimes have no threads, each body gets a runtime of its own
    /// (as each blocking call gets a fresh thread there).
    /// For a caller in `context` (read just before): its runtime has that context.
    pub(crate) fn get(
        &self,
        ns: &NetNs,
        setup: &Setup,
        context: &Context,
    ) -> Result<Arc<NetnsRuntime>> {
        let born = match self.born {
            Some(born) => born,
            None => Born::here()?,
        };
        if !born.is_here() {
            return make_body_runtime(ns, setup);
        }
        // A context that cannot be read matches none, and past `MAX_CONTEXTS` kept ones, a
        // body gets a runtime of its own (ended with it), so runtimes do not pile up.
        if !context.is_known() {
            return make_body_runtime(ns, setup);
        }
        let find = |made: &[(Setup, Context, Arc<NetnsRuntime>)]| {
            made.iter()
                .find(|(made_for, made_in, _)| made_for == setup && made_in == context)
                .map(|(_, _, runtime)| Arc::clone(runtime))
        };
        if let Some(runtime) = find(&lock(&self.made)) {
            return Ok(runtime);
        }
        // Built without the lock (it starts threads), so callers never wait for each other.
        let runtime = make_body_runtime(ns, setup)?;
        let mut made = lock(&self.made);
        // A concurrent first call may have won the race: use its runtime, drop ours.
        if let Some(runtime) = find(&made) {
            return Ok(runtime);
        }
        if made.len() >= MAX_CONTEXTS {
            return Ok(runtime);
        }
        made.push((*setup, context.clone(), Arc::clone(&runtime)));
        Ok(runtime)
    }
}

impl Drop for BodyRuntimes {
    fn drop(&mut self) {
        if self.born.is_some_and(|born| !born.is_here()) {
            std::mem::forget(std::mem::take(&mut self.made));
        }
        // Otherwise each runtime shuts down as it drops, waiting for its threads.
    }
}

/// A runtime for async bodies: current-thread, with I/O and timers.
fn make_body_runtime(ns: &NetNs, setup: &Setup) -> Result<Arc<NetnsRuntime>> {
    let mut builder = Builder::new_current_thread();
    builder.enable_all().thread_name(crate::thread::THREAD_NAME);
    ns.runtime_with(setup, &mut builder).map(Arc::new)
}
