//! The main job: open a network namespace, run code inside it (an `#[in_netns]` function and a
//! closure), and get sockets back that stay in the namespace wherever they are used, while the
//! calling thread never leaves its own namespace.
//!
//! Run it, as root or not: `cargo run --example quickstart`. It needs `in-netns` only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use in_netns::{NetNs, in_netns};

/// The interfaces of the calling thread's namespace, from `/proc/thread-self/net/dev` (the
/// thread's own view; `/proc/net` would show the main thread's).
fn interfaces() -> std::io::Result<Vec<String>> {
    let table = std::fs::read_to_string("/proc/thread-self/net/dev")?;
    Ok(table
        .lines()
        .skip(2) // two header lines
        .filter_map(|line| line.split(':').next())
        .map(|name| name.trim().to_owned())
        .collect())
}

/// A listener on 127.0.0.1 inside `ns`: the body runs on a thread inside, the caller's thread
/// stays where it is.
#[in_netns(ns)]
fn listen_inside(ns: &NetNs) -> std::io::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // First thing, before any thread starts: without root, a user namespace of the process's
    // own lets it create network namespaces. As root it does nothing.
    if in_netns::rootless::privileged() {
        println!("running with CAP_SYS_ADMIN (as root): no user namespace needed");
    } else {
        in_netns::rootless::enter()?;
        println!("running without root: rootless::enter() gave this process a user namespace");
    }
    let home = NetNs::current()?;

    // An anonymous namespace: it goes away with its last handle, so nothing is left behind.
    let ns = NetNs::new()?;
    println!("opened a new namespace, {}", ns.id());
    println!("interfaces on the host: {:?}", interfaces()?);
    println!(
        "interfaces inside, read by a closure run there: {:?}",
        ns.run(interfaces)??
    );

    ns.set_loopback_up()?; // a new namespace starts with lo down
    println!("brought lo up inside");

    let listener = listen_inside(&ns)?;
    let addr: SocketAddr = listener.local_addr()?;
    println!("an #[in_netns] function bound a listener inside, on {addr}");

    let mut client = ns.tcp_connect(addr)?; // a socket made inside, connected from here
    let (mut server, peer) = listener.accept()?;
    server.write_all(b"hello from inside")?;
    drop(server);
    let mut greeting = String::new();
    client.read_to_string(&mut greeting)?;
    println!("a client inside connected from {peer} and read {greeting:?}");

    match TcpStream::connect(addr) {
        Err(err) => {
            println!("{addr} tried from the host: {err}, as expected (the host has its own lo)")
        }
        Ok(_) => println!("{addr} tried from the host: a listener of the host's own answered"),
    }

    let stayed = NetNs::current()? == home;
    println!(
        "the calling thread stayed in its namespace, {}: {stayed}",
        home.id()
    );
    if !stayed {
        return Err("the calling thread changed namespace".into());
    }
    Ok(())
}
