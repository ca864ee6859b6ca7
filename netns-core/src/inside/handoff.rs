//! The hand-off between callers and a served thread (a warm thread or a `Worker`'s): the
//! `unsafe` of passing a borrowing closure to another thread lives here (the futex waits in
//! `sync`, their system calls in `sys`).
//!
//! A caller builds a [`Frame`] on its own stack (the closure, room for its result, and the
//! completion signal, together so that they cross between the cores as one cache line),
//! publishes a pointer to it, wakes the worker, and waits until the worker marks the frame done.
//! Only then does the caller's frame go away. That wait is what makes it sound to hand the worker
//! a pointer to a closure that borrows, exactly as `std::thread::scope` joins before returning.
//!
//! The worker watches `published`, a counter the caller bumps for each call; callers are
//! serialized by `callers`, so at most one call is ever published. The worker never writes the
//! shared line in the warm path, and the caller never reads it while waiting.

use std::panic::{self, AssertUnwindSafe};
use std::thread;

use std::time::{Duration, Instant};

use crate::fork::Born;
use crate::sync::{
    AtomicBool, AtomicU32, CachePadded, Mutex, MutexGuard, Ordering, Patience, UnsafeCell, Waited,
    futex_wake, wait_until, wait_until_marked, wait_until_or_timeout,
};

/// A [`Frame`]'s signal: the caller is waiting (spinning, or asleep), the call is done, or the
/// thread refused it without running it (its task is still in the frame).
const PENDING: u32 = 0;
const SLEEPING: u32 = 1;
const DONE: u32 = 2;
const REFUSED: u32 = 3;

/// How long a retiring thread waits for its caller to give it back before it looks again.
const RETIRE_RETRY: Duration = Duration::from_millis(1);

/// What became of a call.
pub(crate) enum Outcome<F, T> {
    /// It ran: its value, or its panic's payload.
    Ran(thread::Result<T>),
    /// It did not run, and here is its task back: the thread is retiring (it could not be kept
    /// as it entered, or could not enter at all) or stopping, and has ended or is ending; or it
    /// ended before it took the call (killed, as below).
    NotRun(F),
    /// The thread ended in the middle of the call without returning or unwinding (the body
    /// ended it: a seccomp filter's kill, a raw `exit`): the task is gone, with no outcome.
    Lost,
}

/// What a served thread does around its calls: it owns the thread's state between calls.
pub(crate) trait Keeper {
    /// Before a call runs: whether the thread may run it. `false` refuses it (the caller gets
    /// its task back) and ends the thread.
    fn before_call(&mut self) -> bool;
    /// After a call, once its caller has been told it is done (so what this costs is not on the
    /// caller's path): whether the thread serves on.
    fn after_call(&mut self) -> After;
    /// After an idle timeout, and while retiring: whether to end now. Says yes only when no
    /// caller can take the thread any more (a warm thread leaves its idle set); a thread that no
    /// caller gives up (a `Worker`'s) never says yes.
    fn expire(&self) -> bool;
}

/// What a served thread does after a call.
pub(crate) enum After {
    /// Waits for the next call.
    Serve,
    /// It could not be kept as it entered: it runs no more calls, refuses the next one (whose
    /// caller then retires or replaces it), and ends.
    Retire,
    /// Ends now: a copy of the thread made by a `fork()` inside the call, which no caller can
    /// reach.
    End,
}

/// A published call: the frame, and the function that runs it (it knows the frame's types).
#[derive(Clone, Copy)]
struct Published {
    run: unsafe fn(*const ()) -> Ran,
    frame: *const (),
}

/// One call, on the caller's stack, on a cache line of its own (the caller wraps it in
/// [`CachePadded`]). `signal` comes first, so a pointer to the frame is a pointer to it
/// (`repr(C)`).
#[repr(C)]
struct Frame<F, T> {
    signal: AtomicU32,
    task: UnsafeCell<Option<F>>,
    outcome: UnsafeCell<Option<thread::Result<T>>>,
}

/// Where the thread that ran a published call is.
#[derive(PartialEq, Eq)]
enum Ran {
    /// In the caller's process: the frame is to be finished.
    Here,
    /// A copy in a child forked by the task: the caller does not exist here, and its frame lies
    /// on a stack the child's C library counts as free, so the copy only ends.
    InForkedChild,
}

