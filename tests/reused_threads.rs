//! A reused namespace thread (a warm thread, a `Worker`'s) is always right: nothing a body does
//! to its own thread reaches the next call, and a view is as its sources are when the call
//! starts.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{EtcDir, TempNs, current_id, gettid, socket_ns};
use in_netns::{NetNs, NsId, Options};
use nix::sched::{CloneFlags, CpuSet, sched_getaffinity, sched_setaffinity, setns, unshare};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::unistd::Pid;

/// The calling thread's mount namespace (the inode of its nsfs file).
fn mount_ns() -> u64 {
    fs::metadata("/proc/thread-self/ns/mnt").unwrap().ino()
}

/// A handle whose next plain call runs on a warm thread (its first ran on a fresh one).
fn warm(ns: &NetNs, options: &Options) {
    ns.run_with(options, || ()).unwrap();
    ns.run_with(options, || ()).unwrap();
}

/// Each of `callers` threads, and this one, calls `f` on `ns` `rounds` times.
fn from_many_threads<T: Send>(ns: &NetNs, f: impl Fn() -> T + Sync) -> Vec<T> {
    std::thread::scope(|scope| {
        let others: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| (0..2).map(|_| ns.run(&f).unwrap()).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<T> = (0..2).map(|_| ns.run(&f).unwrap()).collect();
        for other in others {
            all.extend(other.join().unwrap());
        }
        all
    })
}

#[in_netns::test]
fn a_body_that_leaves_the_namespace_takes_no_later_call_with_it() {
    let ns = NetNs::new().unwrap();
    let host = NetNs::current().unwrap();
    warm(&ns, &Options::DEFAULT);
    ns.run(|| setns(&host, CloneFlags::CLONE_NEWNET).unwrap())
        .unwrap();
    let after_setns = from_many_threads(&ns, current_id);
    ns.run(|| unshare(CloneFlags::CLONE_NEWNET).unwrap())
        .unwrap();
    let after_unshare = from_many_threads(&ns, current_id);
    assert!(
        after_setns.iter().all(|id| *id == ns.id()),
        "{after_setns:?}"
    );
    assert!(
        after_unshare.iter().all(|id| *id == ns.id()),
        "{after_unshare:?}"
    );
}

#[in_netns::test]
fn a_body_that_unshares_its_mounts_gives_them_to_no_later_call() {
    let ns = NetNs::new().unwrap();
    let process_mounts = mount_ns();
    warm(&ns, &Options::DEFAULT);
    let private = ns
        .run(|| {
            unshare(CloneFlags::CLONE_NEWNS).unwrap();
            mount_ns()
        })
        .unwrap();
    assert_ne!(private, process_mounts);
    let later = from_many_threads(&ns, mount_ns);
    assert!(later.iter().all(|mnt| *mnt == process_mounts), "{later:?}");
}

#[in_netns::test]
fn a_body_that_unshares_its_directory_moves_no_later_call() {
    let ns = NetNs::new().unwrap();
    let caller = std::env::current_dir().unwrap();
    warm(&ns, &Options::DEFAULT);
    ns.run(|| {
        unshare(CloneFlags::CLONE_FS).unwrap();
        std::env::set_current_dir("/tmp").unwrap();
    })
    .unwrap();
    let later = from_many_threads(&ns, || std::env::current_dir().unwrap());
    assert!(later.iter().all(|dir| *dir == caller), "{later:?}");
}

// A dead descriptor in a later call would abort the process (IO safety): a process of its own.
#[in_netns::test(own_process)]
fn a_body_that_unshares_its_file_table_loses_no_later_calls_descriptor() {
    let ns = NetNs::new().unwrap();
    warm(&ns, &Options::DEFAULT);
    ns.run(|| unshare(CloneFlags::CLONE_FILES).unwrap())
        .unwrap();
    for _ in 0..4 {
        let socket = ns
            .run(|| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .unwrap();
        assert!(socket.local_addr().is_ok(), "the socket is open here");
        assert_eq!(socket_ns(&socket), ns.id());
    }
}

/// What a body can set on its own thread, as a later body sees it.
#[derive(Debug, PartialEq)]
struct ThreadState {
    blocks_usr1: bool,
    affinity: CpuSet,
    name: String,
    nice: i32,
}

fn thread_state() -> ThreadState {
    let mut mask = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut mask)).unwrap();
    ThreadState {
        blocks_usr1: mask.contains(Signal::SIGUSR1),
        affinity: sched_getaffinity(Pid::from_raw(0)).unwrap(),
        name: fs::read_to_string("/proc/thread-self/comm")
            .unwrap()
            .trim_end()
            .to_owned(),
        // SAFETY: getpriority only returns a value (0: the calling thread).
        nice: unsafe { nix::libc::getpriority(nix::libc::PRIO_PROCESS, 0) },
    }
}

