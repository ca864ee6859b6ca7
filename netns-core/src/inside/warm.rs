//! Warm threads, so that a call is a hand-off to a thread already started instead of a thread
//! start, in two kinds of pool:
//!
//! - **Shared** (plain calls: no view, the default idle timeout): one pool per callers'
//!   security context for the whole process, whose threads serve every handle. A call enters
//!   its namespace on the thread it is handed to ([`home::visit`]), and the thread goes back to
//!   the process's namespace after it (its put-back): a thread is never tied to a handle, so a
//!   caller that goes round many namespaces finds a thread awake, not the handle's asleep.
//! - **The handle's own** (calls with views, a stack size or an idle timeout of their own): per setup and idle
//!   timeout, threads that entered the handle's namespace (and views) once, ended with the
//!   last clone of the handle, before its drop returns.
//!
//! A pool's first call runs on a fresh thread, as a handle (or process) that calls once needs
//! no more. A warm thread is started by a later call that finds none idle: it is born outside,
//! enters on its own, first thing, and then serves that call and the next ones, running
//! nothing but the hand-off loop in between. After a call it goes back to the idle set; after
//! [`Options::idle_timeout`] without a call it ends; a call that panicked retires it. Past
//! [`MAX_WARM`] busy threads, a call gets a fresh scoped thread, so callers never wait for each
//! other, and a body that calls into its own handle never waits for itself. When the last
//! clone of a handle drops, no warm thread is left in its namespace when the drop returns.
//!
//! Each warm thread is a [`Served`] thread: after a call it puts itself back as it entered (its
//! network namespace, file table, directory, signal mask...) or retires, and a thread with a
//! view brings it up to date before each call ([`home`](super::home)).
//!
//! The hand-off is the [`Worker`](crate::Worker)'s: the closure, its result and the done signal
//! stay on the caller's stack until the thread marks the call done, so a body may borrow from
//! the caller.

use std::panic;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fresh;
use super::handoff::Outcome;
use super::home::{self, OnContextChange, Target, Visitors};
use super::served::{self, Served, ServedThread};
use crate::entry::{CallerDir, Options, Setup};
use crate::error::{Error, Result};
use crate::fork::Born;
use crate::namespace::NetNs;
use crate::once::NoWaitOnce;
use crate::security::Context;
use crate::sync::lock;

/// The longest a warm thread spins for its next call, and its caller for the result, before
/// they sleep: each spins only as long as its recent waits took, and only while a CPU is left
/// for the threads that have work ([`Patience`](crate::sync::Patience)).
const SPIN_CAP: Duration = Duration::from_micros(50);

/// At most this many warm threads per pool (shared, or a handle's own for a set of options);
/// more concurrent calls get fresh scoped threads.
pub(crate) const MAX_WARM: usize = 16;

/// At most this many pools besides the first one, per handle (per setup, idle timeout and
/// callers' security context) and shared (per callers' security context); calls that would
/// need another get fresh threads.
const MAX_OTHER_POOLS: usize = 8;

/// What a pool is for: threads set up alike, that idle out alike.
type PoolKey = (Setup, Duration);

/// The warm threads of one handle (all its clones): its own pools (per setup and idle timeout)
/// and its calls on shared threads.
pub(crate) struct WarmThreads {
    /// Pools for calls with views, a stack size or an idle timeout of their own.
    other: Mutex<Vec<Arc<Pool>>>,
    /// The shared threads inside the namespace for a call of this handle (from entering it
    /// until leaving it again).
    visitors: Arc<Visitors>,
    /// The process the handle was made in (`None`: forks cannot be counted, and calls fail):
    /// in a forked child no lock here is touched, since a parent thread may have held it at
    /// the fork.
    born: Option<Born>,
}

impl WarmThreads {
    pub(crate) fn new() -> WarmThreads {
        WarmThreads {
            other: Mutex::new(Vec::new()),
            visitors: Arc::default(),
            born: Born::here().ok(),
        }
    }

    /// The handle's own pool for calls with `key` (not plain) in `context`.
    fn own_pool(&self, key: PoolKey, context: Context) -> Option<Arc<Pool>> {
        find_or_add(&self.other, key, context, false)
    }

    /// Runs `f` inside `ns` (whose warm threads these are), with `options`, on a warm thread.
    pub(crate) fn run<F, T>(&self, ns: &NetNs, options: &Options, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        // Threads serve callers of one security context only: they have their starter's.
        self.run_in(ns, options, Context::current(), f)
    }

