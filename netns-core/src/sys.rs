//! Every raw `libc` call of the crate (the system calls that `nix` does not wrap as the crate
//! needs them, and the C library's signal-set helpers), each with its `SAFETY` argument, in one
//! style: a thin function that takes Rust types, makes the call,
//! and returns `Result<_, Errno>` (a descriptor as an [`OwnedFd`]). None allocates or locks, so
//! each may run in a child between `fork` and `exec` (async-signal-safe). No other module calls
//! `libc` (`tests/layers.rs` checks it).
//!
//! What it holds:
//!
//! - namespaces and mounts: [`setns`], [`unshare`], [`mount`], [`umount2`], [`mkdir`], [`rmdir`];
//! - files: [`open`], [`write()`], [`write_stderr`];
//! - namespace files and sockets: [`ns_get_nstype`] (`NS_GET_NSTYPE`), [`socket_namespace`]
//!   (`SIOCGSKNS`), [`socket`], [`interface_flags`] and [`set_interface_flags`]
//!   (`SIOCGIFFLAGS`, `SIOCSIFFLAGS`);
//! - processes: [`getpid`], [`gettid`], [`getuid`], [`getgid`], [`pidfd_open`],
//!   [`pidfd_get_net_namespace`] (`PIDFD_GET_NET_NAMESPACE`), [`kcmp`],
//!   [`set_parent_death_signal`] (`PR_SET_PDEATHSIG`), [`atfork_child`] (`pthread_atfork`);
//! - a process's user: [`setgroups`], [`setgid`], [`setuid`] (the system calls, for the one
//!   thread of a child, not the C library's wrappers, which signal every thread);
//! - a thread's own state: [`signal_mask`], [`set_signal_mask`], [`signal_set`] (from procfs's
//!   bits), [`thread_name`] and [`set_thread_name`] (`PR_GET_NAME`, `PR_SET_NAME`),
//!   [`sched_getattr`] and [`sched_setattr`] ([`SchedAttr`]), [`capget`] and [`capset`]
//!   ([`CapData`]);
//! - a thread's security context and the rest a body may change on its thread: [`getresuid`],
//!   [`getresgid`], [`filesystem_ids`], [`getgroups`], [`no_new_privs`], [`seccomp_mode`],
//!   [`securebits`], [`timer_slack`] and [`set_timer_slack`],
//!   [`keyring_id`], [`ioprio`], [`ioprio_of`] and [`set_ioprio`], [`personality`] and [`set_personality`],
//!   [`mempolicy`] and [`set_default_mempolicy`], [`pending_signals`] and
//!   [`take_pending_signal`], [`rseq_registered`], [`descriptor_limit`], [`thread_exists`] (`tgkill` with no
//!   signal);
//! - waiting: [`poll_ready`] (one descriptor, no wait), and the hand-off's futex,
//!   `futex_wait` and `futex_wake` (not built under loom, whose waits are spins).
//!
//! Why `libc` (through `nix`) and not `rustix`: rustix would give safe, allocation-free
//! wrappers fit for between `fork` and `exec`, and take most `unsafe` out of this file, but it
//! covers only part of what is here. rustix 1.1 lists `get_mempolicy` and `set_mempolicy` as
//! not yet implemented and the scheduler calls as out of its scope (so no `sched_setattr`),
//! we found no wrapper of its for `kcmp`, `keyctl`, `ioprio_get`/`ioprio_set` or
//! `SIOCGSKNS`, and `pthread_atfork` is a C library function, not a system call: switching
//! would leave two backends for one job rather than one. The
//! wrappers here already are the same shape (Rust types in, `Errno` out, nothing allocated),
//! and `nix`, which the crate uses anyway, brings `libc`. Decided for the first release: stay;
//! revisit when rustix covers the calls above, and move then one call at a time, behind the
//! same functions, so no caller changes.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::{null, null_mut};

use nix::errno::Errno;
use nix::libc;
use nix::sys::statfs::{FsType, fstatfs};

/// `-1` as the errno the call set; anything else as itself.
fn check<T: PartialEq + From<i8>>(result: T) -> Result<T, Errno> {
    if result == T::from(-1) {
        Err(Errno::last())
    } else {
        Ok(result)
    }
}

// Namespaces and mounts.

/// `setns(fd, nstype)`: moves the calling thread into the namespace `fd` refers to.
pub(crate) fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> Result<(), Errno> {
    // SAFETY: setns takes no pointers; `BorrowedFd` keeps the descriptor open for the call.
    check(unsafe { libc::setns(fd.as_raw_fd(), nstype) }).map(drop)
}

/// `unshare(flags)`: gives the calling thread namespaces (or tables) of its own.
pub(crate) fn unshare(flags: libc::c_int) -> Result<(), Errno> {
    // SAFETY: unshare takes no pointers.
    check(unsafe { libc::unshare(flags) }).map(drop)
}

