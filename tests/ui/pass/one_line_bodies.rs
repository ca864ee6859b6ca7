//! Bodies written on one line draw no `unused_braces` warning from the expansion.
#![deny(warnings)]

use std::io;

use in_netns::{NetNs, in_netns};

pub struct Pod {
    ns: NetNs,
    port: u16,
}

impl Pod {
    #[in_netns(&self.ns)]
    pub fn port(&self) -> io::Result<u16> { Ok(self.port) }
}

#[in_netns("/proc/self/ns/net")]
pub fn seven() -> io::Result<u8> { Ok(7) }

#[in_netns(ns)]
pub fn id(ns: &NetNs) -> io::Result<in_netns::NsId> { Ok(ns.id()) }

fn main() {
    let pod = Pod { ns: NetNs::current().unwrap(), port: 80 };
    let _ = (pod.port(), seven(), id(&pod.ns));
}
