//! The hazard suite: load, runtimes, faults and bad input, against real namespaces. Figures are
//! printed (run with `--nocapture` to see them); tests that compare process-wide counts run in
//! a process of their own (`#[in_netns::test(own_process)]`).

mod common;

use std::fs;
use std::net::{TcpListener, UdpSocket};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{
    TempNs, bad_names, current_id, fd_count, namespaces_of, require_privilege,
    runtime_with_known_threads, unique_name, wait_no_thread_in,
};
use in_netns::{Error, NetNs, NsId, in_netns};

fn thread_count() -> usize {
    fs::read_dir("/proc/self/task").unwrap().count()
}

fn rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Polls until the thread count is back to `baseline` (joined threads linger for a moment).
fn threads_settle_to(baseline: usize) -> usize {
    let start = Instant::now();
    loop {
        let now = thread_count();
        if now <= baseline || start.elapsed() > Duration::from_secs(2) {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[in_netns(ns)]
fn where_am_i(ns: &NetNs) -> in_netns::Result<NsId> {
    Ok(current_id())
}

// --- load -----------------------------------------------------------------------------------

// Counts the process's threads and descriptors: a process of its own.
#[in_netns::test(own_process)]
fn load_many_threads_many_namespaces_many_calls_leak_nothing() {
    const THREADS: usize = 8;
    const CALLS: usize = 100_000;
    // What the process has before any handle: the handles' warm threads end with them.
    let (fds, threads) = (fd_count(), threads_settle_to(thread_count()));
    let targets: Vec<TempNs> = (0..4).map(|i| TempNs::new(&format!("load{i}"))).collect();
    let home = current_id();
    // Warm up allocator arenas and lazily made state before taking the memory baseline.
    for target in &targets {
        for _ in 0..500 {
            target.ns.run(|| ()).unwrap();
        }
    }
    let rss = rss_kib();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let targets = &targets;
            scope.spawn(move || {
                for call in 0..CALLS / THREADS {
                    let target = &targets[(t + call) % targets.len()];
                    let inside = if call % 2 == 0 {
                        target.ns.run(current_id).unwrap()
                    } else {
                        where_am_i(&target.ns).unwrap()
                    };
                    assert_eq!(inside, target.id(), "call {call} of thread {t}");
                    if call % 1000 == 0 {
                        assert_eq!(current_id(), home, "caller {t} moved");
                    }
                }
                assert_eq!(current_id(), home, "caller {t} moved");
            });
        }
    });
    let elapsed = start.elapsed();
    let (warm, rss_after) = (thread_count() - threads, rss_kib());
    let ids: Vec<NsId> = targets.iter().map(TempNs::id).collect();
    drop(targets);
    let threads_after = threads_settle_to(threads);
    let fds_after = fd_count();
    println!(
        "load: {CALLS} calls from {THREADS} threads into {} namespaces in {:.2}s ({:.2} us/call, \
         {warm} warm threads); after the handles dropped: fds {fds} -> {fds_after}, threads \
         {threads} -> {threads_after}; RSS {rss} KiB -> {rss_after} KiB",
        ids.len(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / CALLS as f64
    );
    // Not more than before: the baseline may include a descriptor the test's process setup
    // had open for a moment (one run counted 9 before and 8 after).
    assert!(
        fds_after <= fds,
        "descriptors leaked: {fds} before, {fds_after} after"
    );
    // The shared warm threads (at most 16 per callers' context) outlive the handles, out of
    // their namespaces (checked below), until they idle out.
    assert!(
        threads_after <= threads + 16,
        "threads left behind: {threads} before, {threads_after} after"
    );
    assert!(
        rss_after <= rss + 4096,
        "RSS grew from {rss} KiB to {rss_after} KiB"
    );
    for id in ids {
        assert!(wait_no_thread_in(id, Duration::from_secs(1)).is_empty());
    }
}

// Counts the process's threads and descriptors: a process of its own.
#[in_netns::test(own_process)]
fn load_through_a_worker_leaks_nothing() {
    let target = TempNs::new("load-worker");
    let worker = target.ns.worker().unwrap();
    worker.run(|| ()).unwrap();
    let (fds, threads) = (fd_count(), threads_settle_to(thread_count()));
    const THREADS: usize = 8;
    const CALLS: usize = 100_000;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for _ in 0..CALLS / THREADS {
                    assert_eq!(worker.run(current_id).unwrap(), target.id());
                }
            });
        }
    });
    println!(
        "worker load: {CALLS} calls from {THREADS} threads in {:.2}s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!((fd_count(), threads_settle_to(threads)), (fds, threads));
    drop(worker);
    assert!(wait_no_thread_in(target.id(), Duration::from_secs(1)).is_empty());
}