/// Runs the task of the `Frame<F, T>` at `frame` and stores its outcome there (unless the task
/// forked and this is the copy in the child).
///
/// # Safety
/// `frame` points to a live `Frame<F, T>` whose caller waits for `DONE` and touches nothing
/// else in it meanwhile.
unsafe fn run_frame<F: FnOnce() -> T, T>(frame: *const ()) -> Ran {
    // SAFETY: the caller of `run_frame` guarantees the frame is live and ours until DONE.
    let frame = unsafe { &*(frame as *const Frame<F, T>) };
    // SAFETY: as above: nobody else touches `task` or `outcome` until DONE.
    let task = frame.task.with_mut(|task| unsafe { (*task).take() });
    if let Some(task) = task {
        let born = Born::here().ok();
        let outcome = panic::catch_unwind(AssertUnwindSafe(task));
        if Born::forked_since(born) {
            // Nor is the outcome, which may borrow from the caller, ours to drop.
            std::mem::forget(outcome);
            return Ran::InForkedChild;
        }
        // SAFETY: as above.
        frame
            .outcome
            .with_mut(|slot| unsafe { *slot = Some(outcome) });
    }
    Ran::Here
}

/// The meeting point of callers and one worker thread.
pub(crate) struct Handoff {
    /// Serializes callers: one published call at a time. Padded, to keep what callers touch
    /// alone off the line that both sides share.
    callers: CachePadded<Mutex<()>>,
    /// Bumped by each call (and by `stop`); the worker's futex word.
    published: AtomicU32,
    /// Written by the caller before bumping `published`, taken by the worker after seeing it,
    /// so no pointer to a finished frame stays behind.
    call: UnsafeCell<Option<Published>>,
    stopping: AtomicBool,
    worker_sleeping: AtomicBool,
    /// The serving thread's id, 0 until it serves (and again once a replacement is due): a
    /// sleeping caller asks whether that thread still exists.
    server: std::sync::atomic::AtomicI32,
    /// How long callers wait for a result before they sleep (written by the one caller).
    caller_patience: CachePadded<Patience>,
    /// How long the thread waits for the next call before it sleeps (written by the thread).
    thread_patience: CachePadded<Patience>,
}

// SAFETY: `call` is only accessed under the protocol: the caller holding `callers` writes it
// before bumping `published` (SeqCst, so Release), and the worker reads it after loading the new
// count (Acquire) and before it marks the frame DONE (Release); the next writer holds `callers`
// and was ordered after that DONE by the previous caller's Acquire load and the mutex. So no two
// threads ever access it at once. A published frame is only used while its caller waits (see
// `call`), and its task is `Send`, so running it on the worker thread is allowed.
unsafe impl Send for Handoff {}
// SAFETY: as for `Send`: all other shared access goes through atomics and the mutex.
unsafe impl Sync for Handoff {}

impl Handoff {
    /// A hand-off whose sides spin at most `spin_cap` before they sleep, and only as long as
    /// spinning pays ([`Patience`]): a spin keeps a lone thread hot between calls that come
    /// close together; spinning for calls that come far apart, or on a machine whose CPUs are
    /// busy, only takes CPU from the threads that have work.
    pub(crate) fn new(spin_cap: Duration) -> Handoff {
        Handoff {
            caller_patience: CachePadded(Patience::new(spin_cap)),
            thread_patience: CachePadded(Patience::new(spin_cap)),
            callers: CachePadded(Mutex::new(())),
            published: AtomicU32::new(0),
            call: UnsafeCell::new(None),
            stopping: AtomicBool::new(false),
            worker_sleeping: AtomicBool::new(false),
            server: std::sync::atomic::AtomicI32::new(0),
        }
    }

