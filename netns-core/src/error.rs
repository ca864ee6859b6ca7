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
/// user what to do.
///
/// # The cause, said once
///
/// A variant that wraps an underlying error (the `source` of [`Error::Os`],
/// [`Error::ThreadSpawn`] and [`Error::Rootless`]) does not repeat it in its message: the
/// message stops before the cause, and [`source`](std::error::Error::source) returns it, as
/// `std::error::Error`'s docs ask, so a report that walks the chain (`anyhow`, `eyre`, a
/// logger) prints each cause once: `mkdir /run/netns failed`, caused by `Permission denied (os
/// error 13)`. The cause stays a value a program can inspect (its `raw_os_error`).
///
/// # `Debug` is the message
///
/// `{:?}` prints the message and its causes on one line (`mkdir /run/netns failed: Permission
/// denied (os error 13)`), not the variant's fields: `fn main() -> Result<(), in_netns::Error>`
/// and `unwrap()` print an error with `Debug`, and should show what the user is to read, as
/// `Display` does. Match on the variant (it is public) to see its fields.
///
/// # Into `io::Error`
///
/// Converts into [`std::io::Error`] (so functions returning `io::Result` can use `?` on it),
/// keeping what programs match on: an error with an errno ([`Error::raw_os_error`]) becomes
/// that OS error, `io::Error::from_raw_os_error(errno)`, whose `raw_os_error()` and `kind()`
/// are the errno's. An `io::Error` cannot hold both an errno and a message of its own, so the
/// message (the path, the operation, the advice) stays with this `Error`: report it before
/// converting, or return `in_netns::Result` (or `Box<dyn Error>`, `anyhow::Error`) to keep it.
/// An error with no errno becomes `io::Error::new(err.kind(), err)`: its message is this one,
/// and `get_ref()` downcasts to this `Error`.
#[non_exhaustive]
pub enum Error {
    /// The namespace file (a path, the entry of a name in its registry's directory, or a
    /// process's `ns/net`) does not exist.
    NotFound {
        /// The path that was looked up.
        path: PathBuf,
    },
    /// A relative path that does not exist, while the run dir has an entry of that name: a name
    /// was written where a path goes (`#[in_netns("blue")]` for `#[in_netns(name = "blue")]`).
    NameAsPath {
        /// The relative path, as given.
        path: PathBuf,
        /// The run-dir entry it matches: the name to pass instead.
        name: String,
    },
    /// The path exists but is not a network namespace (a regular file, a directory, a device,
    /// another namespace type).
    NotNetns {
        /// The path that was opened.
        path: PathBuf,
        /// What was found there instead, e.g. `"a regular file"` or `"a mnt namespace"`.
        found: String,
    },
    /// The kernel refused the operation for lack of privilege (EPERM): creating, entering and
    /// mounting need `CAP_SYS_ADMIN`.
    PermissionDenied {
        /// The operation that was refused, e.g. `"setns"`.
        operation: &'static str,
        /// The path the operation was about, when there is one.
        path: Option<PathBuf>,
    },
    /// The kernel refused access to a file (EACCES): its permissions, or, for another process's
    /// `/proc/PID/ns/net`, the ptrace access check (which `CAP_SYS_ADMIN` does not pass).
    AccessDenied {
        /// The operation that was refused, e.g. `"open"`.
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
    /// The process a pidfd or child refers to has exited (or was already waited for): its
    /// network namespace went with it, and its pid may already be another process's, whose
    /// namespace is never returned instead.
    ProcessExited {
        /// The process, as it was given: e.g. `"pidfd 7 (pid 1234)"` or `"child pid 1234"`.
        process: String,
    },
    /// A descriptor passed as a pidfd is not one (or is not open).
    NotPidfd {
        /// The descriptor, as given.
        fd: std::os::fd::RawFd,
        /// What it is instead, e.g. `"it is a regular file"` or `"it is not open"`.
        found: String,
    },
    /// The `etc` option needs a named namespace (opened by its name in `/run/netns` or a
    /// [`Registry`](crate::Registry)), and this one has none.
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
    /// [`rootless::enter`](crate::rootless::enter) was called after a thread started: the kernel
    /// refuses a new user namespace to a multithreaded process.
    NotSingleThreaded {
        /// How many threads the process had.
        threads: usize,
    },
    /// A step of [`rootless::enter`](crate::rootless::enter) failed.
    Rootless {
        /// The step, e.g. `"unshare(CLONE_NEWUSER | CLONE_NEWNS)"` or `"/proc/self/uid_map"`.
        step: String,
        /// The OS error, with its errno.
        source: io::Error,
        /// The system setting that forbids unprivileged user namespaces, when one does, with
        /// how to allow them.
        forbidden_by: Option<String>,
        /// What the failure usually means, and what to do, when that is known.
        hint: Option<&'static str>,
    },
    /// The namespace thread that ran the call ended in the middle of it, neither returning nor
    /// unwinding: the body ended its own thread (a seccomp filter that kills it, a raw `exit`
    /// system call). What the body did before is not undone; the next call gets a new thread.
    ThreadEnded {
        /// The namespace, as its path or its id.
        namespace: String,
    },
    /// A [`Worker`](crate::Worker)'s thread had to be replaced (a body left it in a state it
    /// could not be put back from), and the calling thread's security context (credentials,
    /// capabilities, `no_new_privs`, seccomp) is not that of the thread that made the Worker,
    /// whose context a Worker's bodies run with.
    WorkerContext {
        /// The namespace, as its path or its id.
        namespace: String,
    },
    /// The namespace runtime an async body ran on shut down before the body finished.
    RuntimeShutDown {
        /// The namespace, as its path or its id.
        namespace: String,
    },
    /// The running kernel lacks a part an operation needs (a queueing discipline, a
    /// classifier) and cannot load it: `config` names the kernel option that provides it.
    KernelLacks {
        /// What is missing, e.g. `"the netem qdisc (delay and jitter)"`.
        what: &'static str,
        /// The kernel configuration option that provides it, e.g. `"CONFIG_NET_SCH_NETEM"`.
        config: &'static str,
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
    /// Maps an errno from `operation` on `path` to the most specific variant: EPERM is
    /// [`Error::PermissionDenied`], EACCES [`Error::AccessDenied`], anything else (ENOENT
    /// included: a missing mount point or run dir is not a missing namespace) [`Error::Os`].
    pub(crate) fn from_errno(operation: &'static str, path: Option<&Path>, errno: Errno) -> Error {
        let path = path.map(Path::to_path_buf);
        match errno {
            Errno::EPERM => Error::PermissionDenied { operation, path },
            Errno::EACCES => Error::AccessDenied { operation, path },
            _ => Error::Os {
                operation,
                path,
                source: io::Error::from_raw_os_error(errno as i32),
            },
        }
    }

    /// [`Error::from_errno`] for an `io::Error` of a std call: the errno decides the variant as
    /// there; an error without one is [`Error::Os`].
    pub(crate) fn from_io(operation: &'static str, path: Option<&Path>, err: io::Error) -> Error {
        match err.raw_os_error() {
            Some(errno) => Error::from_errno(operation, path, Errno::from_raw(errno)),
            None => Error::Os {
                operation,
                path: path.map(Path::to_path_buf),
                source: err,
            },
        }
    }

    /// [`Error::from_errno`] for an operation on a namespace file itself (opening it, removing
    /// its name): there, ENOENT and ENOTDIR mean the namespace does not exist, [`Error::NotFound`].
    pub(crate) fn from_errno_on_namespace(
        operation: &'static str,
        path: &Path,
        errno: Errno,
    ) -> Error {
        match errno {
            Errno::ENOENT | Errno::ENOTDIR => Error::NotFound {
                path: path.to_path_buf(),
            },
            errno => Error::from_errno(operation, Some(path), errno),
        }
    }

    /// The errno behind this error, when it came from the OS.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Os { source, .. }
            | Error::ThreadSpawn { source }
            | Error::Rootless { source, .. } => source.raw_os_error(),
            Error::NotFound { .. } | Error::NameAsPath { .. } => Some(Errno::ENOENT as i32),
            Error::PermissionDenied { .. } => Some(Errno::EPERM as i32),
            Error::AccessDenied { .. } => Some(Errno::EACCES as i32),
            Error::AlreadyExists { .. } => Some(Errno::EEXIST as i32),
            Error::ProcessExited { .. } => Some(Errno::ESRCH as i32),
            _ => None,
        }
    }