    /// [`WarmThreads::run`] for a caller in `context`, read just before.
    pub(crate) fn run_in<F, T>(
        &self,
        ns: &NetNs,
        options: &Options,
        context: Context,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let born = match self.born {
            Some(born) => born,
            // The fork counter could not be registered: its error.
            None => Born::here()?,
        };
        let setup = &options.setup();
        if !born.is_here() {
            // A forked child, whose warm threads were not copied into it: a thread of its own,
            // and no lock a parent thread may have held.
            return fresh::run(ns, setup, f);
        }
        let key = (*setup, options.thread_idle_timeout());
        // A context that cannot be read matches none: such a caller gets a thread of its own.
        if !context.is_known() {
            return fresh::run(ns, setup, f);
        }
        if key == PLAIN {
            return match SHARED.pool(context) {
                Some(Shared::First(pool)) => pool.run(ns, &self.visitors, f),
                Some(Shared::Other(pool)) => pool.run(ns, &self.visitors, f),
                // Past the bound on pools, or a forked child (whose shared threads were not
                // copied into it): a thread of its own.
                None => fresh::run(ns, setup, f),
            };
        }
        match self.own_pool(key, context) {
            Some(pool) => pool.run(ns, &self.visitors, f),
            // Past the bound on pools (callers in many contexts): a thread of its own.
            None => fresh::run(ns, setup, f),
        }
    }
}

/// The key of plain calls.
const PLAIN: PoolKey = (Setup::DEFAULT, Options::DEFAULT_IDLE_TIMEOUT);

impl Drop for WarmThreads {
    fn drop(&mut self) {
        if self.born.is_some_and(|born| !born.is_here()) {
            // A forked child: the threads do not exist here, and a lock may be held forever.
            std::mem::forget(std::mem::take(&mut self.other));
            return;
        }
        for pool in lock(&self.other).drain(..) {
            pool.shut_down();
        }
        // Shared threads leave the namespace as they put themselves back, just after their
        // caller has its result (or, should they not be able to, by ending): wait for that, so
        // that nothing of ours is left inside.
        self.visitors.wait_until_gone();
    }
}

/// The pool in `pools` for calls with `key` in `context`, added if there is none yet and fewer
/// than [`MAX_OTHER_POOLS`].
fn find_or_add(
    pools: &Mutex<Vec<Arc<Pool>>>,
    key: PoolKey,
    context: Context,
    shared: bool,
) -> Option<Arc<Pool>> {
    let mut pools = lock(pools);
    let found = pools
        .iter()
        .find(|pool| pool.key == key && pool.context == context);
    if let Some(pool) = found {
        return Some(Arc::clone(pool));
    }
    if pools.len() >= MAX_OTHER_POOLS {
        return None;
    }
    let pool = Pool::new(key, context, shared);
    pools.push(Arc::clone(&pool));
    Some(pool)
}

/// The process's shared pools, one per callers' security context.
static SHARED: SharedPools = SharedPools {
    first: NoWaitOnce::new(),
    other: Mutex::new(Vec::new()),
    born: NoWaitOnce::new(),
};

/// The shared pools: the first context's without a lock (the common case: a process whose
/// callers all have one context), the others' in a list.
struct SharedPools {
    first: NoWaitOnce<Arc<Pool>>,
    other: Mutex<Vec<Arc<Pool>>>,
    /// The process the pools were made in (`None`: forks cannot be counted, and plain calls
    /// get fresh threads).
    born: NoWaitOnce<Option<Born>>,
}

