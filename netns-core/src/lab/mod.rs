//! Networks of namespaces for tests (feature `lab`): hosts, routers and switches joined by
//! links, with addresses and routes set by the lab, links that go down and up, and rate, loss
//! and delay per link and direction.
//!
//! ```no_run
//! # use netns_core as in_netns;
//! use in_netns::lab::{Conditions, Lab};
//!
//! // As root, or in a test under `#[in_netns::test]`, or after `in_netns::rootless::enter()`.
//! let lab = Lab::new();
//! let client = lab.host("client")?;
//! let router = lab.router("router")?;
//! let server = lab.host("server")?;
//! lab.link(&client, &router)?;
//! let uplink = lab.link(&router, &server)?;
//! uplink.set_conditions(&router, Conditions::new().rate(10_000_000).loss(0.01))?;
//!
//! let at = std::net::SocketAddr::from((server.ipv4().unwrap(), 8080));
//! let listener = server.ns().tcp_listen(at)?;
//! let stream = client.ns().tcp_connect(at)?; // across the router: the lab set the routes
//! uplink.down()?;                            // as if the cable were pulled
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - **Nodes** ([`Node`]) are anonymous namespaces ([`NetNs::new`]) with `lo` up: nothing is
//!   named on the host, and everything goes with the last handle, however the process ends.
//!   [`Node::ns`] gives the namespace, to use with the crate's own API (`run`, `spawn`,
//!   `worker`, `socket`, runtimes, commands).
//! - **Links** ([`Lab::link`]) are veth pairs, made in one node and moved to the other by its
//!   descriptor, each end named `ethN` in its node, with an IPv4 address (`10.X.Y.N/24`) and an
//!   IPv6 address (`fd00:0:0:K::N/64`, without duplicate address detection) unique in the lab.
//!   A link to a **switch** ([`Lab::switch`], a bridge in a namespace of its own) puts the node
//!   on the switch's subnet.
//! - **Routes** are shortest paths over the topology, computed by the lab as it grows; packets
//!   cross **routers** ([`Lab::router`], forwarding on), never hosts. They are static: a link
//!   that goes down is not routed around.
//! - **Link state** ([`Link::down`], [`Link::up`], [`Lab::partition`]): down is both ends
//!   administratively down, as a pulled cable, so a sender's next hop has no route and
//!   connections fail with "network unreachable" or "no route to host"; up puts the addresses
//!   and routes back.
//! - **Conditions** ([`Link::set_conditions`], per direction, changed at any time): a rate is a
//!   `tbf` qdisc on the sender's end; loss drops frames on the receiver's ingress (an nftables
//!   netdev chain, `meta random`), so the sender cannot tell it from loss on the wire; delay and
//!   jitter are a `netem` qdisc on the sender's end, and a kernel without it gives
//!   [`Error::KernelLacks`] naming `CONFIG_NET_SCH_NETEM`.
//!
//! The lab talks to each node over a netlink socket made inside it ([`NetNs::socket`]),
//! request and acknowledgement from the calling thread: no runtime, no `ip` or `tc`. Two labs
//! never clash, even with the same addresses: each node is a namespace of its own.

mod netlink;
mod raw;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::errno::Errno;
use nix::libc;

use crate::error::{Error, Result};
use crate::namespace::NetNs;
use crate::sync::lock;
use netlink::{Batch, Netlink, Refused};

/// The first interface index the lab gives in a namespace (below it: `lo` and the fallback
/// tunnels the kernel may make in each namespace).
const FIRST_IFINDEX: u32 = 100;
/// The prefix lengths of a subnet.
const PREFIX_V4: u8 = 24;
const PREFIX_V6: u8 = 64;

const NETEM: &str = "RTM_NEWQDISC (netem: delay and jitter)";
const TBF: &str = "RTM_NEWQDISC (tbf: rate)";

/// What a node does with packets that are not its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Keeps its packets: routes never cross it.
    Host,
    /// Forwards IPv4 and IPv6 (`/proc/sys/net/ipv{4,6}/conf/all/forwarding`): routes cross it.
    Router,
    /// A bridge (`br0`) joining the nodes linked to it into one subnet; it has no address.
    Switch,
}

/// The conditions of one direction of a link: what the sender's packets meet on the way.
///
/// Built with its methods (`Conditions::new().rate(1_000_000).loss(0.05)`) or as a struct
/// (`Conditions { rate: Some(1_000_000), ..Default::default() }`); the default is a perfect
/// link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Conditions {
    /// The most the link carries, in bits per second (a `tbf` qdisc on the sender's end: a
    /// bucket of 4 ms and a queue of 100 ms at that rate, but at least two full frames and four
    /// buckets, so at low rates the queue holds longer; what overflows is dropped, as on a real
    /// bottleneck). `Some(0)` is taken as no limit, as `None`.
    pub rate: Option<u64>,
    /// The share of frames lost, from 0 to 1: dropped at random on the receiver's ingress
    /// (ARP and ICMPv6 excepted, so neighbours still resolve), where the sender cannot see it.
    pub loss: f64,
    /// How long each packet is held back (a `netem` qdisc on the sender's end).
    pub delay: Duration,
    /// How much the delay varies, up or down, from packet to packet (with `netem`).
    pub jitter: Duration,
}

