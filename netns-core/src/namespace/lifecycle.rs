//! Making, naming and removing namespaces, as `ip netns add/del/list/attach/identify` do: the
//! operations of a [`Registry`], with the `NetNs` shorthands for the default one, `/run/netns`.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::Mode;
use nix::unistd::{AccessFlags, access};

use super::handle::{NetNs, THREAD_SELF_NET};
use super::name::RUN_DIR;
use super::nsid::NsId;
use super::registry::Registry;
use crate::error::{Error, Result};
use crate::fork::Born;
use crate::once::NoWaitOnce;
use crate::report;
use crate::thread::on_scoped_thread;

/// Serializes the run-dir setup, so concurrent first creates don't stack bind mounts.
static RUN_DIR_SETUP: Mutex<()> = Mutex::new(());

/// The process [`RUN_DIR_SETUP`] belongs to (`None`: forks cannot be counted).
static RUN_DIR_SETUP_BORN: NoWaitOnce<Option<Born>> = NoWaitOnce::new();

/// Locks [`RUN_DIR_SETUP`], except in a forked child: a parent thread may have held it at the
/// fork, and then holds it in the child forever. A child's creates are not serialized; at
/// worst two of its threads stack a second bind mount on the run dir.
fn serialize_run_dir_setup() -> Option<std::sync::MutexGuard<'static, ()>> {
    let born = RUN_DIR_SETUP_BORN.get_or_init(|| Born::here().ok());
    match born {
        Some(born) if !born.is_here() => None,
        _ => Some(crate::sync::lock(&RUN_DIR_SETUP)),
    }
}

/// Removes a half-made name file unless creation finished.
struct UnlinkUnlessKept<'a> {
    path: &'a Path,
    keep: bool,
}

impl Drop for UnlinkUnlessKept<'_> {
    fn drop(&mut self) {
        if !self.keep {
            // A mount may already sit on the file; it must go before the file can.
            let _ = umount2(self.path, MntFlags::MNT_DETACH);
            let _ = fs::remove_file(self.path);
        }
    }
}

impl NetNs {
    /// Opens the namespace `ip netns` calls `name` (`/run/netns/NAME`): shorthand for
    /// [`Registry::default()`](Registry::default)[`.named(name)`](Registry::named).
    ///
    /// `name` is checked first ([`Error::InvalidName`]), so it can never escape the run dir.
    pub fn named(name: &str) -> Result<NetNs> {
        Registry::default().named(name)
    }

    /// Creates a fresh anonymous network namespace.
    ///
    /// It lives while a handle to it (or a thread or socket in it) does. The calling thread does
    /// not move: a throwaway thread unshares its namespace and ends.
    pub fn new() -> Result<NetNs> {
        let ns = on_scoped_thread(
            None,
            || String::from("a new namespace"),
            || {
                unshare(CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Error::from_errno("unshare(CLONE_NEWNET)", None, e))?;
                NetNs::open_at(Path::new(THREAD_SELF_NET), None)
            },
        )?;
        report::debug!("created the anonymous namespace {ns}");
        Ok(ns)
    }

    /// Creates a persistent named namespace that `ip netns list` and `ip netns exec NAME` see.
    ///
    /// Made as iproute2 makes it: the run dir `/run/netns` is made a shared mount, the name file
    /// is created exclusively, and the namespace of a throwaway thread is bind-mounted on it.
    /// An existing name is [`Error::AlreadyExists`] and is left untouched; of several concurrent
    /// creates of one name exactly one succeeds; a failure half-way leaves no file behind.
    ///
    /// Shorthand for [`Registry::create`] on the default registry, `/run/netns`.
    pub fn create(name: &str) -> Result<NetNs> {
        Registry::default().create(name)
    }

    /// [`NetNs::create`] in `registry`'s directory.
    fn create_in(registry: &Registry, name: &str) -> Result<NetNs> {
        let ns = bind_name(registry, name, |path| {
            on_scoped_thread(
                None,
                || String::from("a new namespace"),
                || {
                    unshare(CloneFlags::CLONE_NEWNET)
                        .map_err(|e| Error::from_errno("unshare(CLONE_NEWNET)", None, e))?;
                    bind_mount(Path::new(THREAD_SELF_NET), path)
                },
            )
        })?;
        report::debug!("created the namespace {ns} ({})", ns.id());
        Ok(ns)
    }

