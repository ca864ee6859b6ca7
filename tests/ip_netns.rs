//! `ip netns` parity, checked against `ip netns` itself: `attach`, `identify` (`names`), `pids`,
//! `monitor` (`watch`); pidfds (`of_pidfd`, `of_child`, a race-free `of_pid`) with a pid
//! really reused; registries other than `/run/netns`.

mod common;

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use common::{EtcDir, TempNs, TempRegistry, bad_names, gettid, require_privilege, unique_name};
use in_netns::{Error, NetNs, NetnsCommandExt, Options, Registry, Watch, WatchEvent};

/// How long a test waits for an event before it fails (a hang made a failure, not a measure).
const TIMEOUT: Duration = Duration::from_secs(30);

// --- fixtures -------------------------------------------------------------------------------

/// Runs `ip` and returns whether it succeeded, with its standard output.
fn ip(args: &[&str]) -> (bool, String) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The names `ip netns list` prints (each line is `NAME` or `NAME (id: N)`).
fn ip_netns_list() -> Vec<String> {
    let (ok, list) = ip(&["netns", "list"]);
    assert!(ok, "ip netns list failed");
    list.lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// What `ip netns exec NAME` sees as its namespace.
fn ip_netns_exec_sees(name: &str) -> String {
    let (ok, seen) = ip(&["netns", "exec", name, "readlink", "/proc/self/ns/net"]);
    assert!(ok, "ip netns exec {name} failed");
    seen.trim().to_owned()
}

/// Whitespace-separated words of `ip` output, sorted.
fn sorted_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    words.sort();
    words
}

/// A `sleep` child inside `ns`, killed and reaped when dropped.
struct Sleeper(Child);

impl Sleeper {
    fn inside(ns: &NetNs) -> Sleeper {
        // Spawned by the command's own `spawn`, entering after the fork: no thread is started
        // for it, so the pid-reuse scenario below knows which pid the child gets.
        let mut command = Command::new("sleep");
        command.arg("600").stdin(Stdio::null()).netns(ns);
        let child = command.spawn().expect("spawn sleep inside");
        Sleeper(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Names in a registry that the test made, removed when dropped (also when the test fails).
struct Names<'a> {
    registry: &'a Registry,
    names: Vec<String>,
}

impl<'a> Names<'a> {
    fn new(registry: &'a Registry, names: &[&str]) -> Names<'a> {
        let names = names.iter().map(|name| (*name).to_owned()).collect();
        Names { registry, names }
    }
}

impl Drop for Names<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = self.registry.remove(name);
        }
    }
}

/// A thread that hands out a watch's events, through a channel the test reads with a timeout.
/// It ends when the watch ends (its directory goes) or when `until` is seen.
struct Watcher {
    events: mpsc::Receiver<WatchEvent>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    fn start(watch: Watch, until: Option<WatchEvent>) -> Watcher {
        let (sender, events) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            for event in watch {
                let event = event.expect("the watch failed");
                let last = Some(&event) == until.as_ref();
                if sender.send(event).is_err() || last {
                    return;
                }
            }
        });
        Watcher {
            events,
            thread: Some(thread),
        }
    }

    /// The next event about one of `names` (other tests change `/run/netns` meanwhile).
    fn next_about(&self, names: &[&str]) -> WatchEvent {
        loop {
            let event = self
                .events
                .recv_timeout(TIMEOUT)
                .unwrap_or_else(|err| panic!("no event about {names:?} within {TIMEOUT:?}: {err}"));
            if names.contains(&event.name()) {
                return event;
            }
        }
    }

    /// Waits for the thread to end (the test made sure it will).
    fn join(mut self) {
        let thread = self.thread.take().unwrap();
        // A bounded wait: a thread that does not end fails the test rather than hanging it.
        let (done, ended) = mpsc::channel();
        std::thread::spawn(move || done.send(thread.join()));
        ended
            .recv_timeout(TIMEOUT)
            .expect("the watch did not end")
            .expect("the watch thread panicked");
    }
}

/// `pidfd_open(2)` of `pid`.
fn pidfd_of(pid: u32) -> OwnedFd {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let raw = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as i32, 0) };
    assert!(
        raw >= 0,
        "pidfd_open({pid}): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the call returned a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(raw as i32) }
}