impl Conditions {
    /// A perfect link: no rate limit, no loss, no delay.
    pub const fn new() -> Conditions {
        Conditions {
            rate: None,
            loss: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
        }
    }

    /// Limits the rate to `bits_per_second`.
    pub const fn rate(mut self, bits_per_second: u64) -> Conditions {
        self.rate = Some(bits_per_second);
        self
    }

    /// Loses a `share` of the frames (from 0 to 1).
    ///
    /// # Panics
    ///
    /// If `share` is not within 0..=1.
    pub fn loss(mut self, share: f64) -> Conditions {
        assert!(
            (0.0..=1.0).contains(&share),
            "a loss share is within 0..=1, got {share}"
        );
        self.loss = share;
        self
    }

    /// Holds each packet back by `delay`.
    pub const fn delay(mut self, delay: Duration) -> Conditions {
        self.delay = delay;
        self
    }

    /// Varies the delay by up to `jitter` either way.
    pub const fn jitter(mut self, jitter: Duration) -> Conditions {
        self.jitter = jitter;
        self
    }

    /// Whether the sender's end needs a qdisc (a rate, a delay or jitter).
    fn shapes(&self) -> bool {
        self.limit().is_some() || !self.delay.is_zero() || !self.jitter.is_zero()
    }

    /// The rate limit, if any (`Some(0)` is none).
    fn limit(&self) -> Option<u64> {
        self.rate.filter(|&rate| rate > 0)
    }
}

/// A network of namespaces: nodes ([`Lab::host`], [`Lab::router`], [`Lab::switch`]) joined by
/// links ([`Lab::link`]), with addresses and routes set by the lab. See the
/// [module docs](self).
///
/// Handles to its nodes and links keep the lab alive; when the lab and every handle are
/// dropped, its namespaces, links, sockets and threads go (the kernel removes the namespaces
/// and their links once no descriptor holds them).
pub struct Lab {
    shared: Arc<Shared>,
}

/// One node of a lab: a namespace, its role, its addresses.
///
/// Cloning gives another handle to the same node.
#[derive(Clone)]
pub struct Node {
    lab: Arc<Shared>,
    inner: Arc<NodeInner>,
}

/// A link between two nodes (a veth pair), or between a node and a switch.
///
/// Cloning gives another handle to the same link.
#[derive(Clone)]
pub struct Link {
    lab: Arc<Shared>,
    index: usize,
    ends: Arc<[Endpoint; 2]>,
}

/// One end of a link: its node, interface and addresses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    node: String,
    ifname: String,
    ifindex: u32,
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
}

/// Links taken down together ([`Lab::partition`]); [`Partition::heal`] brings them up, and so
/// does dropping it.
#[must_use = "a partition heals when dropped: keep it for as long as the links stay down"]
pub struct Partition {
    lab: Arc<Shared>,
    links: Vec<usize>,
    healed: bool,
}

struct Shared {
    state: Mutex<State>,
}

struct NodeInner {
    name: String,
    role: Role,
    /// The node's index in the lab's state.
    index: usize,
    ns: NetNs,
}

#[derive(Default)]
struct State {
    nodes: Vec<NodeState>,
    subnets: Vec<Subnet>,
    links: Vec<LinkState>,
}

