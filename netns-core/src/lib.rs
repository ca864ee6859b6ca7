//! The runtime of the [`in-netns`](https://docs.rs/in-netns) crate: handles to Linux network
//! namespaces and runners that execute code inside one on dedicated threads.
//!
//! Use it through the `in-netns` crate, which re-exports everything here together with the
//! `#[in_netns]` attribute.
//!
//! The modules are layers, each importing only the ones below it (`ARCHITECTURE.md` draws
//! them; `tests/layers.rs` checks it):
//!
//! 1. the base: `error`, `sys` (every raw system call), `fork`, `sync`, `thread`, `report`
//!    (the crate's records), `security` (a thread's security context);
//! 2. `namespace`: the namespace itself (the handle, opening by pid or pidfd, names,
//!    registries, watching), which runs nothing inside;
//! 3. `entry`: one way in, a setup prepared beforehand that a thread, or a
//!    child between `fork` and `exec`, applies;
//! 4. `inside`: everything that runs inside (namespace threads, warm pools, the `Worker`,
//!    runtimes and async bodies, and the per-handle state that holds them);
//! 5. what is built on running inside: `command`, `loopback`, `rootless`, `lab` (networks of
//!    namespaces for tests, feature `lab`).
#![deny(missing_docs)]
// On docs.rs (nightly, `--cfg docsrs`), feature-gated items say which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg(target_os = "linux")]

// Layer 1: the base.
mod error;
mod fork;
mod once;
mod report;
mod security;
mod sync;
mod sys;
mod thread;

// Layer 2: the namespace itself.
mod namespace;

// Layer 3: one way in.
mod entry;

// Layer 4: what runs inside.
mod inside;

// Layer 5: built on running inside.
mod command;
#[cfg(feature = "lab")]
#[cfg_attr(docsrs, doc(cfg(feature = "lab")))]
pub mod lab;
mod loopback;
pub mod rootless;

#[doc(hidden)]
pub mod __private;

/// The `socket2` crate, whose `Socket`, `Domain`, `Type` and `Protocol` [`NetNs::socket`] takes
/// and returns (re-exported so that the versions match).
pub use socket2;

pub use command::{NetnsCommand, NetnsCommandExt};
pub use entry::{Options, Setup};
pub use error::{Error, Result};
pub use inside::Worker;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use inside::{NetnsRuntime, RunAsync, RuntimeHooks};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use namespace::AsyncWatch;
pub use namespace::{ETC_DIR, NetNs, NsId, RUN_DIR, Registry, Watch, WatchEvent};
