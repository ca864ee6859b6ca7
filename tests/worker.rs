//! `Worker`: a long-lived thread inside a namespace that serves calls.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{TempNs, child_status, current_id, gettid as tid, in_forked_child, within};
use in_netns::{Error, NetNs, NsId, Options, Setup, Worker, in_netns};

/// User plus system CPU ticks a thread has used (`/proc/self/task/TID/stat`, fields 14 and 15).
/// The CPU time thread `tid` has used, in nanoseconds: `/proc/.../schedstat` (exact), or, where
/// the kernel keeps no scheduler statistics, the ticks of `/proc/.../stat` (10 ms each, as
/// `USER_HZ` is 100 on Linux), with the resolution of a tick.
fn cpu_time_ns(tid: u32) -> (u64, Resolution) {
    let task = format!("/proc/self/task/{tid}");
    if let Ok(schedstat) = std::fs::read_to_string(format!("{task}/schedstat")) {
        let on_cpu = schedstat.split_whitespace().next().unwrap();
        return (on_cpu.parse().unwrap(), Resolution::Exact);
    }
    let stat = std::fs::read_to_string(format!("{task}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // After the comm, field 3 of the line is index 0: utime is field 14, stime field 15.
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (ticks * 10_000_000, Resolution::Tick)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Resolution {
    Exact,
    Tick,
}

/// How many times thread `tid` has been switched out (voluntarily, as a sleeper that wakes to
/// look, or not, as a spinner that is preempted).
fn context_switches(tid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .filter(|line| line.contains("ctxt_switches:"))
        .map(|line| {
            line.split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum()
}

#[in_netns::test]
fn calls_run_inside_on_one_thread_and_the_caller_stays_home() {
    let target = TempNs::new("worker");
    let home = current_id();
    let worker = target.ns.worker().unwrap();
    assert_eq!(worker.id(), target.id());
    let first = worker.run(|| (current_id(), tid())).unwrap();
    let second = worker.run(|| (current_id(), tid())).unwrap();
    assert_eq!(first.0, target.id());
    assert_eq!(first, second, "the same thread serves every call");
    assert_ne!(first.1, tid());
    assert_eq!(current_id(), home);
}

#[in_netns::test]
fn calls_may_borrow_from_the_caller() {
    let worker = NetNs::new().unwrap().worker().unwrap();
    let mut items = vec![1, 2, 3];
    let total: u32 = worker.run(|| items.iter().sum()).unwrap();
    worker.run(|| items.push(total)).unwrap();
    assert_eq!(items, [1, 2, 3, 6]);
}

#[in_netns::test]
fn concurrent_callers_are_served_one_at_a_time_and_all_complete() {
    let target = TempNs::new("worker-conc");
    let worker = target.ns.worker().unwrap();
    let running = AtomicUsize::new(0);
    let overlaps = AtomicUsize::new(0);
    let served = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..500 {
                    let inside = worker
                        .run(|| {
                            if running.fetch_add(1, Ordering::SeqCst) != 0 {
                                overlaps.fetch_add(1, Ordering::SeqCst);
                            }
                            let id = current_id();
                            running.fetch_sub(1, Ordering::SeqCst);
                            id
                        })
                        .unwrap();
                    assert_eq!(inside, target.id());
                    served.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(served.load(Ordering::SeqCst), 4000);
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
}

#[in_netns::test]
fn long_calls_wake_their_sleeping_callers() {
    // Longer than the callers' spin (about 50us), so each caller sleeps on its futex and must
    // be woken; and longer than the worker's, between calls.
    let worker = NetNs::new().unwrap().worker().unwrap();
    std::thread::scope(|scope| {
        for i in 0..4_u64 {
            let worker = &worker;
            scope.spawn(move || {
                for j in 0..10 {
                    let got = worker
                        .run(|| {
                            std::thread::sleep(Duration::from_millis(2));
                            i * 100 + j
                        })
                        .unwrap();
                    assert_eq!(got, i * 100 + j);
                    std::thread::sleep(Duration::from_micros(300));
                }
            });
        }
    });
}

#[in_netns::test]
fn a_panic_is_resumed_in_the_caller_and_the_worker_keeps_serving() {
    let target = TempNs::new("worker-panic");
    let worker = target.ns.worker().unwrap();
    let payload = std::panic::catch_unwind(|| {
        worker
            .run(|| std::panic::panic_any(String::from("inside")))
            .unwrap();
    })
    .unwrap_err();
    assert_eq!(payload.downcast_ref::<String>().unwrap(), "inside");
    assert_eq!(worker.run(current_id).unwrap(), target.id());
}

#[in_netns::test]
fn dropping_the_worker_ends_its_thread() {
    let worker = NetNs::new().unwrap().worker().unwrap();
    let worker_tid = worker.run(tid).unwrap();
    assert!(std::path::Path::new(&format!("/proc/self/task/{worker_tid}")).exists());
    drop(worker);
    let gone = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(5));
        !std::path::Path::new(&format!("/proc/self/task/{worker_tid}")).exists()
    });
    assert!(gone, "worker thread {worker_tid} is still alive after drop");
}

#[in_netns::test]
fn an_idle_worker_uses_no_cpu() {
    let worker = NetNs::new().unwrap().worker().unwrap();
    let worker_tid = worker.run(tid).unwrap();
    // Let the bounded spin after the call end, then watch the thread idle.
    std::thread::sleep(Duration::from_millis(50));
    let (cpu_before, resolution) = cpu_time_ns(worker_tid);
    let switches_before = context_switches(worker_tid);
    std::thread::sleep(Duration::from_millis(500));
    let (cpu_after, _) = cpu_time_ns(worker_tid);
    let switches = context_switches(worker_tid) - switches_before;
    let used = Duration::from_nanos(cpu_after - cpu_before);
    // A thread that spins uses the whole 500 ms (or its share of a busy CPU, still tens of
    // milliseconds); one that polls wakes tens of times. A sleeper may be woken by the odd
    // signal or migration, and be charged a tick it happened to be on: far below both.
    let limit = match resolution {
        Resolution::Exact => Duration::from_millis(2),
        Resolution::Tick => Duration::from_millis(10),
    };
    assert!(
        used <= limit && switches <= 3,
        "an idle worker used {used:?} of CPU and was switched out {switches} times in 500 ms"
    );
    drop(worker);
}

#[in_netns::test]
fn entry_failures_are_errors_of_new() {
    let anonymous = NetNs::new().unwrap();
    let setup = Setup::default().etc(true);
    assert!(matches!(
        anonymous.worker_with(&setup),
        Err(Error::Unnamed { .. })
    ));
}

#[in_netns(worker)]
fn on_worker(worker: &Worker) -> in_netns::Result<NsId> {
    Ok(current_id())
}

struct Poller {
    worker: Worker,
}

impl Poller {
    #[in_netns(&self.worker)]
    fn poll(&self) -> std::io::Result<NsId> {
        Ok(current_id())
    }
}

#[in_netns::test]
fn in_netns_runs_on_a_worker_target() {
    let target = TempNs::new("worker-macro");
    let worker = target.ns.worker().unwrap();
    assert_eq!(on_worker(&worker).unwrap(), target.id());
    let poller = Poller { worker };
    assert_eq!(poller.poll().unwrap(), target.id());
}

struct Pod {
    worker: Worker,
}

impl Pod {
    #[in_netns(&self.worker)]
    fn outer(&self) -> in_netns::Result<(NsId, u32, NsId, u32)> {
        let (inner_ns, inner_tid) = self.inner()?;
        Ok((current_id(), tid(), inner_ns, inner_tid))
    }

    #[in_netns(&self.worker)]
    fn inner(&self) -> in_netns::Result<(NsId, u32)> {
        Ok((current_id(), tid()))
    }
}

#[in_netns::test]
fn nested_calls_on_a_worker_run_inline_and_finish() {
    let target = TempNs::new("worker-nested");
    let worker = target.ns.worker().unwrap();
    let id = target.id();
    let (outer, inner, worker) = within(30, move || {
        let (outer, inner) = worker
            .run(|| {
                let outer = (current_id(), tid());
                let inner = worker.run(|| worker.run(|| (current_id(), tid())).unwrap());
                (outer, inner.unwrap())
            })
            .unwrap();
        (outer, inner, worker)
    });
    assert_eq!(outer.0, id);
    assert_eq!(inner, outer, "the nested calls ran on the worker's thread");

    let pod = Pod { worker };
    let (outer_ns, outer_tid, inner_ns, inner_tid) = within(30, move || pod.outer()).unwrap();
    assert_eq!((outer_ns, inner_ns), (id, id));
    assert_eq!(outer_tid, inner_tid);
}

#[in_netns::test]
fn a_panic_in_a_nested_call_reaches_the_outer_caller_and_the_worker_keeps_serving() {
    let target = TempNs::new("worker-nested-panic");
    let worker = target.ns.worker().unwrap();
    let (payload, worker) = within(30, move || {
        let outcome = std::panic::catch_unwind(|| {
            worker
                .run(|| worker.run(|| std::panic::panic_any(7_u32)))
                .unwrap()
                .unwrap();
        });
        (outcome.unwrap_err(), worker)
    });
    assert_eq!(payload.downcast_ref::<u32>(), Some(&7));
    assert_eq!(worker.run(current_id).unwrap(), target.id());
}

#[in_netns::test]
fn a_worker_called_in_a_forked_child_is_an_error_not_a_hang() {
    let target = TempNs::new("worker-fork");
    let worker = target.ns.worker().unwrap();
    assert_eq!(worker.run(current_id).unwrap(), target.id());
    let parent = std::process::id();
    let child = in_forked_child(|| {
        let call = worker.run(|| ());
        let typed = matches!(call, Err(Error::ForkedWorker { pid }) if pid == parent);
        // Dropping the child's copy of the last handle must not wait for a thread either.
        drop(worker);
        typed
    });
    assert_eq!(child, Ok(()));
    let message = Error::ForkedWorker { pid: parent }.to_string();
    assert!(
        message.contains("make a new Worker in the child"),
        "{message}"
    );
}

#[in_netns::test]
fn a_child_forked_inside_a_call_runs_the_workers_calls_inline() {
    let target = TempNs::new("worker-fork-inside");
    let worker = target.ns.worker().unwrap();
    let id = target.id();
    // The child is a copy of the worker's thread, inside the namespace: its calls run there.
    let pid = worker
        .run(|| {
            // SAFETY: the child only makes an inline worker call, reads procfs and `_exit`s.
            let pid = unsafe { nix::libc::fork() };
            if pid == 0 {
                // SAFETY: alarm is async-signal-safe.
                unsafe { nix::libc::alarm(10) };
                let inside = worker.run(current_id);
                // SAFETY: _exit is async-signal-safe.
                unsafe {
                    nix::libc::_exit(if matches!(inside, Ok(ns) if ns == id) {
                        0
                    } else {
                        1
                    })
                };
            }
            pid
        })
        .unwrap();
    assert!(pid > 0, "fork failed");
    assert_eq!(child_status(pid), Ok(()));
    assert_eq!(worker.run(current_id).unwrap(), id);
}

/// A worker takes a `Setup` only (how a call finds its thread does not apply to its one thread),
/// and reports it back.
#[in_netns::test]
fn a_worker_reports_the_setup_it_was_made_with() {
    let ns = NetNs::new().unwrap();
    let setup = Setup::default().sysfs(true).stack_size(1 << 20);
    let worker = ns.worker_with(&setup).unwrap();
    assert_eq!(worker.run(current_id).unwrap(), ns.id());
    assert_eq!(worker.setup(), setup);
    assert_eq!(Options::from(setup).setup(), setup);
}
