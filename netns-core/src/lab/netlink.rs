//! A netlink socket made inside a node's namespace ([`NetNs::socket`]) and used from the calling
//! thread: requests go out together in one datagram, each with `NLM_F_ACK`, and every answer is
//! read before the call returns. No runtime, no thread of its own.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use nix::errno::Errno;
use nix::libc;
use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{Error, Result};
use crate::namespace::NetNs;

/// `NLMSG_ERROR`, the type of an acknowledgement (error 0) or a refusal.
const NLMSG_ERROR: u16 = 2;
/// How long the kernel may take to answer a batch before the call gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// Sequence numbers, unique in the process so that no answer is taken for another's.
static SEQUENCE: AtomicU32 = AtomicU32::new(1);

/// The next sequence number.
pub(super) fn next_sequence() -> u32 {
    SEQUENCE.fetch_add(1, Ordering::Relaxed)
}

/// A request the kernel refused (or that could not be sent): which one, and the errno.
#[derive(Debug)]
pub(super) struct Refused {
    /// What the request did, e.g. `"RTM_NEWLINK (a veth pair)"`.
    pub(super) what: &'static str,
    /// The kernel's answer.
    pub(super) errno: Errno,
}

impl From<Refused> for Error {
    fn from(refused: Refused) -> Error {
        Error::from_errno(refused.what, None, refused.errno)
    }
}

/// Requests to send together: their bytes, and for each one that is acknowledged, its
/// sequence number and what it does.
#[derive(Default)]
pub(super) struct Batch {
    bytes: Vec<u8>,
    acked: Vec<(u32, &'static str)>,
    /// Requests whose errnos count as success (`ESRCH` for a route already gone).
    tolerated: Vec<(u32, &'static [Errno])>,
}

impl Batch {
    /// An empty batch.
    pub(super) fn new() -> Batch {
        Batch::default()
    }

    /// Whether nothing was added.
    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Adds a typed rtnetlink request with `flags` (besides `NLM_F_REQUEST | NLM_F_ACK`).
    pub(super) fn route(&mut self, message: RouteNetlinkMessage, flags: u16, what: &'static str) {
        self.route_tolerating(message, flags, what, &[]);
    }

    /// [`Batch::route`], where a refusal with one of `tolerated` counts as success.
    pub(super) fn route_tolerating(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
        what: &'static str,
        tolerated: &'static [Errno],
    ) {
        let sequence = next_sequence();
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let at = self.bytes.len();
        self.bytes.resize(at + packet.buffer_len(), 0);
        packet.serialize(&mut self.bytes[at..]);
        self.acked.push((sequence, what));
        if !tolerated.is_empty() {
            self.tolerated.push((sequence, tolerated));
        }
    }

    /// Adds a message already encoded (a whole `nlmsghdr` and payload, padded), acknowledged
    /// under `sequence` when `what` is given.
    pub(super) fn raw(&mut self, bytes: &[u8], acked: Option<(u32, &'static str)>) {
        self.bytes.extend_from_slice(bytes);
        self.acked.extend(acked);
    }
}

/// A netlink socket of one protocol inside one namespace.
pub(super) struct Netlink {
    socket: Socket,
    buffer: Vec<u8>,
}

impl Netlink {
    /// A socket of `protocol` (`NETLINK_ROUTE`, `NETLINK_NETFILTER`) made inside `ns`.
    pub(super) fn open(ns: &NetNs, protocol: libc::c_int) -> Result<Netlink> {
        let opened = ns
            .socket(
                Domain::from(libc::AF_NETLINK),
                Type::from(libc::SOCK_RAW),
                Some(Protocol::from(protocol)),
            )
            .and_then(|socket| {
                socket.set_read_timeout(Some(PATIENCE))?;
                Ok(socket)
            });
        match opened {
            Ok(socket) => Ok(Netlink {
                socket,
                buffer: vec![0; 32 * 1024],
            }),
            Err(err) => Err(Error::from_io(
                "socket(AF_NETLINK) inside a lab node",
                None,
                err,
            )),
        }
    }

    /// Sends `batch` in one datagram and reads an answer for each acknowledged request: the
    /// first refusal (not tolerated) is the error. Every request is answered even after a
    /// refusal (the kernel goes on with the next), so nothing is left to read.
    pub(super) fn send(&mut self, batch: Batch) -> Result<(), Refused> {
        if batch.is_empty() {
            return Ok(());
        }
        let io_error = |what: &'static str, err: io::Error| Refused {
            what,
            errno: Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO)),
        };
        let first = batch.acked.first().map_or("netlink", |(_, what)| *what);
        let sent = self
            .socket
            .send(&batch.bytes)
            .map_err(|err| io_error(first, err))?;
        if sent != batch.bytes.len() {
            return Err(Refused {
                what: first,
                errno: Errno::EMSGSIZE,
            });
        }
        let mut waiting = batch.acked.clone();
        let mut refused = None;
        while !waiting.is_empty() {
            let read = (&self.socket)
                .read(&mut self.buffer)
                .map_err(|err| match err.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Refused {
                        what: waiting[0].1,
                        errno: Errno::ETIMEDOUT,
                    },
                    _ => io_error(waiting[0].1, err),
                })?;
            let mut rest = &self.buffer[..read];
            while rest.len() >= 16 {
                let length = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
                let kind = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
                let sequence = u32::from_ne_bytes(rest[8..12].try_into().unwrap());
                if length < 16 || length > rest.len() {
                    break;
                }
                if kind == NLMSG_ERROR && length >= 20 {
                    let code = i32::from_ne_bytes(rest[16..20].try_into().unwrap());
                    if let Some(at) = waiting.iter().position(|(seq, _)| *seq == sequence) {
                        let (_, what) = waiting.swap_remove(at);
                        let errno = Errno::from_raw(-code);
                        let tolerated = batch
                            .tolerated
                            .iter()
                            .any(|(seq, errnos)| *seq == sequence && errnos.contains(&errno));
                        if code != 0 && refused.is_none() && !tolerated {
                            refused = Some(Refused { what, errno });
                        }
                    }
                }
                rest = &rest[((length + 3) & !3).min(rest.len())..];
            }
        }
        refused.map_or(Ok(()), Err)
    }
}
