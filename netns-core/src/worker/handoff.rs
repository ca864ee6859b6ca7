//! The hand-off between callers and a worker thread: every `unsafe` of the worker lives here.
//!
//! A caller publishes a pointer to a closure on its own stack, wakes the worker and waits until
//! the worker says it is done; only then does the caller's frame (and the closure) go away. That
//! wait is what makes it sound to erase the closure's lifetime, exactly as `std::thread::scope`
//! joins before returning.
//!
//! States of `state`: `IDLE` (no call), `JOB` (a call is published), `DONE` (the worker finished
//! it). Callers are serialized by `callers`, so at most one call is ever published.

use super::sync::{AtomicBool, AtomicU8, Mutex, Ordering, Thread, UnsafeCell, thread, wait_until};

const IDLE: u8 = 0;
const JOB: u8 = 1;
const DONE: u8 = 2;

/// A published call: a closure on the caller's stack, with its lifetime erased.
type ErasedJob = *mut (dyn FnMut() + Send + 'static);

/// The meeting point of callers and one worker thread.
pub(crate) struct Handoff {
    state: AtomicU8,
    stopping: AtomicBool,
    /// Serializes callers: one published call at a time.
    callers: Mutex<()>,
    /// Written by the caller before `JOB`, taken by the worker after it sees `JOB`.
    job: UnsafeCell<Option<ErasedJob>>,
    /// The caller to wake at `DONE`; written and taken like `job`.
    caller: UnsafeCell<Option<Thread>>,
    worker: Thread,
}

// SAFETY: `job` and `caller` are only accessed under the protocol: the caller holding `callers`
// writes them before storing `JOB` (Release), and the worker reads them after loading `JOB`
// (Acquire) and before storing `DONE` (Release); the next writer holds `callers` and was ordered
// after that `DONE` by the previous caller's Acquire load and the mutex. So no two threads ever
// access them at once. The erased job is only called while its caller waits (see `call`), and
// it is `Send`, so calling it from the worker thread is allowed.
unsafe impl Send for Handoff {}
// SAFETY: as for `Send`: all shared access goes through the atomics and the mutex.
unsafe impl Sync for Handoff {}

impl Handoff {
    /// A hand-off served by `worker` (the thread that will call [`Handoff::serve`]).
    pub(crate) fn new(worker: Thread) -> Handoff {
        Handoff {
            state: AtomicU8::new(IDLE),
            stopping: AtomicBool::new(false),
            callers: Mutex::new(()),
            job: UnsafeCell::new(None),
            caller: UnsafeCell::new(None),
            worker,
        }
    }

    /// Runs `job` on the worker thread and returns when it has finished.
    ///
    /// `job` must not unwind (the worker catches panics inside it). Returns `false`, without
    /// running `job`, when the worker is stopping.
    pub(crate) fn call(&self, job: &mut (dyn FnMut() + Send + '_)) -> bool {
        let _serialized = self.callers.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopping.load(Ordering::Acquire) {
            return false;
        }
        let job: *mut (dyn FnMut() + Send + '_) = job;
        // SAFETY: only the lifetime changes. The worker calls the job before it stores `DONE`,
        // and this function does not return (nor unwind: nothing below panics) before it has
        // seen `DONE`, so the closure and everything it borrows outlive every use of the pointer.
        let job: ErasedJob = unsafe { std::mem::transmute(job) };
        // SAFETY: we hold `callers` and the state is IDLE, so the worker does not touch the slots.
        self.job.with_mut(|slot| unsafe { *slot = Some(job) });
        // SAFETY: as above.
        self.caller.with_mut(|slot| unsafe { *slot = Some(thread::current()) });
        self.state.store(JOB, Ordering::Release);
        self.worker.unpark();
        wait_until(|| self.state.load(Ordering::Acquire) == DONE);
        self.state.store(IDLE, Ordering::Relaxed);
        true
    }

    /// The worker's loop: runs published calls until [`Handoff::stop`].
    pub(crate) fn serve(&self) {
        loop {
            wait_until(|| {
                self.state.load(Ordering::Acquire) == JOB || self.stopping.load(Ordering::Acquire)
            });
            if self.state.load(Ordering::Acquire) != JOB {
                return;
            }
            // SAFETY: the state is JOB, so the caller has written the slots and waits for DONE.
            let job = self.job.with_mut(|slot| unsafe { (*slot).take() });
            // SAFETY: as above.
            let caller = self.caller.with_mut(|slot| unsafe { (*slot).take() });
            if let Some(job) = job {
                // SAFETY: the pointer came from `call`, whose caller keeps the closure alive and
                // untouched until it sees DONE, which is stored only after this call returns.
                unsafe { (*job)() };
            }
            self.state.store(DONE, Ordering::Release);
            if let Some(caller) = caller {
                caller.unpark();
            }
        }
    }

    /// Makes the worker return from [`Handoff::serve`] once no call is in flight. With `wait`,
    /// first waits for an in-flight call to finish (not possible on the worker thread itself).
    pub(crate) fn stop(&self, wait_for_callers: bool) {
        let _serialized = wait_for_callers.then(|| self.callers.lock().unwrap_or_else(|e| e.into_inner()));
        self.stopping.store(true, Ordering::Release);
        self.worker.unpark();
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Model-checks the protocol: `RUSTFLAGS="--cfg loom" cargo test -p netns-core --release --lib loom`.
    use super::super::sync::{Arc, thread};
    use super::Handoff;

    /// Two callers race a worker, then the worker is stopped: every interleaving must run each
    /// job exactly once, return its result to its own caller, and let the worker end.
    #[test]
    fn concurrent_calls_each_run_once_and_the_worker_stops() {
        loom::model(|| {
            let (tx, rx) = loom::sync::mpsc::channel();
            let worker = thread::spawn(move || {
                let handoff = Arc::new(Handoff::new(thread::current()));
                tx.send(Arc::clone(&handoff)).unwrap();
                handoff.serve();
            });
            let handoff = rx.recv().unwrap();
            let callers: Vec<_> = (1..=2_u32)
                .map(|n| {
                    let handoff = Arc::clone(&handoff);
                    thread::spawn(move || {
                        let mut result = 0;
                        let mut job = || result += n * 10;
                        assert!(handoff.call(&mut job));
                        assert_eq!(result, n * 10);
                    })
                })
                .collect();
            for caller in callers {
                caller.join().unwrap();
            }
            handoff.stop(true);
            worker.join().unwrap();
            let mut never = || panic!("a stopped worker must not run jobs");
            assert!(!handoff.call(&mut never));
        });
    }
}
