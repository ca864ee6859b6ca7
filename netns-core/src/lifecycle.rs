//! Making, naming and removing namespaces, as `ip netns add/del/list` do.

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

use crate::error::{Error, Result};
use crate::handle::{NetNs, THREAD_SELF_NET};
use crate::name::{self, RUN_DIR};
use crate::options::Options;
use crate::registry::Registry;
use crate::thread::on_scoped_thread;

/// Serializes the run-dir setup, so concurrent first creates don't stack bind mounts.
static RUN_DIR_SETUP: Mutex<()> = Mutex::new(());

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
    /// Creates a fresh anonymous network namespace.
    ///
    /// It lives while a handle to it (or a thread or socket in it) does. The calling thread does
    /// not move: a throwaway thread unshares its namespace and ends.
    pub fn new() -> Result<NetNs> {
        on_scoped_thread(&Options::DEFAULT, || {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| Error::from_errno("unshare(CLONE_NEWNET)", None, e))?;
            NetNs::open_at(Path::new(THREAD_SELF_NET), None)
        })
    }

    /// Creates a persistent named namespace that `ip netns list` and `ip netns exec NAME` see.
    ///
    /// Made as iproute2 makes it: the run dir `/run/netns` is made a shared mount, the name file
    /// is created exclusively, and the namespace of a throwaway thread is bind-mounted on it.
    /// An existing name is [`Error::AlreadyExists`] and is left untouched; of several concurrent
    /// creates of one name exactly one succeeds; a failure half-way leaves no file behind.
    pub fn create(name: &str) -> Result<NetNs> {
        Self::create_in(&Registry::default(), name)
    }

    /// [`NetNs::create`] in `registry`'s directory.
    pub(crate) fn create_in(registry: &Registry, name: &str) -> Result<NetNs> {
        bind_name(registry, name, |path| {
            on_scoped_thread(&Options::DEFAULT, || {
                unshare(CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Error::from_errno("unshare(CLONE_NEWNET)", None, e))?;
                bind_mount(Path::new(THREAD_SELF_NET), path)
            })
        })
    }

    /// Names this namespace `name` in `registry`'s directory, as `ip netns attach` does: the
    /// name file is created exclusively and the namespace bind-mounted on it.
    pub(crate) fn attach_in(&self, registry: &Registry, name: &str) -> Result<NetNs> {
        // The handle's descriptor, seen through procfs: no need to enter the namespace, so any
        // namespace the process holds can be named, whoever owns it.
        let source = PathBuf::from(format!("/proc/self/fd/{}", self.as_raw_fd()));
        bind_name(registry, name, |path| bind_mount(&source, path))
    }

    /// Removes a named namespace as `ip netns del` does: lazy unmount, then unlink.
    ///
    /// Open handles (and threads and sockets inside) stay valid; the namespace itself goes away
    /// when the last of them does. A run dir that cannot be written (read-only) is an error
    /// before anything is unmounted, so the name stays usable.
    pub fn remove(name: &str) -> Result<()> {
        Self::remove_path(name::run_path(name)?)
    }

    /// [`NetNs::remove`] of the name file at `path` (a valid name in a run dir).
    pub(crate) fn remove_path(path: PathBuf) -> Result<()> {
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
        nix::unistd::unlink(&path).map_err(|e| Error::from_errno_on_namespace("unlink", &path, e))
    }

    /// The names in the run dir, sorted; an absent run dir is an empty list.
    ///
    /// Names that are not UTF-8 are left out (no [`NetNs::named`] call could open them).
    pub fn list() -> Result<Vec<String>> {
        Self::list_in(Path::new(RUN_DIR))
    }

    /// [`NetNs::list`] of the run dir `run_dir`.
    pub(crate) fn list_in(run_dir: &Path) -> Result<Vec<String>> {
        let entries = match fs::read_dir(run_dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io_error("read_dir", run_dir, err)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|err| io_error("read_dir", run_dir, err))?;
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
    let _serialized = RUN_DIR_SETUP.lock().unwrap_or_else(|e| e.into_inner());
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

/// Wraps an `io::Error` from a std call about `path`.
pub(crate) fn io_error(operation: &'static str, path: &Path, err: io::Error) -> Error {
    match err.raw_os_error() {
        Some(errno) => Error::from_errno(operation, Some(path), Errno::from_raw(errno)),
        None => Error::Os {
            operation,
            path: Some(path.to_path_buf()),
            source: err,
        },
    }
}