/// `mount(source, target, fstype, flags, data)`, with `data` (a filesystem's options) null
/// when `None`.
pub(crate) fn mount(
    source: &CStr,
    target: &CStr,
    fstype: &CStr,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), Errno> {
    let data = data.map_or(null(), |data| data.as_ptr().cast());
    // SAFETY: the three paths are NUL-terminated strings that outlive the call; the data
    // argument is null, which every filesystem used here accepts, or a NUL-terminated string
    // that outlives the call (the options of tmpfs and overlay, which both read a string).
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data,
        )
    })
    .map(drop)
}

/// `umount2(target, flags)`.
pub(crate) fn umount2(target: &CStr, flags: libc::c_int) -> Result<(), Errno> {
    // SAFETY: `target` is a NUL-terminated string that outlives the call.
    check(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

/// `mkdir(path, mode)`.
pub(crate) fn mkdir(path: &CStr, mode: libc::mode_t) -> Result<(), Errno> {
    // SAFETY: mkdir only reads `path`, a NUL-terminated string that outlives the call.
    check(unsafe { libc::mkdir(path.as_ptr(), mode) }).map(drop)
}

/// `rmdir(path)`.
pub(crate) fn rmdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: rmdir only reads `path`, a NUL-terminated string that outlives the call.
    check(unsafe { libc::rmdir(path.as_ptr()) }).map(drop)
}

// Files.

/// `open(path, flags)`, for flags without `O_CREAT` (so no mode).
pub(crate) fn open(path: &CStr, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: open only reads `path`, a NUL-terminated string that outlives the call (without
    // O_CREAT it reads no mode); a result other than -1 is a new descriptor nothing else owns.
    unsafe {
        let raw = check(libc::open(path.as_ptr(), flags))?;
        Ok(OwnedFd::from_raw_fd(raw))
    }
}

/// `write(fd, bytes)`, once: the number of bytes written.
pub(crate) fn write(fd: BorrowedFd<'_>, bytes: &[u8]) -> Result<usize, Errno> {
    // SAFETY: write reads `bytes.len()` bytes of `bytes`, which outlives the call;
    // `BorrowedFd` keeps the descriptor open for it.
    let written =
        check(unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) })?;
    // Not negative: -1 is the error above.
    Ok(written.unsigned_abs())
}

/// Writes `bytes` to standard error, once, ignoring the outcome: for a child between `fork`
/// and `exec`, which has no other way to say what failed.
pub(crate) fn write_stderr(bytes: &[u8]) {
    // SAFETY: write reads `bytes.len()` bytes of `bytes`, which outlives the call.
    unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
}

// Namespace files and sockets.

/// `NS_GET_NSTYPE` from `<linux/nsfs.h>`: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::Ioctl = nix::request_code_none!(0xb7, 0x3) as _;

/// `SIOCGSKNS` from `<linux/sockios.h>`: a descriptor of the socket's network namespace.
const SIOCGSKNS: libc::Ioctl = 0x894C;

/// `ioctl(fd, NS_GET_NSTYPE)` (Linux 4.11): the `CLONE_NEW*` flag of the namespace the nsfs
/// file `fd` refers to.
pub(crate) fn ns_get_nstype(fd: BorrowedFd<'_>) -> Result<libc::c_int, Errno> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the descriptor, which
    // `BorrowedFd` keeps open for the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) })
}

/// `ioctl(socket, SIOCGSKNS)`: a descriptor of the network namespace `socket` was made in.
pub(crate) fn socket_namespace(socket: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    // SAFETY: SIOCGSKNS takes no argument and only reads the descriptor, which `BorrowedFd`
    // keeps open for the call; on success it returns a new descriptor that nothing else owns.
    unsafe {
        let raw = check(libc::ioctl(socket.as_raw_fd(), SIOCGSKNS))?;
        Ok(OwnedFd::from_raw_fd(raw))
    }
}

/// `socket(domain, kind, protocol)`.
pub(crate) fn socket(
    domain: libc::c_int,
    kind: libc::c_int,
    protocol: libc::c_int,
) -> Result<OwnedFd, Errno> {
    // SAFETY: socket takes no pointers; a result other than -1 is a new descriptor that
    // nothing else owns.
    unsafe {
        let raw = check(libc::socket(domain, kind, protocol))?;
        Ok(OwnedFd::from_raw_fd(raw))
    }
}

/// An `ifreq` naming interface `name` (`EINVAL` if longer than `IFNAMSIZ` allows), all else
/// zero.
fn interface_request(name: &CStr) -> Result<libc::ifreq, Errno> {
    let name = name.to_bytes_with_nul();
    if name.len() > libc::IFNAMSIZ {
        return Err(Errno::EINVAL);
    }
    // SAFETY: `ifreq` is plain old data (a name and a union of integers, addresses and raw
    // pointers); all zeroes is a valid, empty request.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(name) {
        *slot = *byte as libc::c_char;
    }
    Ok(request)
}