    /// Names this namespace `name` in `registry`'s directory, as `ip netns attach` does: the
    /// name file is created exclusively and the namespace bind-mounted on it.
    fn attach_in(&self, registry: &Registry, name: &str) -> Result<NetNs> {
        // The handle's descriptor, seen through procfs: no need to enter the namespace, so any
        // namespace the process holds can be named, whoever owns it.
        let source = PathBuf::from(format!("/proc/self/fd/{}", self.as_raw_fd()));
        let named = bind_name(registry, name, |path| bind_mount(&source, path))?;
        report::debug!("named the namespace {} {named}", self.id());
        Ok(named)
    }

    /// Removes a named namespace as `ip netns del` does: lazy unmount, then unlink.
    ///
    /// Open handles (and threads and sockets inside) stay valid; the namespace itself goes away
    /// when the last of them does. A run dir that cannot be written (read-only) is an error
    /// before anything is unmounted, so the name stays usable.
    ///
    /// Shorthand for [`Registry::remove`] on the default registry, `/run/netns`.
    pub fn remove(name: &str) -> Result<()> {
        Registry::default().remove(name)
    }

    /// [`NetNs::remove`] of the name file at `path` (a valid name in a run dir).
    fn remove_path(path: PathBuf) -> Result<()> {
        // Unmounting and then failing to unlink would leave a name without a namespace.
        let run_dir = path.parent().unwrap_or(Path::new(RUN_DIR));
        access(run_dir, AccessFlags::W_OK).map_err(|errno| match errno {
            Errno::ENOENT => Error::NotFound { path: path.clone() },
            errno => Error::from_errno("remove (needs write access to)", Some(run_dir), errno),
        })?;
        match umount2(&path, MntFlags::MNT_DETACH) {
            // EINVAL: not a mount point (a half-made or foreign file); still unlink it.
            Ok(()) | Err(Errno::EINVAL) => {}
            Err(errno) => return Err(Error::from_errno_on_namespace("umount", &path, errno)),
        }
        nix::unistd::unlink(&path)
            .map_err(|e| Error::from_errno_on_namespace("unlink", &path, e))?;
        report::debug!("removed the namespace {}", path.display());
        Ok(())
    }

    /// The names in the run dir, sorted; an absent run dir is an empty list.
    ///
    /// Names that are not UTF-8 are left out (no [`NetNs::named`] call could open them).
    ///
    /// Shorthand for [`Registry::list`] on the default registry, `/run/netns`.
    pub fn list() -> Result<Vec<String>> {
        Registry::default().list()
    }

