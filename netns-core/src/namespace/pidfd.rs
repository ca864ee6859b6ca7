//! Processes and their namespaces: the namespace of exactly one process (through a pidfd, so a
//! reused pid is an error rather than another process's namespace), and the processes inside
//! a namespace.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;
use nix::sys::stat::fstat;

use super::handle::{NetNs, describe_file};
use super::nsid::NsId;
use crate::error::{Error, Result};
use crate::sys;

/// How [`of_pidfd`] reads the namespace.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `PIDFD_GET_NET_NAMESPACE` where the kernel has it, else procfs.
    Kernel,
    /// `/proc/PID/ns/net` and a liveness check through the pidfd (what older kernels get).
    Procfs,
}

impl NetNs {
    /// Opens the network namespace of process `pid` (`/proc/PID/ns/net`; a thread id names its
    /// thread, as there).
    ///
    /// Race-free within the call: a pidfd of the process is taken first and the namespace read
    /// through it, so a process that exits and whose pid is reused while the call runs is an
    /// error, never the namespace of the process that took the pid over. A pid learnt earlier
    /// may already be stale, though: to hold on to exactly one process, use
    /// [`NetNs::of_child`] or [`NetNs::of_pidfd`]. A pid with no process (or only a zombie)
    /// is [`Error::NotFound`].
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// # fn main() -> in_netns::Result<()> {
    /// let init = in_netns::NetNs::of_pid(1)?; // the host's namespace, seen from PID 1
    /// # Ok(()) }
    /// ```
    pub fn of_pid(pid: u32) -> Result<NetNs> {
        of_pid(pid)
    }

    /// Opens the network namespace of the process a pidfd refers to: exactly that process,
    /// whatever has become of its pid since.
    ///
    /// On Linux 6.11 and later the kernel hands over the namespace of the pidfd's process
    /// (`PIDFD_GET_NET_NAMESPACE`). Older kernels get `/proc/PID/ns/net` followed by a check,
    /// through the pidfd, that the process still holds its pid, so that a pid reused in
    /// between is refused rather than opened. Either way, a process that has exited (a
    /// zombie included) is [`Error::ProcessExited`]; a descriptor that is not a pidfd (or not
    /// open) is [`Error::NotPidfd`]; another user's process is [`Error::AccessDenied`] (the
    /// ptrace access check, as for `/proc/PID/ns/net`). The pidfd stays the caller's.
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// # fn main() -> in_netns::Result<()> {
    /// # let pidfd = std::fs::File::open("/dev/null").unwrap();
    /// // `pidfd` from pidfd_open(2), clone3(CLONE_PIDFD) or a socket's SO_PEERPIDFD:
    /// let ns = in_netns::NetNs::of_pidfd(&pidfd)?;
    /// # Ok(()) }
    /// ```
    pub fn of_pidfd(pidfd: impl AsFd) -> Result<NetNs> {
        of_pidfd_via(pidfd.as_fd(), Via::Kernel)
    }

    /// [`NetNs::of_pidfd`] as kernels before 6.11 run it (procfs, then the liveness check),
    /// so that tests on newer kernels can show it refuses a reused pid
    /// (`__private::of_pidfd_through_procfs`).
    pub(crate) fn of_pidfd_through_procfs(pidfd: impl AsFd) -> Result<NetNs> {
        of_pidfd_via(pidfd.as_fd(), Via::Procfs)
    }

    /// Opens the network namespace of a child process: exactly that child, never a process
    /// that took over its pid.
    ///
    /// A child that has exited is [`Error::ProcessExited`], and so is one already waited for
    /// (whose pid may be another process's by now, even another child's). The call asks the
    /// child's `try_wait` first, which is why it takes `&mut`: std's `Child` tells whether it
    /// was reaped only through `try_wait` (its `id` stays the same after `wait`), and a status
    /// it finds stays with the `Child`, for `wait` to return later. (A tokio `Child` says so
    /// with a shared borrow, so [`NetNs::of_tokio_child`] takes `&Child`.) Until then the child's pid cannot change hands,
    /// so the pidfd taken next is the child's. For a child of
    /// [`NetnsCommandExt::netns`](crate::NetnsCommandExt::netns) this is the namespace it entered.
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut child = std::process::Command::new("sleep").arg("60").spawn()?;
    /// let ns = in_netns::NetNs::of_child(&mut child)?;
    /// # Ok(()) }
    /// ```
    pub fn of_child(child: &mut std::process::Child) -> Result<NetNs> {
        let pid = child.id();
        match child.try_wait() {
            Ok(None) => of_unwaited_child(pid),
            Ok(Some(_)) => Err(Error::ProcessExited {
                process: format!("child pid {pid}"),
            }),
            Err(err) => Err(Error::Os {
                operation: "waitpid",
                path: None,
                source: err,
            }),
        }
    }

