//! The work users most often do inside a namespace: make a socket there. Each call binds a UDP
//! socket on `127.0.0.1:0` inside, hands it back and closes it outside (a node proxy opens one
//! per connection in a pod's namespace; an agent opens netlink and test sockets). The crate's
//! ways (the socket API, warm `NetNs::run`, `Worker::run`, `run_async` from tokio) are set
//! against baselines in the same run, interleaved round by round:
//!
//! - no namespace at all: the same socket on the host (the limit);
//! - the in-place `setns` pair around it (unsafe on a panic; what users reach for);
//! - netns-rs's `run` (the same pair, with its own checks);
//! - a thread that entered once, fed through std channels.
//!
//! Conditions: one caller back to back; four callers at once (throughput and CPU per call);
//! one caller going round 100 namespaces; tokio. Each figure is the median and the 90th
//! percentile over rounds; each goal a ratio of those, printed as met or MISSED. Run as root
//! (`cargo bench --bench workload`), or without root (a user namespace of its own).

use std::hint::black_box;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::time::Instant;

use in_netns::NetNs;
use nix::sched::{CloneFlags, setns};

mod common;
use common::{Sample, cpu_time, goal, interleave, per_call, report};

/// Rounds per condition (odd, so the median is one round), and calls per round.
const ROUNDS: usize = 21;
const CALLS: u32 = 500;
/// Callers at once, and namespaces gone round.
const CALLERS: usize = 4;
const NAMESPACES: usize = 100;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The body: a UDP socket bound on the loopback of the calling thread's namespace.
fn bind() -> UdpSocket {
    UdpSocket::bind(loopback()).expect("bind")
}

/// A namespace with `lo` up.
fn namespace() -> NetNs {
    let ns = NetNs::new().expect("a namespace");
    ns.set_loopback_up().expect("lo up");
    ns
}

/// The in-place `setns` pair: the calling thread enters `ns`, binds, and goes back `home`.
fn setns_pair(ns: &NetNs, home: &NetNs) -> UdpSocket {
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns in");
    let socket = bind();
    setns(home.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns back");
    socket
}

/// netns-rs's handle on the same namespace (by its descriptor's path).
fn netns_rs(ns: &NetNs) -> netns_rs::NetNs {
    let path = format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&ns.as_fd())
    );
    netns_rs::get_from_path(path).expect("netns-rs handle")
}

