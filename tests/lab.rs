//! Networks for tests (`in_netns::lab`, feature `lab`): reachability across routers and
//! switches, addresses, link state, partitions, rate, loss and delay, two labs at once, and
//! nothing left once a lab is dropped. Each test runs under `#[in_netns::test]`: as root in the
//! test process, without root in a user namespace of its own.

mod common;

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use in_netns::lab::{Conditions, Lab, Link, Node};
use in_netns::socket2::{Domain, Type};
use in_netns::{Error, NetNs, NsId};

const PATIENCE: Duration = Duration::from_secs(5);

/// A client and a server across a router: `client - router - server`.
fn across_a_router() -> (Lab, Node, Node, Node, Link, Link) {
    let lab = Lab::new();
    let client = lab.host("client").unwrap();
    let router = lab.router("router").unwrap();
    let server = lab.host("server").unwrap();
    let near = lab.link(&client, &router).unwrap();
    let far = lab.link(&router, &server).unwrap();
    (lab, client, router, server, near, far)
}

/// A connection from `from` to `to` at `addr`, with a deadline.
fn connect(from: &Node, addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = from
        .ns()
        .socket(Domain::for_address(addr), Type::STREAM, None)?;
    socket.connect_timeout(&addr.into(), PATIENCE)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(PATIENCE))?;
    Ok(stream)
}

/// A line from `from` to a listener on `to` at `ip`, echoed back: the path works both ways.
fn exchange(from: &Node, to: &Node, ip: IpAddr) -> io::Result<()> {
    let listener = to.ns().tcp_listen(SocketAddr::new(ip, 0))?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || -> io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_read_timeout(Some(PATIENCE))?;
        let mut line = [0; 5];
        stream.read_exact(&mut line)?;
        stream.write_all(&line)
    });
    let mut stream = connect(from, addr)?;
    stream.write_all(b"hello")?;
    let mut echo = [0; 5];
    stream.read_exact(&mut echo)?;
    server.join().unwrap()?;
    assert_eq!(&echo, b"hello");
    Ok(())
}

#[in_netns::test]
fn tcp_crosses_a_router_both_ways_over_ipv4_and_ipv6() {
    let (_lab, client, router, server, _near, _far) = across_a_router();
    for ip in [
        IpAddr::V4(server.ipv4().unwrap()),
        IpAddr::V6(server.ipv6().unwrap()),
    ] {
        exchange(&client, &server, ip).unwrap_or_else(|e| panic!("client to {ip}: {e}"));
    }
    for ip in [
        IpAddr::V4(client.ipv4().unwrap()),
        IpAddr::V6(client.ipv6().unwrap()),
    ] {
        exchange(&server, &client, ip).unwrap_or_else(|e| panic!("server to {ip}: {e}"));
    }
    // The router reaches both, and both reach every address of the router.
    for address in router.addresses() {
        exchange(&client, &router, address).unwrap();
        exchange(&server, &router, address).unwrap();
    }
}

#[in_netns::test]
fn routes_cross_routers_in_a_row_and_never_a_host() {
    // a - r1 - r2 - b, and a host h hanging off r1 with a second link to b: routes from a to b
    // go through the routers, and nothing goes through h.
    let lab = Lab::new();
    let a = lab.host("a").unwrap();
    let r1 = lab.router("r1").unwrap();
    let r2 = lab.router("r2").unwrap();
    let b = lab.host("b").unwrap();
    let h = lab.host("h").unwrap();
    lab.link(&a, &r1).unwrap();
    lab.link(&r1, &r2).unwrap();
    lab.link(&r2, &b).unwrap();
    lab.link(&r1, &h).unwrap();
    let h_to_b = lab.link(&h, &b).unwrap();
    exchange(&a, &b, IpAddr::V4(b.ipv4().unwrap())).unwrap();
    exchange(&b, &a, IpAddr::V6(a.ipv6().unwrap())).unwrap();
    // b's end on the link to h is on a subnet only h and b touch: a has no route to it, because
    // the path would cross the host h.
    let err = connect(
        &a,
        SocketAddr::new(IpAddr::V4(h_to_b.b().ipv4().unwrap()), 9),
    )
    .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::ENETUNREACH), "{err}");
}