/// `ioctl(socket, SIOCGIFFLAGS)`: the flags (`IFF_*`) of interface `name`.
pub(crate) fn interface_flags(socket: BorrowedFd<'_>, name: &CStr) -> Result<libc::c_short, Errno> {
    let mut request = interface_request(name)?;
    // SAFETY: SIOCGIFFLAGS writes the flags of the interface `request` names into `request`,
    // which is ours and outlives the call; `ifru_flags` is then the member it wrote (and the
    // union was all zeroes before, so it is initialised either way).
    unsafe {
        check(libc::ioctl(
            socket.as_raw_fd(),
            libc::SIOCGIFFLAGS,
            &mut request,
        ))?;
        Ok(request.ifr_ifru.ifru_flags)
    }
}

/// `ioctl(socket, SIOCSIFFLAGS)`: sets the flags (`IFF_*`) of interface `name`.
pub(crate) fn set_interface_flags(
    socket: BorrowedFd<'_>,
    name: &CStr,
    flags: libc::c_short,
) -> Result<(), Errno> {
    let mut request = interface_request(name)?;
    request.ifr_ifru.ifru_flags = flags;
    // SAFETY: SIOCSIFFLAGS reads the name and flags of `request`, which is ours and outlives
    // the call.
    check(unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) }).map(drop)
}

// Processes.

/// `getpid()`, which cannot fail.
pub(crate) fn getpid() -> libc::pid_t {
    // SAFETY: getpid takes nothing and only returns a value.
    unsafe { libc::getpid() }
}

/// `gettid()`, which cannot fail.
pub(crate) fn gettid() -> libc::pid_t {
    // SAFETY: gettid takes nothing and only returns a value.
    unsafe { libc::gettid() }
}

/// `getuid()`, which cannot fail.
pub(crate) fn getuid() -> libc::uid_t {
    // SAFETY: getuid takes nothing and only returns a value.
    unsafe { libc::getuid() }
}

/// `getgid()`, which cannot fail.
pub(crate) fn getgid() -> libc::gid_t {
    // SAFETY: getgid takes nothing and only returns a value.
    unsafe { libc::getgid() }
}

/// `pidfd_open(pid, flags)` (Linux 5.3): a close-on-exec pidfd of process `pid`.
pub(crate) fn pidfd_open(pid: libc::pid_t, flags: libc::c_uint) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and touches no memory of ours; a result other
    // than -1 is a new descriptor (an int) that nothing else owns.
    unsafe {
        let raw = check(libc::syscall(libc::SYS_pidfd_open, pid, flags))?;
        Ok(OwnedFd::from_raw_fd(raw as libc::c_int))
    }
}

/// `PIDFD_GET_NET_NAMESPACE` from `<linux/pidfd.h>`: `_IO(PIDFS_IOCTL_MAGIC, 4)`.
const PIDFD_GET_NET_NAMESPACE: libc::Ioctl = nix::request_code_none!(0xFF, 4) as _;

/// `PIDFS_MAGIC` from `<linux/magic.h>`: pidfds live on pidfs since Linux 6.9.
const PIDFS_MAGIC: u32 = 0x5049_4446;

/// `ioctl(pidfd, PIDFD_GET_NET_NAMESPACE)` (Linux 6.11): a descriptor of the network namespace
/// of the process `pidfd` refers to. The request is only ever sent to a descriptor on pidfs,
/// never to an arbitrary file whose driver might give its number another meaning: for any other
/// descriptor (or one `fstatfs` cannot tell) the result is `ENOTTY`, as from a kernel without
/// the request.
pub(crate) fn pidfd_get_net_namespace(pidfd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let on_pidfs = fstatfs(pidfd).is_ok_and(|fs| fs.filesystem_type() == FsType(PIDFS_MAGIC as _));
    if !on_pidfs {
        return Err(Errno::ENOTTY);
    }
    // SAFETY: the request takes no argument and only reads the descriptor, which `BorrowedFd`
    // keeps open for the call, and it goes to a pidfs descriptor only (checked above); on
    // success it returns a new descriptor that nothing else owns.
    unsafe {
        let raw = check(libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_NET_NAMESPACE))?;
        Ok(OwnedFd::from_raw_fd(raw))
    }
}

/// `kcmp(pid1, pid2, kind, 0, 0)`: whether the two tasks share the kernel object `kind`
/// (`KCMP_FILES`, `KCMP_FS`, ...: one that needs no index).
pub(crate) fn kcmp(pid1: libc::pid_t, pid2: libc::pid_t, kind: libc::c_int) -> Result<bool, Errno> {
    // SAFETY: kcmp reads no memory of ours; it compares two tasks' kernel objects.
    let order = check(unsafe { libc::syscall(libc::SYS_kcmp, pid1, pid2, kind, 0, 0) })?;
    Ok(order == 0)
}

