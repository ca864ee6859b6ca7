//! Async bodies (`run_async` and `#[in_netns] async fn`, feature "tokio") on multi-thread and
//! current-thread runtimes: the body runs inside, its sockets are usable afterwards, runtime
//! workers never move, and cancellation and panics behave.

mod common;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{
    KnownThreads, TempNs, current_id, namespaces_of, runtime_with_known_threads, socket_ns,
};
use in_netns::{NetNs, NsId, Worker, in_netns};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// A multi-thread runtime (two workers) whose thread ids are recorded.
fn runtime_with_known_workers() -> (tokio::runtime::Runtime, KnownThreads) {
    runtime_with_known_threads(2)
}

/// The runtime's threads that are in one of `targets`.
fn workers_inside(workers: &KnownThreads, targets: &[NsId]) -> Vec<(u32, NsId)> {
    let mut inside = namespaces_of(workers);
    inside.retain(|(_, ns)| targets.contains(ns));
    inside
}

#[in_netns(ns)]
async fn where_am_i(ns: NetNs) -> in_netns::Result<NsId> {
    tokio::task::yield_now().await;
    Ok(current_id())
}

#[in_netns(&ns)]
async fn connect(ns: NetNs, addr: SocketAddr) -> io::Result<(TcpStream, NetNs)> {
    let stream = TcpStream::connect(addr).await?;
    Ok((stream, ns))
}

#[in_netns(ns)]
async fn listen(ns: Arc<NetNs>) -> io::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0").await
}

#[in_netns(worker)]
async fn udp_on_worker(worker: Arc<Worker>) -> io::Result<UdpSocket> {
    UdpSocket::bind("127.0.0.1:0").await
}

struct Pod {
    ns: NetNs,
}

impl Pod {
    #[in_netns(&self.ns)]
    async fn probe(self: Arc<Self>) -> in_netns::Result<NsId> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(current_id())
    }
}

#[in_netns::test]
fn async_bodies_run_inside_on_a_multi_thread_runtime() {
    let target = TempNs::new("async-mt");
    let (runtime, workers) = runtime_with_known_workers();
    runtime.block_on(async {
        let home = current_id();
        assert_eq!(
            where_am_i(target.ns.try_clone().unwrap()).await.unwrap(),
            target.id()
        );
        let inside = target
            .ns
            .run_async(|| async { current_id() })
            .await
            .unwrap();
        assert_eq!(inside, target.id());
        let pod = Arc::new(Pod {
            ns: target.ns.try_clone().unwrap(),
        });
        assert_eq!(pod.probe().await.unwrap(), target.id());
        assert_eq!(current_id(), home);
    });
    assert!(workers_inside(&workers, &[target.id()]).is_empty());
}

#[in_netns::test]
fn sockets_made_inside_are_usable_after_return() {
    let target = TempNs::new("async-echo");
    target.ns.set_loopback_up().unwrap();
    let (runtime, _workers) = runtime_with_known_workers();
    runtime.block_on(async {
        let ns = Arc::new(target.ns.try_clone().unwrap());
        let listener = listen(Arc::clone(&ns)).await.unwrap();
        assert_eq!(socket_ns(&listener), target.id());
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0; 5];
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(&buf).await.unwrap();
        });
        let (mut client, _ns) = connect(target.ns.try_clone().unwrap(), addr).await.unwrap();
        assert_eq!(socket_ns(&client), target.id());
        client.write_all(b"hello").await.unwrap();
        let mut echo = [0; 5];
        client.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"hello");
        server.await.unwrap();

        let worker = Arc::new(target.ns.worker().unwrap());
        let udp = udp_on_worker(Arc::clone(&worker)).await.unwrap();
        assert_eq!(socket_ns(&udp), target.id());
        let peer = target
            .ns
            .run_async(|| async { UdpSocket::bind("127.0.0.1:0").await })
            .await;
        let peer = peer.unwrap().unwrap();
        peer.send_to(b"ping", udp.local_addr().unwrap())
            .await
            .unwrap();
        let mut buf = [0; 4];
        let (n, _) = udp.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ping");
    });
}

#[in_netns::test]
fn async_bodies_run_on_a_current_thread_runtime() {
    let target = TempNs::new("async-ct");
    target.ns.set_loopback_up().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let home = current_id();
        assert_eq!(
            where_am_i(target.ns.try_clone().unwrap()).await.unwrap(),
            target.id()
        );
        // Timers and sockets inside need the runtime's driver, which runs while we await.
        let socket = target
            .ns
            .run_async(|| async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                UdpSocket::bind("127.0.0.1:0").await
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(socket_ns(&socket), target.id());
        assert_eq!(current_id(), home);
    });
}

