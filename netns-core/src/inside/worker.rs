//! `Worker`: one long-lived thread inside a namespace that serves calls, so repeated calls pay
//! neither a thread start nor a `setns`.

use std::fmt;
use std::panic;
use std::sync::Arc;

use super::handoff::{Caller, Outcome};
use super::home::{OnContextChange, Target};
use super::served::{self, Served};
use super::span;
use crate::entry::{CallerDir, Setup};
use crate::error::{Error, Result};
use crate::fork::Born;
use crate::namespace::{NetNs, NsId};
use crate::security::Context;

/// The longest a worker and its callers spin before they sleep: each spins only as long as its
/// recent waits took, and only while a CPU is left for the threads that have work
/// ([`Patience`](crate::sync::Patience)).
const SPIN_CAP: std::time::Duration = std::time::Duration::from_micros(50);

/// A long-lived dedicated thread that entered one namespace and runs calls there, one at a time.
///
/// Choose it over [`NetNs::run`] when calls are frequent (a socket per connection, polling many
/// pods, calls that must stay in order): a warm call is a hand-off between two threads, with no
/// thread to start. The thread runs nothing but your calls, each inside the namespace; a panic
/// in a call is resumed in its caller and the worker keeps serving.
/// Clones are handles to the same thread; dropping the last one ends the thread after any
/// in-flight call.
///
/// ```no_run
/// # use netns_core as in_netns;
/// # fn main() -> in_netns::Result<()> {
/// let ns = in_netns::NetNs::named("blue")?;
/// let worker = ns.worker()?;
/// let port = 8080;
/// for _ in 0..1000 {
///     // `f` may borrow from the caller: `run` returns only when it is done.
///     let socket = worker.run(|| std::net::UdpSocket::bind(("127.0.0.1", port)))?;
/// }
/// # Ok(()) }
/// ```
///
/// An idle worker uses no CPU: after each call it spins at most 50 µs waiting for the next one,
/// and only while spinning has paid lately (calls that come close together, a CPU to spare),
/// then yields a few times and sleeps on a futex.
///
/// A call made on the worker's own thread (a call's body calling the same worker, directly or
/// through another `#[in_netns(&self.worker)]` method) runs inline, since that thread is already
/// inside. In a `fork()`ed child, which has no worker thread, a call is
/// [`Error::ForkedWorker`] instead of a wait; make a new worker in the child.
///
/// After each call the thread puts itself back as it entered, as warm threads do (see
/// [`NetNs::run`]): a body that moved it to another namespace, gave it a file table or
/// directory of its own, or changed its signal mask, affinity, name, scheduling or
/// capabilities leaves nothing of that to the next call. What cannot be put back retires the
/// thread, and the next call starts a new one behind the same `Worker` (entering the namespace
/// again), so calls run inside every time; they stay ordered.
pub struct Worker {
    shared: Arc<Shared>,
}

/// What a worker's handles share; dropping the last one stops the thread.
struct Shared {
    served: Arc<Served>,
    target: Arc<Target>,
    id: NsId,
    /// The handle the worker was made from (its async bodies run on its namespace runtime).
    ns: NetNs,
    /// The process that made the worker: in a forked child the thread does not exist.
    born: Born,
    /// Its pid, for the error of a call in a child.
    pid: u32,
}

impl NetNs {
    /// Starts a [`Worker`] inside this namespace. Failing to start the thread or to enter is
    /// this call's `Err`. (Named as the namespace's runtimes are made: `NetNs::runtime`.)
    pub fn worker(&self) -> Result<Worker> {
        self.worker_with(&Setup::DEFAULT)
    }

    /// Starts a [`Worker`] inside this namespace whose thread is made as `setup` says: its
    /// stack, and the `/sys` and `/etc` view. (A worker's one thread serves every call until
    /// the last handle drops: nothing of how a call finds a thread applies to it.)
    ///
    /// With a view the thread has a working directory of its own: each call first moves it to
    /// the caller's (a `getcwd` on each side, and a `chdir` when they differ: about 1 µs more
    /// per call here), so relative paths mean what they mean to the caller, and a body's
    /// `set_current_dir` lasts only for its call.
    /// Its umask stays the one the process had when the worker was made.
    pub fn worker_with(&self, setup: &Setup) -> Result<Worker> {
        let ns = self;
        setup.check(ns)?;
        let shared = Shared {
            served: Served::new(SPIN_CAP),
            target: Arc::new(Target::new(
                ns,
                setup,
                Context::current(),
                OnContextChange::Follow,
            )?),
            id: ns.id(),
            ns: ns.clone(),
            born: Born::here()?,
            pid: std::process::id(),
        };
        shared.start_thread(&mut shared.served.caller(), 0)?;
        Ok(Worker {
            shared: Arc::new(shared),
        })
    }
}

