//! The crate's typed error: every variant names the path, name or operation it is about.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an operation on a network namespace failed.
///
/// Every variant says what it is about (a path, a name, an operation) and its message tells the
/// user what to do. Converts into [`std::io::Error`] keeping the kind, so functions returning
/// `io::Result` can use `?` on it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The path (or the run-dir entry of a name, or a process's `ns/net`) does not exist.
    NotFound {
        /// The path that was looked up.
        path: PathBuf,
    },
    /// The path exists but is not a network namespace (a regular file, a directory, a device,
    /// another namespace type).
    NotNetns {
        /// The path that was opened.
        path: PathBuf,
        /// What was found there instead, e.g. `"a regular file"` or `"a mnt namespace"`.
        found: String,
    },
    /// The kernel refused the operation (EPERM or EACCES).
    PermissionDenied {
        /// The operation that was refused, e.g. `"setns"`.
        operation: &'static str,
        /// The path the operation was about, when there is one.
        path: Option<PathBuf>,
    },
    /// A path that cannot name any file: a NUL byte, too long, a symlink loop.
    InvalidPath {
        /// The path, as given (lossy where it held a NUL).
        path: PathBuf,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A namespace name that `ip netns` could not use either.
    InvalidName {
        /// The rejected name, as given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A namespace of that name already exists in the run dir; it was left untouched.
    AlreadyExists {
        /// The name asked for.
        name: String,
    },
    /// The `etc` option needs a named namespace (one under `/run/netns`), and this one has none.
    Unnamed {
        /// The namespace, as its path or its id (`net:[4026531840]`).
        namespace: String,
    },
    /// The dedicated thread could not be started (RLIMIT_NPROC, memory, thread limits).
    ThreadSpawn {
        /// The error `std::thread::Builder::spawn` returned.
        source: io::Error,
    },
    /// A [`Worker`](crate::Worker) made by process `pid` was called in a `fork()`ed child of it.
    /// A fork copies only the calling thread, so the child has no worker thread to serve the
    /// call.
    ForkedWorker {
        /// The process that made the worker.
        pid: u32,
    },
    /// Any other operating-system error, with the operation and the path it was about.
    Os {
        /// The failed operation, e.g. `"mount"`.
        operation: &'static str,
        /// The path it was about, when there is one.
        path: Option<PathBuf>,
        /// The OS error, with its errno.
        source: io::Error,
    },
}

impl Error {
    /// Maps an errno from `operation` on the namespace file `path` to the most specific variant.
    ///
    /// `ENOENT`/`ENOTDIR` become [`Error::NotFound`] (whose message is about a namespace) only
    /// when there is a path to name; use [`Error::from_os`] for any other file.
    pub(crate) fn from_errno(operation: &'static str, path: Option<&Path>, errno: Errno) -> Error {
        match (errno, path) {
            (Errno::ENOENT | Errno::ENOTDIR, Some(path)) => Error::NotFound {
                path: path.to_path_buf(),
            },
            _ => Error::from_os(operation, path, errno),
        }
    }

    /// Maps an errno from `operation` on `path`, which is not a namespace file (a mount point,
    /// the run dir, a directory): [`Error::PermissionDenied`] when refused, else [`Error::Os`].
    pub(crate) fn from_os(operation: &'static str, path: Option<&Path>, errno: Errno) -> Error {
        match errno {
            Errno::EPERM | Errno::EACCES => Error::PermissionDenied {
                operation,
                path: path.map(Path::to_path_buf),
            },
            errno => Error::Os {
                operation,
                path: path.map(Path::to_path_buf),
                source: io::Error::from_raw_os_error(errno as i32),
            },
        }
    }

    /// The errno behind this error, when it came from the OS.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Os { source, .. } | Error::ThreadSpawn { source } => source.raw_os_error(),
            Error::NotFound { .. } => Some(Errno::ENOENT as i32),
            Error::PermissionDenied { .. } => Some(Errno::EPERM as i32),
            Error::AlreadyExists { .. } => Some(Errno::EEXIST as i32),
            _ => None,
        }
    }

    /// The [`io::ErrorKind`] this error converts to.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::NotFound { .. } => io::ErrorKind::NotFound,
            Error::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            Error::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
            Error::NotNetns { .. }
            | Error::InvalidPath { .. }
            | Error::InvalidName { .. }
            | Error::Unnamed { .. } => io::ErrorKind::InvalidInput,
            Error::ForkedWorker { .. } => io::ErrorKind::Other,
            Error::ThreadSpawn { source } | Error::Os { source, .. } => source.kind(),
        }
    }
}

/// Writes ` PATH` when there is a path, so messages read naturally either way.
struct OptionalPath<'a>(&'a Option<PathBuf>);

impl fmt::Display for OptionalPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, " {}", path.display()),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { path } => write!(
                f,
                "network namespace {} does not exist (check the name with `ip netns list`, or that the process is alive)",
                path.display()
            ),
            Error::NotNetns { path, found } => write!(
                f,
                "{} is not a network namespace but {found}; pass /run/netns/NAME, /proc/PID/ns/net or a bind mount of one",
                path.display()
            ),
            Error::PermissionDenied { operation, path } => write!(
                f,
                "{operation}{} was refused: network namespaces need CAP_SYS_ADMIN (run as root, or grant the capability)",
                OptionalPath(path)
            ),
            Error::InvalidPath { path, reason } => {
                write!(f, "invalid namespace path {:?}: {reason}", path)
            }
            Error::InvalidName { name, reason } => {
                write!(f, "invalid network namespace name {name:?}: {reason}")
            }
            Error::AlreadyExists { name } => write!(
                f,
                "network namespace {name:?} already exists (it was left untouched; open it with NetNs::named or remove it first)"
            ),
            Error::Unnamed { namespace } => write!(
                f,
                "the `etc` option needs a named namespace (one under /run/netns) but {namespace} has no name; open it with NetNs::named or drop the option"
            ),
            Error::ThreadSpawn { source } => write!(
                f,
                "could not start a thread to enter the namespace: {source} (check RLIMIT_NPROC and available memory)"
            ),
            Error::ForkedWorker { pid } => write!(
                f,
                "this Worker's thread lives in process {pid}, and a forked child has none; make a new Worker in the child (Worker::new), or use NetNs::run"
            ),
            Error::Os {
                operation,
                path,
                source,
            } => write!(f, "{operation}{} failed: {source}", OptionalPath(path)),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ThreadSpawn { source } | Error::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        io::Error::new(err.kind(), err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_not_found_only_when_it_is_a_namespace_file() {
        let namespace = Error::from_errno("open", Some(Path::new("/run/netns/x")), Errno::ENOENT);
        assert!(matches!(namespace, Error::NotFound { .. }));
        let mount_point = Error::from_os("mount sysfs", Some(Path::new("/sys")), Errno::ENOENT);
        assert!(matches!(
            &mount_point,
            Error::Os { operation: "mount sysfs", path: Some(path), .. } if path == Path::new("/sys")
        ));
        assert_eq!(
            mount_point.to_string(),
            "mount sysfs /sys failed: No such file or directory (os error 2)"
        );
    }
}
