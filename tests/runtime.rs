//! Nothing leaves a namespace and nothing moves into one (feature "tokio"): async bodies are
//! polled inside, with a runtime whose every thread is inside entered, so their blocking work,
//! lookups, tasks and children stay inside, the caller's runtime never gets a thread born
//! inside, and callers never hold a blocking-pool thread.

mod common;

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{EtcDir, TempNs, current_id, id_of_path, thread_namespaces};
use in_netns::{Error, NetNs, NetnsRuntime, NsId, Options, RuntimeHooks, Setup, Worker, in_netns};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous bound that turns a hang into a failure.
const HANG: Duration = Duration::from_secs(60);

fn host_runtime(max_blocking: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(max_blocking)
        .enable_all()
        .build()
        .unwrap()
}

/// The namespaces of the process's threads named `name` (threads keep their name in `comm`).
fn namespaces_of_threads_named(name: &str) -> Vec<NsId> {
    thread_namespaces()
        .into_iter()
        .filter(|(tid, _)| {
            std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        })
        .map(|(_, ns)| ns)
        .collect()
}

#[in_netns(ns)]
async fn blocking_work_inside(ns: NetNs) -> io::Result<NsId> {
    tokio::task::spawn_blocking(current_id)
        .await
        .map_err(io::Error::other)
}

#[in_netns(worker)]
async fn blocking_work_on_worker(worker: Arc<Worker>) -> io::Result<NsId> {
    tokio::task::spawn_blocking(current_id)
        .await
        .map_err(io::Error::other)
}

/// The host's blocking pool, asked for several threads at once: where each ran.
async fn host_blocking_namespaces() -> Vec<NsId> {
    let calls: Vec<_> = (0..4)
        .map(|_| {
            tokio::task::spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(20));
                current_id()
            })
        })
        .collect();
    let mut seen = Vec::new();
    for call in calls {
        seen.push(call.await.unwrap());
    }
    seen
}

#[in_netns::test]
fn a_bodys_blocking_work_runs_inside_and_never_plants_a_thread_in_the_callers_pool() {
    let target = TempNs::new("rt-cold-pool");
    let runtime = host_runtime(16);
    runtime.block_on(async {
        let home = current_id();
        // The host pool is cold: before the fix, the body's spawn_blocking started a host
        // pool thread from inside the namespace, which then served the host's later work.
        let inside = blocking_work_inside(target.ns.clone()).await.unwrap();
        assert_eq!(inside, target.id());
        assert_eq!(host_blocking_namespaces().await, [home; 4]);

        let worker = Arc::new(target.ns.worker().unwrap());
        let on_worker = blocking_work_on_worker(Arc::clone(&worker)).await.unwrap();
        assert_eq!(on_worker, target.id());
        assert_eq!(host_blocking_namespaces().await, [home; 4]);
    });
}

#[in_netns(&ns, etc)]
async fn resolve_inside(ns: NetNs, name: String) -> io::Result<Vec<IpAddr>> {
    let addrs = tokio::net::lookup_host((name.as_str(), 80)).await?;
    Ok(addrs.map(|addr| addr.ip()).collect())
}

#[in_netns::test]
fn every_lookup_in_a_body_with_etc_reads_the_namespaces_hosts() {
    let target = TempNs::new("rt-etc-lookup");
    let _etc = EtcDir::new(&target.name, &[("hosts", "127.0.0.44 localhost\n")]);
    let runtime = host_runtime(16);
    runtime.block_on(async {
        let ns_address: IpAddr = "127.0.0.44".parse().unwrap();
        for _ in 0..4 {
            let found = resolve_inside(target.ns.clone(), "localhost".to_owned())
                .await
                .unwrap();
            assert_eq!(found, [ns_address]);
        }
        // The host's lookup of the same name reads the host's /etc/hosts.
        let on_host: Vec<IpAddr> = tokio::net::lookup_host(("localhost", 80))
            .await
            .unwrap()
            .map(|addr| addr.ip())
            .collect();
        assert!(!on_host.contains(&ns_address), "{on_host:?}");
    });
}