    /// [`NetNs::of_child`] for a tokio child (feature `tokio`). One that was awaited to
    /// completion (`wait`, `try_wait` returning its status) is [`Error::ProcessExited`]; until
    /// then tokio has not reaped it (its `id` is still `Some`), so a shared borrow will do.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn of_tokio_child(child: &tokio::process::Child) -> Result<NetNs> {
        match child.id() {
            Some(pid) => of_unwaited_child(pid),
            None => Err(Error::ProcessExited {
                process: "a tokio child that was already waited for".to_owned(),
            }),
        }
    }

    /// The processes whose network namespace this is, sorted, as `ip netns pids` lists them
    /// (by their `/proc/PID/ns/net`, the namespace of each process's main thread).
    ///
    /// A snapshot: by the time it returns, a listed process may have exited and its pid been
    /// reused, and new processes may have come. Processes that exit during the scan are left
    /// out, and so are those whose namespace the caller may not inspect (another user's, by
    /// the ptrace access check), as `ip netns pids` leaves them out. Threads this crate runs
    /// inside ([`NetNs::run`], [`Worker`](crate::Worker)) belong to processes whose main thread
    /// is elsewhere, so they do not make their process count. To hold on to one process, use a
    /// pidfd ([`NetNs::of_pidfd`]).
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// # fn main() -> in_netns::Result<()> {
    /// let ns = in_netns::NetNs::named("blue")?;
    /// println!("inside blue: {:?}", ns.pids()?);
    /// # Ok(()) }
    /// ```
    pub fn pids(&self) -> Result<Vec<u32>> {
        let proc = Path::new("/proc");
        let entries =
            fs::read_dir(proc).map_err(|err| Error::from_io("read_dir", Some(proc), err))?;
        let mut pids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|err| Error::from_io("read_dir", Some(proc), err))?;
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let inside = fs::metadata(proc_net_path(pid))
                .is_ok_and(|metadata| NsId::from_metadata(&metadata) == self.id());
            if inside {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        Ok(pids)
    }
}

/// [`NetNs::of_pid`]: through a pidfd taken first, so the namespace is the one of the
/// process that had the pid when the call began.
pub(crate) fn of_pid(pid: u32) -> Result<NetNs> {
    let path = proc_net_path(pid);
    let not_found = || Error::NotFound { path: path.clone() };
    let Some(raw) = i32::try_from(pid).ok().filter(|raw| *raw > 0) else {
        return Err(not_found());
    };
    // PIDFD_THREAD (Linux 6.9) lets a thread id name its thread, as `/proc/TID/ns/net` does;
    // earlier kernels refuse the flag, and a process's pid needs none.
    let pidfd = match sys::pidfd_open(raw, libc::O_EXCL as libc::c_uint) {
        Err(Errno::EINVAL) => sys::pidfd_open(raw, 0),
        opened => opened,
    };
    let pidfd = match pidfd {
        Ok(pidfd) => pidfd,
        Err(Errno::ESRCH) => return Err(not_found()),
        // No pidfds (before Linux 5.3), or a thread id (before 6.9): only the file is left.
        Err(Errno::ENOSYS | Errno::EINVAL) => return NetNs::open(&path),
        Err(errno) => return Err(Error::from_errno("pidfd_open", Some(&path), errno)),
    };
    match of_pidfd(pidfd.as_fd(), Via::Kernel, &String::new) {
        Ok(ns) => Ok(ns.with_path(path)),
        // By number, a process that is gone is a file that does not exist, as it always was.
        Err(Error::ProcessExited { .. }) => Err(not_found()),
        Err(err) => Err(err),
    }
}