    /// The [`io::ErrorKind`] this error converts to.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::NotFound { .. } | Error::NameAsPath { .. } | Error::ProcessExited { .. } => {
                io::ErrorKind::NotFound
            }
            Error::PermissionDenied { .. } | Error::AccessDenied { .. } => {
                io::ErrorKind::PermissionDenied
            }
            Error::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
            Error::NotNetns { .. }
            | Error::InvalidPath { .. }
            | Error::InvalidName { .. }
            | Error::NotPidfd { .. }
            | Error::Unnamed { .. } => io::ErrorKind::InvalidInput,
            Error::RuntimeShutDown { .. } | Error::ThreadEnded { .. } => io::ErrorKind::Other,
            Error::WorkerContext { .. } => io::ErrorKind::PermissionDenied,
            Error::NotSingleThreaded { .. } => io::ErrorKind::Unsupported,
            Error::Rootless { source, .. } => source.kind(),
            Error::ForkedWorker { .. } => io::ErrorKind::Other,
            Error::KernelLacks { .. } => io::ErrorKind::Unsupported,
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
            Error::NotFound { path } => {
                write!(f, "network namespace {} does not exist", path.display())?;
                let dir = path.parent().unwrap_or(Path::new("/"));
                if dir == Path::new(crate::RUN_DIR) {
                    write!(f, " (check the name with `ip netns list`)")
                } else if path.starts_with("/proc") {
                    write!(f, " (check that the process is alive)")
                } else if dir.as_os_str().is_empty() {
                    write!(f, " (check the path; a name goes to NetNs::named)")
                } else {
                    write!(
                        f,
                        " (check the path, or the name among the entries of {})",
                        dir.display()
                    )
                }
            }
            Error::NotNetns { path, found } => write!(
                f,
                "{} is not a network namespace but {found}; pass /run/netns/NAME, /proc/PID/ns/net or a bind mount of one",
                path.display()
            ),
            Error::NameAsPath { path, name } => write!(
                f,
                "no file {} here, but the network namespace {name:?} exists: pass the name with #[in_netns(name = {name:?})] or NetNs::named({name:?}), or the path {}",
                path.display(),
                Path::new(crate::RUN_DIR).join(name).display()
            ),
            Error::PermissionDenied { operation, path } => write!(
                f,
                "{operation}{} was refused: network namespaces need CAP_SYS_ADMIN (run as root, grant the capability, or call in_netns::rootless::enter() first thing in main)",
                OptionalPath(path)
            ),
            Error::AccessDenied { operation, path } => write!(
                f,
                "{operation}{} was refused (EACCES): the file's permissions do not allow it, or, for another process's /proc/PID/ns/net, the ptrace access check failed (the caller needs the process's user and all of its capabilities, or CAP_SYS_PTRACE)",
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
                "network namespace {name:?} already exists (it was left untouched; open it by its name with `NetNs::named`, or `Registry::named` for a registry of your own, or remove the name first)"
            ),
            Error::ProcessExited { process } => write!(
                f,
                "{process} has exited: its network namespace is gone with it (and its pid may be another process's by now); get the namespace while the process runs, through a pidfd or its Child"
            ),
            Error::NotPidfd { fd, found } => write!(
                f,
                "descriptor {fd} is not a pidfd ({found}); pass one from pidfd_open(2), clone3(CLONE_PIDFD) or SO_PEERPIDFD, or use NetNs::of_child"
            ),
            Error::Unnamed { namespace } => write!(
                f,
                "the `etc` option needs a named namespace (opened by its name in /run/netns or a Registry) but {namespace} has no name; open it with NetNs::named, give it one with NetNs::attach, or drop the option"
            ),
            Error::ThreadSpawn { .. } => write!(
                f,
                "could not start a thread to enter the namespace (check RLIMIT_NPROC and available memory)"
            ),
            Error::ForkedWorker { pid } => write!(
                f,
                "this Worker's thread lives in process {pid}, and a forked child has none; make a new Worker in the child (ns.worker()), or use NetNs::run"
            ),
            Error::NotSingleThreaded { threads } => write!(
                f,
                "rootless::enter() must run before any thread starts (the kernel refuses a user namespace to a multithreaded process), but the process has {threads} threads: call it first thing in main"
            ),
            Error::Rootless {
                step,
                forbidden_by,
                hint,
                ..
            } => {
                write!(f, "without root, {step} failed")?;
                if let Some(setting) = forbidden_by {
                    write!(
                        f,
                        "; this system forbids unprivileged user namespaces: {setting}"
                    )?;
                }
                match hint {
                    Some(hint) => write!(f, "; {hint}"),
                    None => Ok(()),
                }
            }
            Error::ThreadEnded { namespace } => write!(
                f,
                "the thread inside {namespace} ended in the middle of the call, without returning or unwinding: the body ended its own thread (a seccomp filter that kills it, a raw exit system call); what it did is not undone, and the next call gets a new thread"
            ),
            Error::WorkerContext { namespace } => write!(
                f,
                "the Worker's thread inside {namespace} had to be replaced, and a replacement started from this thread would not have the security context of the Worker's maker (credentials, capabilities, no_new_privs, seccomp): call it from a thread like its maker, or make a new Worker from this one"
            ),
            Error::RuntimeShutDown { namespace } => write!(
                f,
                "the runtime inside {namespace} shut down before the async body finished: it shuts down with its last handle (an `in_netns::NetnsRuntime`, or for a body run on a `NetNs`, the last clone of that `NetNs`), so keep one until the call is done"
            ),
            Error::KernelLacks { what, config } => write!(
                f,
                "this kernel lacks {what} and cannot load it: use a kernel built with {config} (=y, or =m with module loading), or leave out what needs it"
            ),
            Error::Os {
                operation, path, ..
            } => write!(f, "{operation}{} failed", OptionalPath(path)),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ThreadSpawn { source }
            | Error::Os { source, .. }
            | Error::Rootless { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The message, then each cause (`: CAUSE`), on one line: what `fn main` and `unwrap` print
/// (see [`Error`]'s docs).
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut cause = std::error::Error::source(self);
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

/// The OS error itself when there is an errno (its `raw_os_error` and kind kept; the message
/// stays with the `Error`), else an `io::Error` of this error's kind that carries it (see
/// [`Error`]'s docs).
impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        match err.raw_os_error() {
            Some(errno) => io::Error::from_raw_os_error(errno),
            None => io::Error::new(err.kind(), err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_and_eacces_are_told_apart_and_both_permission_denied() {
        let path = Some(Path::new("/proc/1/ns/net"));
        let eperm = Error::from_errno("setns", path, Errno::EPERM);
        let eacces = Error::from_errno("open", path, Errno::EACCES);
        assert!(matches!(eperm, Error::PermissionDenied { .. }), "{eperm:?}");
        assert!(matches!(eacces, Error::AccessDenied { .. }), "{eacces:?}");
        for (err, errno) in [(&eperm, Errno::EPERM), (&eacces, Errno::EACCES)] {
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
            assert_eq!(err.raw_os_error(), Some(errno as i32));
        }
        assert!(eperm.to_string().contains("need CAP_SYS_ADMIN"), "{eperm}");
        let eacces = eacces.to_string();
        assert!(!eacces.contains("need CAP_SYS_ADMIN"), "{eacces}");
        assert!(
            eacces.starts_with("open /proc/1/ns/net was refused (EACCES)")
                && eacces.contains("ptrace access check"),
            "{eacces}"
        );
    }

    #[test]
    fn enoent_is_not_found_only_for_a_namespace_file() {
        let sys = Path::new("/sys");
        let mount = Error::from_errno("mount sysfs", Some(sys), Errno::ENOENT);
        match &mount {
            Error::Os {
                operation: "mount sysfs",
                path: Some(path),
                source,
            } => {
                assert_eq!(path, sys);
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("expected Os, got {other:?}"),
        }
        assert_eq!(mount.to_string(), "mount sysfs /sys failed");
        let open = Error::from_errno_on_namespace("open", Path::new("/run/netns/x"), Errno::ENOENT);
        assert!(matches!(open, Error::NotFound { .. }), "{open:?}");
        let refused =
            Error::from_errno_on_namespace("open", Path::new("/run/netns/x"), Errno::EACCES);
        assert!(matches!(refused, Error::AccessDenied { .. }), "{refused:?}");
    }

    #[test]
    fn a_name_written_as_a_path_says_how_to_pass_the_name() {
        let err = Error::NameAsPath {
            path: PathBuf::from("blue"),
            name: "blue".to_owned(),
        };
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let message = err.to_string();
        assert!(
            message.contains("#[in_netns(name = \"blue\")]")
                && message.contains("NetNs::named(\"blue\")")
                && message.contains("/run/netns/blue"),
            "{message}"
        );
    }

    /// One of each variant, with an OS error as the source where there is one. The match makes
    /// a new variant a compile error here until it is added.
    fn one_of_each() -> Vec<Error> {
        let os = || io::Error::from_raw_os_error(Errno::ENOENT as i32);
        let all = vec![
            Error::NotFound {
                path: PathBuf::from("/run/netns/blue"),
            },
            Error::NameAsPath {
                path: PathBuf::from("blue"),
                name: "blue".to_owned(),
            },
            Error::NotNetns {
                path: PathBuf::from("/etc/hosts"),
                found: "a regular file".to_owned(),
            },
            Error::PermissionDenied {
                operation: "setns",
                path: Some(PathBuf::from("/run/netns/blue")),
            },
            Error::AccessDenied {
                operation: "open",
                path: Some(PathBuf::from("/proc/1/ns/net")),
            },
            Error::InvalidPath {
                path: PathBuf::from("a\0b"),
                reason: "contains a NUL byte",
            },
            Error::InvalidName {
                name: "a/b".to_owned(),
                reason: "contains a slash",
            },
            Error::AlreadyExists {
                name: "blue".to_owned(),
            },
            Error::ProcessExited {
                process: "child pid 1234".to_owned(),
            },
            Error::NotPidfd {
                fd: 7,
                found: "it is a regular file".to_owned(),
            },
            Error::Unnamed {
                namespace: "net:[4026531840]".to_owned(),
            },
            Error::ThreadSpawn {
                source: io::Error::from_raw_os_error(Errno::EAGAIN as i32),
            },
            Error::ForkedWorker { pid: 1234 },
            Error::NotSingleThreaded { threads: 3 },
            Error::Rootless {
                step: "unshare(CLONE_NEWUSER | CLONE_NEWNS)".to_owned(),
                source: io::Error::from_raw_os_error(Errno::EPERM as i32),
                forbidden_by: Some("kernel.unprivileged_userns_clone = 0".to_owned()),
                hint: Some("allow them"),
            },
            Error::ThreadEnded {
                namespace: "net:[1]".to_owned(),
            },
            Error::WorkerContext {
                namespace: "net:[1]".to_owned(),
            },
            Error::RuntimeShutDown {
                namespace: "net:[1]".to_owned(),
            },
            Error::KernelLacks {
                what: "the netem qdisc (delay and jitter)",
                config: "CONFIG_NET_SCH_NETEM",
            },
            Error::Os {
                operation: "mkdir",
                path: Some(PathBuf::from("/run/netns")),
                source: os(),
            },
        ];
        for err in &all {
            match err {
                Error::NotFound { .. }
                | Error::NameAsPath { .. }
                | Error::NotNetns { .. }
                | Error::PermissionDenied { .. }
                | Error::AccessDenied { .. }
                | Error::InvalidPath { .. }
                | Error::InvalidName { .. }
                | Error::AlreadyExists { .. }
                | Error::ProcessExited { .. }
                | Error::NotPidfd { .. }
                | Error::Unnamed { .. }
                | Error::ThreadSpawn { .. }
                | Error::ForkedWorker { .. }
                | Error::NotSingleThreaded { .. }
                | Error::Rootless { .. }
                | Error::ThreadEnded { .. }
                | Error::WorkerContext { .. }
                | Error::RuntimeShutDown { .. }
                | Error::KernelLacks { .. }
                | Error::Os { .. } => {}
            }
        }
        all
    }

    #[test]
    fn a_report_that_walks_the_source_chain_says_each_cause_once() {
        for err in one_of_each() {
            let mut messages = vec![err.to_string()];
            let mut cause = std::error::Error::source(&err);
            while let Some(next) = cause {
                messages.push(next.to_string());
                cause = next.source();
            }
            for (at, message) in messages.iter().enumerate() {
                for later in &messages[at + 1..] {
                    assert!(
                        !message.contains(later.as_str()),
                        "{message:?} repeats its cause {later:?}"
                    );
                }
            }
            let report = messages.join(": ");
            assert_eq!(format!("{err:?}"), report, "Debug is the report");
        }
    }

    #[test]
    fn os_errors_keep_their_errno_through_io_error() {
        for err in one_of_each() {
            let (errno, kind, message) = (err.raw_os_error(), err.kind(), err.to_string());
            let io = io::Error::from(err);
            assert_eq!(io.raw_os_error(), errno, "{message}");
            match errno {
                Some(errno) => assert_eq!(io.kind(), io::Error::from_raw_os_error(errno).kind()),
                None => {
                    assert_eq!(io.kind(), kind, "{message}");
                    assert_eq!(io.to_string(), message);
                    assert!(io.get_ref().is_some_and(|inner| inner.is::<Error>()));
                }
            }
        }
        let mkdir = Error::from_errno("mkdir", Some(Path::new("/run/netns")), Errno::ENOSPC);
        assert_eq!(mkdir.to_string(), "mkdir /run/netns failed");
        assert_eq!(
            io::Error::from(mkdir).raw_os_error(),
            Some(Errno::ENOSPC as i32)
        );
    }

    #[test]
    fn not_found_names_where_to_look_for_the_namespace() {
        let message = |path: &str| Error::NotFound { path: path.into() }.to_string();
        assert!(message("/run/netns/blue").contains("ip netns list"));
        let custom = message("/var/run/pods/blue");
        assert!(
            !custom.contains("ip netns") && custom.contains("the entries of /var/run/pods"),
            "{custom}"
        );
        let process = message("/proc/1234/ns/net");
        assert!(process.contains("the process is alive"), "{process}");
    }

    #[test]
    fn debug_prints_the_message_not_the_fields() {
        let err = Error::AlreadyExists {
            name: "blue".to_owned(),
        };
        assert_eq!(format!("{err:?}"), err.to_string());
        assert!(!format!("{err:?}").contains("AlreadyExists {"));
    }
}
