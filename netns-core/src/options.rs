//! Per-call options: a view of `/sys` and `/etc` that describes the namespace, as
//! `ip netns exec` gives its command.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::statvfs::{FsFlags, statvfs};

use crate::error::{Error, Result};
use crate::handle::NetNs;
use crate::name::ETC_DIR;

/// What a dedicated thread sets up after entering the namespace, besides the namespace itself.
///
/// Both options give the thread a private mount namespace (made a recursive slave of the
/// host's, so nothing it mounts propagates back); the host's mounts are never touched, and the
/// private view ends with the thread.
///
/// ```no_run
/// # use netns_core as in_netns;
/// # fn main() -> in_netns::Result<()> {
/// let ns = in_netns::NetNs::named("blue")?;
/// let options = in_netns::Options::default().sysfs(true).etc(true);
/// let links = ns.run_with(&options, || std::fs::read_dir("/sys/class/net").map(|d| d.count()))?;
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Options {
    sysfs: bool,
    etc: bool,
}

impl Options {
    /// No options: the thread only enters the network namespace.
    pub const DEFAULT: Options = Options {
        sysfs: false,
        etc: false,
    };

    /// Mount a fresh sysfs on `/sys` for the call (read-only when the host's is), so that
    /// `/sys/class/net` lists the namespace's links.
    pub fn sysfs(mut self, enabled: bool) -> Options {
        self.sysfs = enabled;
        self
    }

    /// Bind each file of `/etc/netns/NAME/` over `/etc/` for the call, so `/etc/resolv.conf`
    /// and `/etc/hosts` are the namespace's. Needs a named namespace ([`Error::Unnamed`]).
    pub fn etc(mut self, enabled: bool) -> Options {
        self.etc = enabled;
        self
    }

    /// Whether a fresh sysfs is mounted on `/sys`.
    pub fn has_sysfs(&self) -> bool {
        self.sysfs
    }

    /// Whether `/etc/netns/NAME/` is bound over `/etc/`.
    pub fn has_etc(&self) -> bool {
        self.etc
    }

    /// Whether the options need a private mount namespace at all.
    fn needs_mounts(&self) -> bool {
        self.sysfs || self.etc
    }

    /// Refuses what cannot work for `ns`, before any thread is started.
    pub(crate) fn check(&self, ns: &NetNs) -> Result<()> {
        if self.etc && ns.name().is_none() {
            return Err(Error::Unnamed {
                namespace: ns.describe(),
            });
        }
        Ok(())
    }

    /// Sets up the views on the calling (dedicated) thread, which has already entered `ns`.
    pub(crate) fn apply(&self, ns: &NetNs) -> Result<()> {
        if !self.needs_mounts() {
            return Ok(());
        }
        unshare(CloneFlags::CLONE_NEWNS)
            .map_err(|e| Error::from_errno("unshare(CLONE_NEWNS)", None, e))?;
        mount(
            Some(""),
            "/",
            Some("none"),
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Error::from_errno("mount --make-rslave", Some(Path::new("/")), e))?;
        if self.sysfs {
            mount_sysfs(ns)?;
        }
        // `check` refused `etc` without a name before the thread started.
        if let (true, Some(name)) = (self.etc, ns.name()) {
            bind_etc(name)?;
        }
        Ok(())
    }
}

/// Replaces `/sys` (in the thread's private mount namespace) with a sysfs of the current
/// network namespace.
fn mount_sysfs(ns: &NetNs) -> Result<()> {
    let sys = Path::new("/sys");
    let flags = if sys_is_read_only() {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    // Fails when nothing is mounted there; the new sysfs then simply goes on top.
    let _ = umount2(sys, MntFlags::MNT_DETACH);
    let source = ns.name().unwrap_or("sysfs");
    mount(Some(source), sys, Some("sysfs"), flags, None::<&str>)
        .map_err(|e| Error::from_errno("mount sysfs", Some(sys), e))
}

/// Whether the host's `/sys` is read-only, so the namespace's sysfs should be too.
pub(crate) fn sys_is_read_only() -> bool {
    statvfs("/sys").is_ok_and(|fs| fs.flags().contains(FsFlags::ST_RDONLY))
}

/// Binds each entry of `/etc/netns/NAME/` over the same name in `/etc/`, as `ip netns exec`
/// does.
fn bind_etc(name: &str) -> Result<()> {
    for (source, target) in etc_bind_pairs(name)? {
        mount(
            Some(&source),
            &target,
            Some("none"),
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| Error::from_errno("bind mount over", Some(&target), e))?;
    }
    Ok(())
}

/// The (source, target) bind mounts that give `/etc` the view of `/etc/netns/NAME/`. A missing
/// `/etc/netns/NAME/` means there is nothing to bind.
pub(crate) fn etc_bind_pairs(name: &str) -> Result<Vec<(PathBuf, PathBuf)>> {
    let dir = Path::new(ETC_DIR).join(name);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut pairs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| Error::Os {
            operation: "read_dir",
            path: Some(dir.clone()),
            source: err,
        })?;
        pairs.push((entry.path(), Path::new("/etc").join(entry.file_name())));
    }
    Ok(pairs)
}