struct NodeState {
    inner: Arc<NodeInner>,
    route: Netlink,
    /// The `NETLINK_NETFILTER` socket, made when a loss is first set on one of its interfaces.
    netfilter: Option<Netlink>,
    next_ifindex: u32,
    interfaces: u32,
    /// A switch's bridge and subnet.
    bridge: Option<(u32, usize)>,
    /// The routes the lab installed: (IPv6?, subnet) -> hop.
    routes: BTreeMap<(bool, usize), Hop>,
    loss_table: bool,
    loss_chains: BTreeSet<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hop {
    gateway: IpAddr,
    oif: u32,
}

struct Subnet {
    v4: Ipv4Addr,
    v6: Ipv6Addr,
    members: Vec<Member>,
    hosts: u32,
}

#[derive(Clone, Copy)]
struct Member {
    node: usize,
    link: usize,
    ifindex: u32,
    v4: Ipv4Addr,
    v6: Ipv6Addr,
}

struct LinkState {
    ends: [End; 2],
    up: bool,
    /// The conditions from each end toward the other.
    conditions: [Conditions; 2],
}

#[derive(Clone)]
struct End {
    node: usize,
    ifindex: u32,
    ifname: String,
    address: Option<(Ipv4Addr, Ipv6Addr)>,
}

impl Default for Lab {
    fn default() -> Lab {
        Lab::new()
    }
}

impl Lab {
    /// An empty lab. Nodes are made in it by [`Lab::host`], [`Lab::router`] and
    /// [`Lab::switch`], which need the right to make namespaces (root, `CAP_SYS_ADMIN`, a test
    /// under `#[in_netns::test]`, or a process after [`rootless::enter`](crate::rootless::enter)).
    pub fn new() -> Lab {
        Lab {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// A host: a namespace with `lo` up that keeps its packets (routes never cross it).
    pub fn host(&self, name: &str) -> Result<Node> {
        self.add_node(name, Role::Host)
    }

    /// A router: a host that forwards IPv4 and IPv6, so the lab's routes cross it.
    pub fn router(&self, name: &str) -> Result<Node> {
        self.add_node(name, Role::Router)
    }

    /// A switch: a bridge in a namespace of its own; the nodes linked to it share one subnet.
    pub fn switch(&self, name: &str) -> Result<Node> {
        self.add_node(name, Role::Switch)
    }

    /// Joins `a` and `b` with a veth pair, gives both ends addresses (or, when one is a switch,
    /// the other an address on the switch's subnet), and sets the routes every node needs to
    /// reach the new subnet.
    ///
    /// # Panics
    ///
    /// If a node is of another lab, if `a` and `b` are the same node, or if both are switches
    /// (join switches through a router).
    pub fn link(&self, a: &Node, b: &Node) -> Result<Link> {
        self.check(a);
        self.check(b);
        assert!(
            a.inner.index != b.inner.index,
            "a link joins two different nodes, got {} twice",
            a.inner.name
        );
        assert!(
            a.inner.role != Role::Switch || b.inner.role != Role::Switch,
            "a link cannot join two switches ({} and {}): join them through a router",
            a.inner.name,
            b.inner.name
        );
        let mut state = lock(&self.shared.state);
        let state = &mut *state;
        let link = state.links.len();
        // The switch's side, if any, is where the pair is made (its end joins the bridge).
        let (maker, other) = if b.inner.role == Role::Switch {
            (1, 0)
        } else {
            (0, 1)
        };
        let nodes = [a.inner.index, b.inner.index];
        let subnet = match state.nodes[nodes[maker]].bridge {
            Some((_, subnet)) => subnet,
            None => state.new_subnet(),
        };
        let mut ends = nodes.map(|node| {
            let node_state = &mut state.nodes[node];
            let ifindex = node_state.next_ifindex;
            node_state.next_ifindex += 1;
            let prefix = if node_state.bridge.is_some() {
                "port"
            } else {
                "eth"
            };
            let ifname = format!("{prefix}{}", node_state.interfaces);
            node_state.interfaces += 1;
            End {
                node,
                ifindex,
                ifname,
                address: None,
            }
        });
        for end in &mut ends {
            if state.nodes[end.node].bridge.is_none() {
                end.address = Some(state.subnets[subnet].next_address());
            }
        }

        // The pair, made in the maker's namespace with the peer in the other's; the maker's end
        // comes up at once, the peer's with its addresses (a veth cannot come up before its
        // peer is joined to it: ENOTCONN).
        let (made, peer) = (&ends[maker], &ends[other]);
        let peer_ns = &state.nodes[peer.node].inner.ns;
        let mut peer_message = LinkMessage::default();
        peer_message.header.index = peer.ifindex;
        peer_message.attributes = vec![
            LinkAttribute::IfName(peer.ifname.clone()),
            LinkAttribute::NetNsFd(peer_ns.as_raw_fd()),
        ];
        let mut message = LinkMessage::default();
        message.header.index = made.ifindex;
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        message.attributes = vec![
            LinkAttribute::IfName(made.ifname.clone()),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_message))),
            ]),
        ];
        if let Some((bridge, _)) = state.nodes[made.node].bridge {
            message.attributes.push(LinkAttribute::Controller(bridge));
        }
        let mut batch = Batch::new();
        batch.route(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_CREATE | NLM_F_EXCL,
            "RTM_NEWLINK (a veth pair, one end moved by its namespace's fd)",
        );
        state.nodes[made.node].route.send(batch)?;
        let configured = state
            .add_addresses(&ends[maker], false)
            .and_then(|()| state.add_addresses(&ends[other], true));
        if let Err(err) = configured {
            // Deleting one end deletes the pair: no half-made link stays behind.
            let mut batch = Batch::new();
            let mut message = LinkMessage::default();
            message.header.index = ends[maker].ifindex;
            batch.route(RouteNetlinkMessage::DelLink(message), 0, "RTM_DELLINK");
            let _ = state.nodes[ends[maker].node].route.send(batch);
            return Err(err);
        }
        for end in &ends {
            if let Some((v4, v6)) = end.address {
                state.subnets[subnet].members.push(Member {
                    node: end.node,
                    link,
                    ifindex: end.ifindex,
                    v4,
                    v6,
                });
            }
        }
        let endpoints = ends.clone().map(|end| Endpoint {
            node: state.nodes[end.node].inner.name.clone(),
            ifname: end.ifname,
            ifindex: end.ifindex,
            ipv4: end.address.map(|(v4, _)| v4),
            ipv6: end.address.map(|(_, v6)| v6),
        });
        state.links.push(LinkState {
            ends,
            up: true,
            conditions: [Conditions::new(); 2],
        });
        state.sync_routes()?;
        Ok(Link {
            lab: self.shared.clone(),
            index: link,
            ends: Arc::new(endpoints),
        })
    }

    /// Takes `links` down together (as [`Link::down`]) until [`Partition::heal`] or the
    /// partition's drop brings them up.
    ///
    /// # Panics
    ///
    /// If a link is of another lab.
    pub fn partition(&self, links: &[&Link]) -> Result<Partition> {
        for link in links {
            assert!(
                Arc::ptr_eq(&link.lab, &self.shared),
                "the link is of another lab"
            );
        }
        let links: Vec<usize> = links.iter().map(|link| link.index).collect();
        set_links(&self.shared, &links, false)?;
        Ok(Partition {
            lab: self.shared.clone(),
            links,
            healed: false,
        })
    }

    /// Every node of the lab, in the order they were made.
    pub fn nodes(&self) -> Vec<Node> {
        let state = lock(&self.shared.state);
        state
            .nodes
            .iter()
            .map(|node| Node {
                lab: self.shared.clone(),
                inner: node.inner.clone(),
            })
            .collect()
    }

    fn check(&self, node: &Node) {
        assert!(
            Arc::ptr_eq(&node.lab, &self.shared),
            "node {} is of another lab",
            node.inner.name
        );
    }

    fn add_node(&self, name: &str, role: Role) -> Result<Node> {
        // The namespace and its socket are made without the lab's lock: labs and nodes may be
        // built from many threads at once.
        let ns = NetNs::new()?;
        let mut route = Netlink::open(&ns, libc::NETLINK_ROUTE)?;
        let mut batch = Batch::new();
        batch.route(
            RouteNetlinkMessage::SetLink(set_up(1, true)),
            0,
            "RTM_SETLINK (lo up)",
        );
        let mut bridge = None;
        if role == Role::Switch {
            let mut message = set_up(FIRST_IFINDEX, true);
            message.attributes = vec![
                LinkAttribute::IfName("br0".into()),
                LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
            ];
            batch.route(
                RouteNetlinkMessage::NewLink(message),
                NLM_F_CREATE | NLM_F_EXCL,
                "RTM_NEWLINK (a bridge)",
            );
            bridge = Some(FIRST_IFINDEX);
        }
        route.send(batch)?;
        if role == Role::Router {
            ns.run(enable_forwarding)??;
        }
        let mut state = lock(&self.shared.state);
        let index = state.nodes.len();
        let bridge = bridge.map(|ifindex| (ifindex, state.new_subnet()));
        let inner = Arc::new(NodeInner {
            name: name.to_owned(),
            role,
            index,
            ns,
        });
        state.nodes.push(NodeState {
            inner: inner.clone(),
            route,
            netfilter: None,
            next_ifindex: FIRST_IFINDEX + u32::from(bridge.is_some()),
            interfaces: 0,
            bridge,
            routes: BTreeMap::new(),
            loss_table: false,
            loss_chains: BTreeSet::new(),
        });
        Ok(Node {
            lab: self.shared.clone(),
            inner,
        })
    }
}

