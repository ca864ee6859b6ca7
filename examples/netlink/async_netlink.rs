//! Async netlink inside a namespace, from tokio: an `#[in_netns] async fn` opens an rtnetlink
//! connection inside the namespace, adds a link there and lists the links. The body runs as a
//! task on the namespace's own runtime, so the connection's task (`tokio::spawn`) runs there
//! too, inside; the caller's runtime only awaits the result, and none of its threads moves.
//!
//! Run it, as root or not: `cargo run -p in-netns-netlink-examples --example async_netlink`. It
//! needs `in-netns` with its `tokio` feature, tokio, `rtnetlink`, `netlink-packet-route`,
//! `futures-util` and `libc`.

use futures_util::stream::TryStreamExt;
use in_netns::{NetNs, in_netns};
use netlink_packet_route::link::LinkAttribute;
use rtnetlink::{LinkBridge, LinkDummy};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The names of the links a netlink handle sees.
async fn link_names(handle: &rtnetlink::Handle) -> Result<Vec<String>, BoxError> {
    let mut names = Vec::new();
    let mut links = handle.link().get().execute();
    while let Some(link) = links.try_next().await? {
        for attribute in link.attributes {
            if let LinkAttribute::IfName(name) = attribute {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// Adds `dummy0` inside `ns` and returns the links there.
#[in_netns(ns)]
async fn add_link_inside(ns: NetNs) -> Result<Vec<String>, BoxError> {
    // The socket is made here, inside, and the task that drives it runs inside too.
    let (connection, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(connection);
    let added = handle
        .link()
        .add(LinkDummy::new("dummy0").build())
        .execute()
        .await;
    if let Err(rtnetlink::Error::NetlinkError(error)) = &added {
        if error.raw_code() == -libc::EOPNOTSUPP {
            // Kernels built without the dummy driver: a bridge shows the same isolation.
            println!("this kernel has no dummy driver; adding dummy0 as a bridge link instead");
            handle
                .link()
                .add(LinkBridge::new("dummy0").build())
                .execute()
                .await?;
            return link_names(&handle).await;
        }
    }
    added?;
    link_names(&handle).await
}

async fn run(ns: NetNs) -> Result<(), BoxError> {
    let inside = add_link_inside(ns).await?;
    println!("links inside, listed by the async body: {inside:?}");

    let (connection, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(connection);
    let on_host = link_names(&handle).await?;
    println!("links on the host: {on_host:?}");
    let inside_has = inside.iter().any(|n| n == "dummy0");
    let host_has = on_host.iter().any(|n| n == "dummy0");
    println!("dummy0 inside: {inside_has}; dummy0 on the host: {host_has}");
    if !inside_has || host_has {
        return Err("dummy0 should exist inside the namespace only".into());
    }
    Ok(())
}

fn main() -> Result<(), BoxError> {
    // First thing, before any thread starts (as root it does nothing): the runtime comes after.
    if !in_netns::rootless::privileged() {
        in_netns::rootless::enter()?;
        println!("running without root: rootless::enter() gave this process a user namespace");
    }
    let ns = NetNs::new()?; // anonymous: it and its links go away with the last handle
    println!("opened a new namespace, {}", ns.id());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(ns))
}