    /// [`NetNs::list`] of the run dir `run_dir`.
    fn list_in(run_dir: &Path) -> Result<Vec<String>> {
        let entries = match fs::read_dir(run_dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(Error::from_io("read_dir", Some(run_dir), err)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|err| Error::from_io("read_dir", Some(run_dir), err))?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

/// Makes a name in `registry` for a namespace that `mount_on` bind-mounts on the name file:
/// the run dir is prepared, the file created exclusively (so of racing calls for one name
/// exactly one succeeds), and on any failure the file is removed again.
fn bind_name(
    registry: &Registry,
    name: &str,
    mount_on: impl FnOnce(&Path) -> Result<()>,
) -> Result<NetNs> {
    let path = registry.path(name)?;
    refuse_a_private_mount_namespace(&path)?;
    let dir = registry.dir();
    if dir.exists() && !dir.is_dir() {
        // Before any mount: preparing the dir would bind the file onto itself.
        return Err(Error::Os {
            operation: "use as the run dir",
            path: Some(dir.to_path_buf()),
            source: io::Error::from_raw_os_error(nix::libc::ENOTDIR),
        });
    }
    prepare_run_dir(dir)?;
    create_name_file(name, &path)?;
    let mut guard = UnlinkUnlessKept {
        path: &path,
        keep: false,
    };
    mount_on(&path)?;
    let ns = NetNs::open(&path)?.in_registry(registry);
    guard.keep = true;
    Ok(ns)
}

/// Bind-mounts the namespace file `source` on the name file `path`.
fn bind_mount(source: &Path, path: &Path) -> Result<()> {
    mount(
        Some(source),
        path,
        // Ignored for a bind mount; "none" as iproute2 passes (NULL upsets memcheck).
        Some("none"),
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| Error::from_errno("bind mount", Some(path), e))
}

/// A name bound from a thread with a mount namespace of its own (a body with the `sysfs` or
/// `etc` view) would exist only there, leaving an empty file in the process's run dir: refused.
fn refuse_a_private_mount_namespace(path: &Path) -> Result<()> {
    let mounts = |of: &str| fs::metadata(of).map(|meta| (meta.dev(), meta.ino())).ok();
    if mounts("/proc/thread-self/ns/mnt") != mounts("/proc/self/ns/mnt") {
        return Err(Error::Os {
            operation: "name a namespace from a body with the sysfs or etc view (its mounts are its \
                        own: do it outside the body, or in a body without options)",
            path: Some(path.to_path_buf()),
            source: io::Error::from_raw_os_error(nix::libc::EINVAL),
        });
    }
    Ok(())
}

/// Makes the run dir exist and be a shared mount point, as iproute2 does, so that removing a
/// name in one mount namespace unmounts it in all of them.
fn prepare_run_dir(run_dir: &Path) -> Result<()> {
    let _serialized = serialize_run_dir_setup();
    match nix::unistd::mkdir(run_dir, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(errno) => return Err(Error::from_errno("mkdir", Some(run_dir), errno)),
    }
    let make_shared = || {
        mount(
            Some(""),
            run_dir,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match make_shared() {
        Ok(()) => return Ok(()),
        // EINVAL: not a mount point yet; bind it onto itself, then retry.
        Err(Errno::EINVAL) => {}
        Err(errno) => {
            return Err(Error::from_errno(
                "mount --make-rshared",
                Some(run_dir),
                errno,
            ));
        }
    }
    mount(
        Some(run_dir),
        run_dir,
        Some("none"),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| Error::from_errno("mount --rbind", Some(run_dir), e))?;
    make_shared().map_err(|e| Error::from_errno("mount --make-rshared", Some(run_dir), e))
}

/// Creates the empty name file exclusively: exactly one of several racing creates gets it.
fn create_name_file(name: &str, path: &Path) -> Result<()> {
    let flags = OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC;
    let fd: OwnedFd =
        nix::fcntl::open(path, flags, Mode::empty()).map_err(|errno| match errno {
            Errno::EEXIST => Error::AlreadyExists {
                name: name.to_owned(),
            },
            errno => Error::from_errno("create", Some(path), errno),
        })?;
    drop(fd);
    Ok(())
}

impl Registry {
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
        NetNs::list_in(self.dir())
    }

    /// The names here bound to the namespace of `ns`, sorted, as `ip netns identify` finds
    /// them; see [`NetNs::names`].
    pub fn names_of(&self, ns: &NetNs) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for name in self.list()? {
            // A name removed, or not yet bound, since the listing is not one of the namespace's.
            let bound = fs::metadata(self.dir().join(&name))
                .is_ok_and(|metadata| NsId::from_metadata(&metadata) == ns.id());
            if bound {
                names.push(name);
            }
        }
        Ok(names)
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
        self.registry().attach(self, name)
    }

    /// The names bound to this namespace, sorted, as `ip netns identify` finds them: the
    /// entries of the handle's [`registry`](NetNs::registry) whose namespace is this one
    /// (compared by identity, so names made by `ip netns` or bind mounts count too). Empty
    /// when it has none. (`ip netns identify` prints only one of several.)
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// # fn main() -> in_netns::Result<()> {
    /// let ns = in_netns::NetNs::of_pid(1234)?;
    /// println!("process 1234 is in {:?}", ns.names()?);
    /// # Ok(()) }
    /// ```
    pub fn names(&self) -> Result<Vec<String>> {
        self.registry().names_of(self)
    }
}

#[cfg(test)]
mod tests {
    use nix::sys::signal::{Signal, raise};
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, alarm, fork};

    use super::*;

    #[test]
    fn a_child_forked_while_a_parent_thread_held_the_run_dir_lock_does_not_wait_for_it() {
        // Recorded before the fork, as the first create of a process records it.
        drop(serialize_run_dir_setup());
        let held = crate::sync::lock(&RUN_DIR_SETUP);
        // SAFETY: the child takes no lock another thread may hold but the one under test (the
        // point: it must skip it), fails its mkdir at once (no such parent directory), and
        // ends itself with SIGKILL (no exit handlers, no stdio lock), or its alarm ends it.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                alarm::set(5);
                let _ = prepare_run_dir(Path::new("/proc/self/no-such-dir/netns"));
                let _ = raise(Signal::SIGKILL);
                unreachable!("SIGKILL ends the child");
            }
            ForkResult::Parent { child } => {
                let status = waitpid(child, None).unwrap();
                drop(held);
                let done = WaitStatus::Signaled(child, Signal::SIGKILL, false);
                assert_eq!(
                    status, done,
                    "the child waited (SIGALRM) for the parent's lock"
                );
            }
        }
    }
}