fn change_thread_state() {
    let mut usr1 = SigSet::empty();
    usr1.add(Signal::SIGUSR1);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&usr1), None).unwrap();
    let mut one_cpu = CpuSet::new();
    one_cpu.set(0).unwrap();
    sched_setaffinity(Pid::from_raw(0), &one_cpu).unwrap();
    // SAFETY: PR_SET_NAME reads a NUL-terminated string.
    unsafe { nix::libc::prctl(nix::libc::PR_SET_NAME, c"renamed".as_ptr()) };
    // SAFETY: raising the calling thread's nice value needs no privilege.
    unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, 7) };
}

#[in_netns::test]
fn a_bodys_signal_mask_affinity_name_and_nice_value_reach_no_later_call() {
    let ns = NetNs::new().unwrap();
    let worker = ns.worker().unwrap();
    warm(&ns, &Options::DEFAULT);
    let fresh = ns
        .run_with(&Options::default().fresh_thread(true), thread_state)
        .unwrap();
    assert_eq!(fresh.name, "in-netns");
    let changed = ns
        .run(|| {
            change_thread_state();
            thread_state()
        })
        .unwrap();
    assert_ne!(changed, fresh, "the body changed its thread");
    assert_eq!(ns.run(thread_state).unwrap(), fresh, "a warm thread");
    worker.run(change_thread_state).unwrap();
    assert_eq!(
        worker.run(thread_state).unwrap(),
        fresh,
        "a worker's thread"
    );
}

#[in_netns::test]
fn a_worker_whose_body_left_the_namespace_runs_the_next_call_inside() {
    let ns = NetNs::new().unwrap();
    let host = NetNs::current().unwrap();
    let worker = ns.worker().unwrap();
    let first = worker.run(gettid).unwrap();
    worker
        .run(|| setns(&host, CloneFlags::CLONE_NEWNET).unwrap())
        .unwrap();
    assert_eq!(worker.run(current_id).unwrap(), ns.id());
    assert_eq!(
        worker.run(gettid).unwrap(),
        first,
        "re-entering the namespace keeps the thread"
    );
    // A file table of its own cannot be given back: a new thread takes over.
    worker
        .run(|| unshare(CloneFlags::CLONE_FILES).unwrap())
        .unwrap();
    let (tid, id, socket) = worker
        .run(|| {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            (gettid(), current_id(), socket)
        })
        .unwrap();
    assert_ne!(tid, first, "a new thread behind the same worker");
    assert_eq!(id, ns.id());
    assert!(socket.local_addr().is_ok());
    // A directory of its own too.
    let caller = std::env::current_dir().unwrap();
    worker
        .run(|| {
            unshare(CloneFlags::CLONE_FS).unwrap();
            std::env::set_current_dir("/tmp").unwrap();
        })
        .unwrap();
    assert_eq!(
        worker.run(|| std::env::current_dir().unwrap()).unwrap(),
        caller
    );
    assert_eq!(worker.run(mount_ns).unwrap(), mount_ns());
}

