//! Two namespaces joined by a veth pair: the pair is made over rtnetlink inside the first
//! namespace, one end is moved into the second by that namespace's fd, each end gets an address,
//! and a TCP client in the first talks to a listener in the second, a line each way. Each side's
//! links and addresses are printed as read over netlink from inside it (what `ip -n NAME addr`
//! shows). At the end, on an error and on Ctrl-C, drop guards delete the pair and remove both
//! namespaces: nothing is left on the host.
//!
//! Run it (as root or not): `cargo run --example veth_pair`. With `VETH_PAIR_PAUSE=SECONDS` it
//! waits that long (or until Ctrl-C) before cleaning up, to look around from outside, as root:
//! `ip -n veth-pair-a-PID addr`.

#[path = "support/mod.rs"]
mod support;

use std::future::Future;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::stream::TryStreamExt;
use in_netns::{NetNs, in_netns};
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo};
use rtnetlink::{LinkUnspec, LinkVeth};
use support::{TempNamespace, check_interrupt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The pair's ends: `END_A` stays in the first namespace, `END_B` moves to the second.
const END_A: &str = "veth-a";
const END_B: &str = "veth-b";
const ADDRESS_A: Ipv4Addr = Ipv4Addr::new(10, 47, 0, 1);
const ADDRESS_B: Ipv4Addr = Ipv4Addr::new(10, 47, 0, 2);
const PREFIX: u8 = 24;
const PORT: u16 = 4747;
/// How long any step of the exchange may take before the example gives up.
const PATIENCE: Duration = Duration::from_secs(5);

/// Runs `job` with an rtnetlink handle whose socket is made here, on the calling thread: called
/// from an `#[in_netns]` body, it talks to that namespace. The body's thread drives the
/// connection on a runtime of its own, so no feature of this crate is needed.
fn with_netlink<T, F, Fut>(job: F) -> Result<T, BoxError>
where
    F: FnOnce(rtnetlink::Handle) -> Fut,
    Fut: Future<Output = Result<T, BoxError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        job(handle).await
    })
}

/// The index of the link named `name` in the handle's namespace.
async fn link_index(handle: &rtnetlink::Handle, name: &str) -> Result<u32, BoxError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await? {
        Some(link) => Ok(link.header.index),
        None => Err(format!("no link named {name}").into()),
    }
}

/// Creates the veth pair `end` <-> `peer` inside `ns` (both ends start there).
#[in_netns(ns)]
fn add_veth(ns: &NetNs, end: &str, peer: &str) -> Result<(), BoxError> {
    with_netlink(|handle| async move {
        handle
            .link()
            .add(LinkVeth::new(end, peer).build())
            .execute()
            .await?;
        Ok(())
    })
}

/// Moves the link `name` from `ns` into `to`, naming the target by its namespace fd
/// (`IFLA_NET_NS_FD`): no process has to live in it.
#[in_netns(ns)]
fn move_link(ns: &NetNs, name: &str, to: &NetNs) -> Result<(), BoxError> {
    with_netlink(|handle| async move {
        let message = LinkUnspec::new_with_name(name)
            .setns_by_fd(to.as_raw_fd())
            .build();
        handle.link().set(message).execute().await?;
        Ok(())
    })
}

/// Brings `lo` and `link` up inside `ns` and puts `address/PREFIX` on `link`.
#[in_netns(ns)]
fn configure(ns: &NetNs, link: &str, address: Ipv4Addr) -> Result<(), BoxError> {
    with_netlink(|handle| async move {
        for name in ["lo", link] {
            let up = LinkUnspec::new_with_name(name).up().build();
            handle.link().set(up).execute().await?;
        }
        let index = link_index(&handle, link).await?;
        handle
            .address()
            .add(index, IpAddr::V4(address), PREFIX)
            .execute()
            .await?;
        Ok(())
    })
}

/// Deletes the link `name` inside `ns` (for a veth, its peer goes too, wherever it is).
#[in_netns(ns)]
fn delete_link(ns: &NetNs, name: &str) -> Result<(), BoxError> {
    with_netlink(|handle| async move {
        let index = link_index(&handle, name).await?;
        handle.link().del(index).execute().await?;
        Ok(())
    })
}

/// The links and addresses inside `ns`, one line each, in the manner of `ip addr`.
#[in_netns(ns)]
fn describe(ns: &NetNs) -> Result<Vec<String>, BoxError> {
    with_netlink(|handle| async move {
        let mut addresses = Vec::new();
        let mut dump = handle.address().get().execute();
        while let Some(message) = dump.try_next().await? {
            for attribute in &message.attributes {
                if let AddressAttribute::Address(address) = attribute {
                    let family = if address.is_ipv4() { "inet" } else { "inet6" };
                    let line = format!("{family} {address}/{}", message.header.prefix_len);
                    addresses.push((message.header.index, line));
                }
            }
        }
        let mut lines = Vec::new();
        let mut links = handle.link().get().execute();
        while let Some(link) = links.try_next().await? {
            let (mut name, mut peer, mut kind, mut state) = (String::new(), None, None, None);
            for attribute in &link.attributes {
                match attribute {
                    LinkAttribute::IfName(n) => name.clone_from(n),
                    LinkAttribute::Link(index) => peer = Some(*index),
                    LinkAttribute::OperState(s) => state = Some(format!("{s:?}").to_uppercase()),
                    LinkAttribute::LinkInfo(info) => {
                        for item in info {
                            if let LinkInfo::Kind(k) = item {
                                kind = Some(k.to_string());
                            }
                        }
                    }
                    _ => {}
                }
            }
            let flags = [
                (LinkFlags::Loopback, "LOOPBACK"),
                (LinkFlags::Broadcast, "BROADCAST"),
                (LinkFlags::Multicast, "MULTICAST"),
                (LinkFlags::Up, "UP"),
                (LinkFlags::LowerUp, "LOWER_UP"),
            ]
            .iter()
            .filter(|(flag, _)| link.header.flags.contains(*flag))
            .map(|(_, text)| *text)
            .collect::<Vec<_>>()
            .join(",");
            let mut line = format!("{}: {name}", link.header.index);
            if let Some(peer) = peer {
                line += &format!("@if{peer}");
            }
            line += &format!(" <{flags}>");
            if let Some(kind) = kind {
                line += &format!(" {kind}");
            }
            if let Some(state) = state {
                line += &format!(" state {state}");
            }
            lines.push(line);
            for (_, address) in addresses.iter().filter(|(i, _)| *i == link.header.index) {
                lines.push(format!("    {address}"));
            }
        }
        Ok(lines)
    })
}