/// A shared pool, borrowed (the first) or counted.
enum Shared {
    First(&'static Arc<Pool>),
    Other(Arc<Pool>),
}

impl SharedPools {
    /// The shared pool for callers in `context`: `None` in a forked child (whose copies of the
    /// shared threads do not exist, and whose locks a parent thread may have held), past
    /// [`MAX_OTHER_POOLS`], or if forks cannot be counted.
    fn pool(&'static self, context: Context) -> Option<Shared> {
        let born = self.born.get_or_init(|| Born::here().ok()).as_ref()?;
        if !born.is_here() {
            return None;
        }
        let first = self
            .first
            .get_or_init(|| Pool::new(PLAIN, context.clone(), true));
        if first.context == context {
            return Some(Shared::First(first));
        }
        find_or_add(&self.other, PLAIN, context, true).map(Shared::Other)
    }
}

/// Warm threads set up with one set of options: a handle's own, or shared.
struct Pool {
    key: PoolKey,
    /// Whether the pool is shared: its threads enter [`home::shared_home`], and each call its
    /// own namespace; a handle's own pool's threads enter the handle's namespace once.
    shared: bool,
    /// The security context of every caller the pool serves, and so of its threads, which are
    /// born from such callers and retire when a body changes theirs.
    context: Context,
    /// What the threads enter: made with the first warm thread, so that a handle used once
    /// holds nothing more than it did.
    target: NoWaitOnce<Arc<Target>>,
    threads: Mutex<Threads>,
    /// Threads alive (idle, busy or being started), at most [`MAX_WARM`].
    live: AtomicUsize,
    /// Whether a call came before: the first one runs on a fresh thread, so a handle used once
    /// (a path target opens one per call) pays no more than a thread, and leaves none behind.
    called: AtomicBool,
}

/// A pool's threads that no caller holds, under one lock: a thread that expires moves from
/// `idle` to `ended` in one step, so a shut-down that takes both finds every thread in one of
/// them.
pub(crate) struct Threads<W = Arc<Served>, H = ServedThread> {
    /// Threads waiting for a call, the most recently used last.
    idle: Vec<W>,
    /// Threads that ended on their own (idle too long, or retired): joined by the next caller
    /// that starts a thread, or by the shut-down.
    ended: Vec<H>,
}

impl<W, H> Threads<W, H> {
    pub(crate) const fn new() -> Threads<W, H> {
        Threads {
            idle: Vec::new(),
            ended: Vec::new(),
        }
    }

    /// Takes the most recently used idle thread.
    pub(crate) fn take_idle(&mut self) -> Option<W> {
        self.idle.pop()
    }

    /// Gives a thread back after a call.
    pub(crate) fn give_back(&mut self, thread: W) {
        self.idle.push(thread);
    }

    /// Called by an idle thread that wants to end: takes it out of the idle set and keeps the
    /// handle `take` gives for joining, in the same step; `false` (and nothing changes) when a
    /// caller took the thread meanwhile (or has not given it back yet).
    pub(crate) fn expire(
        &mut self,
        is_it: impl Fn(&W) -> bool,
        take: impl FnOnce(&W) -> Option<H>,
    ) -> bool {
        let Some(at) = self.idle.iter().position(is_it) else {
            return false;
        };
        let thread = self.idle.swap_remove(at);
        self.ended.extend(take(&thread));
        true
    }

    /// Takes the threads that ended on their own, to join them.
    pub(crate) fn take_ended(&mut self) -> Vec<H> {
        std::mem::take(&mut self.ended)
    }

    /// Gives back threads taken by [`Threads::take_ended`] that are not to be joined yet.
    pub(crate) fn keep_ended(&mut self, threads: Vec<H>) {
        self.ended.extend(threads);
    }

    /// Takes every thread, idle and ended, for a shut-down.
    pub(crate) fn take_all(&mut self) -> (Vec<W>, Vec<H>) {
        (std::mem::take(&mut self.idle), self.take_ended())
    }
}

impl Pool {
    fn new(key: PoolKey, context: Context, shared: bool) -> Arc<Pool> {
        Arc::new(Pool {
            key,
            shared,
            context,
            target: NoWaitOnce::new(),
            threads: Mutex::new(Threads::new()),
            live: AtomicUsize::new(0),
            called: AtomicBool::new(false),
        })
    }

    fn setup(&self) -> &Setup {
        &self.key.0
    }

    /// What the pool's threads enter (`ns`, or a shared pool's home), made when it starts its
    /// first thread (a process or handle that calls once holds no descriptor for it).
    fn target(&self, ns: &NetNs) -> Result<Arc<Target>> {
        if let Some(target) = self.target.get() {
            return Ok(Arc::clone(target));
        }
        let context = self.context.clone();
        let home;
        let enters = match self.shared {
            true => {
                home = home::shared_home()?;
                &home
            }
            false => ns,
        };
        let target = Target::new(enters, self.setup(), context, OnContextChange::Retire)?;
        let target = Arc::new(target);
        Ok(Arc::clone(self.target.get_or_init(|| target)))
    }

    /// Runs `f` in `ns`, whose shared threads inside are counted in `visitors`.
    fn run<F, T>(self: &Arc<Pool>, ns: &NetNs, visitors: &Arc<Visitors>, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        // Read before it is written: after the first call this is a load of a line every
        // caller only reads, not a write that all callers contend for.
        if !self.called.load(Ordering::Relaxed) && !self.called.swap(true, Ordering::Relaxed) {
            return fresh::run(ns, self.setup(), f);
        }
        // A thread with a view has a working directory of its own, made the caller's at each
        // call: read it before a thread is taken, so that a failure leaves the thread idle.
        let dir = match self.setup().needs_mounts() {
            true => Some(CallerDir::capture()?),
            false => None,
        };
        let task = move || {
            if let Some(dir) = dir {
                dir.enter()?;
            }
            Ok(f())
        };
        self.dispatch(ns, visitors, task)
    }