#[in_netns::test]
fn outside_a_runtime_the_body_still_runs_with_tokio_io() {
    let target = TempNs::new("async-none");
    // Awaited by a minimal executor with no tokio context: the body runs on the namespace's
    // runtime all the same, so tokio sockets and timers work in it.
    let future = target.ns.run_async(|| async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        io::Result::Ok((current_id(), socket_ns(&socket)))
    });
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let (body, socket) = loop {
        if let std::task::Poll::Ready(done) = future.as_mut().poll(&mut cx) {
            break done.unwrap().unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!((body, socket), (target.id(), target.id()));
}

#[in_netns::test]
fn many_concurrent_calls_across_namespaces_never_move_a_worker() {
    let targets = [
        TempNs::new("async-c1"),
        TempNs::new("async-c2"),
        TempNs::new("async-c3"),
    ];
    let ids: Vec<NsId> = targets.iter().map(TempNs::id).collect();
    let (runtime, workers) = runtime_with_known_workers();
    let stop = Arc::new(AtomicBool::new(false));
    let violations = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                seen.extend(workers_inside(&workers, &ids));
                std::thread::sleep(Duration::from_micros(200));
            }
            seen
        });
        runtime.block_on(async {
            let mut calls = Vec::new();
            for i in 0..120 {
                let target = &targets[i % targets.len()];
                let ns = target.ns.try_clone().unwrap();
                let expected = target.id();
                calls.push(tokio::spawn(async move {
                    assert_eq!(where_am_i(ns).await.unwrap(), expected);
                }));
            }
            for call in calls {
                call.await.unwrap();
            }
        });
        stop.store(true, Ordering::SeqCst);
        sampler.join().unwrap()
    });
    assert!(
        violations.is_empty(),
        "runtime workers inside a target: {violations:?}"
    );
    assert!(workers_inside(&workers, &ids).is_empty());
}

#[in_netns::test]
fn dropping_the_future_cancels_the_body_at_its_next_wake_up() {
    let target = TempNs::new("async-cancel");
    // A handle of its own: the runtime its bodies run on ends with it.
    let ns = target.ns.try_clone().unwrap();
    let (runtime, _workers) = runtime_with_known_workers();
    let finished = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    runtime.block_on(async {
        /// Records that the body's future was dropped (on the namespace thread).
        struct OnDrop(Arc<AtomicBool>, NsId);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                assert_eq!(
                    current_id(),
                    self.1,
                    "the body is dropped inside the namespace"
                );
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let (finished_in, dropped_in, id) =
            (Arc::clone(&finished), Arc::clone(&dropped), target.id());
        let call = ns.run_async(move || async move {
            let _guard = OnDrop(dropped_in, id);
            tokio::time::sleep(Duration::from_secs(30)).await;
            finished_in.store(true, Ordering::SeqCst);
        });
        let timed_out = tokio::time::timeout(Duration::from_millis(50), call).await;
        assert!(timed_out.is_err(), "the body should still be sleeping");
    });
    let cancelled = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(5));
        dropped.load(Ordering::SeqCst)
    });
    assert!(cancelled, "the body was not dropped after cancellation");
    assert!(!finished.load(Ordering::SeqCst));
    drop(ns);
    assert!(common::wait_no_thread_in(target.id(), Duration::from_secs(1)).is_empty());
}

#[in_netns::test]
fn a_panic_in_the_body_is_resumed_in_the_awaiting_task() {
    let target = TempNs::new("async-panic");
    let (runtime, _workers) = runtime_with_known_workers();
    let ns = target.ns.try_clone().unwrap();
    let task = runtime.spawn(async move {
        ns.run_async(|| async { std::panic::panic_any(7_u8) })
            .await
            .unwrap();
    });
    let err = runtime.block_on(task).unwrap_err();
    assert_eq!(err.into_panic().downcast_ref::<u8>(), Some(&7));
}

#[in_netns::test]
fn entry_failures_are_the_functions_err() {
    #[in_netns(name = "netns-test-async-no-such-name")]
    async fn never() -> io::Result<()> {
        unreachable!("the body must not run")
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = runtime.block_on(never()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}