#[in_netns::test]
fn a_view_thread_gets_its_root_directory_umask_and_mounts_back() {
    let ns = NetNs::new().unwrap();
    let sysfs = Options::default().sysfs(true);
    let caller = std::env::current_dir().unwrap();
    warm(&ns, &sysfs);
    let view = |()| {
        // SAFETY: umask(2) cannot fail; set and set back to read it.
        let umask = unsafe { nix::libc::umask(0o022) };
        // SAFETY: as above.
        unsafe { nix::libc::umask(umask) };
        (
            std::env::current_dir().unwrap(),
            umask,
            Path::new("/sys/class/net/lo").exists(),
        )
    };
    let before = ns.run_with(&sysfs, || view(())).unwrap();
    let marker = Path::new("/tmp").join(common::unique_name("private-mount"));
    ns.run_with(&sysfs, || {
        // SAFETY: as above.
        unsafe { nix::libc::umask(0o077) };
        unshare(CloneFlags::CLONE_NEWNS).unwrap();
        let tmpfs = nix::mount::MsFlags::empty();
        nix::mount::mount(Some("tmpfs"), "/tmp", Some("tmpfs"), tmpfs, None::<&str>).unwrap();
        fs::write(&marker, "only in the body's mounts").unwrap();
        nix::unistd::chroot("/tmp").unwrap();
        std::env::set_current_dir("/").unwrap();
    })
    .unwrap();
    let (after, marked) = ns.run_with(&sysfs, || (view(()), marker.exists())).unwrap();
    assert_eq!(after, before);
    assert_eq!(after.0, caller);
    assert!(!marked, "the body's private mounts are gone");
    assert!(!marker.exists());
}

#[in_netns::test]
fn an_etc_view_is_as_etc_netns_is_when_the_call_starts() {
    let target = TempNs::new("etc-now");
    let etc = Options::default().etc(true);
    let dir = EtcDir::new(&target.name, &[("hosts", "192.0.2.1 first\n")]);
    let host_hosts = fs::read_to_string("/etc/hosts").unwrap();
    let read = |file: &'static str| {
        target
            .ns
            .run_with(&etc, move || {
                fs::read_to_string(Path::new("/etc").join(file)).ok()
            })
            .unwrap()
    };
    let thread = || target.ns.run_with(&etc, gettid).unwrap();
    assert_eq!(read("hosts").as_deref(), Some("192.0.2.1 first\n"));
    let warm_thread = thread();
    assert_eq!(read("hosts").as_deref(), Some("192.0.2.1 first\n"));
    // Replaced as editors and resolvers do: a new file renamed over the old one.
    fs::write(dir.0.join("hosts.new"), "192.0.2.2 replaced\n").unwrap();
    fs::rename(dir.0.join("hosts.new"), dir.0.join("hosts")).unwrap();
    assert_eq!(read("hosts").as_deref(), Some("192.0.2.2 replaced\n"));
    // Added.
    let resolv = format!("nameserver 192.0.2.53 # {}\n", target.name);
    fs::write(dir.0.join("resolv.conf"), &resolv).unwrap();
    assert_eq!(read("resolv.conf"), Some(resolv));
    // Removed.
    fs::remove_file(dir.0.join("hosts")).unwrap();
    assert_eq!(read("hosts"), Some(host_hosts));
    assert_eq!(
        thread(),
        warm_thread,
        "the same warm thread saw each change"
    );
}

/// A tmpfs mounted on the host for the test, unmounted (and its directory removed) on drop.
struct HostMount(PathBuf);

