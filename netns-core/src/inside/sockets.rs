//! Sockets made inside a namespace, ahead of need: [`NetNs::socket`] and the TCP and UDP
//! shorthands built on it.
//!
//! A socket belongs to the namespace it was made in for life, and `bind`, `connect`, `listen`
//! and `accept` work on it from any thread: only `socket()` must run inside. So each handle keeps
//! a stock of TCP and UDP sockets (IPv4 and IPv6) made by a thread of its own inside
//! ([`stock`](super::stock)), and a caller takes one with no thread hop; every other step runs on
//! the caller's thread, with its rights. Other kinds of socket, a caller with seccomp filters, a
//! caller in a forked child and a caller that finds the stock empty get a socket made on a
//! thread of the caller's whole security context ([`NetNs::run`]).
//!
//! Who may take a socket made ahead ([`SocketOwner`](crate::security::SocketOwner)): a caller
//! whose filesystem ids and groups are those of the stock's thread (born from the caller that
//! first needed one), which are what the kernel records of a socket's maker.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use super::state::State;
use super::stock::kind_of;
use crate::namespace::NetNs;

impl NetNs {
    /// A socket made inside this namespace, as `socket2::Socket::new` makes one
    /// (close-on-exec): it belongs to the namespace for life, wherever it is used.
    ///
    /// TCP and UDP sockets (IPv4 and IPv6) come from the handle's stock, made ahead by a thread
    /// inside, so this costs about what making a socket costs: the caller takes one, and
    /// `bind`, `connect`, `listen` and `accept` then run on the caller's thread. Other kinds
    /// are made by a thread inside, as [`NetNs::run`] would (a call's hand-off). A socket made
    /// ahead goes only to a caller that would have made the same one (its filesystem ids and
    /// groups, no seccomp filter); others get one made with their whole security context.
    ///
    /// What the stock costs: at most 256 descriptors of each kind per handle and owner (up
    /// to 4 owners), and an eighth of the process's soft descriptor limit across all handles,
    /// each keeping the namespace alive as the handle does; one thread inside per stock while
    /// it holds sockets. It grows with demand and shrinks, to nothing, when not used. A socket
    /// made ahead has the namespace's defaults (sysctls such as `net.ipv6.bindv6only`) as they
    /// were when it was made.
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// use socket2::{Domain, Type};
    /// let ns = in_netns::NetNs::named("blue")?;
    /// let socket = ns.socket(Domain::IPV4, Type::DGRAM, None)?;
    /// socket.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>()?.into())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn socket(
        &self,
        domain: Domain,
        ty: Type,
        protocol: Option<Protocol>,
    ) -> io::Result<Socket> {
        if let Some(kind) = kind_of(domain, ty, protocol) {
            if let Some(socket) = State::of(self).sockets.take(self, kind) {
                return Ok(Socket::from(socket));
            }
        }
        self.run(move || Socket::new(domain, ty, protocol))?
    }

    /// A TCP connection to `addr`, from a socket made inside this namespace
    /// ([`NetNs::socket`]); the connect runs on the calling thread.
    pub fn tcp_connect(&self, addr: SocketAddr) -> io::Result<std::net::TcpStream> {
        let socket = self.socket(Domain::for_address(addr), Type::STREAM, None)?;
        socket.connect(&addr.into())?;
        Ok(socket.into())
    }

    /// A TCP listener on `addr` inside this namespace ([`NetNs::socket`]), with `SO_REUSEADDR`
    /// and a backlog of 128, as `std::net::TcpListener::bind` makes one.
    pub fn tcp_listen(&self, addr: SocketAddr) -> io::Result<std::net::TcpListener> {
        let socket = self.socket(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(128)?;
        Ok(socket.into())
    }

    /// A UDP socket bound to `addr` inside this namespace ([`NetNs::socket`]).
    pub fn udp_bind(&self, addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
        let socket = self.socket(Domain::for_address(addr), Type::DGRAM, None)?;
        socket.bind(&addr.into())?;
        Ok(socket.into())
    }

    /// [`NetNs::tcp_connect`] for tokio: the connect is awaited on the caller's runtime, with
    /// no thread hop.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn tokio_tcp_connect(&self, addr: SocketAddr) -> io::Result<tokio::net::TcpStream> {
        let socket = self.socket(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
        socket.connect(addr).await
    }

    /// [`NetNs::tcp_listen`] for tokio (call it within a runtime, which accepts on it).
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn tokio_tcp_listen(&self, addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
        let listener = self.tcp_listen(addr)?;
        listener.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(listener)
    }

    /// [`NetNs::udp_bind`] for tokio (call it within a runtime).
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn tokio_udp_bind(&self, addr: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
        let socket = self.udp_bind(addr)?;
        socket.set_nonblocking(true)?;
        tokio::net::UdpSocket::from_std(socket)
    }
}