/// `prctl(PR_SET_PDEATHSIG, signal)`: `signal` comes to the calling process when the thread
/// that made it ends.
pub(crate) fn set_parent_death_signal(signal: libc::c_int) -> Result<(), Errno> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number, no pointers.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal) }).map(drop)
}

/// `pthread_atfork(NULL, NULL, child)`: `child` runs in every forked child, first thing.
pub(crate) fn atfork_child(child: extern "C" fn()) -> Result<(), Errno> {
    // SAFETY: registers a child handler and no prepare or parent handler; the handler is a
    // plain function, valid for the life of the process. (It must be async-signal-safe: the
    // caller's is one atomic add.)
    match unsafe { libc::pthread_atfork(None, None, Some(child)) } {
        0 => Ok(()),
        code => Err(Errno::from_raw(code)),
    }
}

// A process's user.
//
// The system calls themselves, which change the calling thread only: the C library's
// `setuid` and the like apply to every thread of the process (they signal the others to do the
// same), which a child between `fork` and `exec`, with its one thread, does not need. Where the
// architecture kept the 16-bit calls under the plain names, the 32-bit ones are used.

/// `setgroups`'s number: `setgroups32` where the plain one takes 16-bit ids.
#[cfg(any(target_arch = "x86", target_arch = "arm", target_arch = "sparc"))]
const SYS_SETGROUPS: libc::c_long = libc::SYS_setgroups32;
#[cfg(not(any(target_arch = "x86", target_arch = "arm", target_arch = "sparc")))]
const SYS_SETGROUPS: libc::c_long = libc::SYS_setgroups;

/// `setgid`'s number: `setgid32` where the plain one takes a 16-bit id.
#[cfg(any(target_arch = "x86", target_arch = "arm", target_arch = "sparc"))]
const SYS_SETGID: libc::c_long = libc::SYS_setgid32;
#[cfg(not(any(target_arch = "x86", target_arch = "arm", target_arch = "sparc")))]
const SYS_SETGID: libc::c_long = libc::SYS_setgid;

/// `setuid`'s number: `setuid32` where the plain one takes a 16-bit id.
#[cfg(any(target_arch = "x86", target_arch = "arm", target_arch = "sparc"))]
const SYS_SETUID: libc::c_long = libc::SYS_setuid32;
#[cfg(not(any(target_arch = "x86", target_arch = "arm", target_arch = "sparc")))]
const SYS_SETUID: libc::c_long = libc::SYS_setuid;

/// The `setgroups` system call: makes `groups` the calling thread's supplementary groups (none
/// when empty, passed as `setgroups(0, NULL)`).
pub(crate) fn setgroups(groups: &[libc::gid_t]) -> Result<(), Errno> {
    let list = if groups.is_empty() {
        null()
    } else {
        groups.as_ptr()
    };
    // SAFETY: the kernel reads `groups.len()` ids from `list`, which holds that many and
    // outlives the call (none from a null list of length 0).
    check(unsafe { libc::syscall(SYS_SETGROUPS, groups.len(), list) }).map(drop)
}

/// The `setgid` system call: the calling thread's group id (real, effective and saved with
/// `CAP_SETGID`, else the effective one).
pub(crate) fn setgid(gid: libc::gid_t) -> Result<(), Errno> {
    // SAFETY: setgid takes an id, no pointers.
    check(unsafe { libc::syscall(SYS_SETGID, gid) }).map(drop)
}

/// The `setuid` system call: the calling thread's user id (real, effective and saved with
/// `CAP_SETUID`, else the effective one). Away from root, the kernel clears the permitted,
/// effective and ambient capabilities, unless the thread keeps them (`PR_SET_KEEPCAPS`).
pub(crate) fn setuid(uid: libc::uid_t) -> Result<(), Errno> {
    // SAFETY: setuid takes an id, no pointers.
    check(unsafe { libc::syscall(SYS_SETUID, uid) }).map(drop)
}

// A thread's own state.

/// `pthread_sigmask(SIG_SETMASK, NULL, &set)`: the calling thread's signal mask.
pub(crate) fn signal_mask() -> Result<libc::sigset_t, Errno> {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: a null new set only queries; `set` is a valid place for the old one, and once
    // the call has written it (or left its zeroes, themselves a valid sigset_t) it is
    // initialised.
    unsafe {
        match libc::pthread_sigmask(libc::SIG_SETMASK, null(), set.as_mut_ptr()) {
            0 => Ok(set.assume_init()),
            code => Err(Errno::from_raw(code)),
        }
    }
}

/// `pthread_sigmask(SIG_SETMASK, set, NULL)`: makes `set` the calling thread's signal mask.
pub(crate) fn set_signal_mask(set: &libc::sigset_t) -> Result<(), Errno> {
    // SAFETY: `set` is a valid sigset_t that outlives the call, and the old one is not asked
    // for.
    match unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, set, null_mut()) } {
        0 => Ok(()),
        code => Err(Errno::from_raw(code)),
    }
}

