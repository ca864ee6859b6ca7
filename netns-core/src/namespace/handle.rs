//! `NetNs`: an open, validated handle to a network namespace.

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sched::CloneFlags;
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::sys::statfs::{NSFS_MAGIC, PROC_SUPER_MAGIC, fstatfs};

use super::name;
use super::nsid::NsId;
use super::registry::Registry;
use crate::error::{Error, Result};
use crate::once::NoWaitOnce;
use crate::sys;

/// The calling thread's own namespace file.
pub(crate) const THREAD_SELF_NET: &str = "/proc/thread-self/ns/net";

/// An open handle to a network namespace.
///
/// The handle holds a close-on-exec descriptor of the namespace's nsfs file, so the namespace
/// stays alive while the handle does, even after its name is removed. Handles compare equal
/// when they refer to the same namespace ([`NetNs::id`]).
///
/// A handle never moves the calling thread: [`NetNs::run`] and [`NetNs::spawn`] run code on
/// dedicated threads that enter the namespace.
///
/// `clone` is cheap and shares the descriptor (it closes with the last clone);
/// [`NetNs::try_clone`] duplicates it.
#[derive(Clone)]
pub struct NetNs {
    fd: Arc<NsFd>,
    id: NsId,
    path: Option<Arc<Path>>,
    /// The registry the handle was opened, created or attached in (`None`: `/run/netns`).
    registry: Option<Registry>,
}

/// The descriptor the clones of a handle share, and the one slot where the layer that runs code
/// inside keeps what lives there on the handle's behalf (its own warm threads and its count of
/// shared ones inside, its runtimes for async bodies): made on first use, dropped with the last clone. (Behind `dyn Any`, so that
/// this layer knows nothing of what runs inside, and a `NetNs`, whose identity is its
/// namespace's, has no interior mutability that would make it a suspicious `HashSet` key.)
struct NsFd {
    fd: OwnedFd,
    slot: Box<Slot>,
}

/// What a handle's slot may hold: anything its clones can share across threads.
pub(crate) type Slot = dyn Any + Send + Sync + RefUnwindSafe + UnwindSafe;

/// The cell behind [`Slot`]: empty until the layer above fills it.
type SlotCell = NoWaitOnce<Box<Slot>>;

impl NsFd {
    fn new(fd: OwnedFd) -> Arc<NsFd> {
        Arc::new(NsFd {
            fd,
            slot: Box::new(SlotCell::new()),
        })
    }
}

impl NetNs {
    /// Opens any path to a network-namespace file: `/run/netns/NAME`, `/proc/PID/ns/net`,
    /// `/proc/PID/task/TID/ns/net` or a bind mount of one elsewhere.
    ///
    /// The path is validated before anything can enter it: a missing path is
    /// [`Error::NotFound`]; a regular file, directory, device or other namespace type is
    /// [`Error::NotNetns`]; a path no file can have (NUL byte, too long, symlink loop) is
    /// [`Error::InvalidPath`].
    pub fn open(path: impl AsRef<Path>) -> Result<NetNs> {
        let path = path.as_ref();
        Self::open_at(path, Some(path.to_path_buf()))
    }

    /// Opens the calling thread's network namespace.
    pub fn current() -> Result<NetNs> {
        Self::open_at(Path::new(THREAD_SELF_NET), None)
    }

    /// Opens the network namespace a socket was created in (the `SIOCGSKNS` ioctl).
    ///
    /// A socket keeps its namespace for life, whichever thread uses it.
    pub fn of_socket(socket: impl AsFd) -> Result<NetNs> {
        let fd = sys::socket_namespace(socket.as_fd())
            .map_err(|e| Error::from_errno("ioctl(SIOCGSKNS)", None, e))?;
        Self::from_fd(fd)
    }

    /// Takes ownership of a descriptor of a network-namespace file, validating it as
    /// [`NetNs::open`] does. The descriptor should be close-on-exec.
    pub fn from_fd(fd: OwnedFd) -> Result<NetNs> {
        Self::validate(fd, Path::new("<descriptor>"), None)
    }

    /// Opens `path`; `kept_path` is what [`NetNs::path`] will report.
    pub(crate) fn open_at(path: &Path, kept_path: Option<PathBuf>) -> Result<NetNs> {
        // O_NONBLOCK: a FIFO passed by mistake must fail validation, not block the open.
        let invalid = |reason| Error::InvalidPath {
            path: path.to_path_buf(),
            reason,
        };
        if path.as_os_str().as_encoded_bytes().contains(&0) {
            return Err(invalid("it contains a NUL byte"));
        }
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let fd = nix::fcntl::open(path, flags, Mode::empty()).map_err(|errno| match errno {
            Errno::ENAMETOOLONG => invalid("it is longer than the kernel accepts"),
            Errno::ELOOP => invalid("it has too many levels of symbolic links"),
            Errno::ENOENT => match name::run_dir_entry_named_by(path) {
                Some(name) => Error::NameAsPath {
                    path: path.to_path_buf(),
                    name: name.to_owned(),
                },
                None => Error::NotFound {
                    path: path.to_path_buf(),
                },
            },
            errno => Error::from_errno_on_namespace("open", path, errno),
        })?;
        Self::validate(fd, path, kept_path)
    }