    /// Runs `task` on the served thread and returns what became of it.
    pub(crate) fn call<F, T>(&self, task: F) -> Outcome<F, T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        self.caller().call(task)
    }

    /// Becomes the one caller until the guard drops: a caller that finds the thread retired can
    /// start its replacement ([`Caller::replace`]) before anyone else publishes a call.
    pub(crate) fn caller(&self) -> Caller<'_> {
        Caller {
            handoff: self,
            _serialized: crate::sync::lock(&self.callers.0),
        }
    }

    /// The served thread's loop: runs the calls published after the `from`th until
    /// [`Handoff::stop`], with `keeper` around each. With an `idle` time, it asks the keeper
    /// whether to expire after that long without a call; otherwise the call a caller publishes
    /// meanwhile is served.
    ///
    /// `from` is the count the thread starts from: 0 for a new hand-off (a call may be published
    /// before the thread gets here), [`Caller::replace`]'s for a replacement.
    pub(crate) fn serve(&self, from: u32, idle: Option<Duration>, keeper: &mut impl Keeper) {
        self.server
            .store(crate::sys::gettid(), std::sync::atomic::Ordering::Release);
        let mut seen = from;
        let mut retiring = false;
        loop {
            let spin = self.thread_patience.0.plan(false);
            let started = Instant::now();
            let mut waited = Waited::Sleeping;
            let ready = |count| count != seen || self.stopping.load(Ordering::Acquire);
            // A retiring warm thread keeps trying to leave its idle set, where its caller may
            // not have put it back yet; a retiring `Worker` thread waits for the call to refuse.
            let wait = match retiring {
                true => idle.map(|_| RETIRE_RETRY),
                false => idle,
            };
            match wait {
                None => waited = wait_until(&self.published, &self.worker_sleeping, ready, spin),
                Some(wait) => {
                    let sleeping = &self.worker_sleeping;
                    let called =
                        wait_until_or_timeout(&self.published, sleeping, ready, wait, spin);
                    match called {
                        Some(how) => waited = how,
                        None if keeper.expire() => return,
                        None => {}
                    }
                    if !ready(self.published.load(Ordering::Acquire)) {
                        continue;
                    }
                }
            }
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            seen = self.published.load(Ordering::Acquire);
            // SAFETY: a new count without `stopping` means a caller has written `call` and waits
            // for its frame (see `Caller::call`); only this thread touches `call` until it marks
            // the frame DONE or REFUSED.
            let Some(call) = self.call.with_mut(|slot| unsafe { (*slot).take() }) else {
                unreachable!(
                    "a call was counted but not published: callers publish before counting, \
                     and `stop` sets `stopping` before counting"
                );
            };
            // How this thread's wait for the call went: how far apart calls come.
            self.thread_patience
                .0
                .record(spin, waited, started.elapsed());
            if retiring || !keeper.before_call() {
                // Its task stays in the frame, for the caller to take back.
                // SAFETY: the frame is live and its caller waits (see above).
                unsafe { finish(call.frame, REFUSED) };
                return;
            }
            // SAFETY: the frame is live and the caller waits for DONE (see `Caller::call`).
            if unsafe { (call.run)(call.frame) } == Ran::InForkedChild {
                return;
            }
            // SAFETY: as above; this is the last access to the frame.
            unsafe { finish(call.frame, DONE) };
            match keeper.after_call() {
                After::Serve => {}
                After::Retire => retiring = true,
                After::End => return,
            }
        }
    }

    /// Makes the served thread return from [`Handoff::serve`]. With `wait_for_callers`, first
    /// waits for an in-flight call to finish and wakes the thread; without (on the served
    /// thread itself, inside a call), the thread ends after the current call.
    pub(crate) fn stop(&self, wait_for_callers: bool) {
        if !wait_for_callers {
            self.stopping.store(true, Ordering::Release);
            return;
        }
        let _serialized = crate::sync::lock(&self.callers.0);
        self.stopping.store(true, Ordering::Release);
        // Changing the futex word is what wakes the worker from its wait.
        self.published.fetch_add(1, Ordering::SeqCst);
        crate::sync::wake(&self.published, &self.worker_sleeping);
    }
}

impl Handoff {
    /// Whether the serving thread still exists (also while none serves yet, which one will).
    fn server_exists(&self) -> bool {
        match self.server.load(std::sync::atomic::Ordering::Acquire) {
            0 => true,
            // A thread id is reused only after the kernel went through every other one (pid_max,
            // millions): a caller sees the thread it waits for end long before that.
            tid => crate::sys::thread_exists(crate::sys::getpid(), tid),
        }
    }
}

/// Marks the frame at `frame` with its final signal (`DONE` or `REFUSED`), waking its caller if
/// it sleeps. Once the signal is visible the caller may free the frame: nothing here touches it
/// afterwards.
///
/// # Safety
/// `frame` points to a live frame whose caller waits for its final signal.
unsafe fn finish(frame: *const (), signal: u32) {
    // SAFETY: `signal` is the frame's first field (`repr(C)`), and the frame is live until the
    // final signal is visible.
    let word = unsafe { &*(frame as *const AtomicU32) };
    if word.swap(signal, Ordering::Release) == SLEEPING {
        // Only the address is used: should the caller have woken spuriously, seen the signal
        // and returned already, this is at worst a spurious wake-up for another waiter.
        futex_wake(frame as *const AtomicU32);
    }
}