/// The set of the signals whose bits are set in `bits` (bit `n - 1` for signal `n`, as procfs's
/// `SigBlk:` shows a mask); signals the C library keeps for itself are left out.
pub(crate) fn signal_set(bits: u64) -> libc::sigset_t {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: `set` is a valid place for a sigset_t, which sigemptyset initialises and
    // sigaddset only writes; signal numbers 1 to 64 are those the bits stand for (sigaddset
    // refuses the others, and the C library's own). All zeroes is a valid sigset_t too.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for signal in 1..=64 {
            if bits & (1 << (signal - 1)) != 0 {
                libc::sigaddset(set.as_mut_ptr(), signal);
            }
        }
        set.assume_init()
    }
}

/// `prctl(PR_GET_NAME)`: the calling thread's name, NUL-terminated in 16 bytes.
pub(crate) fn thread_name() -> Result<[u8; 16], Errno> {
    let mut name = [0_u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, into `name`.
    check(unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) })?;
    Ok(name)
}

/// `prctl(PR_SET_NAME, name)`: names the calling thread (the kernel keeps 15 bytes at most).
pub(crate) fn set_thread_name(name: &CStr) -> Result<(), Errno> {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string, at most 16 bytes of it; `name` is one
    // and outlives the call.
    check(unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) }).map(drop)
}

/// A thread's scheduling: policy, flags, nice value and priority (`struct sched_attr` in its
/// first version, `SCHED_ATTR_SIZE_VER0`, which [`sched_getattr`] and [`sched_setattr`] read
/// and write in one call).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// The size of [`SchedAttr`], as the kernel is told it.
const SCHED_ATTR_SIZE: u32 = std::mem::size_of::<SchedAttr>() as u32;

/// `sched_getattr(tid, &attr, size, 0)`: thread `tid`'s scheduling (0: the calling thread).
pub(crate) fn sched_getattr(tid: libc::pid_t) -> Result<SchedAttr, Errno> {
    let mut attr = SchedAttr::default();
    // SAFETY: `attr` has room for the `SCHED_ATTR_SIZE` bytes the kernel is told it may write;
    // any tid is fine (ESRCH otherwise).
    check(unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            tid,
            &mut attr,
            SCHED_ATTR_SIZE,
            0_u32,
        )
    })?;
    Ok(attr)
}