#[in_netns::test]
fn addresses_are_unique_and_are_the_ones_the_interfaces_have() {
    let lab = Lab::new();
    let switch = lab.switch("switch").unwrap();
    let router = lab.router("router").unwrap();
    let hosts: Vec<Node> = (0..3)
        .map(|i| lab.host(&format!("h{i}")).unwrap())
        .collect();
    let mut links = vec![lab.link(&router, &switch).unwrap()];
    for host in &hosts {
        links.push(lab.link(host, &switch).unwrap());
        links.push(lab.link(host, &router).unwrap());
    }
    let mut seen = Vec::new();
    for link in &links {
        for end in [link.a(), link.b()] {
            if end.node() == "switch" {
                assert!(end.ipv4().is_none() && end.ipv6().is_none());
                assert!(end.ifname().starts_with("port"), "{end:?}");
                continue;
            }
            assert!(end.ifname().starts_with("eth"), "{end:?}");
            seen.push(IpAddr::V4(end.ipv4().unwrap()));
            seen.push(IpAddr::V6(end.ipv6().unwrap()));
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "addresses repeat: {seen:?}");
    // Each address is the node's own (binding it works there) and no other node's.
    for node in lab.nodes() {
        for address in node.addresses() {
            node.ns()
                .udp_bind(SocketAddr::new(address, 0))
                .unwrap_or_else(|e| panic!("{address} on {}: {e}", node.name()));
            for other in lab.nodes().iter().filter(|other| **other != node) {
                let err = other
                    .ns()
                    .udp_bind(SocketAddr::new(address, 0))
                    .unwrap_err();
                assert_eq!(err.raw_os_error(), Some(nix::libc::EADDRNOTAVAIL));
            }
        }
    }
    // Everyone reaches everyone, on the switch's subnet and across the router.
    for from in &hosts {
        for to in hosts.iter().chain([&router]) {
            if from != to {
                for address in to.addresses() {
                    exchange(from, to, address).unwrap();
                }
            }
        }
    }
}

#[in_netns::test]
fn a_link_down_fails_connections_at_once_and_up_brings_them_back() {
    let (_lab, client, _router, server, near, far) = across_a_router();
    let at = SocketAddr::new(IpAddr::V4(server.ipv4().unwrap()), 0);
    exchange(&client, &server, at.ip()).unwrap();
    let listener = server.ns().tcp_listen(at).unwrap();
    let addr = listener.local_addr().unwrap();
    let addr6 = SocketAddr::new(IpAddr::V6(server.ipv6().unwrap()), addr.port());
    let listener6 = server.ns().tcp_listen(addr6).unwrap();

    far.down().unwrap();
    assert!(!far.is_up());
    for to in [addr, addr6] {
        let start = Instant::now();
        let err = connect(&client, to).unwrap_err();
        assert!(
            matches!(
                err.raw_os_error(),
                Some(nix::libc::ENETUNREACH | nix::libc::EHOSTUNREACH)
            ),
            "past the router, to {to}: {err}"
        );
        // At once, or after one retransmission of the SYN (a router's first ICMP error to a
        // sender waits for the kernel's rate limit), never a connect timeout.
        assert!(
            start.elapsed() < Duration::from_millis(3500),
            "{:?}",
            start.elapsed()
        );
    }
    near.down().unwrap();
    let err = connect(&client, addr).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::ENETUNREACH), "{err}");

    near.up().unwrap();
    far.up().unwrap();
    assert!(far.is_up());
    for (to, listener) in [(addr, &listener), (addr6, &listener6)] {
        let _stream = connect(&client, to).unwrap_or_else(|e| panic!("to {to}: {e}"));
        listener.accept().unwrap();
    }
}

