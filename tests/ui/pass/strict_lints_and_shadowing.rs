//! Expansions compile without warnings under strict lints, even when the user's code names
//! things like the macro's helpers or shadows common names.
#![deny(warnings, unused, unsafe_code)]

use in_netns::NetNs;

// Names a careless expansion might pick up instead of its own.
#[allow(dead_code)]
struct Sendable;
#[allow(dead_code)]
struct Returns;
#[allow(dead_code)]
mod __private {}
#[allow(dead_code)]
type Result<T> = std::result::Result<T, std::io::Error>;

struct Service {
    ns: NetNs,
}

impl Service {
    /// A parameter that only the target names must not warn as unused.
    #[in_netns::in_netns(&ns)]
    fn unused_except_by_target(ns: &NetNs) -> Result<()> {
        Ok(())
    }

    #[in_netns::in_netns(&self.ns)]
    fn port(&self, base: u16, mut offset: u16) -> Result<u16> {
        offset += 1;
        Ok(base + offset)
    }
}

fn main() {
    let ns = NetNs::current().unwrap();
    let _ = Service::unused_except_by_target(&ns);
    let service = Service { ns };
    let _ = service.port(8000, 0);
}