#[in_netns(worker)]
async fn stat_on_worker(worker: Arc<Worker>) -> io::Result<u64> {
    Ok(tokio::fs::metadata("/proc/self/ns/net").await?.len())
}

#[in_netns::test]
fn many_callers_of_a_worker_with_a_small_blocking_pool_all_finish() {
    let target = TempNs::new("rt-small-pool");
    let worker = Arc::new(target.ns.worker().unwrap());
    let runtime = host_runtime(4);
    runtime.block_on(async {
        let calls: Vec<_> = (0..32)
            .map(|_| tokio::spawn(stat_on_worker(Arc::clone(&worker))))
            .collect();
        let all = async {
            for call in calls {
                call.await.unwrap().unwrap();
            }
        };
        tokio::time::timeout(HANG, all)
            .await
            .expect("32 callers with 4 blocking threads should all finish");
        // The callers never held the host's blocking pool: it still serves at once.
        let probe = tokio::time::timeout(HANG, tokio::task::spawn_blocking(|| ()));
        probe.await.expect("the host pool is free").unwrap();
    });
}

#[in_netns::test]
fn every_thread_of_a_namespace_runtime_is_inside_whoever_starts_it() {
    let target = TempNs::new("rt-threads");
    let name = format!("rt-probe-{}", std::process::id() % 10_000);
    let runtime = target
        .ns
        .runtime(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(32)
                .thread_name(name.clone())
                .enable_all(),
        )
        .unwrap();
    assert_eq!(runtime.id(), target.id());
    let home = current_id();

    // Tasks, and the blocking work they ask for under load (many pool threads at once).
    let inside = runtime
        .block_on(async {
            let tasks: Vec<_> = (0..16)
                .map(|_| {
                    tokio::spawn(async {
                        let blocking = tokio::task::spawn_blocking(|| {
                            std::thread::sleep(Duration::from_millis(30));
                            current_id()
                        });
                        (current_id(), blocking.await.unwrap())
                    })
                })
                .collect();
            let mut seen = Vec::new();
            for task in tasks {
                let (task_ns, blocking_ns) = task.await.unwrap();
                seen.extend([task_ns, blocking_ns]);
            }
            seen
        })
        .unwrap();
    assert!(inside.iter().all(|ns| *ns == target.id()), "{inside:?}");

    // Blocking work asked for from host threads, through the handle, also runs inside.
    let from_host = std::thread::scope(|scope| {
        let handle = runtime.handle();
        let calls: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let call = handle.spawn_blocking(|| {
                        std::thread::sleep(Duration::from_millis(30));
                        current_id()
                    });
                    (current_id(), call)
                })
            })
            .collect();
        calls
            .into_iter()
            .map(|c| c.join().unwrap())
            .collect::<Vec<_>>()
    });
    let mut calls = Vec::new();
    for (caller, call) in from_host {
        assert_eq!(caller, home);
        calls.push(call);
    }
    let ran_in = runtime
        .block_on(async {
            let mut seen = Vec::new();
            for call in calls {
                seen.push(call.await.unwrap());
            }
            seen
        })
        .unwrap();
    assert_eq!(ran_in, [target.id(); 8]);

    // Whatever started them, every thread of the runtime is inside.
    let threads = namespaces_of_threads_named(&name);
    assert!(threads.len() >= 3, "workers and pool threads: {threads:?}");
    assert!(threads.iter().all(|ns| *ns == target.id()), "{threads:?}");
    assert_eq!(current_id(), home);
    drop(runtime);
    assert!(common::wait_no_thread_in(target.id(), Duration::from_secs(5)).is_empty());
}