/// `sched_setattr(0, attr, 0)`: makes `attr` the calling thread's scheduling.
pub(crate) fn sched_setattr(attr: &SchedAttr) -> Result<(), Errno> {
    // The kernel reads as many bytes as `size` says: never more than there are.
    let attr = SchedAttr {
        size: SCHED_ATTR_SIZE,
        ..*attr
    };
    // SAFETY: 0 is the calling thread; `attr` is a full sched_attr of the `size` bytes it
    // says, which outlives the call.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0_u32) }).map(drop)
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `_LINUX_CAPABILITY_VERSION_3`: two [`CapData`] per call.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_data_struct`: 32 capabilities of a thread's effective, permitted and
/// inheritable sets (version 3 has two: capabilities 0 to 31, then 32 to 63).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(crate) struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `capget`: thread `tid`'s capability sets (0: the calling thread).
pub(crate) fn capget(tid: libc::pid_t) -> Result<[CapData; 2], Errno> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: tid,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: a version-3 header and room for the two sets that version writes; any tid is
    // fine (ESRCH otherwise).
    check(unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) })?;
    Ok(data)
}

/// `capset`: makes `data` the calling thread's capability sets.
pub(crate) fn capset(data: &[CapData; 2]) -> Result<(), Errno> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: a version-3 header with pid 0 (the calling thread) and the two sets that version
    // reads, which outlive the call.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) }).map(drop)
}

/// `CAP_SYS_ADMIN` from `<linux/capability.h>`: what `setns`, `unshare(CLONE_NEWNS)` and
/// `mount` need.
pub(crate) const CAP_SYS_ADMIN: u32 = 21;

impl CapData {
    /// The two version-3 sets of 64-bit `effective`, `permitted` and `inheritable` masks (as
    /// procfs's `CapEff:`, `CapPrm:` and `CapInh:` show them).
    pub(crate) fn from_masks(effective: u64, permitted: u64, inheritable: u64) -> [CapData; 2] {
        [0, 32].map(|shift| CapData {
            effective: (effective >> shift) as u32,
            permitted: (permitted >> shift) as u32,
            inheritable: (inheritable >> shift) as u32,
        })
    }

    /// The word of the sets that holds capability `cap`, and its bit there.
    fn word_and_bit(cap: u32) -> (usize, u32) {
        ((cap / 32) as usize, 1 << (cap % 32))
    }

    /// Whether `cap` is in the permitted set of `data`.
    pub(crate) fn permits(data: &[CapData; 2], cap: u32) -> bool {
        let (word, bit) = CapData::word_and_bit(cap);
        data[word].permitted & bit != 0
    }

    /// Whether `cap` is in the effective set of `data`.
    pub(crate) fn in_effect(data: &[CapData; 2], cap: u32) -> bool {
        let (word, bit) = CapData::word_and_bit(cap);
        data[word].effective & bit != 0
    }

    /// `data` with `cap` added to the effective set, all else as it was.
    pub(crate) fn with_effective(mut data: [CapData; 2], cap: u32) -> [CapData; 2] {
        let (word, bit) = CapData::word_and_bit(cap);
        data[word].effective |= bit;
        data
    }
}

// A thread's security context, and what else a body may change on its thread.

/// `getresuid`: the calling thread's real, effective and saved user ids.
pub(crate) fn getresuid() -> [libc::uid_t; 3] {
    let mut ids = [0; 3];
    // SAFETY: three valid places for a uid each, which outlive the call.
    let result = unsafe { libc::getresuid(&mut ids[0], &mut ids[1], &mut ids[2]) };
    debug_assert_eq!(result, 0, "getresuid cannot fail with valid pointers");
    ids
}

/// `getresgid`: the calling thread's real, effective and saved group ids.
pub(crate) fn getresgid() -> [libc::gid_t; 3] {
    let mut ids = [0; 3];
    // SAFETY: three valid places for a gid each, which outlive the call.
    let result = unsafe { libc::getresgid(&mut ids[0], &mut ids[1], &mut ids[2]) };
    debug_assert_eq!(result, 0, "getresgid cannot fail with valid pointers");
    ids
}

/// The calling thread's filesystem user and group ids: `setfsuid(-1)` and `setfsgid(-1)`
/// change nothing (-1 is no id) and return the current ones.
pub(crate) fn filesystem_ids() -> (libc::uid_t, libc::gid_t) {
    // SAFETY: the raw calls take an id and touch no memory; an invalid id changes nothing.
    unsafe {
        let uid = libc::syscall(libc::SYS_setfsuid, libc::uid_t::MAX);
        let gid = libc::syscall(libc::SYS_setfsgid, libc::gid_t::MAX);
        (uid as libc::uid_t, gid as libc::gid_t)
    }
}

/// `getgroups(groups.len(), groups)`: how many supplementary groups the calling thread has,
/// written into `groups` when they fit (`EINVAL` when they do not; an empty slice only counts).
pub(crate) fn getgroups(groups: &mut [libc::gid_t]) -> Result<usize, Errno> {
    let room = libc::c_int::try_from(groups.len()).unwrap_or(libc::c_int::MAX);
    // SAFETY: the kernel writes at most `room` gids into `groups`, which has room for them.
    let count = check(unsafe { libc::getgroups(room, groups.as_mut_ptr()) })?;
    Ok(count as usize)
}

/// `prctl(PR_GET_NO_NEW_PRIVS)`: whether the calling thread may no longer gain privileges.
pub(crate) fn no_new_privs() -> Result<bool, Errno> {
    // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointers (the unused arguments must be 0).
    check(unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) }).map(|set| set == 1)
}

/// `prctl(PR_GET_SECCOMP)`: the calling thread's seccomp mode (0 none, 2 filters; a thread in
/// strict mode, 1, is killed by this call and never sees it).
pub(crate) fn seccomp_mode() -> Result<libc::c_int, Errno> {
    // SAFETY: PR_GET_SECCOMP takes no pointers.
    check(unsafe { libc::prctl(libc::PR_GET_SECCOMP) })
}

/// `prctl(PR_GET_SECUREBITS)`: the calling thread's securebits.
pub(crate) fn securebits() -> Result<libc::c_int, Errno> {
    // SAFETY: PR_GET_SECUREBITS takes no pointers.
    check(unsafe { libc::prctl(libc::PR_GET_SECUREBITS) })
}

/// `prctl(PR_GET_TIMERSLACK)`: the calling thread's timer slack, in nanoseconds.
pub(crate) fn timer_slack() -> Result<libc::c_int, Errno> {
    // SAFETY: PR_GET_TIMERSLACK takes no pointers.
    check(unsafe { libc::prctl(libc::PR_GET_TIMERSLACK) })
}

/// `prctl(PR_SET_TIMERSLACK, nanoseconds)`: sets the calling thread's timer slack.
pub(crate) fn set_timer_slack(nanoseconds: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: PR_SET_TIMERSLACK takes an integer.
    check(unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, nanoseconds) }).map(drop)
}

/// `KEY_SPEC_THREAD_KEYRING` and `KEY_SPEC_SESSION_KEYRING` from `<linux/keyctl.h>`.
pub(crate) const THREAD_KEYRING: libc::c_int = -1;
/// See [`THREAD_KEYRING`].
pub(crate) const SESSION_KEYRING: libc::c_int = -3;

/// `keyctl(KEYCTL_GET_KEYRING_ID, keyring, 0)`: the serial number of the calling thread's
/// special `keyring` ([`THREAD_KEYRING`], [`SESSION_KEYRING`]), without creating it (`ENOKEY`
/// when there is none).
pub(crate) fn keyring_id(keyring: libc::c_int) -> Result<i64, Errno> {
    const KEYCTL_GET_KEYRING_ID: libc::c_int = 0;
    // SAFETY: KEYCTL_GET_KEYRING_ID takes two integers and touches no memory of ours.
    check(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_GET_KEYRING_ID, keyring, 0) })
}

/// `IOPRIO_WHO_PROCESS` with id 0: the calling thread.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;

/// `ioprio_get(IOPRIO_WHO_PROCESS, 0)`: the calling thread's I/O priority.
pub(crate) fn ioprio() -> Result<libc::c_int, Errno> {
    ioprio_of(0)
}

/// `ioprio_get(IOPRIO_WHO_PROCESS, tid)`: thread `tid`'s I/O priority.
pub(crate) fn ioprio_of(tid: libc::pid_t) -> Result<libc::c_int, Errno> {
    // SAFETY: ioprio_get takes two integers and touches no memory of ours.
    check(unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid) })
        .map(|prio| prio as libc::c_int)
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, prio)`: makes `prio` the calling thread's I/O priority.
pub(crate) fn set_ioprio(prio: libc::c_int) -> Result<(), Errno> {
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) }).map(drop)
}

