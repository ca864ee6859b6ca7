//! Warm threads: a handle keeps threads that entered its namespace, so a call is a hand-off;
//! callers never wait for each other, a panic retires its thread, idle threads end, and the
//! last clone's drop ends them all.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{current_id, gettid, wait_no_thread_in};
use in_netns::{NetNs, NsId, Options};

/// Generous bound that turns a hang into a failure.
const HANG: Duration = Duration::from_secs(60);

/// Whether thread `tid` of this process still exists (a thread that ended lingers a moment).
fn thread_alive(tid: u32) -> bool {
    std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
}

fn gone(tid: u32) -> bool {
    let start = Instant::now();
    while thread_alive(tid) {
        if start.elapsed() > HANG {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

// Which thread serves a call is process-wide (shared threads): a process of its own, so no
// other test's call takes the thread in between.
#[in_netns::test(own_process)]
fn consecutive_calls_run_on_one_warm_thread_inside() {
    let ns = NetNs::new().unwrap();
    ns.run(gettid).unwrap();
    let first = ns.run(|| (gettid(), current_id())).unwrap();
    let second = ns.run(|| (gettid(), current_id())).unwrap();
    let through_a_clone = ns.clone().run(|| (gettid(), current_id())).unwrap();
    assert_eq!(first, second, "the second call went to the same thread");
    assert_eq!(
        first, through_a_clone,
        "a clone's call went to the same thread"
    );
    assert_eq!(first.1, ns.id());
    assert_ne!(first.0, gettid());
    // No thread is left inside once the last clone's drop returns (a joined thread may linger
    // in /proc a moment).
    let id = ns.id();
    drop(ns);
    assert!(wait_no_thread_in(id, Duration::from_secs(5)).is_empty());
}

/// A body that takes from its shared thread the right to go back home (CAP_SYS_ADMIN) leaves
/// the thread in its namespace, retiring: the handle's drop waits until that thread has ended,
/// so no thread is inside once it returns.
#[in_netns::test]
fn no_shared_thread_is_inside_once_the_last_clone_is_dropped_even_one_that_could_not_leave() {
    for round in 0..10 {
        let ns = NetNs::new().unwrap();
        let id = ns.id();
        ns.run(|| ()).unwrap();
        ns.run(|| common::drop_capability(common::CAP_SYS_ADMIN))
            .unwrap();
        drop(ns);
        assert_eq!(
            common::threads_in(id),
            0,
            "round {round}: a thread is inside"
        );
    }
}

thread_local! {
    /// What holds the end of the thread it is left on ([`Held`]).
    static HELD: std::cell::RefCell<Option<Held>> = const { std::cell::RefCell::new(None) };
}

/// Holds its thread's end (its thread-locals' destruction) until told.
struct Held(std::sync::mpsc::Receiver<()>);

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.0.recv();
    }
}

/// Leaves on the calling thread what holds its end until `release` is sent to.
fn hold_this_threads_end() -> std::sync::mpsc::Sender<()> {
    let (release, held) = std::sync::mpsc::channel();
    HELD.with(|slot| *slot.borrow_mut() = Some(Held(held)));
    release
}

/// A shared thread that cannot leave (its body took CAP_SYS_ADMIN from it) and holds the last
/// clone of the handle in a thread-local ends on its own, dropping that clone without waiting
/// for itself; and while a retired thread's thread-locals are still being dropped, calls of
/// another handle neither wait for it nor for each other.
#[in_netns::test]
fn a_retired_shared_thread_ending_slowly_holds_up_no_caller_and_no_drop() {
    common::within(60, || {
        let (a, b) = (NetNs::new().unwrap(), NetNs::new().unwrap());
        let a_id = a.id();
        a.run(|| ()).unwrap();
        let last = a.clone();
        let release = a
            .run(move || {
                common::keep_until_this_thread_ends(last);
                let release = hold_this_threads_end();
                common::drop_capability(common::CAP_SYS_ADMIN);
                release
            })
            .unwrap();
        drop(a);
        // The retired thread is held in its thread-locals' destructors, inside `a`.
        let inside: Vec<NsId> = std::thread::scope(|scope| {
            let calls: Vec<_> = (0..6)
                .map(|_| scope.spawn(|| b.run(current_id).unwrap()))
                .collect();
            calls.into_iter().map(|call| call.join().unwrap()).collect()
        });
        assert_eq!(inside, [b.id(); 6], "another handle's calls");
        release.send(()).unwrap();
        assert_eq!(
            wait_no_thread_in(a_id, Duration::from_secs(30)),
            [],
            "the thread that could not leave ended, and with it the last clone"
        );
    });
}

/// A call that panics on a shared thread where another caller's body left a thread-local that
/// takes long to drop gets its panic at once: the retired thread is joined once it has ended,
/// by no one waiting for it.
#[in_netns::test(own_process)]
fn a_panicking_call_never_waits_for_thread_locals_another_body_left() {
    common::within(60, || {
        let (a, b) = (NetNs::new().unwrap(), NetNs::new().unwrap());
        a.run(|| ()).unwrap();
        let (release, holder) = a.run(|| (hold_this_threads_end(), gettid())).unwrap();
        let payload =
            std::panic::catch_unwind(|| b.run(|| std::panic::panic_any(gettid()))).unwrap_err();
        assert_eq!(
            *payload.downcast_ref::<u32>().unwrap(),
            holder,
            "the same shared thread took the call"
        );
        release.send(()).unwrap();
        assert!(gone(holder), "the retired thread ended once released");
    });
}

/// Stops the other callers of a test when dropped, also when an assertion fails (else the
/// test's scope would wait for them forever).
struct Stop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A child forked inside a body, while other callers of the same handle come and go (taking
/// the handle's locks), ends with the body: the copy of the thread touches no lock a parent
/// thread may have held at the fork.
#[in_netns::test(own_process)]
fn children_forked_inside_bodies_while_others_call_the_same_handle_end_with_the_body() {
    let ns = NetNs::new().unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let _stop = Stop(&stop);
        for _ in 0..4 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    ns.run(|| ()).unwrap();
                }
            });
        }
        for round in 0..200 {
            let (child, status) = child_forked_inside_a_body(&ns);
            assert_eq!(
                status,
                nix::sys::wait::WaitStatus::Exited(child, 0),
                "round {round}"
            );
        }
    });
}