/// [`NetNs::of_pidfd`], errors naming the descriptor (and its pid, when known).
fn of_pidfd_via(pidfd: BorrowedFd<'_>, via: Via) -> Result<NetNs> {
    let fd = pidfd.as_raw_fd();
    if fcntl(pidfd, FcntlArg::F_GETFD) == Err(Errno::EBADF) {
        return Err(Error::NotPidfd {
            fd,
            found: "it is not open".to_owned(),
        });
    }
    let describe = || match pid_of(pidfd) {
        Ok(Some(pid)) => format!("pidfd {fd} (pid {pid})"),
        _ => format!("pidfd {fd}"),
    };
    of_pidfd(pidfd, via, &describe)
}

/// [`NetNs::of_child`] of a child not waited for: nothing else can reap it while the caller
/// holds it, so its pid is its own and a pidfd of that pid is the child's (a zombie's too).
fn of_unwaited_child(pid: u32) -> Result<NetNs> {
    let process = || format!("child pid {pid}");
    let exited = || Error::ProcessExited { process: process() };
    let raw = i32::try_from(pid).map_err(|_| exited())?;
    let pidfd = match sys::pidfd_open(raw, 0) {
        Ok(pidfd) => pidfd,
        Err(Errno::ESRCH) => return Err(exited()),
        Err(errno) => return Err(Error::from_errno("pidfd_open", None, errno)),
    };
    of_pidfd(pidfd.as_fd(), Via::Kernel, &process)
}

/// The namespace of the process `pidfd` refers to; `process` names it in errors.
fn of_pidfd(pidfd: BorrowedFd<'_>, via: Via, process: &dyn Fn() -> String) -> Result<NetNs> {
    let exited = || Error::ProcessExited { process: process() };
    if via == Via::Kernel {
        match sys::pidfd_get_net_namespace(pidfd) {
            Ok(fd) => return NetNs::from_fd(fd),
            Err(Errno::ESRCH) => return Err(exited()),
            // Before Linux 6.11 pidfs has no such request, and before 6.9 there is no pidfs to
            // send it to (ENOTTY from `sys`): procfs it is.
            Err(Errno::ENOTTY | Errno::EINVAL | Errno::EOPNOTSUPP) => {}
            // EACCES: the ptrace access check, the same as opening its /proc/PID/ns/net.
            Err(errno) => {
                let path = pid_of(pidfd).ok().flatten().map(proc_net_path);
                return Err(Error::from_errno("open", path.as_deref(), errno));
            }
        }
    }
    let Some(pid) = pid_of(pidfd)? else {
        return Err(exited());
    };
    let ns = NetNs::open_at(&proc_net_path(pid), None).map_err(|err| match err {
        Error::NotFound { .. } => exited(),
        err => err,
    })?;
    // A pid goes to another process only once its process is reaped, which the pidfd sees: if
    // the pidfd's process still has the pid after the open, the file opened was its own.
    if pid_of(pidfd)? != Some(pid) {
        return Err(exited());
    }
    Ok(ns)
}

/// The pid of a pidfd's process, from its fdinfo; `None` once the process has been reaped.
fn pid_of(pidfd: BorrowedFd<'_>) -> Result<Option<u32>> {
    let fd = pidfd.as_raw_fd();
    let path = PathBuf::from(format!("/proc/self/fdinfo/{fd}"));
    let fdinfo =
        fs::read_to_string(&path).map_err(|err| Error::from_io("read", Some(&path), err))?;
    let Some(pid) = fdinfo.lines().find_map(|line| line.strip_prefix("Pid:")) else {
        let found = match fstat(pidfd) {
            Ok(stat) => format!("it is {}", describe_file(stat.st_mode)),
            Err(_) => "it is some other descriptor".to_owned(),
        };
        return Err(Error::NotPidfd { fd, found });
    };
    match pid.trim().parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(pid) if pid > 0 => Ok(u32::try_from(pid).ok()),
        // 0: the process is in a pid namespace this /proc does not show, so its files are
        // out of reach (the kernel's request needs none of them).
        _ => Err(Error::Os {
            operation: "find the pidfd's process in /proc (it is in a pid namespace /proc does not show)",
            path: Some(path),
            source: std::io::Error::from_raw_os_error(libc::ESRCH),
        }),
    }
}

/// The namespace file of process `pid`.
fn proc_net_path(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/net"))
}