/// Blocks until child `pid` has exited, leaving it a zombie (not reaped).
fn wait_until_zombie(pid: u32) {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT).expect("waitid");
}

fn expect_exited(result: in_netns::Result<NetNs>, naming: &str) {
    match result {
        Err(err @ Error::ProcessExited { .. }) => {
            let message = err.to_string();
            assert!(
                message.starts_with(naming) && message.contains("has exited"),
                "{message:?} should name {naming:?}"
            );
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{naming}: expected ProcessExited, got {other:?}"),
    }
}

// --- attach ---------------------------------------------------------------------------------

#[in_netns::test]
fn attach_names_a_childs_namespace_for_ip_netns_list_and_exec() {
    require_privilege();
    let ns = NetNs::new().unwrap();
    let mut child = Sleeper::inside(&ns);
    let of_child = NetNs::of_child(&mut child.0).unwrap();
    assert_eq!(of_child, ns);
    let name = unique_name("attach");
    let default = Registry::default();
    let _cleanup = Names::new(&default, &[&name]);
    let named = of_child.attach(&name).unwrap();
    assert_eq!((named.name(), named.id()), (Some(name.as_str()), ns.id()));
    assert!(ip_netns_list().contains(&name));
    assert_eq!(ip_netns_exec_sees(&name), ns.id().to_string());
    assert_eq!(NetNs::named(&name).unwrap(), ns);
    assert_eq!(ns.names().unwrap(), [name.as_str()]);
}

#[in_netns::test]
fn an_attached_anonymous_namespace_lives_on_its_name_until_removed() {
    require_privilege();
    let ns = NetNs::new().unwrap();
    let id = ns.id();
    let name = unique_name("attach-anon");
    let default = Registry::default();
    let _cleanup = Names::new(&default, &[&name]);
    ns.attach(&name).unwrap();
    drop(ns);
    assert_eq!(NetNs::named(&name).unwrap().id(), id);
    assert_eq!(ip_netns_exec_sees(&name), id.to_string());
    NetNs::remove(&name).unwrap();
    assert!(!ip_netns_list().contains(&name));
    assert!(matches!(NetNs::named(&name), Err(Error::NotFound { .. })));
}

#[in_netns::test]
fn attach_to_a_taken_name_is_already_exists_and_leaves_the_name_alone() {
    let taken = TempNs::new("attach-taken");
    let other = NetNs::new().unwrap();
    match other.attach(&taken.name) {
        Err(err @ Error::AlreadyExists { .. }) => {
            assert!(err.to_string().contains(&taken.name), "{err}");
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(NetNs::named(&taken.name).unwrap(), taken.ns);
    assert_eq!(other.names().unwrap(), Vec::<String>::new());
    for name in bad_names() {
        match other.attach(&name) {
            Err(Error::InvalidName { name: got, .. }) => assert_eq!(got, name),
            result => panic!("{name:?}: expected InvalidName, got {result:?}"),
        }
    }
}

#[in_netns::test]
fn of_concurrent_attaches_of_one_name_exactly_one_succeeds() {
    require_privilege();
    let name = unique_name("attach-race");
    let default = Registry::default();
    let _cleanup = Names::new(&default, &[&name]);
    let namespaces: Vec<NetNs> = (0..8).map(|_| NetNs::new().unwrap()).collect();
    let barrier = std::sync::Barrier::new(namespaces.len());
    let results: Vec<_> = std::thread::scope(|scope| {
        let racers: Vec<_> = namespaces
            .iter()
            .map(|ns| {
                scope.spawn(|| {
                    barrier.wait();
                    ns.attach(&name)
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let winners: Vec<&NetNs> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let exists = results
        .iter()
        .filter(|r| matches!(r, Err(Error::AlreadyExists { .. })))
        .count();
    assert_eq!((winners.len(), exists), (1, 7), "{results:?}");
    assert_eq!(&NetNs::named(&name).unwrap(), winners[0]);
}

// --- identify and pids ----------------------------------------------------------------------

#[in_netns::test]
fn names_agree_with_ip_netns_identify() {
    require_privilege();
    let ns = NetNs::new().unwrap();
    let (first, second) = (unique_name("identify-a"), unique_name("identify-b"));
    let default = Registry::default();
    let _cleanup = Names::new(&default, &[&first, &second]);
    let other = TempNs::new("identify-other");
    let child = Sleeper::inside(&ns);
    let identify = || {
        let (ok, identified) = ip(&["netns", "identify", &child.pid().to_string()]);
        assert!(ok, "ip netns identify failed");
        sorted_words(&identified)
    };
    assert_eq!(identify(), Vec::<String>::new());
    assert_eq!(ns.names().unwrap(), Vec::<String>::new());

    ns.attach(&first).unwrap();
    assert_eq!(identify(), [first.as_str()]);
    assert_eq!(ns.names().unwrap(), [first.as_str()]);

    // `ip netns identify` prints one of several names; `names` gives them all.
    ns.attach(&second).unwrap();
    let both = vec![first.clone(), second.clone()];
    let shown = identify();
    assert!(shown.len() == 1 && both.contains(&shown[0]), "{shown:?}");
    assert_eq!(ns.names().unwrap(), both);
    assert_eq!(NetNs::named(&second).unwrap().names().unwrap(), both);
    assert_eq!(other.ns.names().unwrap(), [other.name.as_str()]);
}

#[in_netns::test]
fn pids_agree_with_ip_netns_pids_and_leave_out_processes_that_exited() {
    let target = TempNs::new("pids");
    let first = Sleeper::inside(&target.ns);
    let second = Sleeper::inside(&target.ns);
    let mut expected = vec![first.pid(), second.pid()];
    expected.sort();
    assert_eq!(target.ns.pids().unwrap(), expected);
    let (ok, listed) = ip(&["netns", "pids", &target.name]);
    assert!(ok, "ip netns pids failed");
    let mut listed: Vec<u32> = listed
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    listed.sort();
    assert_eq!(listed, expected);

    let second_pid = second.pid();
    drop(first); // killed and reaped
    assert_eq!(target.ns.pids().unwrap(), [second_pid]);
    assert_eq!(NetNs::new().unwrap().pids().unwrap(), Vec::<u32>::new());
}

// --- pidfds ---------------------------------------------------------------------------------

#[in_netns::test]
fn a_pidfd_a_child_and_a_pid_each_name_exactly_that_processs_namespace() {
    require_privilege();
    let ns = NetNs::new().unwrap();
    let mut child = Sleeper::inside(&ns);
    let pidfd = pidfd_of(child.pid());
    for (how, opened) in [
        ("of_pidfd", NetNs::of_pidfd(&pidfd)),
        (
            "through procfs",
            netns_core::__private::of_pidfd_through_procfs(&pidfd),
        ),
        ("of_child", NetNs::of_child(&mut child.0)),
    ] {
        let opened = opened.unwrap_or_else(|err| panic!("{how}: {err}"));
        assert_eq!(opened, ns, "{how}");
        assert_eq!(opened.run(common::current_id).unwrap(), ns.id(), "{how}");
    }
    let by_pid = NetNs::of_pid(child.pid()).unwrap();
    let path = PathBuf::from(format!("/proc/{}/ns/net", child.pid()));
    assert_eq!(
        (by_pid.id(), by_pid.path()),
        (ns.id(), Some(path.as_path()))
    );

    // A thread id names its thread, as /proc/TID/ns/net does: one of ours inside `ns`.
    let (tid_sender, tid) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let inside = ns
        .spawn(move || {
            tid_sender.send(gettid()).unwrap();
            let _ = released.recv();
        })
        .unwrap();
    let tid = tid.recv().unwrap();
    assert_eq!(NetNs::of_pid(tid).unwrap(), ns);
    assert_ne!(NetNs::of_pid(std::process::id()).unwrap(), ns);
    drop(release);
    inside.join().unwrap();
}

#[cfg(feature = "tokio")]
#[in_netns::test]
async fn a_tokio_child_names_its_namespace_until_it_is_awaited() {
    let ns = NetNs::new().unwrap();
    let mut child = tokio::process::Command::new("sleep")
        .arg("600")
        .netns(&ns)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    assert_eq!(NetNs::of_tokio_child(&child).unwrap(), ns);
    child.kill().await.unwrap(); // kills and reaps
    expect_exited(
        NetNs::of_tokio_child(&child),
        "a tokio child that was already waited for",
    );
    assert!(matches!(NetNs::of_pid(pid), Err(Error::NotFound { .. })));
}

#[in_netns::test]
fn a_pidfd_or_child_of_an_exited_process_is_process_exited_naming_it() {
    require_privilege();
    let ns = NetNs::new().unwrap();
    let mut child = Sleeper::inside(&ns);
    let pid = child.pid();
    let pidfd = pidfd_of(pid);
    let fd = pidfd.as_raw_fd();
    child.0.kill().unwrap();
    wait_until_zombie(pid);

    // A zombie: the pid is still its own, the namespace is gone.
    let zombie = format!("pidfd {fd} (pid {pid})");
    expect_exited(NetNs::of_pidfd(&pidfd), &zombie);
    expect_exited(
        netns_core::__private::of_pidfd_through_procfs(&pidfd),
        &zombie,
    );
    let by_pid = NetNs::of_pid(pid);
    assert!(matches!(by_pid, Err(Error::NotFound { .. })), "{by_pid:?}");

    // Reaped (here by of_child's try_wait): the pid is free for anyone.
    expect_exited(NetNs::of_child(&mut child.0), &format!("child pid {pid}"));
    expect_exited(NetNs::of_child(&mut child.0), &format!("child pid {pid}"));
    let reaped = format!("pidfd {fd}");
    expect_exited(NetNs::of_pidfd(&pidfd), &reaped);
    expect_exited(
        netns_core::__private::of_pidfd_through_procfs(&pidfd),
        &reaped,
    );
}

#[in_netns::test]
fn a_descriptor_that_is_no_pidfd_is_not_pidfd_naming_it() {
    let file_path = std::env::temp_dir().join(unique_name("not-a-pidfd"));
    let file = fs::File::create(&file_path).unwrap();
    fs::remove_file(&file_path).unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let not_pidfd = |result: in_netns::Result<NetNs>, fd: i32, found: &str| match result {
        Err(err @ Error::NotPidfd { .. }) => {
            let Error::NotPidfd {
                fd: got,
                found: what,
            } = &err
            else {
                unreachable!()
            };
            assert_eq!((*got, what.as_str()), (fd, found));
            assert!(
                err.to_string()
                    .starts_with(&format!("descriptor {fd} is not a pidfd"))
            );
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        }
        other => panic!("descriptor {fd}: expected NotPidfd, got {other:?}"),
    };
    not_pidfd(
        NetNs::of_pidfd(&file),
        file.as_raw_fd(),
        "it is a regular file",
    );
    not_pidfd(
        NetNs::of_pidfd(&socket),
        socket.as_raw_fd(),
        "it is a socket",
    );
    // No descriptor can have this number (above the kernel's largest fs.nr_open).
    let closed = i32::MAX;
    // SAFETY: the number is never open, so the call can only see EBADF; no descriptor anything
    // owns is touched.
    let never_open = unsafe { std::os::fd::BorrowedFd::borrow_raw(closed) };
    not_pidfd(NetNs::of_pidfd(never_open), closed, "it is not open");
}

/// Set in the environment of this test's second run, as PID 1 of a pid namespace of its own.
const REUSE_AS_INIT: &str = "IN_NETNS_TEST_PID_REUSE_AS_INIT";

/// A child's pid is reused for real: in a pid namespace of its own (where `ns_last_pid` is
/// writable with the capabilities the test has, as root or not) the test reaps a child in one
/// namespace and makes a process in another take its pid. The pidfd taken before refuses,
/// through the kernel and through procfs, rather than name the newcomer's namespace; the pid
/// itself now names the newcomer's.
#[in_netns::test]
fn a_reused_pid_is_refused_never_read_as_the_newcomers_namespace() {
    require_privilege();
    if std::env::var_os(REUSE_AS_INIT).is_some() {
        reuse_a_pid_as_init();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let test = "a_reused_pid_is_refused_never_read_as_the_newcomers_namespace";
    let output = std::thread::scope(|scope| {
        // A thread of its own: after unshare(CLONE_NEWPID) its next child is a new pid
        // namespace's PID 1, and the thread ends with the scope.
        scope
            .spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID).expect("CLONE_NEWPID");
                Command::new(&exe)
                    .args([test, "--exact", "--nocapture", "--test-threads=1"])
                    .env(REUSE_AS_INIT, "1")
                    .output()
                    .expect("run the test again")
            })
            .join()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success()
            && stdout.contains("test result: ok. 1 passed;")
            && stdout.contains("pid reuse provoked"),
        "as PID 1 of a new pid namespace:\n{stdout}{stderr}"
    );
    let provoked = stdout
        .lines()
        .find(|line| line.contains("pid reuse provoked"));
    println!("{}", provoked.unwrap_or_default());
}

/// The scenario, as PID 1 of a new pid namespace, on the test's thread.
fn reuse_a_pid_as_init() {
    use nix::mount::{MsFlags, mount};
    assert_eq!(std::process::id(), 1, "run as PID 1 of a new pid namespace");
    // This thread's own /proc for the new pid namespace (pids, ns_last_pid), in a mount
    // namespace of its own, a slave of the process's.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
    let none = None::<&str>;
    mount(
        Some(""),
        "/",
        Some("none"),
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        none,
    )
    .unwrap();
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        none,
    )
    .expect("mount a /proc of the new pid namespace");

    let (home, elsewhere) = (NetNs::current().unwrap(), NetNs::new().unwrap());
    let mut victim = Sleeper::inside(&home);
    let pid = victim.pid();
    let pidfd = pidfd_of(pid);
    assert_eq!(NetNs::of_pidfd(&pidfd).unwrap(), home);
    victim.0.kill().unwrap();
    victim.0.wait().unwrap();

    // The next pid handed out is ns_last_pid + 1; nothing else starts processes here.
    let newcomer = (0..100)
        .find_map(|_| {
            fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
            let candidate = Sleeper::inside(&elsewhere);
            (candidate.pid() == pid).then_some(candidate)
        })
        .expect("a process that takes the reaped child's pid");
    assert_eq!(
        NetNs::of_pid(pid).unwrap(),
        elsewhere,
        "the pid names the newcomer"
    );
    let reaped = format!("pidfd {}", pidfd.as_raw_fd());
    expect_exited(NetNs::of_pidfd(&pidfd), &reaped);
    expect_exited(
        netns_core::__private::of_pidfd_through_procfs(&pidfd),
        &reaped,
    );
    expect_exited(NetNs::of_child(&mut victim.0), &format!("child pid {pid}"));
    println!("pid reuse provoked: pid {pid} went to a process in {elsewhere}, and was refused");
    drop(newcomer);
}

// --- monitor --------------------------------------------------------------------------------

#[in_netns::test]
fn watch_reports_ip_netns_add_once_it_opens_and_del() {
    require_privilege();
    let name = unique_name("monitor");
    let default = Registry::default();
    let _cleanup = Names::new(&default, &[&name]);
    let removed = WatchEvent::Removed(name.clone());
    let watcher = Watcher::start(NetNs::watch().unwrap(), Some(removed.clone()));
    assert!(ip(&["netns", "add", &name]).0, "ip netns add {name}");
    assert_eq!(
        watcher.next_about(&[&name]),
        WatchEvent::Added(name.clone())
    );
    // Reported once bound: it opens as the namespace `ip netns exec` enters.
    let ns = NetNs::named(&name).unwrap();
    assert_eq!(ip_netns_exec_sees(&name), ns.id().to_string());
    assert!(ip(&["netns", "del", &name]).0, "ip netns del {name}");
    assert_eq!(watcher.next_about(&[&name]), removed);
    watcher.join();
}

#[in_netns::test]
fn a_registry_elsewhere_does_everything_in_its_own_directory() {
    require_privilege();
    let temp = TempRegistry::new("registry");
    let pods = &temp.registry;
    let watcher = Watcher::start(pods.watch().unwrap(), None); // makes the directory
    // Unique names: `/etc/netns/NAME` below is the host's as root.
    let (first, second, late) = (
        &*unique_name("reg-a"),
        &*unique_name("reg-b"),
        &*unique_name("reg-late"),
    );

    // A name file with no namespace bound yet (as `ip netns add` makes it first) is no event.
    fs::write(temp.dir().join(late), "").unwrap();
    let ns = pods.create(first).unwrap();
    assert_eq!(
        watcher.next_about(&[first, late]),
        WatchEvent::Added(first.into())
    );
    assert_eq!(ns.name(), Some(first));
    assert_eq!(
        (ns.registry(), ns.path()),
        (pods, Some(temp.dir().join(first).as_path()))
    );
    assert_eq!(pods.named(first).unwrap(), ns);
    assert_eq!(pods.named(first).unwrap().name(), Some(first));
    assert!(!Path::new(in_netns::RUN_DIR).join(first).exists());

    // attach and names follow the handle's registry.
    let attached = ns.attach(second).unwrap();
    assert_eq!(
        watcher.next_about(&[second, late]),
        WatchEvent::Added(second.into())
    );
    assert_eq!(attached.registry(), pods);
    assert_eq!(pods.names_of(&ns).unwrap(), [first, second]);
    assert_eq!(ns.names().unwrap(), [first, second]);
    assert_eq!(pods.list().unwrap(), [first, second, late]);

    // Bound by hand, the late name is reported now.
    let source = format!("/proc/self/fd/{}", ns.as_raw_fd());
    let bind = nix::mount::MsFlags::MS_BIND;
    nix::mount::mount(
        Some(source.as_str()),
        &temp.dir().join(late),
        Some("none"),
        bind,
        None::<&str>,
    )
    .unwrap();
    assert_eq!(watcher.next_about(&[late]), WatchEvent::Added(late.into()));
    assert_eq!(ns.names().unwrap(), [first, second, late]);

    // `etc` finds /etc/netns/NAME for a handle named here.
    let _etc = EtcDir::new(first, &[("hosts", "192.0.2.7 pod\n")]);
    let hosts = ns.run_with(&Options::default().etc(true), || {
        fs::read_to_string("/etc/hosts")
    });
    assert_eq!(hosts.unwrap().unwrap(), "192.0.2.7 pod\n");

    for name in [first, second, late] {
        pods.remove(name).unwrap();
        assert_eq!(
            watcher.next_about(&[name]),
            WatchEvent::Removed(name.into())
        );
    }
    assert_eq!(pods.list().unwrap(), Vec::<String>::new());
    // The watch ends with its directory.
    drop(temp);
    watcher.join();
}

#[in_netns::test]
fn a_registry_needs_an_absolute_dir_and_checks_names() {
    require_privilege();
    for dir in ["relative/netns", "netns", ""] {
        match Registry::at(dir) {
            Err(Error::InvalidPath { path, .. }) => assert_eq!(path, Path::new(dir)),
            other => panic!("{dir:?}: expected InvalidPath, got {other:?}"),
        }
    }
    let temp = TempRegistry::new("registry-names");
    let ns = NetNs::new().unwrap();
    for name in bad_names() {
        for result in [
            temp.registry.create(&name).map(drop),
            temp.registry.named(&name).map(drop),
            temp.registry.attach(&ns, &name).map(drop),
            temp.registry.remove(&name),
        ] {
            match result {
                Err(Error::InvalidName { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{name:?}: expected InvalidName, got {other:?}"),
            }
        }
    }
    assert!(!temp.dir().exists(), "bad names touched nothing");
    assert_eq!(Registry::default().dir(), Path::new(in_netns::RUN_DIR));
}

#[cfg(feature = "tokio")]
#[in_netns::test]
async fn an_async_watch_follows_create_and_remove_without_blocking() {
    let name = unique_name("async-monitor");
    let default = Registry::default();
    let _cleanup = Names::new(&default, &[&name]);
    let mut watch = NetNs::watch().unwrap().into_async().unwrap();
    let mut next_about = async |name: &str| loop {
        let event = tokio::time::timeout(TIMEOUT, watch.next())
            .await
            .expect("no event within the timeout")
            .expect("the watch ended")
            .expect("the watch failed");
        if event.name() == name {
            return event;
        }
    };
    let ns = NetNs::create(&name).unwrap();
    assert_eq!(next_about(&name).await, WatchEvent::Added(name.clone()));
    assert_eq!(ns.names().unwrap(), [name.as_str()]);
    NetNs::remove(&name).unwrap();
    assert_eq!(next_about(&name).await, WatchEvent::Removed(name.clone()));
}

#[cfg(feature = "tokio")]
#[in_netns::test]
async fn an_async_watch_is_a_stream_for_stream_ext_next_filter_and_select() {
    use futures_util::StreamExt;
    use futures_util::future::ready;
    use futures_util::stream::FusedStream;
    require_privilege();
    async fn within<T>(future: impl Future<Output = T>) -> T {
        tokio::time::timeout(TIMEOUT, future)
            .await
            .expect("no event within the timeout")
    }
    let (blue, green) = (
        TempRegistry::new("stream-blue"),
        TempRegistry::new("stream-green"),
    );
    let (name, other) = (unique_name("stream"), unique_name("stream-other"));
    let mut blue_watch = blue.registry.watch().unwrap().into_async().unwrap();
    let green_watch = green.registry.watch().unwrap().into_async().unwrap();

    // The trait's `next`, not the inherent one.
    blue.registry.create(&name).unwrap();
    let event = within(StreamExt::next(&mut blue_watch)).await;
    assert_eq!(event.unwrap().unwrap(), WatchEvent::Added(name.clone()));
    assert!(!blue_watch.is_terminated());

    // Both registries in one stream, tagged, without the other name's events.
    let tag = |tag: &'static str| move |event: in_netns::Result<WatchEvent>| (tag, event.unwrap());
    let merged =
        futures_util::stream::select(blue_watch.map(tag("blue")), green_watch.map(tag("green")));
    let mut events = merged.filter(|(_, event)| ready(event.name() != other));
    blue.registry.create(&other).unwrap(); // filtered out
    green.registry.create(&name).unwrap();
    let added = ("green", WatchEvent::Added(name.clone()));
    assert_eq!(within(events.next()).await, Some(added));
    blue.registry.remove(&name).unwrap();
    let removed = ("blue", WatchEvent::Removed(name.clone()));
    assert_eq!(within(events.next()).await, Some(removed));
    // Blue's directory goes (its `other` with it): its stream ends, green's goes on.
    drop(blue);
    green.registry.remove(&name).unwrap();
    let removed = ("green", WatchEvent::Removed(name.clone()));
    assert_eq!(within(events.next()).await, Some(removed));
    // Both ended: so does the merged stream.
    drop(green);
    assert_eq!(within(events.next()).await, None);
}

#[cfg(feature = "tokio")]
#[in_netns::test]
fn into_async_outside_a_runtime_is_an_error_not_a_panic() {
    let temp = TempRegistry::new("async-outside");
    match temp.registry.watch().unwrap().into_async() {
        Err(err @ Error::Os { .. }) => {
            assert!(
                err.to_string().contains("runtime with I/O enabled"),
                "{err}"
            );
        }
        other => panic!("expected Os, got {other:?}"),
    }
}

#[in_netns::test]
fn naming_a_namespace_from_a_body_with_a_private_mount_view_is_refused_and_leaves_nothing() {
    let name = unique_name("private-view");
    let anonymous = NetNs::new().unwrap();
    let view = Options::default().sysfs(true);
    let created = anonymous.run_with(&view, || NetNs::create(&name)).unwrap();
    assert!(matches!(created, Err(Error::Os { .. })), "{created:?}");
    let attached = anonymous
        .run_with(&view, || anonymous.attach(&name))
        .unwrap();
    assert!(matches!(attached, Err(Error::Os { .. })), "{attached:?}");
    assert!(!Path::new(in_netns::RUN_DIR).join(&name).exists());
    // Outside the body it works.
    let named = anonymous.attach(&name).unwrap();
    assert_eq!(named.id(), anonymous.id());
    NetNs::remove(&name).unwrap();
}

#[in_netns::test]
fn a_registry_at_a_file_is_an_error_before_anything_is_mounted() {
    let file = std::env::temp_dir().join(unique_name("registry-file"));
    fs::write(&file, "not a directory").unwrap();
    // Only mounts at or under the file: other tests of this process mount meanwhile.
    let name = file.to_str().unwrap().to_owned();
    let mounts = || {
        let table = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let ours = table.lines().filter(|line| line.contains(&name));
        ours.map(str::to_owned).collect::<Vec<_>>()
    };
    let before = mounts();
    let result = Registry::at(&file).and_then(|registry| registry.create("x"));
    let after = mounts();
    fs::remove_file(&file).unwrap();
    assert!(matches!(result, Err(Error::Os { .. })), "{result:?}");
    assert_eq!(after, before, "nothing was mounted");
}

#[cfg(feature = "tokio")]
#[in_netns::test]
fn an_async_watch_in_a_runtime_without_io_is_an_error_not_a_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let result = runtime.block_on(async { NetNs::watch().and_then(Watch::into_async) });
    assert!(
        matches!(result, Err(Error::Os { .. })),
        "{:?}",
        result.err()
    );
}