#[in_netns::test]
fn a_namespace_runtime_serves_its_loopback_lookups_and_children_inside() {
    let target = TempNs::new("rt-serve");
    target.ns.set_loopback_up().unwrap();
    let _etc = EtcDir::new(&target.name, &[("hosts", "127.0.0.1 in-netns-peer\n")]);
    let runtime = target
        .ns
        .runtime_with(
            &Setup::default().etc(true),
            tokio::runtime::Builder::new_current_thread().enable_all(),
        )
        .unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap()
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let counter = Arc::clone(&accepted);
    // A server task on the namespace runtime: a current-thread runtime runs it in the
    // background, on its driver thread inside.
    let _server = runtime.spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            stream.write_all(b"inside").await.unwrap();
        }
    });

    let host = host_runtime(4);
    host.block_on(async {
        // A client task spawned onto the namespace runtime from the host's runtime, resolving
        // a name only the namespace's hosts file knows.
        let reply = runtime
            .spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(("in-netns-peer", port)).await?;
                let mut reply = String::new();
                stream.read_to_string(&mut reply).await?;
                io::Result::Ok(reply)
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reply, "inside");
        // The host's loopback does not reach it.
        let from_host = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
        if let Ok(mut stream) = from_host {
            let mut reply = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_millis(200), stream.read_to_end(&mut reply))
                    .await;
            assert_ne!(reply, b"inside", "the host reached the namespace's server");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);

        // A child of tokio::process, started by a task of the runtime, is inside.
        let child_ns = runtime
            .spawn(async {
                let output = tokio::process::Command::new("readlink")
                    .arg("/proc/self/ns/net")
                    .output()
                    .await?;
                io::Result::Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(child_ns, target.id().to_string());
    });
}

struct Agent {
    runtime: Arc<NetnsRuntime>,
}

impl Agent {
    #[in_netns(&self.runtime)]
    async fn where_do_tasks_run(self: Arc<Self>) -> in_netns::Result<(NsId, NsId)> {
        let spawned = tokio::spawn(async { current_id() }).await.unwrap();
        Ok((current_id(), spawned))
    }
}

#[in_netns(runtime)]
async fn on_owned_runtime(runtime: NetnsRuntime) -> in_netns::Result<NsId> {
    Ok(current_id())
}

#[in_netns(&runtime)]
fn blocking_body_with_the_runtime_entered(runtime: &NetnsRuntime) -> in_netns::Result<NsId> {
    let handle = tokio::runtime::Handle::current();
    Ok(handle
        .block_on(tokio::spawn(async { current_id() }))
        .unwrap())
}

#[in_netns::test]
fn in_netns_with_a_runtime_target_runs_the_body_as_its_task() {
    let target = TempNs::new("rt-target");
    let builder = || {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(1).enable_all();
        builder
    };
    let runtime = Arc::new(target.ns.runtime(&mut builder()).unwrap());
    let agent = Arc::new(Agent {
        runtime: Arc::clone(&runtime),
    });
    let host = host_runtime(4);
    host.block_on(async {
        let home = current_id();
        assert_eq!(
            agent.where_do_tasks_run().await.unwrap(),
            (target.id(), target.id())
        );
        let owned = target.ns.runtime(&mut builder()).unwrap();
        assert_eq!(on_owned_runtime(owned).await.unwrap(), target.id());
        assert_eq!(current_id(), home);
    });
    assert_eq!(
        blocking_body_with_the_runtime_entered(&runtime).unwrap(),
        target.id()
    );
}

#[in_netns::test]
fn dropping_the_callers_future_aborts_the_task_and_panics_resume_in_the_caller() {
    let target = TempNs::new("rt-abort");
    let runtime = target
        .ns
        .runtime(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all(),
        )
        .unwrap();
    let (dropped_tx, dropped_rx) = std::sync::mpsc::channel();
    struct OnDrop(std::sync::mpsc::Sender<NsId>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            let _ = self.0.send(current_id());
        }
    }
    let host = host_runtime(4);
    host.block_on(async {
        let call = runtime.spawn(async move {
            let _guard = OnDrop(dropped_tx);
            tokio::time::sleep(HANG).await;
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(50), call)
                .await
                .is_err()
        );
    });
    let dropped_in = dropped_rx.recv_timeout(HANG).expect("the task was aborted");
    assert_eq!(dropped_in, target.id(), "the task is dropped inside");

    let panicked = host.block_on(async {
        tokio::spawn(runtime.spawn(async {
            std::panic::panic_any(11_u8);
        }))
        .await
    });
    let payload = panicked.unwrap_err().into_panic();
    assert_eq!(payload.downcast_ref::<u8>(), Some(&11));
}

