//! A long-lived server inside a namespace: `NetNs::spawn` starts a thread that lives in the
//! namespace and serves TCP there, while the main thread stays home. A second listener is bound
//! inside with `#[in_netns]` and served from the main thread: a socket keeps its namespace
//! wherever it is used.
//!
//! Run it (as root or not): `cargo run --example serve_in_namespace`.

#[path = "support/mod.rs"]
mod support;

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;

use in_netns::{NetNs, in_netns};

/// Answers each line of one connection with the namespace the serving thread is in.
fn serve_one(listener: &TcpListener) -> io::Result<()> {
    let (stream, _) = listener.accept()?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let here = NetNs::current().map_err(io::Error::from)?.id();
    writeln!(&stream, "{} served by a thread in {here}", line.trim())
}

#[in_netns(ns)]
fn listen_inside(ns: &NetNs) -> io::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
}

/// Sends one line from inside `ns` and returns the reply.
#[in_netns(ns)]
fn ask_from_inside(ns: &NetNs, addr: SocketAddr, question: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    writeln!(stream, "{question}")?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    Ok(reply.trim().to_owned())
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let temp = support::TempNamespace::create("serve")?;
    let ns = &temp.ns;
    // `ip netns add` leaves lo down; `ip` is only used here to keep the example short.
    let up = std::process::Command::new("ip")
        .args(["-n", &temp.name, "link", "set", "lo", "up"])
        .status()?;
    if !up.success() {
        return Err("ip link set lo up failed".into());
    }

    // 1. A server thread that lives inside the namespace.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = ns.spawn(move || -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        ready_tx
            .send(listener.local_addr()?)
            .map_err(io::Error::other)?;
        serve_one(&listener)
    })?;
    let addr = ready_rx.recv()?;
    println!("{}", ask_from_inside(ns, addr, "request 1")?);
    server.join().map_err(|_| "server thread panicked")??;

    // 2. A listener made inside, served from the main thread, which never enters.
    let listener = listen_inside(ns)?;
    let addr = listener.local_addr()?;
    let asker = std::thread::scope(|scope| {
        let asker = scope.spawn(|| ask_from_inside(ns, addr, "request 2"));
        serve_one(&listener)?;
        asker
            .join()
            .map_err(|_| io::Error::other("asker panicked"))?
    })?;
    println!("{asker}");
    println!("main thread is in {}", NetNs::current()?.id());
    Ok(())
}

fn main() -> ExitCode {
    support::init("serve_in_namespace");
    support::finish("serve_in_namespace", run())
}