// --- runtimes -------------------------------------------------------------------------------

// Counts the process's threads and descriptors: a process of its own.
#[in_netns::test(own_process)]
fn calls_from_tokio_tasks_never_move_a_runtime_worker() {
    let targets = [TempNs::new("tokio-a"), TempNs::new("tokio-b")];
    let target_ids: Vec<NsId> = targets.iter().map(TempNs::id).collect();
    const WORKERS: usize = 4;
    const TASKS: usize = 64;
    const CALLS_PER_TASK: usize = 40;
    let (runtime, workers) = runtime_with_known_threads(WORKERS);
    let stop = AtomicBool::new(false);
    let (samples, violations) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let (mut samples, mut violations) = (0, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                for (tid, ns) in namespaces_of(&workers) {
                    samples += 1;
                    if target_ids.contains(&ns) {
                        violations.push((tid, ns));
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            (samples, violations)
        });
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for task in 0..TASKS {
                let ns = [
                    targets[0].ns.try_clone().unwrap(),
                    targets[1].ns.try_clone().unwrap(),
                ];
                tasks.push(tokio::spawn(async move {
                    for call in 0..CALLS_PER_TASK {
                        let target = &ns[(task + call) % 2];
                        let inside = if call % 2 == 0 {
                            target.run(current_id).unwrap()
                        } else {
                            where_am_i(target).unwrap()
                        };
                        assert_eq!(inside, target.id());
                        tokio::task::yield_now().await;
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        });
        stop.store(true, Ordering::SeqCst);
        sampler.join().unwrap()
    });
    let after = namespaces_of(&workers);
    println!(
        "tokio: {samples} samples of runtime worker threads during {} calls, {} workers after",
        TASKS * CALLS_PER_TASK,
        after.len()
    );
    assert!(samples > 0, "the sampler never saw the runtime's workers");
    assert!(
        violations.is_empty(),
        "runtime workers seen inside a target: {violations:?}"
    );
    assert!(after.len() >= WORKERS, "{after:?}");
    assert!(after.iter().all(|(_, ns)| *ns == current_id()));
}

// --- faults ---------------------------------------------------------------------------------

// Counts the process's threads and descriptors: a process of its own.
#[in_netns::test(own_process)]
fn a_panic_at_every_point_reaches_the_caller_and_leaks_nothing() {
    // What the process has before any handle: the handles' warm threads end with them.
    let (fds, threads) = (fd_count(), threads_settle_to(thread_count()));
    let target = TempNs::new("panics");
    let inner = TempNs::new("panics-inner");
    let home = current_id();
    target.ns.run(|| ()).unwrap();
    type Body<'a> = Box<dyn Fn() + Send + Sync + std::panic::RefUnwindSafe + 'a>;
    let scenarios: Vec<(&str, Body)> = vec![
        (
            "before any socket",
            Box::new(|| panic!("before any socket")),
        ),
        (
            "after making sockets",
            Box::new(|| {
                let _udp = UdpSocket::bind("127.0.0.1:0").unwrap();
                let _tcp = TcpListener::bind("127.0.0.1:0").unwrap();
                panic!("after making sockets")
            }),
        ),
        (
            "inside a nested call",
            Box::new(|| {
                inner.ns.run(|| panic!("inside a nested call")).unwrap();
            }),
        ),
        (
            "inside a nested macro call",
            Box::new(|| {
                #[in_netns(ns)]
                fn nested(ns: &NetNs) -> in_netns::Result<()> {
                    panic!("inside a nested macro call")
                }
                nested(&inner.ns).unwrap();
            }),
        ),
    ];
    for (name, body) in &scenarios {
        let payload = std::panic::catch_unwind(|| target.ns.run(body).unwrap()).unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(name), "{name}");
        assert_eq!(current_id(), home, "{name}");
    }
    let ids = [target.id(), inner.id()];
    drop(scenarios);
    drop((target, inner));
    assert_eq!(fd_count(), fds, "descriptors leaked");
    assert_eq!(threads_settle_to(threads), threads, "threads left behind");
    for id in ids {
        assert!(wait_no_thread_in(id, Duration::from_secs(1)).is_empty());
    }
}

#[in_netns::test]
fn removing_the_name_while_handles_and_calls_are_live_breaks_nothing() {
    let target = TempNs::new("removed");
    let worker = target.ns.worker().unwrap();
    let inside = Barrier::new(2);
    let removed = Barrier::new(2);
    std::thread::scope(|scope| {
        let call = scope.spawn(|| {
            target
                .ns
                .run(|| {
                    inside.wait();
                    removed.wait();
                    (current_id(), UdpSocket::bind("127.0.0.1:0").is_ok())
                })
                .unwrap()
        });
        inside.wait();
        NetNs::remove(&target.name).unwrap();
        removed.wait();
        assert_eq!(call.join().unwrap(), (target.id(), true));
    });
    assert!(matches!(
        NetNs::named(&target.name),
        Err(Error::NotFound { .. })
    ));
    assert!(!NetNs::list().unwrap().contains(&target.name));
    assert_eq!(target.ns.run(current_id).unwrap(), target.id());
    assert_eq!(worker.run(current_id).unwrap(), target.id());
    assert_eq!(where_am_i(&target.ns).unwrap(), target.id());
}

// --- bad input ------------------------------------------------------------------------------

#[in_netns::test]
fn bad_input_catalog_gives_typed_errors_naming_the_input() {
    require_privilege();
    for name in bad_names() {
        match NetNs::named(&name) {
            Err(err @ Error::InvalidName { .. }) => {
                assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
            }
            other => panic!("name {name:?}: expected InvalidName, got {other:?}"),
        }
    }

    let scratch = std::env::temp_dir().join(unique_name("bad-input"));
    fs::create_dir(&scratch).unwrap();
    let regular = scratch.join("regular");
    fs::write(&regular, "x").unwrap();
    let fifo = scratch.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let dangling = scratch.join("dangling");
    std::os::unix::fs::symlink(scratch.join("nowhere"), &dangling).unwrap();
    let looping = scratch.join("loop");
    std::os::unix::fs::symlink(&looping, &looping).unwrap();
    let too_long = format!("/{}", "d/".repeat(3000));

    // (path, variant, what `NotNetns` says was found there)
    let expectations: Vec<(String, &str, Option<&str>)> = vec![
        (
            regular.display().to_string(),
            "NotNetns",
            Some("a regular file"),
        ),
        (
            scratch.display().to_string(),
            "NotNetns",
            Some("a directory"),
        ),
        (fifo.display().to_string(), "NotNetns", Some("a FIFO")),
        ("/dev/null".into(), "NotNetns", Some("a character device")),
        (
            "/proc/self/ns/mnt".into(),
            "NotNetns",
            Some("a mnt namespace"),
        ),
        (
            "/proc/self/ns/uts".into(),
            "NotNetns",
            Some("a uts namespace"),
        ),
        (
            "/proc/self/ns/user".into(),
            "NotNetns",
            Some("a user namespace"),
        ),
        (dangling.display().to_string(), "NotFound", None),
        (looping.display().to_string(), "InvalidPath", None),
        ("/run/netns/a\0b".into(), "InvalidPath", None),
        (too_long, "InvalidPath", None),
        (format!("/proc/{}/ns/net", u32::MAX), "NotFound", None),
    ];
    let outcomes: Vec<(String, String)> = expectations
        .iter()
        .map(|(path, _, expected_found)| {
            let outcome = match NetNs::open(path) {
                Ok(ns) => format!("opened {ns:?}"),
                Err(err) => {
                    if let (Error::NotNetns { found, .. }, Some(expected)) = (&err, expected_found)
                    {
                        assert_eq!(found, expected, "{path:?}");
                    }
                    let variant = match &err {
                        Error::NotNetns { .. } => "NotNetns",
                        Error::NotFound { .. } => "NotFound",
                        Error::InvalidPath { .. } => "InvalidPath",
                        other => panic!("{path:?}: unexpected {other}"),
                    }
                    .to_owned();
                    let shown = err.to_string();
                    let path_shown =
                        shown.contains(&path.replace('\0', "\\0")[..path.len().min(40)]);
                    assert!(
                        path_shown || variant == "InvalidPath",
                        "{path:?}: message {shown:?} does not name it"
                    );
                    variant
                }
            };
            (path.clone(), outcome)
        })
        .collect();
    fs::remove_dir_all(&scratch).unwrap();
    for ((path, expected, _), (_, got)) in expectations.iter().zip(&outcomes) {
        assert_eq!(got, expected, "{path:?}");
    }

    let mut child = std::process::Command::new("true").spawn().unwrap();
    let exited = child.id();
    child.wait().unwrap();
    for pid in [exited, u32::MAX, 0] {
        assert!(
            matches!(NetNs::of_pid(pid), Err(Error::NotFound { .. })),
            "pid {pid}"
        );
    }
}