/// `run_async` polls its body on threads inside, one call per poll: a body that waits (a timer,
/// a spawned task, a socket) is polled again inside after each wait, and one dropped while it
/// waits drops what it holds inside.
#[in_netns::test]
fn an_async_body_is_inside_at_every_poll_and_dropped_inside() {
    /// Says where it was dropped, after spawning a task there (which needs a runtime).
    struct OnDrop(std::sync::mpsc::Sender<NsId>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            tokio::spawn(async {});
            let _ = self.0.send(current_id());
        }
    }
    let target = TempNs::new("rt-polled");
    target.ns.set_loopback_up().unwrap();
    let host = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seen = host
        .block_on(target.ns.run_async(|| async {
            let mut seen = vec![current_id()];
            tokio::time::sleep(Duration::from_millis(5)).await;
            seen.push(current_id());
            let spawned = tokio::spawn(async { current_id() }).await.unwrap();
            seen.push(current_id());
            seen.push(spawned);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let (accepted, connected) =
                tokio::join!(listener.accept(), tokio::net::TcpStream::connect(address));
            let (mut accepted, _) = accepted.unwrap();
            connected.unwrap().write_all(b"x").await.unwrap();
            let mut byte = [0];
            accepted.read_exact(&mut byte).await.unwrap();
            seen.push(current_id());
            seen
        }))
        .unwrap();
    assert_eq!(
        seen,
        [target.id(); 5],
        "where each poll, and the spawned task, ran"
    );

    let (dropped_tx, dropped_rx) = std::sync::mpsc::channel();
    host.block_on(async {
        let body = target.ns.run_async(move || async move {
            let _guard = OnDrop(dropped_tx);
            tokio::time::sleep(HANG).await;
        });
        let waited = tokio::time::timeout(Duration::from_millis(50), body).await;
        assert!(waited.is_err(), "the body waits");
    });
    let dropped_in = dropped_rx.recv_timeout(HANG).expect("the body was dropped");
    assert_eq!(
        dropped_in,
        target.id(),
        "the body is dropped inside, with a runtime"
    );

    let panicked = host.block_on(async {
        tokio::spawn(target.ns.run_async(|| async {
            tokio::task::yield_now().await;
            std::panic::panic_any(12_u8);
        }))
        .await
    });
    let payload = panicked.unwrap_err().into_panic();
    assert_eq!(
        payload.downcast_ref::<u8>(),
        Some(&12),
        "resumed in the caller"
    );
    let after = host.block_on(target.ns.run_async(|| async { current_id() }));
    assert_eq!(after.unwrap(), target.id(), "the next body runs");
}

/// An async body runs with the security context of the thread that called `run_async`, as
/// the tasks it spawns do, whichever thread polls it: one made by a thread without CAP_NET_RAW
/// and awaited by one with it has none, and one made with it and awaited without it has it.
#[in_netns::test]
fn an_async_body_has_its_makers_rights_whoever_polls_it() {
    let target = TempNs::new("rt-maker");
    let host = host_runtime(2);
    let body = || async {
        let spawned = tokio::spawn(async { common::effective_capabilities() });
        (common::effective_capabilities(), spawned.await.unwrap())
    };
    let full = common::effective_capabilities();
    let (made_without, polled_without) = std::thread::scope(|scope| {
        let made_without = scope
            .spawn(|| {
                common::drop_capability(common::CAP_NET_RAW);
                (common::effective_capabilities(), target.ns.run_async(body))
            })
            .join()
            .unwrap();
        let made_with = target.ns.run_async(body);
        let polled_without = scope
            .spawn(|| {
                common::drop_capability(common::CAP_NET_RAW);
                host.block_on(made_with).unwrap()
            })
            .join()
            .unwrap();
        (made_without, polled_without)
    });
    let (without, future) = made_without;
    assert_ne!(without, full);
    let polled_with = host.block_on(future).unwrap();
    assert_eq!(
        polled_with,
        (without.clone(), without),
        "made without, polled with"
    );
    assert_eq!(
        polled_without,
        (full.clone(), full),
        "made with, polled without"
    );
}