impl fmt::Debug for Lab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.state);
        let names: Vec<&str> = state.nodes.iter().map(|n| n.inner.name.as_str()).collect();
        f.debug_struct("Lab")
            .field("nodes", &names)
            .field("links", &state.links.len())
            .finish()
    }
}

/// Writes 1 to the IPv4 and IPv6 `all/forwarding` settings of the calling thread's namespace.
fn enable_forwarding() -> Result<()> {
    for path in [
        "/proc/sys/net/ipv4/conf/all/forwarding",
        "/proc/sys/net/ipv6/conf/all/forwarding",
    ] {
        std::fs::write(path, "1")
            .map_err(|err| Error::from_io("write 1 to", Some(Path::new(path)), err))?;
    }
    Ok(())
}

/// A link message that sets interface `index` up or down.
fn set_up(index: u32, up: bool) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.header.flags = if up {
        LinkFlags::Up
    } else {
        LinkFlags::empty()
    };
    message.header.change_mask = LinkFlags::Up;
    message
}

impl Subnet {
    /// The next host's addresses (hosts are numbered from 1).
    fn next_address(&mut self) -> (Ipv4Addr, Ipv6Addr) {
        self.hosts += 1;
        let host = self.hosts;
        assert!(host < 255, "a lab subnet holds at most 254 nodes");
        let v4 = Ipv4Addr::from(u32::from(self.v4) | host);
        let v6 = Ipv6Addr::from(u128::from(self.v6) | u128::from(host));
        (v4, v6)
    }
}

