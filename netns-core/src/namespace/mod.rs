//! The namespace itself: a validated handle to a network namespace, its identity, opening it by
//! path, pid or pidfd, names and registries (`ip netns add/del/list/attach/identify`), and
//! watching a registry's names.
//!
//! This layer runs nothing inside a namespace and imports nothing above the base: a handle
//! carries one opaque slot ([`NetNs::slot`](handle::NetNs)) that the layer running code inside
//! fills. Within the layer, modules import only downward:
//! `nsid`, `name` < `registry` < `handle` < `pidfd`, `lifecycle` < `watch`.

mod handle;
mod lifecycle;
mod name;
mod nsid;
mod pidfd;
mod registry;
mod watch;

pub use handle::NetNs;
pub use name::{ETC_DIR, RUN_DIR};
pub use nsid::NsId;
pub use registry::Registry;
#[cfg(feature = "tokio")]
pub use watch::AsyncWatch;
pub(crate) use watch::DIRECTORY_CHANGES;
pub use watch::{Watch, WatchEvent};
