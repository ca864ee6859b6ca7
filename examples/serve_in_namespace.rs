//! A long-lived server inside a namespace: `NetNs::spawn` starts a thread that lives in the
//! namespace and serves TCP there, while the main thread stays home. Then a listener made inside
//! (`NetNs::tcp_listen`) is served from the main thread: a socket keeps its namespace wherever
//! it is used.
//!
//! Run it, as root or not: `cargo run --example serve_in_namespace`. It needs `in-netns` only.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};

use in_netns::NetNs;

/// Answers one connection's line, saying which namespace the listener belongs to and which
/// one the answering thread is in: they differ when a thread outside serves a listener inside.
fn serve_one(listener: &TcpListener) -> io::Result<()> {
    let (stream, _) = listener.accept()?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let socket_in = NetNs::of_socket(listener)?.id();
    let thread_in = NetNs::current()?.id();
    let line = line.trim();
    writeln!(
        &stream,
        "{line}: listener in {socket_in}, answered by a thread in {thread_in}"
    )
}

/// Sends one line from a socket made inside `ns` and returns the reply.
fn ask_from_inside(ns: &NetNs, addr: SocketAddr, question: &str) -> io::Result<String> {
    let stream = ns.tcp_connect(addr)?;
    writeln!(&stream, "{question}")?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    Ok(reply.trim().to_owned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // First thing, before any thread starts (as root it does nothing).
    if !in_netns::rootless::privileged() {
        in_netns::rootless::enter()?;
        println!("running without root: rootless::enter() gave this process a user namespace");
    }
    let home = NetNs::current()?;
    let ns = NetNs::new()?; // anonymous: gone with its last handle
    ns.set_loopback_up()?;
    println!(
        "the main thread is in {}; the new namespace is {}",
        home.id(),
        ns.id()
    );

    // 1. A server thread that lives inside the namespace until it returns.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = ns.spawn(move || -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        ready_tx
            .send(listener.local_addr()?)
            .map_err(io::Error::other)?;
        serve_one(&listener)
    })?;
    let addr = ready_rx.recv()?;
    println!(
        "{}",
        ask_from_inside(&ns, addr, "request 1, to a thread spawned inside")?
    );
    server.join().map_err(|_| "the server thread panicked")??;

    // 2. A listener made inside, served by the main thread, which never enters.
    let listener = ns.tcp_listen("127.0.0.1:0".parse()?)?;
    let addr = listener.local_addr()?;
    let reply = std::thread::scope(|scope| {
        let asker = scope.spawn(|| ask_from_inside(&ns, addr, "request 2, to the main thread"));
        serve_one(&listener)?;
        asker
            .join()
            .map_err(|_| io::Error::other("the asking thread panicked"))?
    })?;
    println!("{reply}");
    Ok(())
}