#[in_netns::test]
fn a_partition_cuts_every_path_until_it_heals() {
    // Two sides joined through two routers: cutting both links between them partitions.
    let lab = Lab::new();
    let left = lab.host("left").unwrap();
    let right = lab.host("right").unwrap();
    let r1 = lab.router("r1").unwrap();
    let r2 = lab.router("r2").unwrap();
    lab.link(&left, &r1).unwrap();
    let middle = lab.link(&r1, &r2).unwrap();
    let edge = lab.link(&r2, &right).unwrap();
    let to_right = IpAddr::V4(right.ipv4().unwrap());
    exchange(&left, &right, to_right).unwrap();

    let partition = lab.partition(&[&middle, &edge]).unwrap();
    assert!(!middle.is_up() && !edge.is_up());
    for (from, to) in [(&left, &right), (&right, &left), (&left, &r2)] {
        for address in to.addresses() {
            // (No listener: a downed end's IPv6 address is gone until it comes up.)
            let err = connect(from, SocketAddr::new(address, 9)).unwrap_err();
            assert!(
                matches!(
                    err.raw_os_error(),
                    Some(nix::libc::ENETUNREACH | nix::libc::EHOSTUNREACH)
                ),
                "{} to {address}: {err}",
                from.name()
            );
        }
    }
    // What is on the same side still works.
    exchange(&left, &r1, IpAddr::V4(r1.ipv4().unwrap())).unwrap();
    // A node joined beyond the cut meanwhile is routed to once the partition heals.
    let late = lab.host("late").unwrap();
    lab.link(&late, &r2).unwrap();
    let err = connect(&left, SocketAddr::new(IpAddr::V4(late.ipv4().unwrap()), 9)).unwrap_err();
    assert!(
        matches!(
            err.raw_os_error(),
            Some(nix::libc::ENETUNREACH | nix::libc::EHOSTUNREACH)
        ),
        "{err}"
    );

    partition.heal().unwrap();
    assert!(middle.is_up() && edge.is_up());
    for to in [&right, &late] {
        for address in to.addresses() {
            exchange(&left, to, address).unwrap();
        }
    }
    // Dropping a partition heals it too.
    drop(lab.partition(&[&middle]).unwrap());
    exchange(&left, &right, to_right).unwrap();
}

/// How long `bytes` take from `from` to a listener on `to`, until the receiver has them all.
fn transfer_time(from: &Node, to: &Node, bytes: usize) -> Duration {
    let listener = to
        .ns()
        .tcp_listen(SocketAddr::new(IpAddr::V4(to.ipv4().unwrap()), 0))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut received = Vec::new();
        stream.read_to_end(&mut received).unwrap();
        stream.write_all(&[1]).unwrap();
        received.len()
    });
    let mut stream = connect(from, addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let start = Instant::now();
    stream.write_all(&vec![7; bytes]).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut done = [0];
    stream.read_exact(&mut done).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(receiver.join().unwrap(), bytes);
    elapsed
}

#[in_netns::test]
fn a_rate_limit_slows_a_transfer_and_lifting_it_restores_the_speed() {
    let (_lab, client, router, server, _near, far) = across_a_router();
    const BYTES: usize = 200_000; // 1.6 s at 1 Mbit/s
    let unlimited = transfer_time(&client, &server, BYTES);
    far.set_conditions(&router, Conditions::new().rate(1_000_000))
        .unwrap();
    assert_eq!(far.conditions(&router).rate, Some(1_000_000));
    let limited = transfer_time(&client, &server, BYTES);
    // The other direction is not limited.
    let back = transfer_time(&server, &client, BYTES);
    far.set_conditions(&router, Conditions::new()).unwrap();
    let lifted = transfer_time(&client, &server, BYTES);
    println!("unlimited {unlimited:?}, 1 Mbit/s {limited:?}, back {back:?}, lifted {lifted:?}");
    assert!(limited > Duration::from_millis(1000), "{limited:?}");
    assert!(limited < Duration::from_secs(10), "{limited:?}");
    assert!(limited > unlimited * 5, "{limited:?} vs {unlimited:?}");
    assert!(limited > back * 5, "{limited:?} vs back {back:?}");
    assert!(limited > lifted * 5, "{limited:?} vs lifted {lifted:?}");
}

/// Sends `count` datagrams from `from` to `to` (every send must succeed) and counts those that
/// arrive.
fn datagrams_through(from: &Node, to: &Node, count: usize) -> usize {
    let receiver = to
        .ns()
        .udp_bind(SocketAddr::new(IpAddr::V4(to.ipv4().unwrap()), 0))
        .unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let addr = receiver.local_addr().unwrap();
    let sent = Arc::new(AtomicBool::new(false));
    let counter = thread::spawn({
        let sent = sent.clone();
        move || {
            let mut received = 0;
            let mut buffer = [0; 64];
            // Until the sender is done and nothing came for a while.
            loop {
                match receiver.recv(&mut buffer) {
                    Ok(_) => received += 1,
                    Err(_) if sent.load(Ordering::SeqCst) => return received,
                    Err(_) => {}
                }
            }
        }
    });
    let sender = from
        .ns()
        .udp_bind(SocketAddr::new(IpAddr::V4(from.ipv4().unwrap()), 0))
        .unwrap();
    sender.connect(addr).unwrap();
    for i in 0..count {
        sender
            .send(&(i as u32).to_be_bytes())
            .unwrap_or_else(|e| panic!("send {i}: {e}"));
        if i % 50 == 49 {
            thread::sleep(Duration::from_millis(2));
        }
    }
    sent.store(true, Ordering::SeqCst);
    counter.join().unwrap()
}