impl HostMount {
    fn new() -> HostMount {
        let dir = std::env::temp_dir().join(common::unique_name("host-mount"));
        fs::create_dir(&dir).unwrap();
        let mount = HostMount(dir);
        nix::mount::mount(
            Some("tmpfs"),
            &mount.0,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        mount
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        let _ = fs::remove_dir(&self.0);
    }
}

// Changes the process's working directory: a process of its own.
#[in_netns::test(own_process)]
fn a_sysfs_view_has_the_hosts_mounts_as_they_are_when_the_call_starts() {
    let ns = NetNs::new().unwrap();
    let sysfs = Options::default().sysfs(true);
    let worker = ns.worker_with(&sysfs.setup()).unwrap();
    warm(&ns, &sysfs);
    let home = std::env::current_dir().unwrap();
    let mount = HostMount::new();
    fs::write(mount.0.join("data.txt"), "on the new mount").unwrap();
    std::env::set_current_dir(&mount.0).unwrap();
    let absolute = mount.0.join("data.txt");
    let read = || {
        (
            fs::read_to_string("data.txt").ok(),
            fs::read_to_string(&absolute).ok(),
            Path::new("/sys/class/net/lo").exists(),
        )
    };
    let expected = (
        Some("on the new mount".to_owned()),
        Some("on the new mount".to_owned()),
        true,
    );
    let on_warm = ns.run_with(&sysfs, read).unwrap();
    let on_worker = worker.run(read).unwrap();
    std::env::set_current_dir(&home).unwrap();
    assert_eq!(on_warm, expected, "a warm thread");
    assert_eq!(on_worker, expected, "a worker's thread");
}

// Removes the process's working directory: a process of its own.
#[in_netns::test(own_process)]
fn views_work_in_a_removed_working_directory_as_on_a_fresh_thread() {
    let ns = NetNs::new().unwrap();
    let sysfs = Options::default().sysfs(true);
    let etc_free = Options::default().sysfs(true).fresh_thread(true);
    let worker = ns.worker_with(&sysfs.setup()).unwrap();
    warm(&ns, &sysfs);
    let home = std::env::current_dir().unwrap();
    let removed = std::env::temp_dir().join(common::unique_name("cwd-removed"));
    fs::create_dir(&removed).unwrap();
    std::env::set_current_dir(&removed).unwrap();
    fs::remove_dir(&removed).unwrap();
    let look = || -> (bool, NsId) { (std::env::current_dir().is_err(), current_id()) };
    let calls: Vec<_> = (0..3)
        .map(|_| ns.run_with(&sysfs, look).map_err(|e| e.to_string()))
        .collect();
    let fresh = ns.run_with(&etc_free, look).map_err(|e| e.to_string());
    let on_worker = worker.run(look).map_err(|e| e.to_string());
    std::env::set_current_dir(&home).unwrap();
    let inside = Ok((true, ns.id()));
    assert_eq!(
        fresh, inside,
        "a fresh thread runs the body in the removed directory"
    );
    assert!(calls.iter().all(|call| *call == inside), "{calls:?}");
    assert_eq!(on_worker, inside);
}

#[in_netns::test]
fn mounts_a_body_makes_in_its_view_reach_no_later_call() {
    let ns = NetNs::new().unwrap();
    let sysfs = Options::default().sysfs(true);
    let worker = ns.worker_with(&sysfs.setup()).unwrap();
    warm(&ns, &sysfs);
    let secret = Path::new("/mnt").join(common::unique_name("view-secret"));
    let change_the_view = || {
        let tmpfs = nix::mount::MsFlags::empty();
        nix::mount::mount(Some("tmpfs"), "/mnt", Some("tmpfs"), tmpfs, None::<&str>).unwrap();
        fs::write(&secret, "from an earlier call").unwrap();
        nix::mount::umount2("/sys", nix::mount::MntFlags::MNT_DETACH).unwrap();
    };
    let look = || (secret.exists(), Path::new("/sys/class/net/lo").exists());
    ns.run_with(&sysfs, change_the_view).unwrap();
    assert_eq!(
        ns.run_with(&sysfs, look).unwrap(),
        (false, true),
        "a warm thread"
    );
    worker.run(change_the_view).unwrap();
    assert_eq!(
        worker.run(look).unwrap(),
        (false, true),
        "a worker's thread"
    );
    assert!(!secret.exists(), "the host never saw it");
}

/// `/proc/thread-self/status`'s line `field`.
fn status_line(field: &str) -> String {
    let status = fs::read_to_string("/proc/thread-self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap();
    line.to_owned()
}

/// What a thread inherits from the one that starts it, as a body sees it.
fn inherited() -> (String, String, String, i32) {
    (
        status_line("SigBlk:"),
        status_line("Cpus_allowed_list:"),
        status_line("CapEff:"),
        // SAFETY: getpriority only returns a value (0: the calling thread).
        unsafe { nix::libc::getpriority(nix::libc::PRIO_PROCESS, 0) },
    )
}

#[in_netns::test]
fn a_warm_thread_has_the_main_threads_state_not_that_of_the_caller_that_started_it() {
    let ns = NetNs::new().unwrap();
    let expected = ns
        .run_with(&Options::default().fresh_thread(true), inherited)
        .unwrap();
    ns.run(|| ()).unwrap(); // the first call, on a fresh thread
    // Another caller, in a state of its own, starts the warm thread.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut usr2 = SigSet::empty();
            usr2.add(Signal::SIGUSR2);
            pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&usr2), None).unwrap();
            let mut one_cpu = CpuSet::new();
            one_cpu.set(0).unwrap();
            sched_setaffinity(Pid::from_raw(0), &one_cpu).unwrap();
            // SAFETY: raising the calling thread's nice value needs no privilege.
            unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, 9) };
            assert_ne!(inherited(), expected, "the caller's own state differs");
            // Its call runs in the main thread's state, or (without CAP_SYS_NICE, which
            // lowering a nice value needs) in its own on a thread that is not reused.
            let started = ns.run(inherited).unwrap();
            assert!(started == expected || started == inherited(), "{started:?}");
        });
    });
    assert_eq!(ns.run(inherited).unwrap(), expected);
    let worker = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: as above.
                unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, 9) };
                ns.worker().unwrap()
            })
            .join()
            .unwrap()
    });
    // Its first call may run in its maker's state (on a thread that is not reused, where the
    // main thread's cannot be taken on); the next ones run in the main thread's.
    worker.run(inherited).unwrap();
    assert_eq!(
        worker.run(inherited).unwrap(),
        expected,
        "a worker's thread"
    );
}

