//! Without root: a process alone in a user namespace it made has every capability over the
//! namespaces that user namespace owns.
//!
//! [`enter`] moves the calling process, while it is still single-threaded, into a new user
//! namespace where it is root (its own uid and gid mapped to 0) and a new mount namespace (a
//! recursive slave of the host's, so nothing propagates back), with private, writable
//! `/run/netns` and `/etc/netns`. From then on the whole crate works as for root, for the
//! namespaces the process makes. The process stays in the network namespace it was in.
//! A [`Registry`](crate::Registry) in a directory the user may write (under `/tmp` or
//! `$XDG_RUNTIME_DIR`) works too, with no private directory at all: its bind mounts are the
//! process's own.
//!
//! What stays impossible without root, whatever this module does: entering namespaces that the
//! real root (or another user) made, including the host's own network namespace once a thread
//! has left it; moving links into the host's namespace; and anything that needs a capability in
//! the initial user namespace (loading modules, some sysctls). Those calls fail with
//! [`Error::PermissionDenied`], naming the operation.

use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::libc;

use crate::error::{Error, Result};
use crate::namespace::{ETC_DIR, RUN_DIR};
use crate::sys;

/// `CAP_SYS_ADMIN`, from `<linux/capability.h>`.
const CAP_SYS_ADMIN: u32 = 21;

/// Whether the process can create and enter network namespaces: it has `CAP_SYS_ADMIN` in its
/// effective set (as root, or after [`enter`]).
pub fn privileged() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|effective| effective & (1 << CAP_SYS_ADMIN) != 0)
}

/// Makes the rest of the process able to do everything the crate offers as if it were root,
/// for the namespaces it creates: [`NetNs::new`](crate::NetNs::new),
/// [`create`](crate::NetNs::create)/[`remove`](crate::NetNs::remove)/[`list`](crate::NetNs::list)
/// (in a private `/run/netns`), `run`, `spawn`, [`Worker`](crate::Worker), [`Options`](crate::Options)
/// (with a private, writable `/etc/netns`), async bodies and runtimes.
///
/// Call it first thing in `main`, before any thread starts: the kernel refuses a new user
/// namespace to a multithreaded process ([`Error::NotSingleThreaded`]). When the process already
/// has `CAP_SYS_ADMIN` (root, or a second call) it does nothing.
///
/// In a new mount namespace of the process's own, `/run/netns` and `/etc/netns` become private
/// tmpfs directories (when a directory is missing, a writable overlay of `/run` or `/etc`
/// provides it; submounts under that directory are then hidden from the process). The host's
/// mounts and files are never touched, and the private directories vanish with the process.
///
/// An `Err` from a step after the new user namespace was made leaves the process in it, half
/// set up: report the error and exit rather than go on (a later call returns an error too).
///
/// Where the system forbids unprivileged user namespaces, the error is
/// [`Error::Rootless`] and names the setting: `user.max_user_namespaces`, Debian's
/// `kernel.unprivileged_userns_clone`, Ubuntu's `kernel.apparmor_restrict_unprivileged_userns`.
///
/// ```no_run
/// # use netns_core as in_netns;
/// fn main() -> in_netns::Result<()> {
///     in_netns::rootless::enter()?; // before any thread starts
///     let ns = in_netns::NetNs::new()?; // no root needed from here on
///     Ok(())
/// }
/// ```
pub fn enter() -> Result<()> {
    static FAILED: crate::once::NoWaitOnce<String> = crate::once::NoWaitOnce::new();
    if let Some(failed) = FAILED.get() {
        // The process is in a half-made user namespace, where it may look privileged.
        return Err(Error::Rootless {
            step: String::from("an earlier rootless::enter()"),
            source: io::Error::other(failed.clone()),
            forbidden_by: None,
            hint: Some("a failed enter() leaves the process half set up: exit and start again"),
        });
    }
    if privileged() {
        return Ok(());
    }
    let threads = thread_count();
    if threads != 1 {
        return Err(Error::NotSingleThreaded { threads });
    }
    let plan = Plan::new(false)?;
    plan.apply().map_err(|failure| {
        let error = failure.into_error();
        FAILED.get_or_init(|| error.to_string());
        error
    })?;
    crate::report::debug!(
        "entered a user namespace of the process's own, with private {RUN_DIR} and {ETC_DIR}"
    );
    Ok(())
}

