//! A server and its client on a tokio runtime that lives inside a namespace. Every thread of the
//! runtime is inside, with the namespace's own `/etc`: the listener, the client's name lookup
//! (answered by `/etc/netns/NAME/hosts`) and the connection all happen there, while the host's
//! loopback and `/etc/hosts` see none of it, and no thread of the program moves.
//!
//! Run it, as root or not: `cargo run --features tokio --example runtime_in_namespace`. It
//! needs `in-netns` with its `tokio` feature, and tokio (`rt-multi-thread`, `net`, `io-util`).
//! As root it writes `/etc/netns/NAME/hosts` and removes it (and the namespace's name) at the
//! end, also on an error.

use std::path::PathBuf;

use in_netns::{NetNs, Setup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The name only the namespace's hosts file knows.
const SERVICE: &str = "echo.pod.internal";

/// A named namespace with its own `/etc/netns/NAME/hosts`; both are removed on drop (and
/// `/etc/netns` when this made it).
struct NamedWithHosts {
    name: String,
    ns: NetNs,
    etc_dir: PathBuf,
    made_etc_netns: bool,
}

impl NamedWithHosts {
    fn create(name: String, hosts: &str) -> Result<NamedWithHosts, BoxError> {
        let etc_dir = PathBuf::from(in_netns::ETC_DIR).join(&name);
        let ns = NetNs::create(&name)?;
        let made_etc_netns = std::fs::create_dir(in_netns::ETC_DIR).is_ok();
        let named = NamedWithHosts {
            name,
            ns,
            etc_dir,
            made_etc_netns,
        };
        std::fs::create_dir(&named.etc_dir)?;
        std::fs::write(named.etc_dir.join("hosts"), hosts)?;
        Ok(named)
    }
}

impl Drop for NamedWithHosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.etc_dir);
        if self.made_etc_netns {
            let _ = std::fs::remove_dir(in_netns::ETC_DIR);
        }
        match NetNs::remove(&self.name) {
            Ok(()) => println!(
                "removed the namespace's name {} and its hosts file",
                self.name
            ),
            Err(err) => eprintln!("could not remove the name {}: {err}", self.name),
        }
    }
}

fn main() -> Result<(), BoxError> {
    // First thing, before any thread starts (as root it does nothing).
    if !in_netns::rootless::privileged() {
        in_netns::rootless::enter()?;
        println!(
            "running without root: rootless::enter() gave this process a user namespace, \
             with /run/netns and /etc/netns of its own"
        );
    }
    let name = format!("runtime-in-namespace-{}", std::process::id());
    let pod = NamedWithHosts::create(name, &format!("127.0.0.1 {SERVICE}\n"))?;
    pod.ns.set_loopback_up()?;
    println!(
        "created namespace {} with {SERVICE} in its own hosts file",
        pod.name
    );

    // Every thread of this runtime enters the namespace, with its /etc view, as it starts.
    let runtime = pod.ns.runtime_with(
        &Setup::default().etc(true),
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all(),
    )?;
    println!(
        "built a tokio runtime whose every thread is inside {}",
        pod.name
    );

    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))??;
    let port = listener.local_addr()?.port();
    let server = runtime.spawn(async move {
        let (mut stream, peer) = listener.accept().await?;
        stream.write_all(b"hello from inside").await?;
        Ok::<_, BoxError>(peer)
    });
    let reply = runtime.block_on(async move {
        // Resolved from /etc/netns/NAME/hosts by the runtime's blocking pool, inside.
        let mut stream = TcpStream::connect((SERVICE, port)).await?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await?;
        Ok::<_, BoxError>(reply)
    })??;
    let peer = runtime.block_on(server)???;
    println!("a client on the runtime resolved {SERVICE}:{port} and read {reply:?} (from {peer})");

    let host_knows = std::fs::read_to_string("/etc/hosts")?.contains(SERVICE);
    println!("the host's /etc/hosts names {SERVICE}: {host_knows}");
    match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Err(err) => println!("127.0.0.1:{port} tried from the host: {err}, as expected"),
        Ok(_) => {
            println!("127.0.0.1:{port} tried from the host: a listener of the host's answered")
        }
    }
    if reply != "hello from inside" || host_knows {
        return Err("the namespace runtime did not serve its own name and loopback".into());
    }
    Ok(())
}
