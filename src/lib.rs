#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![cfg(target_os = "linux")]

pub use netns_core::{ETC_DIR, Error, NetNs, NsId, Options, RUN_DIR, Result};

/// Runs the function's body inside a network namespace, on a scoped dedicated thread.
pub use netns_macros::in_netns;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