/// `personality(0xffffffff)`: the calling thread's execution domain, unchanged.
pub(crate) fn personality() -> Result<libc::c_int, Errno> {
    // SAFETY: personality takes an integer; 0xffffffff only queries.
    check(unsafe { libc::personality(0xffff_ffff) })
}

/// `personality(persona)`: makes `persona` the calling thread's execution domain.
pub(crate) fn set_personality(persona: libc::c_int) -> Result<(), Errno> {
    // SAFETY: personality takes an integer and touches no memory of ours.
    check(unsafe { libc::personality(persona as libc::c_ulong) }).map(drop)
}

/// The calling thread's NUMA memory policy: its mode and the first 64 nodes of its node mask
/// (`get_mempolicy` with no address).
pub(crate) fn mempolicy() -> Result<(libc::c_int, u64), Errno> {
    let mut mode: libc::c_int = 0;
    let mut nodes: u64 = 0;
    // SAFETY: the kernel writes one int into `mode` and at most `maxnode` (64) bits into
    // `nodes`, both of which outlive the call; no address is asked about.
    check(unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode,
            &mut nodes,
            64_u64,
            null::<libc::c_void>(),
            0_u64,
        )
    })?;
    Ok((mode, nodes))
}

/// `set_mempolicy(MPOL_DEFAULT, NULL, 0)`: gives the calling thread the default memory policy.
pub(crate) fn set_default_mempolicy() -> Result<(), Errno> {
    // SAFETY: MPOL_DEFAULT (0) takes no node mask: a null one of 0 nodes.
    check(unsafe { libc::syscall(libc::SYS_set_mempolicy, 0, null::<u64>(), 0_u64) }).map(drop)
}

/// `sigpending`: the signals pending for the calling thread or its process, as procfs's bits
/// (bit `n - 1` for signal `n`).
pub(crate) fn pending_signals() -> u64 {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: `set` is a valid place for a sigset_t, which sigpending writes (its zeroes are a
    // valid sigset_t too); sigismember only reads it.
    unsafe {
        let result = libc::sigpending(set.as_mut_ptr());
        debug_assert_eq!(result, 0, "sigpending cannot fail with a valid pointer");
        let set = set.assume_init();
        (1..=64).fold(0, |bits, signal| match libc::sigismember(&set, signal) {
            1 => bits | (1 << (signal - 1)),
            _ => bits,
        })
    }
}

/// `sigtimedwait(set, NULL, {0, 0})`: takes one pending signal of `set` (blocked ones) without
/// waiting, a signal directed at the calling thread before one directed at its process;
/// `EAGAIN` when none is pending.
pub(crate) fn take_pending_signal(set: &libc::sigset_t) -> Result<libc::c_int, Errno> {
    let now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `set` and `now` are valid and outlive the call; no siginfo is asked for.
    check(unsafe { libc::sigtimedwait(set, null_mut(), &now) })
}

/// Whether the kernel updates the calling thread's restartable-sequences area, which the C
/// library registers for every thread (glibc 2.35 and later: `__rseq_offset` and `__rseq_size`
/// say where it is); `None` where there is none to look at (another C library, registration
/// turned off, or an architecture this does not know the thread pointer of).
pub(crate) fn rseq_registered() -> Option<bool> {
    static OFFSET: crate::once::NoWaitOnce<Option<isize>> = crate::once::NoWaitOnce::new();
    let offset = (*OFFSET.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT looks a name up in the loaded objects; the symbols,
        // where present, are the C library's `ptrdiff_t __rseq_offset` and
        // `unsigned int __rseq_size`, constant once the process runs.
        unsafe {
            let offset = libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr());
            let size = libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_size".as_ptr());
            if offset.is_null() || size.is_null() || *(size as *const libc::c_uint) == 0 {
                return None;
            }
            Some(*(offset as *const isize))
        }
    }))?;
    let area = thread_pointer()?.wrapping_offset(offset);
    // `struct rseq`'s `cpu_id` (after the u32 `cpu_id_start`): the CPU while registered, -1
    // after the thread unregistered, -2 when registration failed.
    // SAFETY: the C library placed this thread's `struct rseq` at the thread pointer plus
    // `__rseq_offset`, in the thread's own TLS block, alive as long as the thread; the kernel
    // writes it concurrently, hence the volatile read of one aligned u32.
    let cpu_id = unsafe { std::ptr::read_volatile(area.add(4) as *const i32) };
    Some(cpu_id >= 0)
}

