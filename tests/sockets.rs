//! Sockets made inside ahead of need (`NetNs::socket` and its TCP and UDP shorthands): each is
//! in the namespace, works from the caller's thread, goes only to a caller who would have made
//! the same socket, and never comes from a parent's stock in a forked child.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use common::{fd_count, in_forked_child, socket_ns};
use in_netns::NetNs;
use in_netns::socket2::{Domain, Protocol, Type};

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A namespace with `lo` up.
fn namespace() -> NetNs {
    let ns = NetNs::new().unwrap();
    ns.set_loopback_up().unwrap();
    ns
}

#[in_netns::test]
fn every_kind_of_socket_is_made_inside_stocked_or_not() {
    let ns = namespace();
    let kinds = [
        (Domain::IPV4, Type::STREAM, None),
        (Domain::IPV6, Type::STREAM, Some(Protocol::TCP)),
        (Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)),
        (Domain::IPV6, Type::DGRAM, None),
        (Domain::UNIX, Type::STREAM, None),
        (Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)),
    ];
    // Many rounds: the first ones find the stock empty, later ones take from it.
    for round in 0..200 {
        for (domain, ty, protocol) in kinds {
            if ty == Type::RAW && round > 0 {
                continue;
            }
            let socket = ns.socket(domain, ty, protocol).unwrap();
            assert_eq!(
                socket_ns(&socket),
                ns.id(),
                "{domain:?} {ty:?} round {round}"
            );
            // SAFETY: F_GETFD only reads the descriptor's flags.
            let flags = unsafe { nix::libc::fcntl(socket.as_raw_fd(), nix::libc::F_GETFD) };
            assert_eq!(
                flags & nix::libc::FD_CLOEXEC,
                nix::libc::FD_CLOEXEC,
                "close-on-exec"
            );
        }
    }
}

#[in_netns::test]
fn tcp_and_udp_shorthands_talk_over_the_namespaces_loopback() {
    let ns = namespace();
    let listener = ns.tcp_listen(loopback(0)).unwrap();
    let addr = listener.local_addr().unwrap();
    assert_eq!(socket_ns(&listener), ns.id());
    let server = std::thread::spawn(move || {
        for _ in 0..50 {
            let (mut stream, _) = listener.accept().unwrap();
            let mut byte = [0];
            stream.read_exact(&mut byte).unwrap();
            stream.write_all(&byte).unwrap();
        }
    });
    for n in 0..50_u8 {
        let mut stream = ns.tcp_connect(addr).unwrap();
        assert_eq!(socket_ns(&stream), ns.id());
        stream.write_all(&[n]).unwrap();
        let mut byte = [0];
        stream.read_exact(&mut byte).unwrap();
        assert_eq!(byte, [n]);
    }
    server.join().unwrap();
    // The host has no listener there: the same address is another namespace's.
    assert!(std::net::TcpStream::connect(addr).is_err());
    let a = ns.udp_bind(loopback(0)).unwrap();
    let b = ns.udp_bind(loopback(0)).unwrap();
    a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
    let mut buf = [0; 4];
    assert_eq!(b.recv(&mut buf).unwrap(), 4);
}

#[in_netns::test]
fn sockets_from_many_threads_and_namespaces_are_each_in_their_own() {
    let namespaces: Vec<NetNs> = (0..8).map(|_| namespace()).collect();
    std::thread::scope(|scope| {
        for caller in 0..4 {
            let namespaces = &namespaces;
            scope.spawn(move || {
                for n in 0..400 {
                    let ns = &namespaces[(n + caller) % namespaces.len()];
                    let socket = ns.udp_bind(loopback(0)).unwrap();
                    assert_eq!(socket_ns(&socket), ns.id());
                }
            });
        }
    });
}