/// The number of threads of the process (`Threads:` in `/proc/self/status`), 0 if unknown.
fn thread_count() -> usize {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Everything [`Plan::apply`] needs, prepared beforehand, so that it makes system calls only:
/// it also runs in a child between `fork` and `exec`.
pub(crate) struct Plan {
    /// Also a network namespace of the process's own (for test processes, so that the process's
    /// home namespace is one they may enter).
    own_network: bool,
    uid_map: CString,
    gid_map: CString,
    /// A directory of our own for the tmpfs that holds overlay layers, unmounted and removed
    /// once the overlays are in place.
    scratch: CString,
    run: Private,
    etc: Private,
}

/// How a directory (`/run/netns`, `/etc/netns`) becomes private and writable.
struct Private {
    /// The directory itself.
    dir: CString,
    /// When the directory is missing: its parent, overlaid with a writable layer, and the
    /// overlay's options, its upper and work directories.
    overlay: Option<Overlay>,
}

struct Overlay {
    parent: CString,
    options: CString,
    upper: CString,
    work: CString,
}

/// A step of [`Plan::apply`] that failed, with its errno.
pub(crate) struct Failure {
    pub(crate) step: &'static CStr,
    pub(crate) errno: i32,
}

impl Plan {
    pub(crate) fn new(own_network: bool) -> Result<Plan> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        // Unpredictable, so that no other user can take the name first: std's hasher keys are
        // random per process.
        let random = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            NEXT.fetch_add(1, Ordering::Relaxed),
        );
        let scratch = format!(
            "{}/.in-netns-rootless-{}-{random:016x}",
            std::env::temp_dir().display(),
            std::process::id(),
        );
        let c = |text: String| CString::new(text).expect("no NUL in generated paths");
        let private = |dir: &str, tag: &str| {
            let missing = !Path::new(dir).is_dir();
            let parent = Path::new(dir)
                .parent()
                .and_then(Path::to_str)
                .unwrap_or("/");
            Private {
                dir: c(dir.to_owned()),
                overlay: missing.then(|| Overlay {
                    parent: c(parent.to_owned()),
                    options: c(format!(
                        "lowerdir={parent},upperdir={scratch}/{tag}-upper,workdir={scratch}/{tag}-work"
                    )),
                    upper: c(format!("{scratch}/{tag}-upper")),
                    work: c(format!("{scratch}/{tag}-work")),
                }),
            }
        };
        let (uid, gid) = (sys::getuid(), sys::getgid());
        Ok(Plan {
            own_network,
            uid_map: c(format!("0 {uid} 1")),
            gid_map: c(format!("0 {gid} 1")),
            run: private(RUN_DIR, "run"),
            etc: private(ETC_DIR, "etc"),
            scratch: c(scratch),
        })
    }

    /// Makes the calling single-threaded process rootless. System calls only: no allocation,
    /// no locks, so it may run between `fork` and `exec`.
    pub(crate) fn apply(&self) -> std::result::Result<(), Failure> {
        let network = if self.own_network {
            libc::CLONE_NEWNET
        } else {
            0
        };
        let namespaces = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | network;
        check(
            sys::unshare(namespaces),
            c"unshare(CLONE_NEWUSER | CLONE_NEWNS)",
        )?;
        write_file(c"/proc/self/setgroups", c"deny")?;
        write_file(c"/proc/self/uid_map", &self.uid_map)?;
        write_file(c"/proc/self/gid_map", &self.gid_map)?;
        let slave = libc::MS_SLAVE | libc::MS_REC;
        check(
            sys::mount(c"", c"/", c"none", slave, None),
            c"mount --make-rslave /",
        )?;
        if self.run.overlay.is_some() || self.etc.overlay.is_some() {
            check(
                sys::mkdir(&self.scratch, 0o700),
                c"mkdir /tmp/.in-netns-rootless-*",
            )?;
            let overlaid = self.mount_overlays();
            // The overlays keep their layers; the scratch mount and directory go either way.
            let _ = sys::umount2(&self.scratch, libc::MNT_DETACH);
            let _ = sys::rmdir(&self.scratch);
            overlaid?;
        }
        for private in [&self.run, &self.etc] {
            if private.overlay.is_some() {
                check(
                    sys::mkdir(&private.dir, 0o755),
                    c"mkdir /run/netns or /etc/netns",
                )?;
            } else {
                let mounted = sys::mount(c"none", &private.dir, c"tmpfs", 0, Some(c"mode=0755"));
                check(mounted, c"mount tmpfs on /run/netns or /etc/netns")?;
            }
        }
        Ok(())
    }

    /// A tmpfs on the scratch directory for the layers, and a writable overlay over each
    /// parent whose directory is missing.
    fn mount_overlays(&self) -> std::result::Result<(), Failure> {
        let tmpfs = sys::mount(c"none", &self.scratch, c"tmpfs", 0, Some(c"mode=0700"));
        check(tmpfs, c"mount tmpfs on /tmp/.in-netns-rootless-*")?;
        let overlays = [&self.run, &self.etc]
            .into_iter()
            .filter_map(|private| private.overlay.as_ref());
        for overlay in overlays {
            check(sys::mkdir(&overlay.upper, 0o755), c"mkdir an overlay layer")?;
            check(sys::mkdir(&overlay.work, 0o755), c"mkdir an overlay layer")?;
            let options = Some(overlay.options.as_c_str());
            let mounted = sys::mount(c"overlay", &overlay.parent, c"overlay", 0, options);
            check(mounted, c"mount overlay (a writable /run or /etc)")?;
        }
        Ok(())
    }
}

