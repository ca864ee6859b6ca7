//! Warm threads: each handle keeps, per set of options, a few threads that entered its
//! namespace, so that a call is a hand-off to a thread already inside instead of a thread start.
//!
//! A handle's first call runs on a fresh thread, as a handle used once needs no more. A warm
//! thread is started by a later call that finds none idle: it is born outside, runs
//! nothing but the hand-off loop, and the first thing it runs is that call's entry into the
//! namespace (and the options' views), then the call. It never leaves. After a call it goes
//! back to the idle set; after [`Options::idle_timeout`] without a call it ends; a call that
//! panicked retires it. Past [`MAX_WARM`] busy threads, a call gets a fresh scoped thread, so
//! callers never wait for each other, and a body that calls into its own handle never waits
//! for itself. When the last clone of the handle drops, its warm threads end before the drop
//! returns.
//!
//! The hand-off is the [`Worker`](crate::Worker)'s ([`Handoff`]): the closure, its result and
//! the done signal stay on the caller's stack until the thread marks the call done, so a body
//! may borrow from the caller.

use std::any::Any;
use std::panic::{self, RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::handle::NetNs;
use crate::options::{CallerDir, Options};
use crate::thread::builder;
use crate::worker::fork;
use crate::worker::handoff::Handoff;

/// How long a warm thread spins for its next call, and its caller for the result, before they
/// sleep: long enough for back-to-back calls from one caller, short enough that many warm threads
/// on few cores do not take the cores from the threads that have work.
const WARM_SPIN: std::time::Duration = std::time::Duration::from_micros(5);

/// At most this many warm threads per handle and set of options; more concurrent calls get
/// fresh scoped threads.
pub const MAX_WARM: usize = 16;

/// How a handle holds its [`WarmThreads`].
pub(crate) type Erased = dyn Any + Send + Sync + RefUnwindSafe + UnwindSafe;

/// The warm threads of one handle (all its clones), one pool per set of options.
///
/// Reached through `dyn Any` from the handle, so that a `NetNs`, whose identity (and hash) is
/// its namespace's, does not look interior-mutable to a `HashSet` (clippy's `mutable_key_type`).
pub(crate) struct WarmThreads {
    /// The pool for plain calls, the common case: no lookup.
    plain: OnceLock<Arc<Pool>>,
    /// Pools for calls with other options.
    other: Mutex<Vec<Arc<Pool>>>,
    /// The fork generation the handle was made in (`None` when forks cannot be counted): in a
    /// forked child no lock here is touched, since a parent thread may have held it at the fork.
    generation: Option<u32>,
}

impl Default for WarmThreads {
    fn default() -> WarmThreads {
        WarmThreads {
            plain: OnceLock::new(),
            other: Mutex::new(Vec::new()),
            generation: fork::watch().ok().map(|()| fork::generation()),
        }
    }
}

impl WarmThreads {
    /// The storage a handle keeps.
    pub(crate) fn new_erased() -> Box<Erased> {
        Box::new(WarmThreads::default())
    }

    /// The handle's warm threads, from the storage [`WarmThreads::new_erased`] made.
    pub(crate) fn of(erased: &Erased) -> &WarmThreads {
        match (erased as &dyn Any).downcast_ref() {
            Some(warm) => warm,
            None => unreachable!("a handle's storage is always `WarmThreads`"),
        }
    }

    /// The pool for calls with `options` other than the default ones (the plain pool has no
    /// lock: see `run`).
    fn other_pool(&self, options: &Options) -> Arc<Pool> {
        let mut other = lock(&self.other);
        if let Some(pool) = other.iter().find(|pool| pool.options == *options) {
            return Arc::clone(pool);
        }
        let pool = Pool::new(options);
        other.push(Arc::clone(&pool));
        pool
    }

    /// Runs `f` inside `ns` (whose warm threads these are), with `options`, on a warm thread.
    pub(crate) fn run<F, T>(&self, ns: &NetNs, options: &Options, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        if !self.in_original_process() {
            // A forked child, whose warm threads were not copied into it (or forks cannot be
            // told): a thread of its own, and no lock a parent thread may have held.
            return ns.run_on_fresh_thread(options, f);
        }
        if *options == Options::DEFAULT {
            // The common case, borrowed: no lock, and no reference count touched per call.
            return self.plain.get_or_init(|| Pool::new(options)).run(ns, f);
        }
        self.other_pool(options).run(ns, f)
    }

    /// Whether this is the process the handle's warm threads live in.
    fn in_original_process(&self) -> bool {
        self.generation == Some(fork::generation())
    }
}

impl Drop for WarmThreads {
    fn drop(&mut self) {
        if self
            .generation
            .is_some_and(|made_in| made_in != fork::generation())
        {
            // A forked child: the threads do not exist here, and a lock may be held forever.
            std::mem::forget(std::mem::take(&mut self.other));
            std::mem::forget(self.plain.take());
            return;
        }
        let pools = self.plain.take().into_iter();
        for pool in pools.chain(lock(&self.other).drain(..)) {
            pool.shut_down();
        }
    }
}

/// Warm threads set up with one set of options.
struct Pool {
    options: Options,
    /// Threads waiting for a call, the most recently used last.
    idle: Mutex<Vec<Arc<Warm>>>,
    /// Threads alive (idle, busy or being started), at most [`MAX_WARM`].
    live: AtomicUsize,
    /// Whether a call came before: the first one runs on a fresh thread, so a handle used once
    /// (a path target opens one per call) pays no more than a thread, and leaves none behind.
    called: std::sync::atomic::AtomicBool,
    /// Threads that ended on their own (idle too long): joined by the next caller or the drop.
    ended: Mutex<Vec<JoinHandle<()>>>,
}

/// One warm thread.
struct Warm {
    handoff: Handoff,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Pool {
    fn new(options: &Options) -> Arc<Pool> {
        Arc::new(Pool {
            options: *options,
            idle: Mutex::new(Vec::new()),
            live: AtomicUsize::new(0),
            called: std::sync::atomic::AtomicBool::new(false),
            ended: Mutex::new(Vec::new()),
        })
    }

    fn run<F, T>(self: &Arc<Pool>, ns: &NetNs, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        // Read before it is written: after the first call this is a load of a line every
        // caller only reads, not a write that all callers contend for.
        if !self.called.load(Ordering::Relaxed) && !self.called.swap(true, Ordering::Relaxed) {
            return self.on_fresh_thread(ns, f);
        }
        // A thread with a view has a working directory of its own, made the caller's at each
        // call: read it before a thread is taken, so that a failure leaves the thread idle.
        let dir = match self.options.needs_mounts() {
            true => Some(CallerDir::capture()?),
            false => None,
        };
        // Taken in a statement of its own: the lock must not be held through the call.
        let idle = lock(&self.idle).pop();
        if let Some(warm) = idle {
            return self.call(warm, dir, f);
        }
        if self.live.fetch_add(1, Ordering::AcqRel) >= MAX_WARM {
            self.live.fetch_sub(1, Ordering::AcqRel);
            return self.on_fresh_thread(ns, f);
        }
        self.join_ended();
        self.start(ns, f)
    }

    /// Runs `f` on `warm`, a thread taken from the idle set (first moving it to the caller's
    /// working directory `dir`, for a thread with a view), and gives the thread back.
    fn call<F, T>(self: &Arc<Pool>, warm: Arc<Warm>, dir: Option<CallerDir>, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let outcome = warm.handoff.call(move || {
            if let Some(dir) = dir {
                dir.enter()?;
            }
            Ok(f())
        });
        self.settle(warm, outcome)
    }

    /// Starts a warm thread and runs `f` on it as its first call, after it entered `ns`.
    fn start<F, T>(self: &Arc<Pool>, ns: &NetNs, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let warm = Arc::new(Warm {
            handoff: Handoff::new(WARM_SPIN),
            thread: Mutex::new(None),
        });
        let serving = Arc::clone(&warm);
        let pool = Arc::clone(self);
        let idle_timeout = self.options.thread_idle_timeout();
        let generation = fork::generation();
        let started = builder(&self.options).spawn(move || {
            let expire = || pool.expire(&serving);
            // A fork inside a call copies this thread into the child, as its only thread: there
            // it ends after the call, as a fresh thread would.
            let copied = || fork::generation() != generation;
            serving
                .handoff
                .serve_until_idle(idle_timeout, expire, copied);
        });
        let thread = match started {
            Ok(thread) => thread,
            Err(source) => {
                self.live.fetch_sub(1, Ordering::AcqRel);
                return Err(Error::ThreadSpawn { source });
            }
        };
        *lock(&warm.thread) = Some(thread);
        // The thread's first call enters the namespace: until then it ran only the hand-off.
        let options = self.options;
        let outcome = warm.handoff.call(move || {
            ns.enter_current_thread(&options)?;
            Ok(f())
        });
        self.settle(warm, outcome)
    }

    /// After a call on `warm`: back to the idle set, or retired (the call panicked, or the
    /// thread could not enter), resuming the panic here.
    fn settle<T>(
        &self,
        warm: Arc<Warm>,
        outcome: Option<std::thread::Result<Result<T>>>,
    ) -> Result<T> {
        match outcome {
            Some(Ok(Ok(value))) => {
                lock(&self.idle).push(warm);
                Ok(value)
            }
            Some(Ok(Err(err))) => {
                self.retire(&warm);
                Err(err)
            }
            Some(Err(payload)) => {
                // Its thread-locals may hold what the panic left half-done.
                self.retire(&warm);
                panic::resume_unwind(payload)
            }
            // Only the pool stops its threads, and not while a caller holds one.
            None => unreachable!("a warm thread taken by a caller is never stopped"),
        }
    }

    /// Ends `warm`, which no caller holds and which is not in the idle set, and joins it.
    fn retire(&self, warm: &Warm) {
        warm.handoff.stop(true);
        if let Some(thread) = lock(&warm.thread).take() {
            let _ = thread.join();
        }
        self.live.fetch_sub(1, Ordering::AcqRel);
    }

    /// Called by `warm`'s own thread after an idle timeout: ends it if it is still idle (no
    /// caller took it meanwhile), so that no caller can take it afterwards.
    fn expire(&self, warm: &Arc<Warm>) -> bool {
        let mut idle = lock(&self.idle);
        let Some(at) = idle.iter().position(|other| Arc::ptr_eq(other, warm)) else {
            return false;
        };
        idle.swap_remove(at);
        drop(idle);
        if let Some(thread) = lock(&warm.thread).take() {
            lock(&self.ended).push(thread);
        }
        self.live.fetch_sub(1, Ordering::AcqRel);
        true
    }

    /// Joins threads that ended on their own (they are gone or about to be: no wait to speak of).
    fn join_ended(&self) {
        let ended = std::mem::take(&mut *lock(&self.ended));
        let current = std::thread::current().id();
        for thread in ended {
            // A thread that ended on its own may drop the handle's last clone on its way out
            // (a thread-local): it cannot wait for itself, and is about to end anyway.
            if thread.thread().id() != current {
                let _ = thread.join();
            }
        }
    }

    /// A call no warm thread can serve: on a thread of its own.
    fn on_fresh_thread<F, T>(&self, ns: &NetNs, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        ns.run_on_fresh_thread(&self.options, f)
    }

    /// Ends every thread (the handle's last clone is being dropped, so no call is in flight)
    /// and joins them, except on a thread of the pool itself, which cannot wait for itself.
    /// (In a forked child the handle does not get here: [`WarmThreads`] forgets its pools.)
    fn shut_down(&self) {
        let idle = std::mem::take(&mut *lock(&self.idle));
        let current = std::thread::current().id();
        for warm in idle {
            let thread = lock(&warm.thread).take();
            let own = thread.as_ref().is_some_and(|t| t.thread().id() == current);
            warm.handoff.stop(!own);
            if let Some(thread) = thread.filter(|_| !own) {
                let _ = thread.join();
            }
        }
        self.join_ended();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; stay usable if something did.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
