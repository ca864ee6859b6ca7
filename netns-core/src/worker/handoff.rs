//! The hand-off between callers and a worker thread: every `unsafe` of the worker lives here
//! (and the futex calls in `sync`).
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

use super::sync::{
    AtomicBool, AtomicU32, CachePadded, Mutex, Ordering, UnsafeCell, futex_wake, wait_until,
    wait_until_marked, wait_until_or_timeout,
};

/// A [`Frame`]'s signal: the caller is waiting (spinning, or asleep), or the call is done.
const PENDING: u32 = 0;
const SLEEPING: u32 = 1;
const DONE: u32 = 2;

/// A published call: the frame, and the function that runs it (it knows the frame's types).
#[derive(Clone, Copy)]
struct Published {
    run: unsafe fn(*const ()),
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

/// Runs the task of the `Frame<F, T>` at `frame` and stores its outcome there.
///
/// # Safety
/// `frame` points to a live `Frame<F, T>` whose caller waits for `DONE` and touches nothing
/// else in it meanwhile.
unsafe fn run_frame<F: FnOnce() -> T, T>(frame: *const ()) {
    // SAFETY: the caller of `run_frame` guarantees the frame is live and ours until DONE.
    let frame = unsafe { &*(frame as *const Frame<F, T>) };
    // SAFETY: as above: nobody else touches `task` or `outcome` until DONE.
    let task = frame.task.with_mut(|task| unsafe { (*task).take() });
    if let Some(task) = task {
        let outcome = panic::catch_unwind(AssertUnwindSafe(task));
        // SAFETY: as above.
        frame
            .outcome
            .with_mut(|slot| unsafe { *slot = Some(outcome) });
    }
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
    /// How long each side spins before it sleeps on the futex.
    spin_for: std::time::Duration,
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
    /// A hand-off whose sides spin up to `spin_for` (the other side usually answers within a
    /// microsecond) before they sleep. A long spin keeps a lone worker hot between calls; many
    /// threads spinning long on few cores only delay the one that has work.
    pub(crate) fn new(spin_for: std::time::Duration) -> Handoff {
        Handoff {
            spin_for,
            callers: CachePadded(Mutex::new(())),
            published: AtomicU32::new(0),
            call: UnsafeCell::new(None),
            stopping: AtomicBool::new(false),
            worker_sleeping: AtomicBool::new(false),
        }
    }

    /// Runs `task` on the worker thread and returns its outcome (its value, or its panic's
    /// payload) once it has finished; `None`, without running it, when the worker is stopping.
    pub(crate) fn call<F, T>(&self, task: F) -> Option<thread::Result<T>>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let _serialized = self.callers.0.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopping.load(Ordering::Acquire) {
            return None;
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
        // SAFETY: we hold `callers` and no call is published (the worker took the last one before
        // marking it DONE), so the worker does not touch `call`. The frame outlives its use: the worker runs it and marks it DONE, and this
        // function neither returns nor unwinds (nothing below panics) before it has seen DONE.
        self.call
            .with_mut(|slot| unsafe { *slot = Some(published) });
        self.published.fetch_add(1, Ordering::SeqCst);
        super::sync::wake(&self.published, &self.worker_sleeping);
        let done = |signal| signal == DONE;
        wait_until_marked(&frame.signal, done, PENDING, SLEEPING, self.spin_for);
        // SAFETY: the worker is done with the frame (DONE, Acquire).
        frame.outcome.with_mut(|slot| unsafe { (*slot).take() })
    }

    /// The worker's loop: runs published calls until [`Handoff::stop`].
    pub(crate) fn serve(&self) {
        self.serve_while(None, || false, || false);
    }

    /// [`Handoff::serve`] for a warm thread: after `idle` without a call it asks `expire`
    /// whether to end, which says yes only when no caller has taken the thread meanwhile (it
    /// then never will); otherwise the call that caller publishes is served.
    ///
    /// After each call it asks `copied` whether it is a copy made by a `fork()` inside that call
    /// (the one thread of a child process): such a copy ends, as a thread that ran the body and
    /// ended would, instead of waiting for calls no one can make.
    pub(crate) fn serve_until_idle(
        &self,
        idle: std::time::Duration,
        expire: impl Fn() -> bool,
        copied: impl Fn() -> bool,
    ) {
        self.serve_while(Some(idle), expire, copied);
    }

    fn serve_while(
        &self,
        idle: Option<std::time::Duration>,
        expire: impl Fn() -> bool,
        copied: impl Fn() -> bool,
    ) {
        // The count `new` starts from, not the current one: a call may be published before
        // this thread gets here.
        let mut seen = 0;
        loop {
            let ready = |count| count != seen || self.stopping.load(Ordering::Acquire);
            match idle {
                None => wait_until(&self.published, &self.worker_sleeping, ready, self.spin_for),
                Some(idle) => {
                    let sleeping = &self.worker_sleeping;
                    let called = wait_until_or_timeout(
                        &self.published,
                        sleeping,
                        ready,
                        idle,
                        self.spin_for,
                    );
                    if !called && expire() {
                        return;
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
            // for its frame (see `call`); only this thread touches `call` until it marks it DONE.
            let Some(call) = self.call.with_mut(|slot| unsafe { (*slot).take() }) else {
                unreachable!(
                    "a call was counted but not published: callers publish before counting, \
                     and `stop` sets `stopping` before counting"
                );
            };
            // SAFETY: the frame is live and the caller waits for DONE (see `call`).
            unsafe { (call.run)(call.frame) };
            // The last access to the frame: once DONE is visible the caller may free it.
            // SAFETY: `signal` is the frame's first field, and the frame is live until DONE.
            let signal = unsafe { &*(call.frame as *const AtomicU32) };
            if signal.swap(DONE, Ordering::Release) == SLEEPING {
                // Only the address is used: should the caller have woken spuriously, seen DONE
                // and returned already, this is at worst a spurious wake-up for another waiter.
                futex_wake(call.frame as *const AtomicU32);
            }
            if copied() {
                return;
            }
        }
    }

    /// Makes the worker return from [`Handoff::serve`]. With `wait_for_callers`, first waits for
    /// an in-flight call to finish and wakes the worker; without (on the worker thread itself,
    /// inside a call), the worker ends after the current call.
    pub(crate) fn stop(&self, wait_for_callers: bool) {
        if !wait_for_callers {
            self.stopping.store(true, Ordering::Release);
            return;
        }
        let _serialized = self.callers.0.lock().unwrap_or_else(|e| e.into_inner());
        self.stopping.store(true, Ordering::Release);
        // Changing the futex word is what wakes the worker from its wait.
        self.published.fetch_add(1, Ordering::SeqCst);
        super::sync::wake(&self.published, &self.worker_sleeping);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Model-checks the protocol:
    //! `LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" cargo test -p netns-core --release --lib loom`.
    use super::Handoff;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU32, Ordering};
    use loom::thread;

    /// Two callers race a worker, then the worker is stopped: in every interleaving each job
    /// runs exactly once, its result reaches its own caller (through a loom cell, so any
    /// unordered access is reported), and the worker ends.
    #[test]
    fn concurrent_calls_each_run_once_and_the_worker_stops() {
        loom::model(|| {
            let handoff = Arc::new(Handoff::new(std::time::Duration::ZERO));
            let worker = {
                let handoff = Arc::clone(&handoff);
                thread::spawn(move || handoff.serve())
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
                        assert_eq!(outcome.unwrap().unwrap(), n * 10);
                    })
                })
                .collect();
            for caller in callers {
                caller.join().unwrap();
            }
            assert_eq!(runs.load(Ordering::Relaxed), 2);
            handoff.stop(true);
            worker.join().unwrap();
            assert!(
                handoff
                    .call(|| panic!("a stopped worker must not run jobs"))
                    .is_none()
            );
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
            let worker = {
                let handoff = Arc::clone(&handoff);
                let idle = Arc::clone(&idle);
                thread::spawn(move || {
                    let expire = || {
                        // The pool's `expire`: leave the idle set, if still in it.
                        std::mem::replace(&mut *idle.lock().unwrap(), false)
                    };
                    handoff.serve_until_idle(std::time::Duration::ZERO, expire, || false);
                })
            };
            let taken = std::mem::replace(&mut *idle.lock().unwrap(), false);
            if taken {
                let outcome = handoff.call(|| 7_u32);
                assert_eq!(outcome.unwrap().unwrap(), 7);
                handoff.stop(true);
            }
            worker.join().unwrap();
        });
    }
}