/// Runs `f` from `callers` threads at once; each body waits until every body has started, so
/// the calls finish only if no caller waits for another's call.
fn all_at_once(ns: &NetNs, callers: usize) -> Vec<(u32, NsId)> {
    let started = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..callers)
            .map(|_| {
                scope.spawn(|| {
                    ns.run(|| {
                        started.fetch_add(1, Ordering::SeqCst);
                        let deadline = Instant::now() + HANG;
                        while started.load(Ordering::SeqCst) < callers {
                            assert!(Instant::now() < deadline, "a caller waited for another");
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        (gettid(), current_id())
                    })
                    .unwrap()
                })
            })
            .collect();
        calls.into_iter().map(|call| call.join().unwrap()).collect()
    })
}

#[in_netns::test]
fn concurrent_callers_never_wait_for_each_other_even_past_the_warm_bound() {
    let ns = NetNs::new().unwrap();
    for callers in [8, 40] {
        let ran = all_at_once(&ns, callers);
        let mut threads: Vec<u32> = ran.iter().map(|(tid, _)| *tid).collect();
        threads.sort_unstable();
        threads.dedup();
        assert_eq!(threads.len(), callers, "each call had a thread of its own");
        assert!(ran.iter().all(|(_, id)| *id == ns.id()));
    }
}

// Which thread serves a call is process-wide: a process of its own.
#[in_netns::test(own_process)]
fn a_call_that_panicked_retires_its_thread() {
    let ns = NetNs::new().unwrap();
    ns.run(|| ()).unwrap(); // the first call, on a fresh thread
    let before = ns.run(gettid).unwrap();
    let payload = std::panic::catch_unwind(|| ns.run(|| std::panic::panic_any(gettid())).unwrap())
        .unwrap_err();
    let panicked_on = *payload.downcast_ref::<u32>().unwrap();
    assert_eq!(panicked_on, before, "the idle warm thread took the call");
    assert!(gone(panicked_on), "the thread that panicked ended");
    let after = ns.run(gettid).unwrap();
    assert_ne!(after, panicked_on);
}