/// The one caller of a hand-off, while it lives ([`Handoff::caller`]).
pub(crate) struct Caller<'a> {
    handoff: &'a Handoff,
    _serialized: MutexGuard<'a, ()>,
}

impl Caller<'_> {
    /// Runs `task` on the served thread and returns what became of it: its outcome once it has
    /// finished, or the task itself when the thread refused it or is stopping.
    pub(crate) fn call<F, T>(&mut self, task: F) -> Outcome<F, T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let handoff = self.handoff;
        if handoff.stopping.load(Ordering::Acquire) {
            return Outcome::NotRun(task);
        }
        let padded = CachePadded(Frame {
            signal: AtomicU32::new(PENDING),
            task: UnsafeCell::new(Some(task)),
            outcome: UnsafeCell::new(None),
        });
        let frame = &padded.0;
        let published = Published {
            run: run_frame::<F, T>,
            frame: frame as *const Frame<F, T> as *const (),
        };
        // SAFETY: this caller holds `callers` and no call is published (the thread took the last
        // one before marking it), so the thread does not touch `call`. The frame outlives its use:
        // the thread runs or refuses it and marks it, and this function neither returns nor
        // unwinds (nothing below panics) before it has seen the mark.
        handoff
            .call
            .with_mut(|slot| unsafe { *slot = Some(published) });
        handoff.published.fetch_add(1, Ordering::SeqCst);
        let woke = crate::sync::wake(&handoff.published, &handoff.worker_sleeping);
        let marked = |signal| signal == DONE || signal == REFUSED;
        let patience = &handoff.caller_patience.0;
        let spin = patience.plan(woke);
        let started = Instant::now();
        let alive = || handoff.server_exists();
        let waited = wait_until_marked(&frame.signal, marked, (PENDING, SLEEPING), spin, alive);
        let Some(waited) = waited else {
            // The thread is gone: nothing touches the frame or the call any more.
            // SAFETY: the published call is this frame's (callers are serialized), and the
            // thread that could have taken it no longer exists.
            handoff.call.with_mut(|slot| unsafe { (*slot).take() });
            // SAFETY: as above: no thread but this one can reach the frame.
            let task = frame.task.with_mut(|task| unsafe { (*task).take() });
            return match task {
                Some(task) => Outcome::NotRun(task),
                None => Outcome::Lost,
            };
        };
        patience.record(spin, waited, started.elapsed());
        if frame.signal.load(Ordering::Acquire) == REFUSED {
            // SAFETY: the thread is done with the frame (REFUSED, Acquire) and left its task.
            let task = frame.task.with_mut(|task| unsafe { (*task).take() });
            let Some(task) = task else {
                unreachable!("a refused call's task is never taken");
            };
            return Outcome::NotRun(task);
        }
        // SAFETY: the thread is done with the frame (DONE, Acquire).
        match frame.outcome.with_mut(|slot| unsafe { (*slot).take() }) {
            Some(outcome) => Outcome::Ran(outcome),
            None => unreachable!("a call marked DONE has its outcome"),
        }
    }

    /// For a replacement of a thread that ended (it refused a call, or could not be started):
    /// clears `stopping` and returns the count the replacement serves from
    /// ([`Handoff::serve`]), so that it serves exactly the calls published after this.
    pub(crate) fn replace(&mut self) -> u32 {
        // The replacement says who it is once it serves; until then, a caller waits for it.
        self.handoff
            .server
            .store(0, std::sync::atomic::Ordering::Release);
        self.handoff.stopping.store(false, Ordering::Release);
        self.handoff.published.load(Ordering::Acquire)
    }

    /// Marks the hand-off as having no thread (its replacement could not be started), so that
    /// later calls get their task back at once instead of waiting for a thread.
    pub(crate) fn vacate(&mut self) {
        self.handoff.stopping.store(true, Ordering::Release);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Model-checks the protocol:
    //! `LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" cargo test -p netns-core --release --lib loom`.
    use super::{After, Handoff, Keeper, Outcome};
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU32, Ordering};
    use loom::thread;

    /// A keeper that serves on, or retires after its first call, and may expire when idle.
    struct Model<E> {
        retire: bool,
        expire: E,
    }

    impl<E: Fn() -> bool> Keeper for Model<E> {
        fn before_call(&mut self) -> bool {
            true
        }

        fn after_call(&mut self) -> After {
            match self.retire {
                true => After::Retire,
                false => After::Serve,
            }
        }

        fn expire(&self) -> bool {
            (self.expire)()
        }
    }

    fn serving() -> Model<fn() -> bool> {
        Model {
            retire: false,
            expire: || false,
        }
    }

    fn ran<F, T>(outcome: Outcome<F, T>) -> T {
        match outcome {
            Outcome::Ran(outcome) => outcome.unwrap(),
            Outcome::NotRun(_) | Outcome::Lost => panic!("the call did not run"),
        }
    }

    /// Two callers race a served thread, then it is stopped: in every interleaving each job
    /// runs exactly once, its result reaches its own caller (through a loom cell, so any
    /// unordered access is reported), and the thread ends.
    #[test]
    fn concurrent_calls_each_run_once_and_the_thread_stops() {
        loom::model(|| {
            let handoff = Arc::new(Handoff::new(std::time::Duration::ZERO));
            let server = {
                let handoff = Arc::clone(&handoff);
                thread::spawn(move || handoff.serve(0, None, &mut serving()))
            };
            // An atomic in the job gives loom a scheduling point inside it.
            let runs = Arc::new(AtomicU32::new(0));
            let callers: Vec<_> = (1..=2_u32)
                .map(|n| {
                    let handoff = Arc::clone(&handoff);
                    let runs = Arc::clone(&runs);
                    thread::spawn(move || {
                        let outcome = handoff.call(move || {
                            runs.fetch_add(1, Ordering::Relaxed);
                            n * 10
                        });
                        assert_eq!(ran(outcome), n * 10);
                    })
                })
                .collect();
            for caller in callers {
                caller.join().unwrap();
            }
            assert_eq!(runs.load(Ordering::Relaxed), 2);
            handoff.stop(true);
            server.join().unwrap();
            let after_stop = handoff.call(|| panic!("a stopped thread must not run jobs"));
            assert!(matches!(after_stop, Outcome::NotRun(_)));
        });
    }

    /// A warm thread that found no call (under loom its idle timeout is "at once") races a
    /// caller that takes it from the idle set: in every interleaving it either expires, and the
    /// caller never calls it, or serves the caller's call; then it ends when stopped.
    #[test]
    fn an_idle_warm_thread_expires_only_while_no_caller_holds_it() {
        loom::model(|| {
            let handoff = Arc::new(Handoff::new(std::time::Duration::ZERO));
            let idle = Arc::new(loom::sync::Mutex::new(true));
            let server = {
                let handoff = Arc::clone(&handoff);
                let idle = Arc::clone(&idle);
                thread::spawn(move || {
                    let mut keeper = Model {
                        retire: false,
                        // The pool's `expire`: leave the idle set, if still in it.
                        expire: || std::mem::replace(&mut *idle.lock().unwrap(), false),
                    };
                    handoff.serve(0, Some(std::time::Duration::ZERO), &mut keeper);
                })
            };
            let taken = std::mem::replace(&mut *idle.lock().unwrap(), false);
            if taken {
                assert_eq!(ran(handoff.call(|| 7_u32)), 7);
                handoff.stop(true);
            }
            server.join().unwrap();
        });
    }

    /// A thread that retires after a call (a body left it in a state it cannot be put back
    /// from) refuses the next call, whose caller gets the task back, starts a replacement that
    /// serves from the current count, and runs the task there: in every interleaving the task
    /// runs once, on the replacement, and no call is lost or run twice.
    #[test]
    fn a_retired_thread_refuses_the_next_call_and_a_replacement_runs_it() {
        loom::model(|| {
            let handoff = Arc::new(Handoff::new(std::time::Duration::ZERO));
            let retiring = {
                let handoff = Arc::clone(&handoff);
                thread::spawn(move || {
                    let mut keeper = Model {
                        retire: true,
                        expire: || false,
                    };
                    handoff.serve(0, None, &mut keeper);
                    1_u32
                })
            };
            assert_eq!(ran(handoff.call(|| 1_u32)), 1);
            let mut caller = handoff.caller();
            let task = match caller.call(|| 2_u32) {
                Outcome::NotRun(task) => task,
                Outcome::Ran(_) | Outcome::Lost => panic!("a retiring thread ran a second call"),
            };
            assert_eq!(retiring.join().unwrap(), 1, "the retiring thread ended");
            let from = caller.replace();
            let replacement = {
                let handoff = Arc::clone(&handoff);
                thread::spawn(move || handoff.serve(from, None, &mut serving()))
            };
            assert_eq!(ran(caller.call(task)), 2);
            drop(caller);
            handoff.stop(true);
            replacement.join().unwrap();
        });
    }
}