/// The obvious implementation: a thread inside, fed jobs through std channels.
struct ChannelThread {
    jobs: Option<mpsc::Sender<()>>,
    sockets: mpsc::Receiver<UdpSocket>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ChannelThread {
    fn inside(ns: &NetNs) -> ChannelThread {
        let (jobs, incoming) = mpsc::channel::<()>();
        let (socket, sockets) = mpsc::channel();
        let thread = ns
            .spawn(move || {
                while incoming.recv().is_ok() {
                    let _ = socket.send(bind());
                }
            })
            .expect("start the channel thread");
        ChannelThread {
            jobs: Some(jobs),
            sockets,
            thread: Some(thread),
        }
    }

    fn call(&self) -> UdpSocket {
        self.jobs.as_ref().expect("running").send(()).expect("send");
        self.sockets.recv().expect("a socket")
    }
}

impl Drop for ChannelThread {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Each of `calls` made `warm_up` times, then timed per call over `ROUNDS` interleaved rounds
/// of `CALLS` calls.
fn warmed_and_interleaved(
    names: &[&'static str],
    calls: &[&dyn Fn()],
    warm_up: u32,
) -> Vec<Vec<f64>> {
    for call in calls {
        for _ in 0..warm_up {
            call();
        }
    }
    let mut samples: Vec<Sample<'_>> = names
        .iter()
        .zip(calls)
        .map(|(name, &call)| (*name, Box::new(move || per_call(call, CALLS)) as _))
        .collect();
    interleave(&mut samples, ROUNDS)
}

/// Time per call, one caller back to back.
fn one_caller(ns: &NetNs, home: &NetNs) -> usize {
    let worker = ns.worker().expect("worker");
    let channel = ChannelThread::inside(ns);
    let netns_rs = netns_rs(ns);
    let names = [
        "no namespace",
        "setns pair",
        "netns-rs run",
        "channel thread",
        "socket API (udp_bind)",
        "NetNs::run (warm)",
        "Worker::run",
    ];
    let calls: [&dyn Fn(); 7] = [
        &|| drop(black_box(bind())),
        &|| drop(black_box(setns_pair(ns, home))),
        &|| drop(black_box(netns_rs.run(|_| bind()).expect("netns-rs"))),
        &|| drop(black_box(channel.call())),
        &|| drop(black_box(ns.udp_bind(loopback()).expect("udp_bind"))),
        &|| drop(black_box(ns.run(bind).expect("run"))),
        &|| drop(black_box(worker.run(bind).expect("worker"))),
    ];
    let values = warmed_and_interleaved(&names, &calls, CALLS);
    let goals = [
        goal("socket API (udp_bind)", "no namespace", "median", 1.15),
        goal("socket API (udp_bind)", "no namespace", "p90", 1.5),
        goal("NetNs::run (warm)", "setns pair", "median", 1.3),
    ];
    report(
        "one caller, back to back: time per socket",
        "ns",
        &names,
        &values,
        &goals,
    )
}

/// `CALLERS` threads at once, each making `CALLS` sockets with `call`: wall time and CPU time
/// per socket.
fn at_once(call: &(dyn Fn() + Sync)) -> (f64, f64) {
    let cpu = cpu_time();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..CALLERS {
            scope.spawn(|| {
                for _ in 0..CALLS {
                    call();
                }
            });
        }
    });
    let calls = (CALLERS as u32 * CALLS) as f64;
    (
        start.elapsed().as_secs_f64() / calls,
        (cpu_time() - cpu) / calls,
    )
}

/// Throughput and CPU per call with `CALLERS` callers.
fn many_callers(ns: &NetNs, home: &NetNs) -> usize {
    let names = [
        "no namespace",
        "setns pair",
        "socket API (udp_bind)",
        "NetNs::run (warm)",
    ];
    let calls: [&(dyn Fn() + Sync); 4] = [
        &|| drop(black_box(bind())),
        &|| drop(black_box(setns_pair(ns, home))),
        &|| drop(black_box(ns.udp_bind(loopback()).expect("udp_bind"))),
        &|| drop(black_box(ns.run(bind).expect("run"))),
    ];
    for call in calls {
        at_once(call);
    }
    let mut cpu = vec![Vec::new(); names.len()];
    let mut samples: Vec<Sample<'_>> = Vec::new();
    for ((name, call), cpu) in names.iter().zip(calls).zip(cpu.iter_mut()) {
        samples.push((
            name,
            Box::new(move || {
                let (wall, per_call_cpu) = at_once(call);
                cpu.push(per_call_cpu);
                wall
            }),
        ));
    }
    let wall = interleave(&mut samples, ROUNDS);
    drop(samples);
    for list in &mut cpu {
        list.sort_by(f64::total_cmp);
    }
    for (name, sorted) in names.iter().zip(&wall) {
        println!(
            "  {name:<44} {:>9.0} calls/s (median round)",
            1.0 / common::median(sorted)
        );
    }
    // Throughput at least `x` times the baseline's is wall time per call at most 1/x of it.
    let mut missed = report(
        &format!("{CALLERS} callers at once: wall time per socket (all callers)"),
        "ns",
        &names,
        &wall,
        &[
            goal(
                "socket API (udp_bind)",
                "no namespace",
                "median",
                1.0 / 0.85,
            ),
            goal("NetNs::run (warm)", "setns pair", "median", 1.0 / 0.6),
        ],
    );
    missed += report(
        &format!("{CALLERS} callers at once: CPU per socket"),
        "ns",
        &names,
        &cpu,
        &[goal("NetNs::run (warm)", "setns pair", "median", 1.6)],
    );
    missed
}

/// One caller going round `NAMESPACES` namespaces, one socket in each in turn.
fn round_robin(home: &NetNs) -> usize {
    let namespaces: Vec<NetNs> = (0..NAMESPACES).map(|_| namespace()).collect();
    let next = std::cell::Cell::new(0);
    let turn = || {
        let at = next.get();
        next.set((at + 1) % NAMESPACES);
        &namespaces[at]
    };
    let names = [
        "no namespace",
        "setns pair, round-robin",
        "socket API, round-robin",
        "NetNs::run, round-robin",
    ];
    let calls: [&dyn Fn(); 4] = [
        &|| drop(black_box(bind())),
        &|| drop(black_box(setns_pair(turn(), home))),
        &|| drop(black_box(turn().udp_bind(loopback()).expect("udp_bind"))),
        &|| drop(black_box(turn().run(bind).expect("run"))),
    ];
    let values = warmed_and_interleaved(&names, &calls, 3 * NAMESPACES as u32);
    report(
        &format!("one caller, round-robin over {NAMESPACES} namespaces: time per socket"),
        "ns",
        &names,
        &values,
        &[
            goal("socket API, round-robin", "no namespace", "median", 1.3),
            goal(
                "NetNs::run, round-robin",
                "setns pair, round-robin",
                "median",
                1.5,
            ),
        ],
    )
}

/// tokio: a TCP connect through the socket API against a plain one, and `run_async` with the
/// socket body against `run` from a plain thread.
#[cfg(feature = "tokio")]
fn tokio(ns: &NetNs) -> usize {
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // A listener on each side that accepts and drops.
    let accepting = |listener: std::net::TcpListener| {
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => drop(stream),
                    Err(_) => return,
                }
            }
        })
    };
    let host_listener = std::net::TcpListener::bind(loopback()).expect("host listener");
    let host_addr = host_listener.local_addr().expect("addr");
    let ns_listener = ns.tcp_listen(loopback()).expect("listener inside");
    let ns_addr = ns_listener.local_addr().expect("addr");
    let _accepting = [accepting(host_listener), accepting(ns_listener)];
    let connect_plain = || {
        current.block_on(async {
            for _ in 0..CALLS {
                let stream = tokio::net::TcpStream::connect(host_addr)
                    .await
                    .expect("connect");
                drop(black_box(stream));
            }
        })
    };
    let connect_inside = || {
        current.block_on(async {
            for _ in 0..CALLS {
                let stream = ns.tokio_tcp_connect(ns_addr).await.expect("connect");
                drop(black_box(stream));
            }
        })
    };
    let run_async_on = |runtime: &tokio::runtime::Runtime| {
        runtime.block_on(async {
            for _ in 0..CALLS {
                let socket = ns.run_async(|| async { bind() }).await.expect("run_async");
                drop(black_box(socket));
            }
        })
    };
    let run_async_current = || run_async_on(&current);
    let run_async_multi = || run_async_on(&multi);
    let run_plain = || {
        for _ in 0..CALLS {
            drop(black_box(ns.run(bind).expect("run")));
        }
    };
    let names = [
        "tokio connect, plain",
        "tokio connect, socket API",
        "NetNs::run, plain thread",
        "run_async, current-thread runtime",
        "run_async, multi-thread runtime",
    ];
    let batches: [&dyn Fn(); 5] = [
        &connect_plain,
        &connect_inside,
        &run_plain,
        &run_async_current,
        &run_async_multi,
    ];
    for batch in batches {
        batch();
    }
    let mut samples: Vec<Sample<'_>> = names
        .iter()
        .zip(batches)
        .map(|(name, batch)| {
            (
                *name,
                Box::new(move || per_call(batch, 1) / f64::from(CALLS)) as _,
            )
        })
        .collect();
    let values = interleave(&mut samples, ROUNDS);
    let goals = [
        goal(
            "tokio connect, socket API",
            "tokio connect, plain",
            "median",
            1.1,
        ),
        goal(
            "run_async, current-thread runtime",
            "NetNs::run, plain thread",
            "median",
            1.5,
        ),
        goal(
            "run_async, multi-thread runtime",
            "NetNs::run, plain thread",
            "median",
            1.5,
        ),
    ];
    report("tokio: time per socket", "ns", &names, &values, &goals)
}

fn main() {
    if let Err(err) = in_netns::rootless::enter() {
        panic!("the benchmarks need namespaces: {err}");
    }
    let home = NetNs::current().expect("home");
    // The baseline's loopback: up on a host already; without root, `enter` may have made the
    // process a namespace of its own, whose `lo` starts down.
    let _ = home.set_loopback_up();
    let ns = namespace();
    println!(
        "workload: a UDP socket bound on 127.0.0.1:0 per call, {} CPUs, {ROUNDS} interleaved \
         rounds of {CALLS} calls per caller",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let mut missed = one_caller(&ns, &home);
    missed += many_callers(&ns, &home);
    missed += round_robin(&home);
    #[cfg(feature = "tokio")]
    {
        missed += tokio(&ns);
    }
    #[cfg(not(feature = "tokio"))]
    println!("\ntokio: not measured in this build (cargo bench --bench workload --features tokio)");
    println!("\nworkload: {missed} goals missed");
}
