//! The runtime of the [`in-netns`](https://docs.rs/in-netns) crate: handles to Linux network
//! namespaces and runners that execute code inside one on dedicated threads.
//!
//! Use it through the `in-netns` crate, which re-exports everything here together with the
//! `#[in_netns]` attribute.
#![deny(missing_docs)]
#![cfg(target_os = "linux")]

mod command;
mod error;
mod handle;
mod lifecycle;
mod loopback;
mod name;
mod nsid;
mod options;
mod pidfd;
mod registry;
pub mod rootless;
#[cfg(feature = "tokio")]
mod run_async;
#[cfg(feature = "tokio")]
mod runtime;
mod thread;
mod warm;
mod watch;
mod worker;

pub use command::CommandExt;
pub use error::{Error, Result};
pub use handle::NetNs;
pub use name::{ETC_DIR, RUN_DIR};
pub use nsid::NsId;
pub use options::Options;
pub use registry::Registry;
#[cfg(feature = "tokio")]
pub use run_async::RunAsync;
#[cfg(feature = "tokio")]
pub use runtime::Runtime;
pub use warm::MAX_WARM;
#[cfg(feature = "tokio")]
pub use watch::AsyncWatch;
pub use watch::{Watch, WatchEvent};
pub use worker::Worker;