#[in_netns::test]
fn idle_warm_threads_end_after_their_idle_timeout() {
    let ns = NetNs::new().unwrap();
    let quick = Options::default().idle_timeout(Duration::from_millis(50));
    ns.run_with(&quick, || ()).unwrap(); // the first call, on a fresh thread
    let tid = ns.run_with(&quick, gettid).unwrap();
    assert!(gone(tid), "an idle warm thread ended on its own");
    // The handle still serves calls, on a new thread.
    assert_eq!(ns.run_with(&quick, current_id).unwrap(), ns.id());
}

#[in_netns::test]
fn nested_calls_into_the_same_handle_never_wait_for_themselves() {
    let ns = NetNs::new().unwrap();
    let depth = ns
        .run(|| {
            ns.run(|| ns.run(|| ns.run(current_id).unwrap()).unwrap())
                .unwrap()
        })
        .unwrap();
    assert_eq!(depth, ns.id());
}

thread_local! {
    static CALLS_ON_THIS_THREAD: Cell<u32> = const { Cell::new(0) };
}

fn count_call() -> u32 {
    CALLS_ON_THIS_THREAD.with(|calls| {
        calls.set(calls.get() + 1);
        calls.get()
    })
}

/// Plain calls of every handle share warm threads: a thread-local a body leaves is seen by a
/// later body, also of another namespace, while each body runs inside its own; fresh threads
/// start with fresh thread-locals. (Which thread serves a call is process-wide: a process of
/// its own, so no other test's call takes the thread in between.)
#[in_netns::test(own_process)]
fn shared_threads_carry_thread_locals_across_namespaces_and_fresh_threads_do_not() {
    let (a, b) = (NetNs::new().unwrap(), NetNs::new().unwrap());
    let on = |ns: &NetNs| ns.run(|| (gettid(), current_id(), count_call())).unwrap();
    on(&a); // (the first call of a pool runs on a fresh thread)
    let first = on(&a);
    let in_b = on(&b);
    let in_a = on(&a);
    assert_eq!(
        (in_b.0, in_a.0),
        (first.0, first.0),
        "one thread served both handles"
    );
    assert_ne!(first.0, gettid());
    assert_eq!(
        (first.1, in_b.1, in_a.1),
        (a.id(), b.id(), a.id()),
        "each call inside its own namespace"
    );
    assert_eq!(
        (in_b.2, in_a.2),
        (first.2 + 1, first.2 + 2),
        "its thread-locals"
    );
    assert_ne!(current_id(), a.id());
    let fresh = Options::default().fresh_thread(true);
    assert_eq!(a.run_with(&fresh, count_call).unwrap(), 1);
    assert_eq!(b.run_with(&fresh, count_call).unwrap(), 1);
}

// Forks: a process of its own, so no other test's thread holds a lock the child needs.
#[in_netns::test(own_process)]
fn in_a_forked_child_a_call_runs_on_a_fresh_thread() {
    let ns = NetNs::new().unwrap();
    ns.run(|| ()).unwrap(); // the first call, on a fresh thread; the next has a warm one
    let parents = ns.run(gettid).unwrap();
    // SAFETY: the child makes one call (which starts a fresh thread: the parent's warm threads
    // were not copied) and leaves with `_exit`.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let ok = ns
                .run(|| (gettid(), current_id()))
                .is_ok_and(|(tid, id)| tid != parents && id == ns.id());
            // SAFETY: exits the child at once.
            unsafe { nix::libc::_exit(if ok { 0 } else { 1 }) };
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
        }
    }
}

#[in_netns::in_netns(ns, fresh_thread)]
fn counted_on_a_fresh_thread(ns: &NetNs) -> in_netns::Result<u32> {
    Ok(count_call())
}