#[in_netns::test]
fn loss_drops_datagrams_the_sender_cannot_tell_from_the_wire() {
    let lab = Lab::new();
    let a = lab.host("a").unwrap();
    let b = lab.host("b").unwrap();
    let link = lab.link(&a, &b).unwrap();
    const COUNT: usize = 400;
    assert_eq!(datagrams_through(&a, &b, COUNT), COUNT, "before any loss");
    link.set_conditions(&a, Conditions::new().loss(0.5))
        .unwrap();
    let lossy = datagrams_through(&a, &b, COUNT);
    // The other direction loses nothing.
    let back = datagrams_through(&b, &a, COUNT);
    link.set_conditions(&a, Conditions::new()).unwrap();
    let lifted = datagrams_through(&a, &b, COUNT);
    println!("half lost: {lossy} of {COUNT} arrived; back {back}; lifted {lifted}");
    assert!((100..=300).contains(&lossy), "{lossy} of {COUNT}");
    assert_eq!(back, COUNT);
    assert_eq!(lifted, COUNT);
    // All lost, and TCP over a lossy link still connects and delivers.
    link.set_conditions(&a, Conditions::new().loss(1.0))
        .unwrap();
    assert_eq!(datagrams_through(&a, &b, 50), 0);
    link.set_conditions_both(Conditions::new().loss(0.1))
        .unwrap();
    exchange(&a, &b, IpAddr::V4(b.ipv4().unwrap())).unwrap();
}

#[in_netns::test]
fn a_delay_needs_netem_or_names_the_kernel_option() {
    let lab = Lab::new();
    let a = lab.host("a").unwrap();
    let b = lab.host("b").unwrap();
    let link = lab.link(&a, &b).unwrap();
    let delayed = Conditions::new()
        .rate(50_000_000)
        .delay(Duration::from_millis(100))
        .jitter(Duration::from_millis(1));
    match link.set_conditions(&a, delayed) {
        Ok(()) => {
            // A kernel with netem: a round trip takes the delay at least.
            let start = Instant::now();
            exchange(&a, &b, IpAddr::V4(b.ipv4().unwrap())).unwrap();
            assert!(start.elapsed() >= Duration::from_millis(99));
            assert_eq!(link.conditions(&a), delayed);
        }
        Err(Error::KernelLacks { what, config }) => {
            assert_eq!(config, "CONFIG_NET_SCH_NETEM");
            assert!(what.contains("netem"), "{what}");
            let message = Error::KernelLacks { what, config }.to_string();
            assert!(message.contains("CONFIG_NET_SCH_NETEM"), "{message}");
            // Nothing changed: no rate either, and the link works.
            assert_eq!(link.conditions(&a), Conditions::new());
            let limited = Conditions::new().rate(1_000_000);
            link.set_conditions(&a, limited).unwrap();
            // A refused delay on top keeps the rate as it was.
            assert!(
                link.set_conditions(&a, limited.delay(Duration::from_millis(5)))
                    .is_err()
            );
            assert_eq!(link.conditions(&a), limited);
            let slow = transfer_time(&a, &b, 100_000);
            assert!(slow > Duration::from_millis(500), "{slow:?}");
        }
        Err(other) => panic!("neither a delay nor KernelLacks: {other}"),
    }
}

#[in_netns::test]
fn two_labs_at_once_use_the_same_addresses_without_meeting() {
    let build = |tag: u8| {
        thread::spawn(move || {
            let lab = Lab::new();
            let client = lab.host("client").unwrap();
            let server = lab.host("server").unwrap();
            let link = lab.link(&client, &server).unwrap();
            (lab, client, server, link, tag)
        })
    };
    let labs = [build(1), build(2)].map(|t| t.join().unwrap());
    assert_eq!(labs[0].3.b().ipv4(), labs[1].3.b().ipv4());
    assert_eq!(labs[0].3.a().ipv6(), labs[1].3.a().ipv6());
    let port = 4747;
    let listeners: Vec<_> = labs
        .iter()
        .map(|(_, _, server, _, tag)| {
            let at = SocketAddr::new(IpAddr::V4(server.ipv4().unwrap()), port);
            (server.ns().tcp_listen(at).unwrap(), *tag)
        })
        .collect();
    let servers: Vec<_> = listeners
        .into_iter()
        .map(|(listener, tag)| {
            thread::spawn(move || {
                let (mut stream, _) = listener.accept().unwrap();
                stream.write_all(&[tag]).unwrap();
            })
        })
        .collect();
    for (_, client, server, _, tag) in &labs {
        let at = SocketAddr::new(IpAddr::V4(server.ipv4().unwrap()), port);
        let mut stream = connect(client, at).unwrap();
        let mut heard = [0];
        stream.read_exact(&mut heard).unwrap();
        assert_eq!(heard[0], *tag, "a client reached the other lab's server");
    }
    for server in servers {
        server.join().unwrap();
    }
}