#[in_netns::test]
fn a_runtime_that_cannot_enter_is_an_error_of_runtime() {
    let anonymous = NetNs::new().unwrap();
    let result = anonymous.runtime_with(
        &Setup::default().etc(true),
        tokio::runtime::Builder::new_current_thread().enable_all(),
    );
    assert!(matches!(result, Err(Error::Unnamed { .. })), "{result:?}");
    let this_thread = id_of_path("/proc/thread-self/ns/net");
    assert_eq!(current_id(), this_thread);
}

/// Waits (polling: a joined thread lingers a moment) until no thread of the process is in `id`.
fn no_thread_left_in(id: NsId) -> bool {
    common::wait_no_thread_in(id, HANG).is_empty()
}

#[in_netns::test]
fn the_last_handle_dropped_on_a_blocking_thread_of_its_own_runtime_ends_it() {
    for _ in 0..20 {
        let ns = NetNs::new().unwrap();
        let id = ns.id();
        let last = ns.clone();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let runtime = host_runtime(4);
        runtime.block_on(async {
            ns.run_async(move || async move {
                tokio::task::spawn_blocking(move || {
                    let _ = released.recv();
                    drop(last);
                });
            })
            .await
            .unwrap();
        });
        drop(ns);
        release.send(()).unwrap();
        assert!(no_thread_left_in(id), "threads stayed in the namespace");
    }
}

fn multi_thread(ns: &NetNs) -> NetnsRuntime {
    ns.runtime(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all(),
    )
    .unwrap()
}

#[in_netns::test]
fn a_runtime_dropped_or_shut_down_on_its_own_threads_neither_panics_nor_hangs() {
    let ns = NetNs::new().unwrap();
    let (done, finished) = std::sync::mpsc::channel::<&str>();
    let runtime = multi_thread(&ns);
    let handle = runtime.handle().clone();
    let report = done.clone();
    handle.spawn_blocking(move || {
        drop(runtime);
        report.send("dropped on a blocking thread").unwrap();
    });
    for end in ["drop", "shutdown_background", "shutdown_timeout"] {
        let runtime = multi_thread(&ns);
        let handle = runtime.handle().clone();
        let report = done.clone();
        handle.spawn(async move {
            match end {
                "drop" => drop(runtime),
                "shutdown_background" => runtime.shutdown_background(),
                _ => runtime.shutdown_timeout(Duration::from_secs(1)),
            }
            report.send(end).unwrap();
        });
    }
    let mut ended: Vec<&str> = (0..4)
        .map(|_| finished.recv_timeout(HANG).unwrap())
        .collect();
    ended.sort_unstable();
    assert_eq!(
        ended,
        [
            "drop",
            "dropped on a blocking thread",
            "shutdown_background",
            "shutdown_timeout"
        ]
    );
    let id = ns.id();
    drop(ns);
    assert!(no_thread_left_in(id));
}

#[in_netns::test]
fn block_on_from_a_task_of_the_same_runtime_panics_instead_of_hanging() {
    let ns = NetNs::new().unwrap();
    let runtime = Arc::new(multi_thread(&ns));
    let inner = Arc::clone(&runtime);
    let task = runtime
        .handle()
        .spawn(async move { inner.block_on(async {}).ok() });
    let outcome = host_runtime(2).block_on(async { tokio::time::timeout(HANG, task).await });
    let panic = outcome.expect("no hang").unwrap_err().into_panic();
    let message = panic.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("own threads"), "{message}");
}

#[in_netns(runtime)]
async fn on_the_last_arc(runtime: Arc<NetnsRuntime>) -> in_netns::Result<NsId> {
    Ok(current_id())
}