#[in_netns::test]
fn the_fresh_thread_flag_gives_each_call_a_thread_of_its_own() {
    let ns = NetNs::new().unwrap();
    for _ in 0..3 {
        assert_eq!(counted_on_a_fresh_thread(&ns).unwrap(), 1);
    }
}

#[in_netns::test]
fn an_idle_timeout_too_long_for_an_instant_means_never() {
    let ns = NetNs::new().unwrap();
    let never = Options::default().idle_timeout(Duration::MAX);
    common::within(60, move || {
        for _ in 0..4 {
            assert_eq!(ns.run_with(&never, current_id).unwrap(), ns.id());
        }
    });
}

// Forks while other threads call: a process of its own.
#[in_netns::test(own_process)]
fn a_child_forked_while_others_call_with_options_never_waits_for_their_locks() {
    let ns = NetNs::new().unwrap();
    let options = Options::default().idle_timeout(Duration::from_secs(5));
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let _stop = Stop(&stop);
        for _ in 0..4 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    ns.run_with(&options, || ()).unwrap();
                }
            });
        }
        for round in 0..200 {
            let child = common::in_forked_child(|| {
                let ok = ns
                    .run_with(&options, current_id)
                    .is_ok_and(|id| id == ns.id());
                drop(ns.clone());
                ok
            });
            assert_eq!(child, Ok(()), "round {round}");
        }
    });
}

// Forks: a process of its own.
#[in_netns::test(own_process)]
fn a_child_forked_inside_a_body_on_a_warm_thread_ends_with_the_body() {
    let ns = NetNs::new().unwrap();
    ns.run(|| ()).unwrap(); // the first call, on a fresh thread; the next has a warm one
    let (child, status) = child_forked_inside_a_body(&ns);
    assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
}

/// Forks inside a body of `ns` and waits for the child: its pid, and how it ended. In the
/// child, the copy of the warm thread returns from the body into the hand-off loop, which ends
/// it, and with it the child (a 10 s alarm ends it should it hang): only the parent returns.
fn child_forked_inside_a_body(ns: &NetNs) -> (nix::unistd::Pid, nix::sys::wait::WaitStatus) {
    // SAFETY: the child only returns from the body (its one thread is a copy of the warm
    // thread) under the alarm.
    let pid = ns
        .run(|| match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                // SAFETY: alarm is async-signal-safe.
                unsafe { nix::libc::alarm(10) };
                None
            }
            nix::unistd::ForkResult::Parent { child } => Some(child),
        })
        .unwrap();
    let child = pid.expect("the parent gets the child's pid");
    (child, nix::sys::wait::waitpid(child, None).unwrap())
}

/// A child forked inside a body whose C library keeps no stacks of ended threads: as soon as
/// the child starts a thread (a call there does), it unmaps the stacks of the parent's other
/// threads, the body's caller's among them. The copy of the body's thread must then end
/// without touching its caller's frame (it wrote its result there, and died of SIGSEGV), with
/// every kind of thread a body runs on. It is a plain `#[test]` so that the run inherits this
/// process's privilege (or its lack).
#[test]
fn a_child_forked_inside_a_body_that_starts_a_thread_never_touches_its_callers_frame() {
    // Read by the C library when the process starts: no cache of ended threads' stacks.
    let no_stack_cache = std::ffi::OsStr::new("glibc.pthread.stack_cache_size=0");
    let env = [("GLIBC_TUNABLES", no_stack_cache)];
    let forks = ["bodies_fork_a_child_that_starts_a_thread"];
    if let Err(report) = common::run_ignored_tests(&forks, 1, &env) {
        panic!("{report}");
    }
}