#[in_netns::test]
fn async_clients_and_servers_work_in_a_lab() {
    let (_lab, client, _router, server, _near, _far) = across_a_router();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let at = SocketAddr::new(IpAddr::V6(server.ipv6().unwrap()), 0);
        let listener = server.ns().tcp_listen(at).unwrap();
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let addr = listener.local_addr().unwrap();
        let serve = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut line = [0; 4];
            stream.read_exact(&mut line).await.unwrap();
            stream.write_all(&line).await.unwrap();
        });
        let socket = client
            .ns()
            .socket(Domain::IPV6, Type::STREAM, None)
            .unwrap();
        socket.set_nonblocking(true).unwrap();
        let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
        let mut stream = socket.connect(addr).await.unwrap();
        stream.write_all(b"ping").await.unwrap();
        let mut echo = [0; 4];
        stream.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"ping");
        serve.await.unwrap();
    });
}

/// Whether any thread or descriptor of this process is in (or is) one of `ids`.
fn references_to(ids: &[NsId]) -> Vec<String> {
    let mut found = Vec::new();
    for (tid, ns) in common::thread_namespaces() {
        if ids.contains(&ns) {
            found.push(format!("thread {tid} in {ns}"));
        }
    }
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if ids.iter().any(|id| target == id.to_string()) {
            found.push(format!("fd {fd}: {target}"));
        } else if target.starts_with("socket:") {
            // SAFETY: the descriptor is only asked its namespace (SIOCGSKNS); if another thread
            // closed it meanwhile, the ioctl fails or reports some other socket's namespace,
            // which is harmless here.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            if let Ok(ns) = NetNs::of_socket(fd) {
                if ids.contains(&ns.id()) {
                    found.push(format!("fd {}: a socket in {}", fd.as_raw_fd(), ns.id()));
                }
            }
        }
    }
    found
}

#[in_netns::test]
fn nothing_is_left_once_the_lab_and_its_handles_drop() {
    let (lab, client, router, server, near, far) = across_a_router();
    far.set_conditions(&router, Conditions::new().rate(10_000_000).loss(0.01))
        .unwrap();
    exchange(&client, &server, IpAddr::V4(server.ipv4().unwrap())).unwrap();
    let ids: Vec<NsId> = lab.nodes().iter().map(|node| node.ns().id()).collect();
    assert_eq!(ids.len(), 3);
    // While the lab lives, its sockets and threads are there to be found.
    assert!(!references_to(&ids).is_empty());
    drop((lab, client, router, server, near, far));
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = references_to(&ids);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left behind: {left:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[in_netns::test]
fn traffic_flows_as_soon_as_a_link_is_back_up() {
    let lab = Lab::new();
    let client = lab.host("client").unwrap();
    let server = lab.host("server").unwrap();
    let link = lab.link(&client, &server).unwrap();
    let to = SocketAddr::new(IpAddr::V4(server.ipv4().unwrap()), 0);
    let receiver = server.ns().udp_bind(to).unwrap();
    let to = receiver.local_addr().unwrap();
    let sender = client.ns().udp_bind("0.0.0.0:0".parse().unwrap()).unwrap();
    let closed = SocketAddr::new(to.ip(), 1);
    // The first neighbour request after `up` may go unanswered and be sent again a second
    // later (`Link::up`'s docs): a datagram arrives within 1.5 s.
    receiver
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    for round in 0..5 {
        link.down().unwrap();
        link.up().unwrap();
        sender.send_to(b"x", to).unwrap();
        let mut byte = [0];
        let got = receiver.recv(&mut byte);
        assert!(got.is_ok(), "round {round}: nothing within 1.5 s: {got:?}");
        // A connection refused, as a test would try between flaps.
        let refused = connect(&client, closed).map(drop).map_err(|err| err.kind());
        assert_eq!(
            refused,
            Err(io::ErrorKind::ConnectionRefused),
            "round {round}"
        );
    }
}