    /// Runs `task` on an idle warm thread, a new one, or (past [`MAX_WARM`]) a fresh thread.
    fn dispatch<F, T>(self: &Arc<Pool>, ns: &NetNs, visitors: &Arc<Visitors>, task: F) -> Result<T>
    where
        F: FnOnce() -> Result<T> + Send,
        T: Send,
    {
        // Taken in a statement of its own: the lock must not be held through the call.
        let idle = lock(&self.threads).take_idle();
        if let Some(warm) = idle {
            return self.call(ns, visitors, warm, task);
        }
        if self.live.fetch_add(1, Ordering::AcqRel) >= MAX_WARM {
            self.live.fetch_sub(1, Ordering::AcqRel);
            return fresh::run(ns, self.setup(), task)?;
        }
        self.join_ended();
        let warm = Served::new(SPIN_CAP);
        let pool = Arc::clone(self);
        let idle_timeout = self.key.1;
        let target = match self.target(ns) {
            Ok(target) => target,
            Err(_) if self.shared => {
                // No home its threads may go back to (a caller that may enter no namespace):
                // the call on a thread of its own, whose error, if any, is about `ns`.
                self.live.fetch_sub(1, Ordering::AcqRel);
                return fresh::run(ns, self.setup(), task)?;
            }
            Err(err) => {
                self.live.fetch_sub(1, Ordering::AcqRel);
                return Err(err);
            }
        };
        let expire = move |warm: &Arc<Served>| pool.expire(warm);
        if let Err(err) = warm.start(target, 0, Some(idle_timeout), expire, || ()) {
            self.live.fetch_sub(1, Ordering::AcqRel);
            return Err(err);
        }
        self.call(ns, visitors, warm, task)
    }

    /// Runs `task` on `warm`, which no one else holds: on a shared thread, entering `ns` first.
    fn call<F, T>(
        self: &Arc<Pool>,
        ns: &NetNs,
        visitors: &Arc<Visitors>,
        warm: Arc<Served>,
        task: F,
    ) -> Result<T>
    where
        F: FnOnce() -> Result<T> + Send,
        T: Send,
    {
        if !self.shared {
            let outcome = warm.call(task);
            return self.settle(ns, visitors, warm, outcome);
        }
        // Borrowed by the call, so that a call the thread refuses (and never ran) leaves the
        // task here, to be dispatched again.
        let mut task = Some(task);
        let slot = &mut task;
        let outcome = warm.call(|| {
            home::visit(ns, visitors)?;
            match slot.take() {
                Some(task) => task(),
                None => unreachable!("a call runs once"),
            }
        });
        let outcome = match outcome {
            // The closure, which borrowed the task, is done with.
            Outcome::NotRun(_) => match task.take() {
                Some(task) => Outcome::NotRun(task),
                None => unreachable!("a call that did not run left its task"),
            },
            Outcome::Ran(result) => Outcome::Ran(result),
            Outcome::Lost => Outcome::Lost,
        };
        self.settle(ns, visitors, warm, outcome)
    }

    /// After a call on `warm`: back to the idle set, or retired (the call panicked, or the
    /// thread refused it), resuming the panic here, or running a refused task elsewhere.
    fn settle<F, T>(
        self: &Arc<Pool>,
        ns: &NetNs,
        visitors: &Arc<Visitors>,
        warm: Arc<Served>,
        outcome: Outcome<F, Result<T>>,
    ) -> Result<T>
    where
        F: FnOnce() -> Result<T> + Send,
        T: Send,
    {
        match outcome {
            Outcome::Ran(Ok(result)) => {
                // Also after an error of the task (the caller's directory could not be
                // entered): the thread is as it entered, and puts itself back after the call.
                // Threads retired meanwhile are joined here once they have ended (what a
                // retired view thread left open in the process's file table is closed then).
                let ended = {
                    let mut threads = lock(&self.threads);
                    threads.give_back(warm);
                    threads.take_ended()
                };
                if !ended.is_empty() {
                    self.join_finished(ended);
                }
                result
            }
            Outcome::Ran(Err(payload)) => {
                // Its thread-locals may hold what the panic left half-done.
                self.retire(&warm);
                panic::resume_unwind(payload)
            }
            Outcome::NotRun(task) => {
                // The thread could not enter (joined at once for its error: it ran nothing), or
                // was retired after an earlier call: it is ending, maybe slowly (its
                // thread-locals' destructors), and is joined once it has ended.
                let thread = warm.take_thread();
                let not_entered = match warm.entered() {
                    false => served::join(thread),
                    true => {
                        lock(&self.threads).keep_ended(thread.into_iter().collect());
                        None
                    }
                };
                self.live.fetch_sub(1, Ordering::AcqRel);
                match not_entered {
                    Some(err) => Err(err),
                    None => self.dispatch(ns, visitors, task),
                }
            }
            Outcome::Lost => {
                // The body ended its thread: the next call gets another.
                served::join(warm.take_thread());
                self.live.fetch_sub(1, Ordering::AcqRel);
                Err(Error::ThreadEnded {
                    namespace: ns.describe(),
                })
            }
        }
    }