#[in_netns::test]
#[ignore = "run, without a stack cache, by a_child_forked_inside_a_body_that_starts_a_thread_never_touches_its_callers_frame"]
fn bodies_fork_a_child_that_starts_a_thread() {
    let ns = NetNs::new().unwrap();
    let worker = ns.worker().unwrap();
    let fresh = Options::default().fresh_thread(true);
    let own = Options::default().idle_timeout(Duration::from_secs(5));
    /// Forks; the child makes a call (starting a thread) and returns from the body, which
    /// ends the copy of the body's thread and so the child (a 10 s alarm ends it should it
    /// hang). Only the parent returns: the child's pid.
    fn fork_and_call(inner: NetNs) -> nix::unistd::Pid {
        // SAFETY: the child only makes a call (the library's fork policy: a fresh thread) and
        // returns from the body, under the alarm.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                // SAFETY: alarm is async-signal-safe.
                unsafe { nix::libc::alarm(10) };
                let _ = inner.run(|| ());
                nix::unistd::Pid::from_raw(0)
            }
            nix::unistd::ForkResult::Parent { child } => child,
        }
    }
    // A pool's first call runs on a fresh thread, its second starts a warm one: after these,
    // the calls below run on warm threads that served before.
    for _ in 0..2 {
        ns.run(|| ()).unwrap();
        ns.run_with(&own, || ()).unwrap();
    }
    for kind in ["run", "fresh_thread", "idle_timeout", "Worker::run"] {
        let inner = ns.clone();
        let body = move || fork_and_call(inner);
        let child = match kind {
            "run" => ns.run(body),
            "fresh_thread" => ns.run_with(&fresh, body),
            "idle_timeout" => ns.run_with(&own, body),
            _ => worker.run(body),
        }
        .unwrap();
        let status = nix::sys::wait::waitpid(child, None).unwrap();
        assert_eq!(
            status,
            nix::sys::wait::WaitStatus::Exited(child, 0),
            "{kind}"
        );
    }
}

thread_local! {
    static KEPT: std::cell::RefCell<Option<NetNs>> = const { std::cell::RefCell::new(None) };
}

// Drops the last handle on an expiring warm thread: a process of its own.
#[in_netns::test(own_process)]
fn the_last_clone_dropped_by_an_expiring_warm_thread_ends_it_without_a_self_join() {
    let ns = NetNs::new().unwrap();
    let id = ns.id();
    let quick = Options::default().idle_timeout(Duration::from_millis(50));
    ns.run_with(&quick, || ()).unwrap();
    let kept = ns.clone();
    // The warm thread keeps the clone in a thread-local, dropped when the thread ends.
    ns.run_with(&quick, move || {
        KEPT.with(|slot| *slot.borrow_mut() = Some(kept))
    })
    .unwrap();
    drop(ns);
    assert!(wait_no_thread_in(id, HANG).is_empty());
}

/// Two handles whose warm threads each keep (in a thread-local) the other's last clone: when
/// one thread ends, its thread-locals drop the other handle, whose drop ends that handle's
/// threads, whose thread-locals drop the first handle. Neither drop may wait for the other's
/// thread (each would wait for itself, through the other), so both threads end and both
/// namespaces are released.
#[in_netns::test]
fn handles_whose_warm_threads_keep_each_others_last_clone_both_end() {
    let quick = Options::default().idle_timeout(Duration::from_millis(50));
    let (a, b) = (NetNs::new().unwrap(), NetNs::new().unwrap());
    let (a_id, b_id) = (a.id(), b.id());
    for (ns, other) in [(&a, &b), (&b, &a)] {
        // The first call runs on a fresh thread; the second starts the warm one.
        ns.run_with(&quick, || ()).unwrap();
        let other = other.clone();
        ns.run_with(&quick, move || common::keep_until_this_thread_ends(other))
            .unwrap();
    }
    let inside = common::threads_in;
    assert!(
        inside(a_id) > 0 && inside(b_id) > 0,
        "each namespace has a thread that keeps the other's handle"
    );
    drop((a, b));
    // The warm threads idle out after 50 ms; the namespaces' last threads are theirs.
    assert_eq!(
        wait_no_thread_in(a_id, HANG),
        [],
        "a thread is stuck in the first namespace"
    );
    assert_eq!(
        wait_no_thread_in(b_id, HANG),
        [],
        "a thread is stuck in the second namespace"
    );
}