    /// Checks that `fd` is a network-namespace file and reads its identity.
    fn validate(fd: OwnedFd, path: &Path, kept_path: Option<PathBuf>) -> Result<NetNs> {
        let not_netns = |found: String| Error::NotNetns {
            path: path.to_path_buf(),
            found,
        };
        let stat = fstat(&fd).map_err(|e| Error::from_errno("fstat", Some(path), e))?;
        let fs = fstatfs(&fd).map_err(|e| Error::from_errno("fstatfs", Some(path), e))?;
        let fs_type = fs.filesystem_type();
        // Namespace files live on nsfs (on kernels before 3.19, procfs).
        if fs_type != NSFS_MAGIC && fs_type != PROC_SUPER_MAGIC {
            return Err(not_netns(describe_file(stat.st_mode)));
        }
        match sys::ns_get_nstype(fd.as_fd()) {
            Ok(kind) if kind == CloneFlags::CLONE_NEWNET.bits() => {}
            Ok(kind) => return Err(not_netns(format!("a {} namespace", namespace_kind(kind)))),
            // Kernels before 4.11 lack the ioctl; setns(CLONE_NEWNET) still refuses any other
            // namespace type with EINVAL, which entering reports as NotNetns.
            Err(Errno::ENOTTY | Errno::EINVAL) if fs_type == NSFS_MAGIC => {}
            Err(_) => return Err(not_netns(describe_file(stat.st_mode))),
        }
        Ok(NetNs {
            fd: NsFd::new(fd),
            id: NsId {
                dev: stat.st_dev,
                ino: stat.st_ino,
            },
            path: kept_path.map(Arc::from),
            registry: None,
        })
    }

    /// The handle, reporting `path` as where it was opened from.
    pub(crate) fn with_path(mut self, path: PathBuf) -> NetNs {
        self.path = Some(Arc::from(path));
        self
    }

    /// The handle, as opened in `registry` (for [`NetNs::name`] and [`NetNs::registry`]).
    pub(crate) fn in_registry(mut self, registry: &Registry) -> NetNs {
        self.registry = Some(registry.clone());
        self
    }

    /// The namespace's identity (nsfs device and inode).
    pub fn id(&self) -> NsId {
        self.id
    }

    /// The path this handle was opened from, when it was opened from a stable one
    /// (`None` for [`NetNs::current`], [`NetNs::new`], [`NetNs::of_socket`], [`NetNs::from_fd`]).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The `ip netns` name, when the handle was opened from `/run/netns/NAME` (or made by
    /// [`NetNs::create`] or [`NetNs::attach`]), or from a [`Registry`]'s directory by name.
    pub fn name(&self) -> Option<&str> {
        let dir = self
            .registry
            .as_ref()
            .map_or(Path::new(name::RUN_DIR), Registry::dir);
        name::name_in(dir, self.path.as_deref()?)
    }

    /// The registry [`NetNs::names`] and [`NetNs::attach`] use: the one the handle was opened,
    /// created or attached in, else the default, `/run/netns`.
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// # fn main() -> in_netns::Result<()> {
    /// let pods = in_netns::Registry::at("/var/run/pods")?;
    /// let ns = pods.create("pod-1")?;
    /// assert_eq!(ns.registry(), &pods);
    /// assert_eq!(ns.name(), Some("pod-1"));
    /// # Ok(()) }
    /// ```
    pub fn registry(&self) -> &Registry {
        static DEFAULT: NoWaitOnce<Registry> = NoWaitOnce::new();
        self.registry
            .as_ref()
            .unwrap_or_else(|| DEFAULT.get_or_init(Registry::default))
    }

    /// A second handle to the same namespace with a descriptor of its own (a duplicated
    /// close-on-exec descriptor), as `File::try_clone` makes. `clone` shares the descriptor.
    pub fn try_clone(&self) -> Result<NetNs> {
        let raw = fcntl(&self.fd.fd, FcntlArg::F_DUPFD_CLOEXEC(0))
            .map_err(|e| Error::from_errno("dup", self.path.as_deref(), e))?;
        // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(NetNs {
            fd: NsFd::new(fd),
            id: self.id,
            path: self.path.clone(),
            registry: self.registry.clone(),
        })
    }

    /// What the layer above keeps in this handle (all its clones): the `T` in the slot, made
    /// by `make` on first use. The slot holds one type, always the same.
    pub(crate) fn slot<T: Any + Send + Sync + RefUnwindSafe + UnwindSafe>(
        &self,
        make: impl FnOnce() -> T,
    ) -> &T {
        let cell: &SlotCell = match (&*self.fd.slot as &dyn Any).downcast_ref() {
            Some(cell) => cell,
            None => unreachable!("a handle's slot is always a `SlotCell`"),
        };
        let held = cell.get_or_init(|| Box::new(make()));
        match (&**held as &dyn Any).downcast_ref() {
            Some(held) => held,
            None => unreachable!("a handle's slot holds one type"),
        }
    }

    /// How errors and messages should name this namespace: its path, else its id.
    pub(crate) fn describe(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None => self.id.to_string(),
        }
    }
}

/// What a non-namespace file is, for [`Error::NotNetns`] messages.
pub(crate) fn describe_file(mode: nix::libc::mode_t) -> String {
    let kind = SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits());
    match kind {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFSOCK => "a socket",
        _ => "another kind of file",
    }
    .to_owned()
}

/// The `/proc/PID/ns/` name of a namespace type returned by `NS_GET_NSTYPE`.
fn namespace_kind(kind: i32) -> &'static str {
    match CloneFlags::from_bits_truncate(kind) {
        CloneFlags::CLONE_NEWNS => "mnt",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWUSER => "user",
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        _ => "non-network",
    }
}

/// The path the handle was opened from, else its id (`net:[4026531840]`): how errors name it.
impl fmt::Display for NetNs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl fmt::Debug for NetNs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetNs")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("fd", &self.fd.fd.as_raw_fd())
            .finish()
    }
}

impl PartialEq for NetNs {
    fn eq(&self, other: &NetNs) -> bool {
        self.id == other.id
    }
}

impl Eq for NetNs {}

impl Hash for NetNs {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.fd.as_fd()
    }
}

impl AsRawFd for NetNs {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.fd.as_raw_fd()
    }
}
