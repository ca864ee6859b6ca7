//! The main job: run functions inside a temporary named namespace with `#[in_netns]`, and see
//! that the namespace is isolated while the calling thread never leaves its own.
//!
//! Run it (as root or not): `cargo run --example quickstart`.

#[path = "support/mod.rs"]
mod support;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::ExitCode;

use in_netns::{NetNs, in_netns};
use nix::libc;

/// The interfaces the calling thread sees.
fn interfaces() -> io::Result<Vec<String>> {
    let list = nix::net::if_::if_nameindex()?;
    Ok(list
        .iter()
        .map(|i| i.name().to_string_lossy().into_owned())
        .collect())
}

/// The interfaces seen from inside `ns`.
#[in_netns(ns)]
fn interfaces_in(ns: &NetNs) -> io::Result<Vec<String>> {
    interfaces()
}

/// Sets `IFF_UP` on `lo` with an ioctl on a socket made inside `ns`.
#[in_netns(ns)]
fn bring_loopback_up(ns: &NetNs) -> io::Result<()> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    // SAFETY: `ifreq` is plain old data; all zeroes is a valid (empty) request.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the `ifreq` we own, for the open socket.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A listener on 127.0.0.1 inside `ns`: it stays there whichever thread accepts on it.
#[in_netns(ns)]
fn listen_inside(ns: &NetNs) -> io::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
}

/// A client connection made inside `ns`.
#[in_netns(ns)]
fn connect_inside(ns: &NetNs, addr: SocketAddr) -> io::Result<TcpStream> {
    TcpStream::connect(addr)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let home = NetNs::current()?;
    let temp = support::TempNamespace::create("quickstart")?;
    let ns = &temp.ns;

    println!("interfaces on the host:  {:?}", interfaces()?);
    println!("interfaces in {}: {:?}", temp.name, interfaces_in(ns)?);

    bring_loopback_up(ns)?;
    println!("brought lo up inside {}", temp.name);

    let listener = listen_inside(ns)?;
    let addr = listener.local_addr()?;
    println!("listening on {addr} inside {}", temp.name);

    let mut client = connect_inside(ns, addr)?;
    let (mut server, peer) = listener.accept()?;
    server.write_all(b"hello from inside")?;
    let mut greeting = [0; 17];
    client.read_exact(&mut greeting)?;
    println!(
        "a client inside connected from {peer} and read {:?}",
        String::from_utf8_lossy(&greeting)
    );

    match TcpStream::connect(addr) {
        Err(err) => println!("the same address from the host: {err}"),
        Ok(_) => {
            println!("the same address from the host reached a different listener (the host's own)")
        }
    }

    let still_home = NetNs::current()? == home;
    println!("the calling thread stayed in {}: {still_home}", home.id());
    if !still_home {
        return Err("the calling thread changed namespace".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    support::init("quickstart");
    support::finish("quickstart", run())
}