/// Writes `content` to the file at `path` (a `/proc/self/*_map` file): open, write, close.
fn write_file(path: &'static CStr, content: &CStr) -> std::result::Result<(), Failure> {
    let fd = check(sys::open(path, libc::O_WRONLY | libc::O_CLOEXEC), path)?;
    let bytes = content.to_bytes();
    let written = match sys::write(fd.as_fd(), bytes) {
        Ok(written) if written == bytes.len() => Ok(()),
        // A short write: the errno is what it is.
        Ok(_) => Err(Errno::last()),
        Err(errno) => Err(errno),
    };
    drop(fd);
    check(written, path)
}

/// A failed call becomes the step's [`Failure`] with its errno.
fn check<T>(
    result: std::result::Result<T, Errno>,
    step: &'static CStr,
) -> std::result::Result<T, Failure> {
    result.map_err(|errno| Failure {
        step,
        errno: errno as i32,
    })
}

impl Failure {
    /// The error for the user: the step, the errno and, when the system forbids unprivileged
    /// user namespaces, the setting that does.
    pub(crate) fn into_error(self) -> Error {
        let step = self.step.to_string_lossy().into_owned();
        let hint = match (step.as_str(), self.errno) {
            (_, libc::ENOSPC) => Some(
                "the limit on user or mount namespaces is reached (user.max_user_namespaces, \
                 user.max_mnt_namespaces, in this or an enclosing user namespace)",
            ),
            ("/proc/self/uid_map", libc::EPERM) => Some(
                "mapping uid 0 needs CAP_SETFCAP (Linux 5.12 and later): run as an ordinary \
                 user, or as root with its capabilities, where enter() does nothing",
            ),
            (step, libc::EINVAL) if step.starts_with("mount overlay") => Some(
                "/run/netns or /etc/netns is missing and its parent has mounts under it, which \
                 an overlay cannot cover in a user namespace: create the directory once as root \
                 (mkdir -p /run/netns /etc/netns)",
            ),
            _ => None,
        };
        Error::Rootless {
            step,
            source: io::Error::from_raw_os_error(self.errno),
            forbidden_by: forbidding_setting(),
            hint,
        }
    }
}

/// The system setting that forbids unprivileged user namespaces, with how to allow them, if
/// one does (`None` where none of the known settings is set to forbid them).
pub fn forbidding_setting() -> Option<String> {
    let read = |path: &str| fs::read_to_string(path).ok().map(|v| v.trim().to_owned());
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Some(
            "user.max_user_namespaces is 0 (allow them: sysctl -w user.max_user_namespaces=15000)"
                .to_owned(),
        );
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some(
            "kernel.unprivileged_userns_clone is 0 (allow them: sysctl -w kernel.unprivileged_userns_clone=1)"
                .to_owned(),
        );
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Some(
            "kernel.apparmor_restrict_unprivileged_userns is 1 (allow them: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give this program an AppArmor profile that allows userns)"
                .to_owned(),
        );
    }
    None
}

/// Makes `command`'s child die with the thread that spawned it (so a test process that is
/// killed leaves no child behind) and, unless this process is privileged, rootless between
/// `fork` and `exec` (as [`enter`] makes a process, and in a network namespace of its own,
/// which it may enter again). For `#[in_netns::test]`, which runs a test again in such a child.
pub(crate) fn in_child(command: &mut std::process::Command) -> Result<()> {
    use std::os::unix::process::CommandExt as _;
    let plan = if privileged() {
        None
    } else {
        Some(Plan::new(true)?)
    };
    let setup = move || {
        let tied = sys::set_parent_death_signal(libc::SIGKILL);
        check(tied, c"prctl(PR_SET_PDEATHSIG)").map_err(report_in_child)?;
        match &plan {
            Some(plan) => plan.apply().map_err(report_in_child),
            None => Ok(()),
        }
    };
    // SAFETY: `setup` makes system calls only, on data prepared before the fork, and so does
    // `report_in_child`.
    unsafe { command.pre_exec(setup) };
    Ok(())
}

/// In the child: names the failed step on stderr (std carries only the errno to the parent).
fn report_in_child(failure: Failure) -> io::Error {
    let lines: [&[u8]; 3] = [
        b"in-netns: rootless setup failed at ",
        failure.step.to_bytes(),
        b"\n",
    ];
    for line in lines {
        // What it returns does not matter: the errno below is the error.
        sys::write_stderr(line);
    }
    io::Error::from_raw_os_error(failure.errno)
}