impl State {
    /// A subnet of its own for a new link or switch: `10.X.Y.0/24` and `fd00:0:0:K::/64`.
    fn new_subnet(&mut self) -> usize {
        let index = self.subnets.len();
        let k = u16::try_from(index).expect("a lab holds at most 65536 subnets");
        self.subnets.push(Subnet {
            v4: Ipv4Addr::new(10, (k >> 8) as u8, k as u8, 0),
            v6: Ipv6Addr::new(0xfd00, 0, 0, k, 0, 0, 0, 0),
            members: Vec::new(),
            hosts: 0,
        });
        index
    }

    /// Puts an end's addresses on its interface (again, after it was down: IPv6 addresses go
    /// with the link), after bringing it up if `up_first`.
    fn add_addresses(&mut self, end: &End, up_first: bool) -> Result<()> {
        let mut batch = Batch::new();
        if up_first {
            batch.route(
                RouteNetlinkMessage::SetLink(set_up(end.ifindex, true)),
                0,
                "RTM_SETLINK (up)",
            );
        }
        let addresses = match end.address {
            Some((v4, v6)) => vec![IpAddr::V4(v4), IpAddr::V6(v6)],
            None => Vec::new(),
        };
        for address in addresses {
            let mut message = AddressMessage::default();
            message.header.index = end.ifindex;
            match address {
                IpAddr::V4(_) => {
                    message.header.family = AddressFamily::Inet;
                    message.header.prefix_len = PREFIX_V4;
                    message.attributes.push(AddressAttribute::Local(address));
                    message.attributes.push(AddressAttribute::Address(address));
                }
                IpAddr::V6(_) => {
                    message.header.family = AddressFamily::Inet6;
                    message.header.prefix_len = PREFIX_V6;
                    message.attributes.push(AddressAttribute::Address(address));
                    message
                        .attributes
                        .push(AddressAttribute::Flags(AddressFlags::Nodad));
                }
            }
            batch.route(
                RouteNetlinkMessage::NewAddress(message),
                NLM_F_CREATE | NLM_F_REPLACE,
                "RTM_NEWADDR",
            );
        }
        self.nodes[end.node].route.send(batch)?;
        Ok(())
    }

    /// The routes `node` needs: a breadth-first search over the nodes from it, crossing only
    /// routers, gives for each subnet it does not touch the first hop of a shortest path.
    fn desired_routes(&self, node: usize) -> BTreeMap<(bool, usize), Hop> {
        // For each node reached: the next hop, and our own end toward it.
        let mut first_hop: Vec<Option<(Member, Member)>> = vec![None; self.nodes.len()];
        let mut seen = vec![false; self.nodes.len()];
        let mut reached: BTreeMap<usize, Option<(Member, Member)>> = BTreeMap::new();
        seen[node] = true;
        let mut queue = VecDeque::from([node]);
        while let Some(at) = queue.pop_front() {
            if at != node && self.nodes[at].inner.role != Role::Router {
                continue;
            }
            for (subnet, members) in self.subnets.iter().enumerate() {
                let Some(own) = members.members.iter().find(|m| m.node == at) else {
                    continue;
                };
                let via = if at == node { None } else { first_hop[at] };
                reached.entry(subnet).or_insert(via);
                for member in &members.members {
                    if seen[member.node] {
                        continue;
                    }
                    seen[member.node] = true;
                    first_hop[member.node] = if at == node {
                        Some((*member, *own))
                    } else {
                        first_hop[at]
                    };
                    queue.push_back(member.node);
                }
            }
        }
        let mut routes = BTreeMap::new();
        for (subnet, via) in reached {
            // Not through a link that is down: the kernel removed those routes.
            let Some((gateway, own)) = via.filter(|(_, own)| self.links[own.link].up) else {
                continue;
            };
            let oif = own.ifindex;
            routes.insert(
                (false, subnet),
                Hop {
                    gateway: IpAddr::V4(gateway.v4),
                    oif,
                },
            );
            routes.insert(
                (true, subnet),
                Hop {
                    gateway: IpAddr::V6(gateway.v6),
                    oif,
                },
            );
        }
        routes
    }

