//! Async netlink inside a namespace, from tokio: an `#[in_netns] async fn` opens an rtnetlink
//! connection inside the namespace, adds a link there and lists the links. The body runs as a
//! task on the namespace's own runtime, so the connection's task (`tokio::spawn`) runs there
//! too, inside; the caller's runtime only awaits the result, and none of its threads moves.
//!
//! Run it (as root or not): `cargo run --features tokio --example async_netlink`.

#[path = "support/mod.rs"]
mod support;

use std::process::ExitCode;

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
        if error.raw_code() == -nix::libc::EOPNOTSUPP {
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

async fn run() -> Result<(), BoxError> {
    let temp = support::TempNamespace::create("async-netlink")?;
    let inside = add_link_inside(temp.ns.try_clone()?).await?;
    println!("links inside {}: {inside:?}", temp.name);

    let (connection, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(connection);
    let on_host = link_names(&handle).await?;
    println!("links on the host: {on_host:?}");
    let inside_has = inside.iter().any(|n| n == "dummy0");
    let host_has = on_host.iter().any(|n| n == "dummy0");
    println!("dummy0 inside: {inside_has}, on the host: {host_has}");
    if !inside_has || host_has {
        return Err("dummy0 should exist inside the namespace only".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    support::init("async_netlink");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start tokio");
    let outcome = runtime
        .block_on(run())
        .map_err(|e| -> Box<dyn std::error::Error> { e });
    support::finish("async_netlink", outcome)
}
