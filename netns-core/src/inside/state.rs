//! What lives inside a namespace on a handle's behalf, in one place: its warm threads, its
//! runtimes for async bodies and its stocks of sockets made ahead, kept in the handle's slot
//! (all its clones share it) and ended with the last clone. All follow the one fork policy ([`Born`](crate::fork::Born)): in a
//! forked child, where their threads do not exist, calls get threads (and runtimes) of their
//! own, and nothing here is locked or joined.

#[cfg(feature = "tokio")]
use super::runtime::BodyRuntimes;
use super::stock::Stocks;
use super::warm::WarmThreads;
use crate::namespace::NetNs;

/// A handle's state inside its namespace.
pub(crate) struct State {
    /// Warm threads, per setup and idle timeout.
    pub(crate) warm: WarmThreads,
    /// Runtimes for async bodies, per setup.
    #[cfg(feature = "tokio")]
    pub(crate) body_runtimes: BodyRuntimes,
    /// Sockets made ahead.
    pub(crate) sockets: Stocks,
}

impl State {
    /// The state of `ns` (all its clones), made on first use.
    pub(crate) fn of(ns: &NetNs) -> &State {
        ns.slot(|| State {
            warm: WarmThreads::new(),
            #[cfg(feature = "tokio")]
            body_runtimes: BodyRuntimes::new(),
            sockets: Stocks::new(),
        })
    }
}