    /// Adds, replaces and removes routes until every node has the ones it needs.
    fn sync_routes(&mut self) -> Result<()> {
        for node in 0..self.nodes.len() {
            if self.nodes[node].inner.role == Role::Switch {
                continue;
            }
            let desired = self.desired_routes(node);
            let mut batch = Batch::new();
            for (&(v6, subnet), hop) in &desired {
                if self.nodes[node].routes.get(&(v6, subnet)) != Some(hop) {
                    let message = self.route_message(v6, subnet, Some(*hop));
                    batch.route(
                        RouteNetlinkMessage::NewRoute(message),
                        NLM_F_CREATE | NLM_F_REPLACE,
                        "RTM_NEWROUTE",
                    );
                }
            }
            for &(v6, subnet) in self.nodes[node].routes.keys() {
                if !desired.contains_key(&(v6, subnet)) {
                    let message = self.route_message(v6, subnet, None);
                    batch.route_tolerating(
                        RouteNetlinkMessage::DelRoute(message),
                        0,
                        "RTM_DELROUTE",
                        &[Errno::ESRCH],
                    );
                }
            }
            self.nodes[node].route.send(batch)?;
            self.nodes[node].routes = desired;
        }
        Ok(())
    }

    /// A route to `subnet` through `hop` (none: the route to delete).
    fn route_message(&self, v6: bool, subnet: usize, hop: Option<Hop>) -> RouteMessage {
        let subnet = &self.subnets[subnet];
        let mut message = RouteMessage::default();
        message.header.address_family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        message.header.destination_prefix_length = if v6 { PREFIX_V6 } else { PREFIX_V4 };
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.header.protocol = RouteProtocol::Static;
        message.header.scope = RouteScope::Universe;
        message.header.kind = RouteType::Unicast;
        message.attributes.push(RouteAttribute::Destination(if v6 {
            RouteAddress::Inet6(subnet.v6)
        } else {
            RouteAddress::Inet(subnet.v4)
        }));
        if let Some(hop) = hop {
            message
                .attributes
                .push(RouteAttribute::Gateway(match hop.gateway {
                    IpAddr::V4(gateway) => RouteAddress::Inet(gateway),
                    IpAddr::V6(gateway) => RouteAddress::Inet6(gateway),
                }));
            message.attributes.push(RouteAttribute::Oif(hop.oif));
        }
        message
    }

    /// Puts `conditions` on the direction of `link` from end `from`: the sender's qdiscs (rate,
    /// delay) and the receiver's loss chain.
    fn set_conditions(&mut self, link: usize, from: usize, conditions: Conditions) -> Result<()> {
        assert!(
            (0.0..=1.0).contains(&conditions.loss),
            "a loss share is within 0..=1, got {}",
            conditions.loss
        );
        let old = self.links[link].conditions[from];
        let sender = self.links[link].ends[from].clone();
        let receiver = self.links[link].ends[1 - from].clone();
        if (old.rate, old.delay, old.jitter)
            != (conditions.rate, conditions.delay, conditions.jitter)
        {
            if let Err(err) = self.shape(&sender, old.shapes(), &conditions) {
                // Back to what was there, so a refused change changes nothing.
                let _ = self.shape(&sender, true, &old);
                return Err(err);
            }
            let kept = &mut self.links[link].conditions[from];
            kept.rate = conditions.rate;
            kept.delay = conditions.delay;
            kept.jitter = conditions.jitter;
        }
        if old.loss != conditions.loss {
            self.set_loss(&receiver, conditions.loss)?;
            self.links[link].conditions[from].loss = conditions.loss;
        }
        Ok(())
    }

    /// Replaces the root qdisc of the sender's end: `tbf` for a rate, `netem` for a delay
    /// (under the `tbf` when both).
    fn shape(&mut self, sender: &End, had: bool, conditions: &Conditions) -> Result<()> {
        let qdisc = |handle: u16, parent: TcHandle, kind: &str, options: Option<Vec<u8>>| {
            let mut message = TcMessage::default();
            message.header.index = sender.ifindex as i32;
            message.header.handle = TcHandle {
                major: handle,
                minor: 0,
            };
            message.header.parent = parent;
            if !kind.is_empty() {
                message.attributes.push(TcAttribute::Kind(kind.into()));
            }
            if let Some(options) = options {
                message.attributes.push(TcAttribute::Other(DefaultNla::new(
                    raw::TCA_OPTIONS,
                    options,
                )));
            }
            message
        };
        let mut batch = Batch::new();
        if had {
            batch.route_tolerating(
                RouteNetlinkMessage::DelQueueDiscipline(qdisc(0, TcHandle::ROOT, "", None)),
                0,
                "RTM_DELQDISC (root)",
                &[Errno::ENOENT, Errno::EINVAL],
            );
        }
        let mut parent = TcHandle::ROOT;
        if let Some(rate) = conditions.limit() {
            batch.route(
                RouteNetlinkMessage::NewQueueDiscipline(qdisc(
                    1,
                    TcHandle::ROOT,
                    "tbf",
                    Some(raw::tbf(rate)),
                )),
                NLM_F_CREATE | NLM_F_EXCL,
                TBF,
            );
            parent = TcHandle { major: 1, minor: 1 };
        }
        if !conditions.delay.is_zero() || !conditions.jitter.is_zero() {
            batch.route(
                RouteNetlinkMessage::NewQueueDiscipline(qdisc(
                    10,
                    parent,
                    "netem",
                    Some(raw::netem(conditions.delay, conditions.jitter)),
                )),
                NLM_F_CREATE | NLM_F_EXCL,
                NETEM,
            );
        }
        self.nodes[sender.node]
            .route
            .send(batch)
            .map_err(kernel_lacks)
    }