/// Descriptors open in the process.
fn open_descriptors() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

// Counts the process's descriptors: a process of its own.
#[in_netns::test(own_process)]
fn a_view_thread_retired_for_a_file_table_of_its_own_leaves_no_descriptor_open() {
    let ns = NetNs::new().unwrap();
    let sysfs = Options::default().sysfs(true);
    warm(&ns, &sysfs);
    let before = open_descriptors();
    for _ in 0..10 {
        ns.run_with(&sysfs, || unshare(CloneFlags::CLONE_FILES).unwrap())
            .unwrap();
        ns.run_with(&sysfs, || ()).unwrap();
        let worker = ns.worker_with(&sysfs.setup()).unwrap();
        worker
            .run(|| unshare(CloneFlags::CLONE_FILES).unwrap())
            .unwrap();
        worker.run(|| ()).unwrap();
    }
    // A retired warm thread ends within about a millisecond, and is joined (what it left open
    // closed) by a later call that finds it ended: a few calls, on a loaded machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while open_descriptors() != before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
        ns.run_with(&sysfs, || ()).unwrap();
    }
    assert_eq!(open_descriptors(), before);
}

#[in_netns::test]
fn new_reused_threads_after_many_retirements_have_the_main_threads_mask() {
    let ns = NetNs::new().unwrap();
    let sysfs = Options::default().sysfs(true);
    let expected = status_line("SigBlk:");
    warm(&ns, &sysfs);
    // Each round retires the warm thread, so the next call starts a new one, which takes the
    // main thread's mask. (The main thread of a test process only waits, so this does not show
    // a new thread reading the mask while the main thread itself starts one: that is handled in
    // `signal_mask_of`, and shows only in a program whose main thread makes the calls.)
    let masks: Vec<String> = (0..200)
        .map(|_| {
            ns.run_with(&sysfs, || unshare(CloneFlags::CLONE_FILES).unwrap())
                .unwrap();
            ns.run_with(&sysfs, || status_line("SigBlk:")).unwrap()
        })
        .collect();
    let wrong: Vec<_> = masks.iter().filter(|mask| **mask != expected).collect();
    assert!(wrong.is_empty(), "{} of 200: {wrong:?}", wrong.len());
}

#[in_netns::test]
fn a_worker_made_by_a_caller_in_a_state_of_its_own_serves_its_first_call() {
    let ns = NetNs::new().unwrap();
    let first = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: raising the calling thread's nice value needs no privilege.
                unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, 10) };
                let worker = ns.worker().unwrap();
                worker.run(current_id).map_err(|e| e.to_string())
            })
            .join()
            .unwrap()
    });
    assert_eq!(first, Ok(ns.id()));
}