#[in_netns::test]
fn a_runtime_target_given_as_its_last_arc_lives_until_the_call_is_done() {
    let ns = NetNs::new().unwrap();
    let runtime = Arc::new(multi_thread(&ns));
    let outcome = host_runtime(2).block_on(on_the_last_arc(runtime));
    assert_eq!(outcome.unwrap(), ns.id());
}

#[in_netns(name = name)]
async fn lingering_blocking_work(
    name: String,
    finished: Arc<std::sync::atomic::AtomicBool>,
    released: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
) -> io::Result<()> {
    tokio::task::spawn_blocking(move || {
        let _ = released.lock().unwrap().recv_timeout(HANG);
        finished.store(true, std::sync::atomic::Ordering::SeqCst);
    })
    .await
    .map_err(io::Error::other)
}

#[in_netns::test]
fn cancelling_a_call_does_not_wait_for_its_leftover_blocking_work() {
    let target = TempNs::new("rt-cancel-leftover");
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Arc::new(std::sync::Mutex::new(released));
    host_runtime(2).block_on(async {
        let call = lingering_blocking_work(target.name.clone(), Arc::clone(&finished), released);
        let outcome = tokio::time::timeout(Duration::from_millis(100), call).await;
        assert!(outcome.is_err(), "the call should still be running");
    });
    // The caller got control back while the blocking work still ran (a shutdown that waited
    // for it would have returned only after it finished).
    assert!(!finished.load(std::sync::atomic::Ordering::SeqCst));
    release.send(()).unwrap();
}

// Forks: a process of its own, so no other test's thread holds a lock the child needs.
#[in_netns::test(own_process)]
fn in_a_forked_child_an_inherited_handle_with_a_body_runtime_drops_cleanly() {
    let ns = NetNs::new().unwrap();
    host_runtime(2)
        .block_on(ns.run_async(|| async { current_id() }))
        .unwrap();
    // SAFETY: the child only drops the handle and exits; it calls no function that a
    // multithreaded parent's locks could block (dropping forgets the runtime's threads).
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(ns)));
            // SAFETY: exits the child at once, as a forked child of a threaded process should.
            unsafe { nix::libc::_exit(if dropped.is_ok() { 0 } else { 1 }) };
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
        }
    }
}

/// A forked child has none of the threads of the runtime its parent's handle made for async
/// bodies (and the lock that finds it may have been held at the fork): a body in the child
/// runs on a runtime of its own instead of waiting forever.
#[in_netns::test]
fn an_async_body_in_a_forked_child_runs_after_the_parent_ran_one() {
    let ns = NetNs::new().unwrap();
    let id = ns.id();
    let in_parent = host_runtime(4).block_on(ns.run_async(move || async move { current_id() }));
    assert_eq!(in_parent.unwrap(), id);
    let child = common::in_forked_child(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let Ok(runtime) = runtime else { return false };
        let in_child = runtime.block_on(ns.run_async(|| async { current_id() }));
        matches!(in_child, Ok(seen) if seen == id)
    });
    assert_eq!(child, Ok(()));
}

/// A handle kept (in a thread-local) by the thread of another handle's runtime for async
/// bodies, and that other handle kept by a warm thread of the first: when the warm thread idles
/// out, its thread-locals drop the second handle, whose runtime stops, and its thread drops the
/// first handle. No drop on those ending threads waits for the other, so all end and both
/// namespaces are released.
#[in_netns::test]
fn handles_kept_by_each_others_runtime_and_warm_thread_both_end() {
    let quick = Options::default().idle_timeout(Duration::from_millis(50));
    let (a, b) = (NetNs::new().unwrap(), NetNs::new().unwrap());
    let (a_id, b_id) = (a.id(), b.id());
    let kept_b = b.clone();
    // Spawned, so kept by a thread of the namespace runtime (the body itself runs on a warm
    // thread).
    let body = a.run_async(move || async move {
        tokio::spawn(async move { common::keep_until_this_thread_ends(kept_b) })
            .await
            .unwrap()
    });
    host_runtime(2).block_on(body).unwrap();
    let kept_a = a.clone();
    b.run_with(&quick, || ()).unwrap();
    b.run_with(&quick, move || common::keep_until_this_thread_ends(kept_a))
        .unwrap();
    let inside = common::threads_in;
    assert!(
        inside(a_id) > 0 && inside(b_id) > 0,
        "each namespace has a thread that keeps the other's handle"
    );
    drop((a, b));
    let stuck = |id| common::wait_no_thread_in(id, HANG);
    assert_eq!(stuck(a_id), [], "a thread is stuck in the first namespace");
    assert_eq!(stuck(b_id), [], "a thread is stuck in the second namespace");
}