    /// Makes the receiver's end drop a `share` of what it receives.
    fn set_loss(&mut self, receiver: &End, share: f64) -> Result<()> {
        let node = &mut self.nodes[receiver.node];
        let missing = raw::Missing {
            table: !node.loss_table,
            chain: !node.loss_chains.contains(&receiver.ifindex),
        };
        if share == 0.0 && missing.chain {
            return Ok(());
        }
        if node.netfilter.is_none() {
            node.netfilter = Some(Netlink::open(&node.inner.ns, libc::NETLINK_NETFILTER)?);
        }
        let mut batch = Batch::new();
        raw::loss(
            &mut batch,
            &receiver.ifname,
            receiver.ifindex,
            share,
            missing,
        );
        let netfilter = node.netfilter.as_mut().expect("opened above");
        netfilter.send(batch).map_err(kernel_lacks)?;
        node.loss_table = true;
        node.loss_chains.insert(receiver.ifindex);
        Ok(())
    }
}

/// A refusal as the crate's error: a qdisc or nftables part the kernel does not have is
/// [`Error::KernelLacks`], naming its option.
fn kernel_lacks(refused: Refused) -> Error {
    let lacks = |what, config| Error::KernelLacks { what, config };
    match (refused.what, refused.errno) {
        (NETEM, Errno::ENOENT) => {
            lacks("the netem qdisc (delay and jitter)", "CONFIG_NET_SCH_NETEM")
        }
        (TBF, Errno::ENOENT) => lacks("the tbf qdisc (rate)", "CONFIG_NET_SCH_TBF"),
        (what, Errno::ENOENT | Errno::EOPNOTSUPP) if what.starts_with("NFT_MSG_") => lacks(
            "an nftables part the loss chain needs (netdev family, meta random)",
            "CONFIG_NF_TABLES_NETDEV",
        ),
        _ => refused.into(),
    }
}

/// Takes `links` down (both ends administratively down, their routes gone) or brings them up
/// (both ends up, addresses and routes back).
fn set_links(shared: &Shared, links: &[usize], up: bool) -> Result<()> {
    let mut state = lock(&shared.state);
    let state = &mut *state;
    for &link in links {
        let ends = state.links[link].ends.clone();
        for end in &ends {
            let mut batch = Batch::new();
            batch.route(
                RouteNetlinkMessage::SetLink(set_up(end.ifindex, up)),
                0,
                if up {
                    "RTM_SETLINK (up)"
                } else {
                    "RTM_SETLINK (down)"
                },
            );
            state.nodes[end.node].route.send(batch)?;
            if !up {
                // The kernel removed the routes out of a downed interface.
                state.nodes[end.node]
                    .routes
                    .retain(|_, hop| hop.oif != end.ifindex);
            }
        }
        state.links[link].up = up;
        if up {
            for end in &ends {
                state.add_addresses(end, false)?;
            }
        }
    }
    state.sync_routes()
}

impl Node {
    /// The name the node was made with.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// What the node does with packets that are not its own.
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// The node's namespace, to run code in it with the crate's API: [`NetNs::run`],
    /// [`NetNs::spawn`], [`NetNs::socket`] and its TCP and UDP shorthands, a
    /// [`Worker`](crate::Worker), commands.
    pub fn ns(&self) -> &NetNs {
        &self.inner.ns
    }

    /// The node's first IPv4 address (on its first link), if it has one.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.addresses()
            .into_iter()
            .find_map(|address| match address {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
    }

    /// The node's first IPv6 address (on its first link), if it has one.
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        self.addresses()
            .into_iter()
            .find_map(|address| match address {
                IpAddr::V6(v6) => Some(v6),
                IpAddr::V4(_) => None,
            })
    }

    /// Every address of the node, link by link (IPv4, then IPv6), in the order the links were
    /// made. Every one is reachable from every node the routes lead from.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let state = lock(&self.lab.state);
        let mut found = Vec::new();
        for link in &state.links {
            for end in &link.ends {
                if let (true, Some((v4, v6))) = (end.node == self.inner.index, end.address) {
                    found.push(IpAddr::V4(v4));
                    found.push(IpAddr::V6(v6));
                }
            }
        }
        found
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Node {}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.inner.name)
            .field("role", &self.inner.role)
            .field("ns", &self.inner.ns.id())
            .finish()
    }
}