/// A seccomp filter on the calling thread that makes `socket()` fail with `EPERM`.
fn forbid_socket() {
    let program = [
        nix::libc::sock_filter {
            code: (nix::libc::BPF_LD | nix::libc::BPF_W | nix::libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        nix::libc::sock_filter {
            code: (nix::libc::BPF_JMP | nix::libc::BPF_JEQ | nix::libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: nix::libc::SYS_socket as u32,
        },
        nix::libc::sock_filter {
            code: (nix::libc::BPF_RET | nix::libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: 0x0005_0000 | nix::libc::EPERM as u32, // SECCOMP_RET_ERRNO
        },
        nix::libc::sock_filter {
            code: (nix::libc::BPF_RET | nix::libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000, // SECCOMP_RET_ALLOW
        },
    ];
    let prog = nix::libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut _,
    };
    // SAFETY: as in tests/security.rs: integers, and a program that outlives the call, for the
    // calling thread only.
    unsafe {
        assert_eq!(
            nix::libc::prctl(nix::libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            0
        );
        let installed = nix::libc::syscall(
            nix::libc::SYS_seccomp,
            nix::libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const nix::libc::sock_fprog,
        );
        assert_eq!(installed, 0);
    }
}

#[in_netns::test]
fn a_caller_whose_seccomp_filter_forbids_sockets_gets_none_from_the_stock() {
    let ns = namespace();
    for _ in 0..50 {
        ns.udp_bind(loopback(0)).unwrap(); // the stock is made, and in use
    }
    std::thread::scope(|scope| {
        scope.spawn(|| {
            forbid_socket();
            for _ in 0..20 {
                let refused = ns.udp_bind(loopback(0)).unwrap_err();
                assert_eq!(refused.raw_os_error(), Some(nix::libc::EPERM), "{refused}");
            }
        });
    });
    ns.udp_bind(loopback(0)).unwrap();
}

/// The uid the kernel shows for the UDP socket bound to `port` in this namespace.
fn udp_socket_uid(port: u16) -> u32 {
    let table = std::fs::read_to_string("/proc/thread-self/net/udp").unwrap();
    let port = format!(":{port:04X} ");
    let line = table.lines().find(|line| line.contains(&port)).unwrap();
    line.split_whitespace().nth(7).unwrap().parse().unwrap()
}

#[in_netns::test]
fn a_socket_made_ahead_belongs_to_its_caller_as_one_it_made() {
    if !common::really_root() {
        eprintln!("skipped: needs real root to set another filesystem uid");
        return;
    }
    let ns = namespace();
    for _ in 0..50 {
        ns.udp_bind(loopback(0)).unwrap();
    }
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // SAFETY: setfsuid takes an id and changes the calling thread's only.
            unsafe { nix::libc::setfsuid(65534) };
            for _ in 0..20 {
                let socket = ns.udp_bind(loopback(0)).unwrap();
                let port = socket.local_addr().unwrap().port();
                assert_eq!(ns.run(|| udp_socket_uid(port)).unwrap(), 65534);
            }
        });
    });
}

// Forks: a process of its own.
#[in_netns::test(own_process)]
fn a_forked_child_never_takes_a_socket_from_its_parents_stock() {
    use std::os::unix::fs::MetadataExt;
    let ns = namespace();
    for _ in 0..50 {
        ns.udp_bind(loopback(0)).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(50)); // the stock is made again
    let child = in_forked_child(|| {
        let inherited: Vec<u64> = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| std::fs::metadata(fd.unwrap().path()).ok())
            .map(|meta| meta.ino())
            .collect();
        (0..5).all(|_| {
            let socket = ns.socket(Domain::IPV4, Type::DGRAM, None).unwrap();
            let fd = format!("/proc/self/fd/{}", socket.as_raw_fd());
            let ino = std::fs::metadata(fd).unwrap().ino();
            socket_ns(&socket) == ns.id() && !inherited.contains(&ino)
        })
    });
    assert_eq!(child, Ok(()));
}

// Counts the process's descriptors: a process of its own.
#[in_netns::test(own_process)]
fn the_stock_closes_with_the_handle() {
    let before = fd_count();
    let ns = namespace();
    for _ in 0..200 {
        drop(ns.udp_bind(loopback(0)).unwrap());
    }
    // The stock's thread refills the shelves the calls emptied: under load, a moment later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while fd_count() <= before + 8 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(fd_count() > before + 8, "a stock was made");
    drop(ns);
    assert_eq!(fd_count(), before);
}

#[cfg(feature = "tokio")]
#[in_netns::test]
fn tokio_connects_and_accepts_on_the_callers_runtime() {
    let ns = namespace();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = ns.tokio_tcp_listen(loopback(0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..20 {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut byte = [0];
                stream.read_exact(&mut byte).await.unwrap();
                stream.write_all(&byte).await.unwrap();
            }
        });
        for n in 0..20_u8 {
            let mut stream = ns.tokio_tcp_connect(addr).await.unwrap();
            assert_eq!(socket_ns(&stream), ns.id());
            stream.write_all(&[n]).await.unwrap();
            let mut byte = [0];
            stream.read_exact(&mut byte).await.unwrap();
            assert_eq!(byte, [n]);
        }
        server.await.unwrap();
        let socket = ns.tokio_udp_bind(loopback(0)).unwrap();
        assert_eq!(socket_ns(&socket), ns.id());
    });
}