/// How many of the process's descriptors refer to namespace `id` (each keeps it alive).
fn descriptors_of(id: NsId) -> usize {
    use std::os::unix::fs::MetadataExt;
    let fds = std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd");
    fds.flatten()
        .filter_map(|fd| std::fs::metadata(fd.path()).ok())
        .filter(|meta| meta.dev() == id.dev() && meta.ino() == id.ino())
        .count()
}

/// The builder a namespace runtime was made from is left with nothing of the namespace: a
/// runtime built from it afterwards is an ordinary one, whose threads stay where they were
/// born, and which does not keep the namespace alive once its handles are gone.
#[in_netns::test]
fn a_builder_builds_ordinary_runtimes_after_a_namespace_runtime() {
    let ns = NetNs::new().unwrap();
    let id = ns.id();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(1);
    let runtime = ns.runtime(&mut builder).unwrap();
    let inside = runtime.block_on(async { current_id() }).unwrap();
    assert_eq!(inside, id);
    drop((runtime, ns));

    let plain = builder.build().unwrap();
    let on_a_worker = plain.block_on(async { tokio::spawn(async { current_id() }).await });
    assert_eq!(
        on_a_worker.unwrap(),
        current_id(),
        "a task of the later runtime"
    );
    assert!(no_thread_left_in(id), "threads stayed in the namespace");
    assert_eq!(
        descriptors_of(id),
        0,
        "the builder keeps the namespace alive"
    );
}

/// Hooks given as `RuntimeHooks` run on every thread tokio starts for the runtime, a start hook
/// inside, and a stop hook on each as it ends; afterwards they are the builder's, and run, as
/// hooks of an ordinary runtime, on threads that stay outside.
#[in_netns::test]
fn the_users_thread_hooks_run_on_every_thread_of_the_runtime_and_stay_on_the_builder() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let ns = NetNs::new().unwrap();
    let started = Arc::new(Mutex::new(Vec::new()));
    let stopped = Arc::new(AtomicUsize::new(0));
    let hooks = {
        let (started, stopped) = (Arc::clone(&started), Arc::clone(&stopped));
        RuntimeHooks::new()
            .on_thread_start(move || started.lock().unwrap().push(current_id()))
            .on_thread_stop(move || {
                stopped.fetch_add(1, Ordering::SeqCst);
            })
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2);
    let runtime = ns
        .runtime_with_hooks(&Setup::default(), hooks, &mut builder)
        .unwrap();
    let blocking = runtime.block_on(async { tokio::task::spawn_blocking(current_id).await });
    assert_eq!(blocking.unwrap().unwrap(), ns.id());
    drop(runtime);
    let inside = std::mem::take(&mut *started.lock().unwrap());
    assert!(
        inside.len() >= 3,
        "two workers and a blocking thread: {inside:?}"
    );
    assert!(inside.iter().all(|id| *id == ns.id()), "{inside:?}");
    assert_eq!(
        stopped.load(Ordering::SeqCst),
        inside.len(),
        "a stop per start"
    );

    let plain = builder.build().unwrap();
    plain.block_on(async { tokio::task::spawn_blocking(|| ()).await.unwrap() });
    drop(plain);
    let outside = started.lock().unwrap().clone();
    assert!(outside.len() >= 3, "{outside:?}");
    assert!(outside.iter().all(|id| *id == current_id()), "{outside:?}");
    assert_eq!(stopped.load(Ordering::SeqCst), inside.len() + outside.len());
}
