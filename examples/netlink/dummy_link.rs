//! The example from the CNI `pkg/ns` README, in Rust: create a namespace, add a `dummy0` link
//! inside it over rtnetlink, list the links inside, and show that the host has no `dummy0`.
//!
//! Run it, as root or not: `cargo run -p in-netns-netlink-examples --example dummy_link`. It
//! needs `in-netns`, `netlink-sys`, `netlink-packet-core`, `netlink-packet-route` and `libc`.

use std::io;

use in_netns::{NetNs, in_netns};
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// A route-netlink connection; it talks to the namespace it was made in, for life.
struct Rtnl {
    socket: Socket,
    sequence: u32,
}

impl Rtnl {
    fn new() -> io::Result<Rtnl> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl {
            socket,
            sequence: 0,
        })
    }

    /// Sends `message` and returns every reply up to the ACK or the end of a dump.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.sequence += 1;
        let mut packet =
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(message));
        packet.header.flags = NLM_F_REQUEST | flags;
        packet.header.sequence_number = self.sequence;
        packet.finalize();
        let mut buffer = vec![0; packet.buffer_len()];
        packet.serialize(&mut buffer);
        self.socket.send(&buffer, 0)?;

        let mut replies = Vec::new();
        let mut receive = vec![0; 64 * 1024];
        loop {
            let size = self.socket.recv(&mut &mut receive[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let reply: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(&receive[offset..size])
                        .map_err(io::Error::other)?;
                let length = reply.header.length as usize;
                match reply.payload {
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(error) => {
                        return match error.code {
                            None => Ok(replies),
                            Some(_) => Err(error.to_io()),
                        };
                    }
                    NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                    _ => {}
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }

    fn add_link(&mut self, name: &str, kind: InfoKind) -> io::Result<()> {
        let mut link = LinkMessage::default();
        link.attributes.push(LinkAttribute::IfName(name.to_owned()));
        link.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(kind)]));
        self.request(
            RouteNetlinkMessage::NewLink(link),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    fn link_names(&mut self) -> io::Result<Vec<String>> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut names = Vec::new();
        for reply in replies {
            if let RouteNetlinkMessage::NewLink(link) = reply {
                for attribute in link.attributes {
                    if let LinkAttribute::IfName(name) = attribute {
                        names.push(name);
                    }
                }
            }
        }
        Ok(names)
    }
}

/// Adds `dummy0` inside `ns` and returns the links there.
///
/// Kernels built without the dummy driver (CONFIG_DUMMY) refuse the kind with EOPNOTSUPP; the
/// example then says so and adds a bridge named `dummy0`, which shows the same isolation.
#[in_netns(ns)]
fn add_dummy_and_list(ns: &NetNs) -> io::Result<Vec<String>> {
    let mut rtnl = Rtnl::new()?;
    match rtnl.add_link("dummy0", InfoKind::Dummy) {
        Err(err) if err.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            println!("this kernel has no dummy driver; adding dummy0 as a bridge link instead");
            rtnl.add_link("dummy0", InfoKind::Bridge)?;
        }
        result => result?,
    }
    rtnl.link_names()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // First thing, before any thread starts (as root it does nothing).
    if !in_netns::rootless::privileged() {
        in_netns::rootless::enter()?;
        println!("running without root: rootless::enter() gave this process a user namespace");
    }
    let ns = NetNs::new()?; // anonymous: it and its links go away with the last handle
    println!("opened a new namespace, {}", ns.id());
    let inside = add_dummy_and_list(&ns)?;
    println!("links inside: {inside:?}");
    let on_host = Rtnl::new()?.link_names()?;
    println!("links on the host: {on_host:?}");
    let inside_has = inside.iter().any(|n| n == "dummy0");
    let host_has = on_host.iter().any(|n| n == "dummy0");
    println!("dummy0 inside: {inside_has}; dummy0 on the host: {host_has}");
    if !inside_has || host_has {
        return Err("dummy0 should exist inside the namespace only".into());
    }
    Ok(())
}