impl Worker {
    /// Runs `f` on the worker thread, inside the namespace, and returns its result.
    ///
    /// Blocks until `f` is done, so `f` may borrow from the caller (no `'static` bound).
    /// Concurrent callers are served one at a time. A panic in `f` is resumed here with its
    /// payload, and the worker keeps serving.
    ///
    /// Called on the worker's own thread (from inside a call), `f` runs inline, at once. In a
    /// forked child the worker has no thread, and the call is [`Error::ForkedWorker`].
    pub fn run<F, T>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let shared = &*self.shared;
        if shared.on_worker_thread() {
            return Ok(f());
        }
        if shared.forked() {
            return Err(Error::ForkedWorker { pid: shared.pid });
        }
        let f = span::carried(f);
        if shared.target.setup().needs_mounts() {
            let dir = CallerDir::capture()?;
            return shared.serve(move || dir.enter().map(|()| f()))?;
        }
        shared.serve(f)
    }

    /// The namespace the worker runs in.
    pub fn id(&self) -> NsId {
        self.shared.id
    }

    /// How the worker's thread was set up.
    pub fn setup(&self) -> Setup {
        *self.shared.target.setup()
    }

    /// A handle to the namespace the worker runs in: the one it was made from.
    pub fn namespace(&self) -> &NetNs {
        &self.shared.ns
    }
}

/// Another handle to the same worker thread; the thread ends when the last handle is dropped.
impl Clone for Worker {
    fn clone(&self) -> Worker {
        Worker {
            shared: Arc::clone(&self.shared),
        }
    }
}

// A panic in a call is caught on the worker thread and the hand-off returns to IDLE before it is
// resumed in the caller, so a worker observed after a panic is in a consistent state.
impl std::panic::UnwindSafe for Worker {}
impl std::panic::RefUnwindSafe for Worker {}

impl Shared {
    /// Starts the worker's thread, serving calls published after the `from`th, and waits until
    /// it has entered: its entry error otherwise.
    fn start_thread(&self, caller: &mut Caller<'_>, from: u32) -> Result<()> {
        let target = Arc::clone(&self.target);
        // Once inside, the thread says so: no call is spent on it, since a thread that cannot be
        // reused serves one.
        let (entered, entry) = std::sync::mpsc::sync_channel(1);
        let on_entry = move || {
            let _ = entered.send(());
        };
        // A worker's thread never expires: it serves until the last handle drops.
        self.served.start(target, from, None, |_| false, on_entry)?;
        if entry.recv().is_ok() {
            return Ok(());
        }
        // It could not enter, and waits to refuse a call: the error comes with the join.
        let _ = caller.call(|| ());
        Err(served::join(self.served.take_thread()).unwrap_or_else(not_entered))
    }

    /// Runs `f` on the worker thread; resumes its panic here. A thread that retired after an
    /// earlier call refuses this one: a new thread enters and runs it.
    fn serve<F, T>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let mut caller = self.served.caller();
        let task = match caller.call(f) {
            Outcome::Ran(outcome) => return Ok(unwind(outcome)),
            Outcome::NotRun(task) => task,
            Outcome::Lost => {
                // The body ended the thread: the next call starts another.
                served::join(self.served.take_thread());
                caller.vacate();
                return Err(self.thread_ended());
            }
        };
        // Joined first: it refused this call (or never started), so it has ended.
        served::join(self.served.take_thread());
        // The replacement is born from this thread, and has its security context: it must be
        // the Worker's.
        if !self.target.admits(&Context::current()) {
            caller.vacate();
            return Err(Error::WorkerContext {
                namespace: self.target.described.to_string(),
            });
        }
        let from = caller.replace();
        if let Err(err) = self.start_thread(&mut caller, from) {
            // No thread now: the next call tries again.
            caller.vacate();
            return Err(err);
        }
        match caller.call(task) {
            Outcome::Ran(outcome) => Ok(unwind(outcome)),
            Outcome::Lost => {
                served::join(self.served.take_thread());
                caller.vacate();
                Err(self.thread_ended())
            }
            Outcome::NotRun(_) => {
                served::join(self.served.take_thread());
                caller.vacate();
                Err(retired_at_once())
            }
        }
    }

    /// Whether the calling thread is this worker's (also in a child forked from inside a call,
    /// whose one thread is a copy of it).
    fn thread_ended(&self) -> Error {
        Error::ThreadEnded {
            namespace: self.target.described.to_string(),
        }
    }

    fn on_worker_thread(&self) -> bool {
        self.served.is_current_thread()
    }

    /// Whether this is a forked child of the process that made the worker.
    fn forked(&self) -> bool {
        !self.born.is_here()
    }
}

/// A thread that entered but refused its first call: its view's sources changed and the view
/// could not be built again (the reason is logged at debug level).
fn retired_at_once() -> Error {
    Error::Os {
        operation: "run a call on a new worker thread (its view could not be built again)",
        path: None,
        source: std::io::Error::other("the new thread refused its first call"),
    }
}

/// A thread that ended before it entered, without saying why (it always does).
fn not_entered() -> Error {
    Error::Os {
        operation: "start a worker thread",
        path: None,
        source: std::io::Error::other("the new thread ended before it entered the namespace"),
    }
}

/// A call's value, or its panic resumed.
fn unwind<T>(outcome: std::thread::Result<T>) -> T {
    outcome.unwrap_or_else(|payload| panic::resume_unwind(payload))
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle can be dropped by a call running on the worker thread itself: it
        // cannot wait for itself, so it only asks the loop to end after this call.
        let on_worker = self.on_worker_thread();
        if self.forked() && !on_worker {
            // No worker thread here to stop or join, and a lock may have been held by a thread
            // that the fork did not copy: leave it all alone.
            std::mem::forget(Arc::clone(&self.served));
            return;
        }
        self.served.stop(on_worker);
        // Not on the worker's own thread, nor on an ending thread of ours (`served::join`).
        served::join(self.served.take_thread());
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.shared.id)
            .field("setup", &self.setup())
            .finish()
    }
}
