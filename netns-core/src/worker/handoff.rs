//! The hand-off between callers and a worker thread: every `unsafe` of the worker lives here
//! (and the futex calls in `sync`).
//!
//! A caller publishes a pointer to a closure on its own stack, wakes the worker and waits until
//! the worker says it is done; only then does the caller's frame (and the closure) go away. That
//! wait is what makes it sound to erase the closure's lifetime, exactly as `std::thread::scope`
//! joins before returning.
//!
//! The futex word `state` is `IDLE` (no call yet), `JOB` (a call is published), `DONE` (the
//! worker finished it; the next call publishes over it) or `STOP`. Callers are serialized by
//! `callers`, so at most one call is ever published.

use super::sync::{AtomicBool, AtomicU32, Mutex, Ordering, UnsafeCell, wait_until, wake};

const IDLE: u32 = 0;
const JOB: u32 = 1;
const DONE: u32 = 2;
const STOP: u32 = 3;

/// A published call: a closure on the caller's stack, with its lifetime erased.
type ErasedJob = *mut (dyn FnMut() + Send + 'static);

/// Keeps what callers touch alone off the line that both sides share.
#[repr(align(128))]
struct Padded<T>(T);

/// The meeting point of callers and one worker thread.
pub(crate) struct Handoff {
    /// Serializes callers: one published call at a time.
    callers: Padded<Mutex<()>>,
    state: AtomicU32,
    /// Written by the caller before `JOB`, read by the worker after it sees `JOB`.
    job: UnsafeCell<Option<ErasedJob>>,
    stopping: AtomicBool,
    worker_sleeping: AtomicBool,
    caller_sleeping: AtomicBool,
}

// SAFETY: `job` is only accessed under the protocol: the caller holding `callers` writes it
// before storing `JOB` (Release), and the worker takes it after loading `JOB` (Acquire) and
// before storing `DONE` (Release); the next writer holds `callers` and was ordered after that
// `DONE` by the previous caller's Acquire load and the mutex. So no two threads ever access it
// at once. The erased job is only called while its caller waits (see `call`), and it is `Send`,
// so calling it from the worker thread is allowed.
unsafe impl Send for Handoff {}
// SAFETY: as for `Send`: all other shared access goes through atomics and the mutex.
unsafe impl Sync for Handoff {}

impl Handoff {
    pub(crate) fn new() -> Handoff {
        Handoff {
            callers: Padded(Mutex::new(())),
            state: AtomicU32::new(IDLE),
            job: UnsafeCell::new(None),
            stopping: AtomicBool::new(false),
            worker_sleeping: AtomicBool::new(false),
            caller_sleeping: AtomicBool::new(false),
        }
    }

    /// Runs `job` on the worker thread and returns when it has finished.
    ///
    /// `job` must not unwind (the worker catches panics inside it). Returns `false`, without
    /// running `job`, when the worker is stopping.
    pub(crate) fn call(&self, job: &mut (dyn FnMut() + Send + '_)) -> bool {
        let _serialized = self.callers.0.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopping.load(Ordering::Acquire) {
            return false;
        }
        let job: *mut (dyn FnMut() + Send + '_) = job;
        // SAFETY: only the lifetime changes. The worker calls the job before it stores `DONE`,
        // and this function does not return (nor unwind: nothing below panics) before it has
        // seen `DONE`, so the closure and everything it borrows outlive every use of the pointer.
        let job: ErasedJob = unsafe { std::mem::transmute(job) };
        // SAFETY: we hold `callers` and the state is not JOB, so the worker does not touch `job`.
        self.job.with_mut(|slot| unsafe { *slot = Some(job) });
        self.state.store(JOB, Ordering::SeqCst);
        wake(&self.state, &self.worker_sleeping);
        wait_until(&self.state, &self.caller_sleeping, |state| state == DONE);
        true
    }

    /// The worker's loop: runs published calls until [`Handoff::stop`].
    pub(crate) fn serve(&self) {
        loop {
            wait_until(&self.state, &self.worker_sleeping, |state| {
                state == JOB || self.stopping.load(Ordering::Acquire)
            });
            if self.state.load(Ordering::Acquire) != JOB {
                return;
            }
            // SAFETY: the state is JOB, so the caller has written `job` and waits for DONE. Only
            // read, not taken: a write here would pull the shared line away from the caller.
            if let Some(job) = self.job.with_mut(|slot| unsafe { *slot }) {
                // SAFETY: the pointer came from `call`, whose caller keeps the closure alive and
                // untouched until it sees DONE, which is stored only after this call returns.
                unsafe { (*job)() };
            }
            self.state.store(DONE, Ordering::SeqCst);
            wake(&self.state, &self.caller_sleeping);
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
        // No call is in flight (we hold `callers`), so the state may change under the worker's
        // futex wait: that is what wakes it.
        self.state.store(STOP, Ordering::SeqCst);
        wake(&self.state, &self.worker_sleeping);
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
    /// runs exactly once, its result reaches its own caller in order, and the worker ends.
    #[test]
    fn concurrent_calls_each_run_once_and_the_worker_stops() {
        loom::model(|| {
            let handoff = Arc::new(Handoff::new());
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
                        // A loom cell, so that loom reports any access the protocol leaves
                        // unordered (a caller reading while the worker still writes).
                        let mut result = loom::cell::UnsafeCell::new(0_u32);
                        {
                            let cell = &mut result;
                            let mut job = move || {
                                runs.fetch_add(1, Ordering::Relaxed);
                                // SAFETY: only the job writes, and only while the caller waits.
                                cell.with_mut(|p| unsafe { *p += n * 10 });
                            };
                            assert!(handoff.call(&mut job));
                        }
                        // SAFETY: the worker is done with the job.
                        assert_eq!(result.with(|p| unsafe { *p }), n * 10);
                    })
                })
                .collect();
            for caller in callers {
                caller.join().unwrap();
            }
            assert_eq!(runs.load(Ordering::Relaxed), 2);
            handoff.stop(true);
            worker.join().unwrap();
            let mut never = || panic!("a stopped worker must not run jobs");
            assert!(!handoff.call(&mut never));
        });
    }
}