impl Link {
    /// The end on the first node given to [`Lab::link`].
    pub fn a(&self) -> &Endpoint {
        &self.ends[0]
    }

    /// The end on the second node given to [`Lab::link`].
    pub fn b(&self) -> &Endpoint {
        &self.ends[1]
    }

    /// The end on `node`.
    ///
    /// # Panics
    ///
    /// If `node` is not an end of this link.
    pub fn end(&self, node: &Node) -> &Endpoint {
        &self.ends[self.side(node)]
    }

    /// Takes the link down, as if its cable were pulled: both ends administratively down, so
    /// the routes through it go and a connection toward it fails with "network unreachable"
    /// instead of waiting: at once from an end's own node, and from farther away when the
    /// router before the link answers with an ICMP error (a namespace's first ICMP error may
    /// wait for the kernel's rate limit: about a second, one retransmission of the SYN).
    /// While the link is down its ends' IPv6 addresses are gone, as the kernel does for a
    /// downed interface; [`Link::up`] puts them back. A link to a switch is a port of its
    /// bridge: with it down, a peer on the same switch has a route still (the subnet's) and
    /// its packets vanish, so its connection times out rather than failing at once.
    pub fn down(&self) -> Result<()> {
        set_links(&self.lab, &[self.index], false)
    }

    /// Brings the link up again, with its addresses and routes. The first packets across may
    /// wait up to about a second: the kernel forgot the link's neighbours when it went down,
    /// and now and then the first neighbour request after it comes up goes unanswered, to be
    /// sent again a second later. A test that sends right after should allow for that (a
    /// connect or a read timeout of a few seconds, not a few hundred milliseconds).
    pub fn up(&self) -> Result<()> {
        set_links(&self.lab, &[self.index], true)
    }

    /// Whether the link is up (as the lab set it).
    pub fn is_up(&self) -> bool {
        lock(&self.lab.state).links[self.index].up
    }

    /// Sets the conditions that packets sent from `from` toward the other end meet; the other
    /// direction is unchanged. Takes effect at once, also on traffic under way.
    ///
    /// A delay or jitter needs the kernel's netem qdisc: without it the result is
    /// [`Error::KernelLacks`] naming `CONFIG_NET_SCH_NETEM`, and the direction keeps the
    /// conditions it had.
    ///
    /// # Panics
    ///
    /// If `from` is not an end of this link, or the loss is not within 0..=1.
    pub fn set_conditions(&self, from: &Node, conditions: Conditions) -> Result<()> {
        let side = self.side(from);
        lock(&self.lab.state).set_conditions(self.index, side, conditions)
    }

    /// Sets the same conditions in both directions.
    ///
    /// # Panics
    ///
    /// If the loss is not within 0..=1.
    pub fn set_conditions_both(&self, conditions: Conditions) -> Result<()> {
        let mut state = lock(&self.lab.state);
        state.set_conditions(self.index, 0, conditions)?;
        state.set_conditions(self.index, 1, conditions)
    }

    /// The conditions of the direction from `from`.
    ///
    /// # Panics
    ///
    /// If `from` is not an end of this link.
    pub fn conditions(&self, from: &Node) -> Conditions {
        let side = self.side(from);
        lock(&self.lab.state).links[self.index].conditions[side]
    }

    fn side(&self, node: &Node) -> usize {
        assert!(
            Arc::ptr_eq(&node.lab, &self.lab),
            "node {} is of another lab",
            node.inner.name
        );
        let state = lock(&self.lab.state);
        state.links[self.index]
            .ends
            .iter()
            .position(|end| end.node == node.inner.index)
            .unwrap_or_else(|| panic!("node {} is not an end of this link", node.inner.name))
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("a", self.a())
            .field("b", self.b())
            .finish()
    }
}

impl Endpoint {
    /// The name of the node this end is in.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The interface's name in its node (`ethN`; `portN` on a switch).
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The interface's index in its node.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The end's IPv4 address (a `/24`); none on a switch's port.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.ipv4
    }

    /// The end's IPv6 address (a `/64`, usable at once: no duplicate address detection); none
    /// on a switch's port.
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        self.ipv6
    }
}

impl Partition {
    /// Brings the partition's links up again, with their addresses and routes.
    pub fn heal(mut self) -> Result<()> {
        self.healed = true;
        set_links(&self.lab, &self.links, true)
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        if !self.healed {
            let _ = set_links(&self.lab, &self.links, true);
        }
    }
}

impl fmt::Debug for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partition")
            .field("links", &self.links.len())
            .field("healed", &self.healed)
            .finish()
    }
}