/// A listener bound inside `ns`: its socket belongs there for life, whichever thread accepts.
#[in_netns(ns)]
fn listen(ns: &NetNs, at: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(at)
}

/// A connection made from inside `ns`.
#[in_netns(ns)]
fn connect(ns: &NetNs, to: SocketAddr) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(&to, PATIENCE)
}

/// The next connection on `listener`, or an error after `PATIENCE`.
fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + PATIENCE;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(err) => return Err(err),
        }
    }
}

/// Sends `line` on `stream`, newline-terminated.
fn say(stream: &mut TcpStream, line: &str) -> io::Result<()> {
    stream.write_all(format!("{line}\n").as_bytes())
}

/// The next line from `reader`, without its newline.
fn hear(reader: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

/// A listener in `b` on `ADDRESS_B`, a client in `a`: a line each way across the pair.
fn exchange(a: &TempNamespace, b: &TempNamespace) -> Result<(), BoxError> {
    let at = SocketAddr::from((ADDRESS_B, PORT));
    let listener = listen(&b.ns, at)?;
    println!("[{}] listening on {at}", b.name);
    let mut client = connect(&a.ns, at)?;
    let mut server = accept(&listener)?;
    for stream in [&client, &server] {
        stream.set_read_timeout(Some(PATIENCE))?;
    }
    println!(
        "[{}] connected from {} to {at}",
        a.name,
        client.local_addr()?
    );
    let mut client_reader = BufReader::new(client.try_clone()?);
    let mut server_reader = BufReader::new(server.try_clone()?);

    let hello = format!("hello from {}", a.name);
    say(&mut client, &hello)?;
    println!("[{}] client sent:     {hello:?}", a.name);
    let heard = hear(&mut server_reader)?;
    println!("[{}] server received: {heard:?}", b.name);
    let reply = format!("hello back from {}", b.name);
    say(&mut server, &reply)?;
    println!("[{}] server sent:     {reply:?}", b.name);
    let answer = hear(&mut client_reader)?;
    println!("[{}] client received: {answer:?}", a.name);
    if heard != hello || answer != reply {
        return Err("the lines did not arrive as sent".into());
    }
    Ok(())
}

/// Deletes the veth pair on drop (both ends: deleting one deletes its peer).
struct VethPair<'a> {
    ns: &'a TempNamespace,
    end: &'static str,
    peer: &'static str,
}

impl Drop for VethPair<'_> {
    fn drop(&mut self) {
        match delete_link(&self.ns.ns, self.end) {
            Ok(()) => println!("deleted veth pair {}/{}", self.end, self.peer),
            Err(err) => eprintln!("could not delete veth pair {}: {err}", self.end),
        }
    }
}

/// With `VETH_PAIR_PAUSE=SECONDS`, waits that long or until Ctrl-C.
fn pause(a: &TempNamespace, b: &TempNamespace) -> Result<(), BoxError> {
    let Ok(value) = std::env::var("VETH_PAIR_PAUSE") else {
        return Ok(());
    };
    let seconds: u64 = value
        .parse()
        .map_err(|_| format!("VETH_PAIR_PAUSE={value}: expected a number of seconds"))?;
    println!(
        "pausing {seconds} s (Ctrl-C to clean up now); as root, look with `ip -n {} addr`, `ip -n {} addr`",
        a.name, b.name
    );
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        check_interrupt()?;
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn run() -> Result<(), BoxError> {
    // Dropped in reverse: the pair first, then `b`, then `a`; on an error or Ctrl-C as well.
    let a = TempNamespace::create("veth-pair-a")?;
    let b = TempNamespace::create("veth-pair-b")?;
    check_interrupt()?;

    add_veth(&a.ns, END_A, END_B)?;
    let _pair = VethPair {
        ns: &a,
        end: END_A,
        peer: END_B,
    };
    println!("[{}] created veth pair {END_A} <-> {END_B}", a.name);
    move_link(&a.ns, END_B, &b.ns)?;
    println!("[{}] moved {END_B} into {} by its fd", a.name, b.name);
    configure(&a.ns, END_A, ADDRESS_A)?;
    configure(&b.ns, END_B, ADDRESS_B)?;
    println!(
        "{END_A} {ADDRESS_A}/{PREFIX} in {}, {END_B} {ADDRESS_B}/{PREFIX} in {}, both and lo up",
        a.name, b.name
    );
    check_interrupt()?;

    for side in [&a, &b] {
        println!("[{}] links and addresses:", side.name);
        for line in describe(&side.ns)? {
            println!("  {line}");
        }
    }
    check_interrupt()?;

    exchange(&a, &b)?;
    check_interrupt()?;
    pause(&a, &b)
}

fn main() -> ExitCode {
    support::init("veth_pair");
    support::catch_interrupt();
    support::finish(
        "veth_pair",
        run().map_err(|e| -> Box<dyn std::error::Error> { e }),
    )
}