/// The calling thread's thread pointer (its TLS block), on the architectures this knows.
fn thread_pointer() -> Option<*const u8> {
    #[cfg(target_arch = "x86_64")]
    {
        let pointer: *const u8;
        // SAFETY: on x86-64 the C library keeps the thread control block's own address at
        // `%fs:0`; the load reads that one word and touches nothing else.
        unsafe {
            std::arch::asm!("mov {}, qword ptr fs:0", out(reg) pointer, options(nostack, readonly, preserves_flags));
        }
        Some(pointer)
    }
    #[cfg(target_arch = "aarch64")]
    {
        let pointer: *const u8;
        // SAFETY: reading `tpidr_el0`, the thread pointer register, has no other effect.
        unsafe {
            std::arch::asm!("mrs {}, tpidr_el0", out(reg) pointer, options(nomem, nostack, preserves_flags));
        }
        Some(pointer)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        None
    }
}

/// The soft limit on the process's open descriptors (`RLIMIT_NOFILE`), when it has one.
pub(crate) fn descriptor_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `limit`, which outlives the call.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }).ok()?;
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as usize)
}

/// `tgkill(pid, tid, 0)`: whether thread `tid` of process `pid` still exists (`ESRCH` if not).
pub(crate) fn thread_exists(pid: libc::pid_t, tid: libc::pid_t) -> bool {
    // SAFETY: signal 0 sends nothing: the call only checks that the thread exists.
    let result = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, 0) };
    result == 0 || Errno::last() != Errno::ESRCH
}

// Waiting.

/// `poll` on `fd` for `events`, without waiting: whether any of them (or an error condition)
/// is ready.
pub(crate) fn poll_ready(fd: BorrowedFd<'_>, events: libc::c_short) -> Result<bool, Errno> {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, which outlives the call; no wait. `BorrowedFd` keeps the
    // descriptor open for it.
    let ready = check(unsafe { libc::poll(&mut poll, 1, 0) })?;
    Ok(ready != 0)
}

/// `FUTEX_WAIT` (private) on `word`: sleeps while it holds `expected`, until woken, for at
/// most `timeout` (`None`: no limit). Returns at once (`EAGAIN`) when `word` holds another
/// value; `EINTR` and `ETIMEDOUT` come back too, and spurious returns happen: callers loop.
#[cfg(not(loom))]
pub(crate) fn futex_wait(
    word: &std::sync::atomic::AtomicU32,
    expected: u32,
    timeout: Option<std::time::Duration>,
) -> Result<(), Errno> {
    let timeout = timeout.map(|timeout| libc::timespec {
        tv_sec: timeout.as_secs().try_into().unwrap_or(libc::time_t::MAX),
        tv_nsec: timeout.subsec_nanos().into(),
    });
    let timeout = timeout
        .as_ref()
        .map_or(null(), |timeout| timeout as *const libc::timespec);
    // SAFETY: FUTEX_WAIT only reads the aligned u32 behind `word`, which outlives the call, and
    // the relative timeout, a live `timespec` or null (no limit).
    check(unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            timeout,
        )
    })
    .map(drop)
}

/// `FUTEX_WAKE` (private): wakes up to `waiters` threads sleeping on the futex at `word`, and
/// says how many it woke. Only the address is used, never the memory, so `word` may already be
/// gone.
#[cfg(not(loom))]
pub(crate) fn futex_wake(
    word: *const std::sync::atomic::AtomicU32,
    waiters: libc::c_int,
) -> Result<libc::c_long, Errno> {
    // SAFETY: FUTEX_WAKE does not access memory; it wakes threads waiting on this address.
    check(unsafe {
        libc::syscall(
            libc::SYS_futex,
            word,
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            waiters,
        )
    })
}
