//! A server and its client on a tokio runtime that lives inside a namespace. Every thread of
//! the runtime is inside, with the namespace's own `/etc`: the listener, the client's name
//! lookup (answered by `/etc/netns/NAME/hosts`) and the connection all happen there, while the
//! host's loopback and `/etc/hosts` see none of it, and no thread of the program moves.
//!
//! Run it (as root or not): `cargo run --features tokio --example runtime_in_namespace`.

#[path = "support/mod.rs"]
mod support;

use std::process::{Command, ExitCode};

use in_netns::{NetnsCommandExt, Setup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The name only the namespace's hosts file knows.
const SERVICE: &str = "echo.pod.internal";

fn run() -> Result<(), BoxError> {
    let temp = support::TempNamespace::create("runtime-in-namespace")?;
    let _hosts =
        support::EtcFiles::create(&temp.name, &[("hosts", "127.0.0.1 echo.pod.internal\n")])?;
    // `lo` starts down in a new namespace: `ip`, started inside, brings it up.
    let status = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .netns(&temp.ns)
        .status()?;
    if !status.success() {
        return Err("ip link set lo up failed inside the namespace".into());
    }

    let runtime = temp.ns.runtime_with(
        &Setup::default().etc(true),
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all(),
    )?;
    println!("a tokio runtime inside {} ({})", temp.name, runtime.id());

    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))??;
    let port = listener.local_addr()?.port();
    // The server runs as a task of the namespace runtime, on its threads inside.
    let server = runtime.spawn(async move {
        let (mut stream, peer) = listener.accept().await?;
        stream.write_all(b"hello from inside").await?;
        Ok::<_, BoxError>(peer)
    });

    let reply = runtime.block_on(async move {
        // Resolved from /etc/netns/NAME/hosts, by the runtime's blocking pool, inside.
        let mut stream = TcpStream::connect((SERVICE, port)).await?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await?;
        Ok::<_, BoxError>(reply)
    })??;
    let peer = runtime.block_on(server)???;
    println!("client resolved {SERVICE} and got {reply:?} (server saw {peer})");

    let host_hosts = std::fs::read_to_string("/etc/hosts")?;
    println!(
        "the host's /etc/hosts names {SERVICE}: {}",
        host_hosts.contains(SERVICE)
    );
    match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(_) => println!("host 127.0.0.1:{port}: something else listens there on the host"),
        Err(err) => {
            println!("host 127.0.0.1:{port}: {err} (the server is not on the host's loopback)")
        }
    }
    if reply != "hello from inside" || host_hosts.contains(SERVICE) {
        return Err("the namespace runtime did not serve its own name and loopback".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    support::init("runtime_in_namespace");
    let outcome = run().map_err(|e| -> Box<dyn std::error::Error> { e });
    support::finish("runtime_in_namespace", outcome)
}