    /// Ends `warm`, which no caller holds and which is not in the idle set.
    /// It is joined once it has ended ([`Pool::join_ended`]), not here: its thread-locals,
    /// maybe left by other callers' bodies on a shared thread, may take long to drop.
    fn retire(&self, warm: &Served) {
        warm.stop(false);
        lock(&self.threads).keep_ended(warm.take_thread().into_iter().collect());
        self.live.fetch_sub(1, Ordering::AcqRel);
    }

    /// Called by `warm`'s own thread after an idle timeout, or when it retires: ends it if it is
    /// idle (no caller took it meanwhile), so that no caller can take it afterwards.
    fn expire(&self, warm: &Arc<Served>) -> bool {
        let expired =
            lock(&self.threads).expire(|other| Arc::ptr_eq(other, warm), |warm| warm.take_thread());
        if expired {
            self.live.fetch_sub(1, Ordering::AcqRel);
        }
        expired
    }

    /// Joins threads that ended on their own (they are gone or about to be: no wait to speak
    /// of). One that is the calling thread (it may drop the handle's last clone on its way out,
    /// in a thread-local) is left to end on its own: [`served::join`] never waits for itself.
    fn join_ended(&self) {
        let ended = lock(&self.threads).take_ended();
        self.join_finished(ended);
    }

    /// Joins those of `ended` that have ended, and keeps the others for later: one still
    /// running (a retired thread whose thread-locals take long to drop) holds up no caller,
    /// maybe of another handle.
    fn join_finished(&self, ended: Vec<ServedThread>) {
        let (finished, running): (Vec<_>, Vec<_>) =
            ended.into_iter().partition(ServedThread::is_finished);
        lock(&self.threads).keep_ended(running);
        for thread in finished {
            served::join(Some(thread));
        }
    }

    /// Ends every thread (the handle's last clone is being dropped, so no call is in flight)
    /// and joins them, except on a thread of the pool itself, which cannot wait for itself.
    /// (In a forked child the handle does not get here: [`WarmThreads`] forgets its pools.)
    fn shut_down(&self) {
        let (idle, ended) = lock(&self.threads).take_all();
        for warm in idle {
            warm.stop(warm.is_current_thread());
            served::join(warm.take_thread());
        }
        for thread in ended {
            served::join(Some(thread));
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Model-checks a warm thread expiring against the pool shutting down (see the worker's
    //! loom tests for how to run them).
    use super::Threads;
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    /// An idle warm thread expires while the handle's last clone shuts its pool down: in every
    /// interleaving the shut-down finds the thread, idle (to stop and join) or ended (to join),
    /// so no thread outlives the handle's drop.
    #[test]
    fn a_shut_down_finds_a_thread_that_expires_meanwhile() {
        loom::model(|| {
            let threads = Arc::new(Mutex::new(Threads::<u32, &'static str>::new()));
            threads.lock().unwrap().give_back(1);
            let expiring = {
                let threads = Arc::clone(&threads);
                thread::spawn(move || {
                    threads
                        .lock()
                        .unwrap()
                        .expire(|warm| *warm == 1, |_| Some("thread 1"))
                })
            };
            let (idle, ended) = threads.lock().unwrap().take_all();
            let expired = expiring.join().unwrap();
            let left = threads.lock().unwrap().take_all();
            assert_eq!(idle.len() + ended.len(), 1, "found by the shut-down");
            assert_eq!(expired, !ended.is_empty());
            assert!(
                left.0.is_empty() && left.1.is_empty(),
                "nothing found later"
            );
        });
    }
}
