//! Registries: directories of named namespaces, as `/run/netns` is the one `ip netns` uses.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::handle::NetNs;
use crate::name::{self, RUN_DIR};
use crate::nsid::NsId;
use crate::watch::Watch;

/// A directory of named network namespaces: `/run/netns` (the [`Default`], what `ip netns`
/// and the plain [`NetNs::create`], [`NetNs::named`], [`NetNs::remove`], [`NetNs::list`] and
/// [`NetNs::watch`] use), or one of your own, as container runtimes keep theirs.
///
/// Names follow `ip netns`'s rules everywhere ([`Error::InvalidName`]), and every call works
/// as its `ip netns` counterpart does on `/run/netns`: the directory is made a shared mount
/// point on first use, a name is a namespace bind-mounted on an exclusively created file, and
/// removing it unmounts it lazily. Handles opened here know their name and registry
/// ([`NetNs::name`], [`NetNs::registry`]), so [`Options::etc`](crate::Options::etc) finds
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

    /// Opens the namespace named `name` here, as [`NetNs::named`] does in `/run/netns`.
    pub fn named(&self, name: &str) -> Result<NetNs> {
        Ok(NetNs::open(self.path(name)?)?.in_registry(self))
    }

    /// Creates a persistent namespace named `name` here, as [`NetNs::create`] does in
    /// `/run/netns` (an existing name is [`Error::AlreadyExists`] and left untouched).
    pub fn create(&self, name: &str) -> Result<NetNs> {
        NetNs::create_in(self, name)
    }

    /// Gives the namespace of `ns` the name `name` here, as `ip netns attach NAME PID` does;
    /// see [`NetNs::attach`].
    pub fn attach(&self, ns: &NetNs, name: &str) -> Result<NetNs> {
        ns.attach_in(self, name)
    }

    /// Removes the name `name` here, as [`NetNs::remove`] does in `/run/netns`.
    pub fn remove(&self, name: &str) -> Result<()> {
        NetNs::remove_path(self.path(name)?)
    }

    /// The names here, sorted, as [`NetNs::list`] gives those of `/run/netns`.
    pub fn list(&self) -> Result<Vec<String>> {
        NetNs::list_in(&self.dir)
    }

    /// The names here bound to the namespace of `ns`, sorted, as `ip netns identify` finds
    /// them; see [`NetNs::names`].
    pub fn names_of(&self, ns: &NetNs) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for name in self.list()? {
            // A name removed, or not yet bound, since the listing is not one of the namespace's.
            let bound = fs::metadata(self.dir.join(&name))
                .is_ok_and(|metadata| NsId::of_metadata(&metadata) == ns.id());
            if bound {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Follows the names here as they come and go, as `ip netns monitor` does; see
    /// [`NetNs::watch`].
    pub fn watch(&self) -> Result<Watch> {
        Watch::new(self)
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

impl NetNs {
    /// Gives this namespace the name `name`, as `ip netns attach NAME PID` does: afterwards
    /// `ip netns list` shows it, `ip netns exec NAME` enters it, and [`NetNs::named`] opens
    /// it. Any handle will do: a child's ([`NetNs::of_child`]), an anonymous one
    /// ([`NetNs::new`]), one from a socket. The name keeps the namespace alive until it is
    /// removed.
    ///
    /// The name goes into the handle's [`registry`](NetNs::registry) (`/run/netns` unless the
    /// handle came from another one; [`Registry::attach`] chooses). As with
    /// [`NetNs::create`], a taken name is [`Error::AlreadyExists`] and left untouched, of
    /// racing calls for one name exactly one succeeds, and a failure leaves no file behind.
    /// Returns a handle that knows its name.
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// use in_netns::NetNs;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut child = std::process::Command::new("sleep").arg("60").spawn()?;
    /// let named = NetNs::of_child(&mut child)?.attach("sleeper")?; // `ip netns exec sleeper ...`
    /// assert_eq!(named.name(), Some("sleeper"));
    /// # Ok(()) }
    /// ```
    pub fn attach(&self, name: &str) -> Result<NetNs> {
        self.attach_in(&self.registry(), name)
    }

    /// The names bound to this namespace, sorted, as `ip netns identify` finds them: the
    /// entries of the handle's [`registry`](NetNs::registry) whose namespace is this one
    /// (compared by identity, so names made by `ip netns` or bind mounts count too). Empty
    /// when it has none. (`ip netns identify` prints only one of several.)
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// # fn main() -> in_netns::Result<()> {
    /// let ns = in_netns::NetNs::from_pid(1234)?;
    /// println!("process 1234 is in {:?}", ns.names()?);
    /// # Ok(()) }
    /// ```
    pub fn names(&self) -> Result<Vec<String>> {
        self.registry().names_of(self)
    }

    /// Follows the names in `/run/netns` as they come and go, as `ip netns monitor` does:
    /// a [`Watch`] (a blocking iterator, and with the `tokio` feature an async one) of
    /// [`WatchEvent`](crate::WatchEvent)s. [`Registry::watch`] follows another directory.
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// use in_netns::{NetNs, WatchEvent};
    /// # fn main() -> in_netns::Result<()> {
    /// for event in NetNs::watch()? {
    ///     match event? {
    ///         WatchEvent::Added(name) => println!("add {name}"),
    ///         WatchEvent::Removed(name) => println!("delete {name}"),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn watch() -> Result<Watch> {
        Registry::default().watch()
    }
}
