//! Registries: directories of named namespaces, as `/run/netns` is the one `ip netns` uses.
//!
//! Only the directory and its paths live here; what a registry does with namespaces (open,
//! create, attach, remove, list, watch) is in `lifecycle` and `watch`, which build on the
//! handle.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::name::{self, RUN_DIR};
use crate::error::{Error, Result};

/// A directory of named network namespaces: `/run/netns` (the [`Default`], what `ip netns`
/// and the plain [`NetNs::create`](crate::NetNs::create), [`NetNs::named`](crate::NetNs::named), [`NetNs::remove`](crate::NetNs::remove), [`NetNs::list`](crate::NetNs::list) and
/// [`NetNs::watch`](crate::NetNs::watch) use), or one of your own, as container runtimes keep theirs.
///
/// Names follow `ip netns`'s rules everywhere ([`Error::InvalidName`]), and every call works
/// as its `ip netns` counterpart does on `/run/netns`: the directory is made a shared mount
/// point on first use, a name is a namespace bind-mounted on an exclusively created file, and
/// removing it unmounts it lazily. Handles opened here know their name and registry
/// ([`NetNs::name`](crate::NetNs::name), [`NetNs::registry`](crate::NetNs::registry)), so [`Options::etc`](crate::Options::etc) finds
/// `/etc/netns/NAME` for them. Cloning is cheap.
///
/// Without root, a registry in a directory the process may write (under `/tmp` or
/// `$XDG_RUNTIME_DIR`) needs nothing but [`rootless::enter`](crate::rootless::enter): its bind
/// mounts are the process's own.
///
/// ```no_run
/// # use netns_core as in_netns;
/// use in_netns::{NetNs, Registry};
/// # fn main() -> in_netns::Result<()> {
/// let pods = Registry::at("/var/run/pods/netns")?;
/// let ns = pods.create("pod-1")?;                       // /var/run/pods/netns/pod-1
/// assert_eq!(pods.list()?, ["pod-1"]);
/// assert_eq!(pods.named("pod-1")?, ns);
/// assert!(!NetNs::list()?.contains(&"pod-1".to_owned())); // /run/netns is another registry
/// pods.remove("pod-1")?;
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Registry {
    dir: Arc<Path>,
}

impl Registry {
    /// A registry in the directory `dir`, which must be an absolute path
    /// ([`Error::InvalidPath`] otherwise: a relative one would change meaning with the working
    /// directory). The directory is made when a namespace is first created or attached in it;
    /// its parent must exist.
    pub fn at(dir: impl AsRef<Path>) -> Result<Registry> {
        let dir = dir.as_ref();
        let reason = if dir.as_os_str().as_encoded_bytes().contains(&0) {
            "it contains a NUL byte"
        } else if dir.is_relative() {
            "a registry's directory must be an absolute path"
        } else {
            return Ok(Registry {
                dir: Arc::from(dir),
            });
        };
        Err(Error::InvalidPath {
            path: dir.to_path_buf(),
            reason,
        })
    }

    /// The directory that holds the names.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path `name` has here, once `name` is checked ([`Error::InvalidName`]), so that it
    /// can never reach outside the directory.
    pub fn path(&self, name: &str) -> Result<PathBuf> {
        name::path_in(&self.dir, name)
    }
}

/// `/run/netns`, the directory of `ip netns`.
impl Default for Registry {
    fn default() -> Registry {
        Registry {
            dir: Arc::from(Path::new(RUN_DIR)),
        }
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Registry").field(&self.dir).finish()
    }
}
