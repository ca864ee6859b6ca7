//! Two namespaces joined by a veth pair: the pair is made over rtnetlink inside the first
//! namespace, one end is moved into the second by that namespace's fd, each end gets an address,
//! and a TCP client in the first talks to a listener in the second, a line each way. Each side's
//! links and addresses are printed as read over netlink from inside it (what `ip -n NAME addr`
//! shows). Both namespaces are anonymous: when the program ends, however it ends, the kernel
//! removes them and the pair with them, so nothing is left on the host.
//!
//! Run it, as root or not: `cargo run -p in-netns-netlink-examples --example veth_pair`. It
//! needs `in-netns`, tokio, `rtnetlink`, `netlink-packet-route` and `futures-util`.

use std::future::Future;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use futures_util::stream::TryStreamExt;
use in_netns::{NetNs, in_netns};
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo};
use rtnetlink::{LinkUnspec, LinkVeth};

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

/// One of the two namespaces, with the label the output gives it.
struct Side {
    label: &'static str,
    ns: NetNs,
}

impl Side {
    fn new(label: &'static str) -> Result<Side, BoxError> {
        let ns = NetNs::new()?; // anonymous: gone, with its links, with the last handle
        println!("[{label}] opened a new namespace, {}", ns.id());
        Ok(Side { label, ns })
    }
}

/// A listener in `b` on `ADDRESS_B`, a client in `a`: a line each way across the pair.
fn exchange(a: &Side, b: &Side) -> Result<(), BoxError> {
    let at = SocketAddr::from((ADDRESS_B, PORT));
    let listener = b.ns.tcp_listen(at)?; // a socket made inside b, bound there
    println!("[{}] listening on {at}", b.label);
    let mut client = connect(&a.ns, at)?;
    let mut server = accept(&listener)?;
    for stream in [&client, &server] {
        stream.set_read_timeout(Some(PATIENCE))?;
    }
    println!(
        "[{}] connected from {} to {at}",
        a.label,
        client.local_addr()?
    );
    let mut client_reader = BufReader::new(client.try_clone()?);
    let mut server_reader = BufReader::new(server.try_clone()?);

    let hello = format!("hello from {}", a.label);
    say(&mut client, &hello)?;
    println!("[{}] client sent:     {hello:?}", a.label);
    let heard = hear(&mut server_reader)?;
    println!("[{}] server received: {heard:?}", b.label);
    let reply = format!("hello back from {}", b.label);
    say(&mut server, &reply)?;
    println!("[{}] server sent:     {reply:?}", b.label);
    let answer = hear(&mut client_reader)?;
    println!("[{}] client received: {answer:?}", a.label);
    if heard != hello || answer != reply {
        return Err("the lines did not arrive as sent".into());
    }
    Ok(())
}

fn main() -> Result<(), BoxError> {
    // First thing, before any thread starts (as root it does nothing).
    if !in_netns::rootless::privileged() {
        in_netns::rootless::enter()?;
        println!("running without root: rootless::enter() gave this process a user namespace");
    }
    let a = Side::new("a")?;
    let b = Side::new("b")?;

    add_veth(&a.ns, END_A, END_B)?;
    println!("[{}] created veth pair {END_A} <-> {END_B}", a.label);
    move_link(&a.ns, END_B, &b.ns)?;
    println!("[{}] moved {END_B} into {} by its fd", a.label, b.label);
    configure(&a.ns, END_A, ADDRESS_A)?;
    configure(&b.ns, END_B, ADDRESS_B)?;
    println!(
        "{END_A} {ADDRESS_A}/{PREFIX} in {}, {END_B} {ADDRESS_B}/{PREFIX} in {}, both and lo up",
        a.label, b.label
    );

    for side in [&a, &b] {
        println!("[{}] links and addresses:", side.label);
        for line in describe(&side.ns)? {
            println!("  {line}");
        }
    }
    exchange(&a, &b)
}
