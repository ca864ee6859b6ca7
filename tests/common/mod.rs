//! Fixtures shared by the integration tests: privilege check, temporary namespaces that remove
//! themselves, and ways to observe which namespace a thread or socket is in.
#![allow(dead_code)] // each test binary uses its own subset

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use in_netns::{NetNs, NsId, Registry};

/// Names `ip netns` would refuse, one of each kind: every call that takes a name must give
/// `InvalidName` for each, naming it, before touching the filesystem.
pub fn bad_names() -> Vec<String> {
    let names = ["", "a/b", "../../etc/passwd", "/abs", "a\0b", ".", ".."];
    let mut names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    names.push("x".repeat(256));
    names
}

/// Fails the test with one clear message when the process lacks CAP_SYS_ADMIN (tests under
/// `#[in_netns::test]` have it, as root or in the user namespace made for them).
pub fn require_privilege() {
    assert!(
        in_netns::rootless::privileged(),
        "these tests create network namespaces and need CAP_SYS_ADMIN: run them under \
         #[in_netns::test], or after in_netns::rootless::enter()"
    );
}

/// A uniquely named namespace under /run/netns, removed when dropped (also when a test fails).
pub struct TempNs {
    pub name: String,
    pub ns: NetNs,
}

impl TempNs {
    pub fn new(tag: &str) -> TempNs {
        require_privilege();
        let name = unique_name(tag);
        let ns = NetNs::create(&name).unwrap_or_else(|e| panic!("create {name}: {e}"));
        TempNs { name, ns }
    }

    pub fn id(&self) -> NsId {
        self.ns.id()
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for TempNs {
    fn drop(&mut self) {
        if Path::new(&self.path()).exists() {
            let _ = NetNs::remove(&self.name);
        }
    }
}

/// A name no other test (or test process) uses.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("netns-test-{tag}-{}-{n}", std::process::id())
}

/// The namespace of the calling thread, read from procfs independently of the crate.
pub fn current_id() -> NsId {
    id_of_path("/proc/thread-self/ns/net")
}

pub fn id_of_path(path: &str) -> NsId {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("stat {path}: {e}"));
    NsId::from_metadata(&meta)
}

/// The namespace of every thread of this process, as (tid, namespace).
pub fn thread_namespaces() -> Vec<(u32, NsId)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .flatten()
    {
        let tid: u32 = entry.file_name().to_string_lossy().parse().unwrap_or(0);
        // A thread may end between the listing and the stat.
        if let Ok(meta) = fs::metadata(entry.path().join("ns/net")) {
            found.push((tid, NsId::from_metadata(&meta)));
        }
    }
    found
}

/// Polls until no thread of the process is in `id` (a joined thread may linger for a moment);
/// returns the threads still there after `limit`.
pub fn wait_no_thread_in(id: NsId, limit: Duration) -> Vec<u32> {
    let start = Instant::now();
    loop {
        let stuck: Vec<u32> = thread_namespaces()
            .into_iter()
            .filter(|(_, ns)| *ns == id)
            .map(|(tid, _)| tid)
            .collect();
        if stuck.is_empty() || start.elapsed() > limit {
            return stuck;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The namespace a socket belongs to (SIOCGSKNS through the crate's `of_socket`).
pub fn socket_ns(socket: &impl std::os::fd::AsFd) -> NsId {
    NetNs::of_socket(socket).expect("SIOCGSKNS").id()
}

/// The calling thread's id (from `/proc/thread-self`, which links to `PID/task/TID`).
pub fn gettid() -> u32 {
    let link = fs::read_link("/proc/thread-self").expect("readlink /proc/thread-self");
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// How many descriptors the process has open.
pub fn fd_count() -> usize {
    fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// The thread ids a runtime reported as it started its threads.
pub type KnownThreads = std::sync::Arc<std::sync::Mutex<Vec<u32>>>;

/// A multi-thread tokio runtime with `workers` worker threads, whose thread ids are recorded so
/// tests can check which namespace each is in.
pub fn runtime_with_known_threads(workers: usize) -> (tokio::runtime::Runtime, KnownThreads) {
    let known = KnownThreads::default();
    let started = std::sync::Arc::clone(&known);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .on_thread_start(move || started.lock().unwrap().push(gettid()))
        .enable_all()
        .build()
        .expect("build a tokio runtime");
    (runtime, known)
}

/// The namespace of each of the `known` threads that is still alive.
pub fn namespaces_of(known: &KnownThreads) -> Vec<(u32, NsId)> {
    let tids = known.lock().unwrap().clone();
    thread_namespaces()
        .into_iter()
        .filter(|(tid, _)| tids.contains(tid))
        .collect()
}

/// `/etc/netns/NAME/` with the given files, removed on drop (and `/etc/netns` with the last one,
/// when a test made it).
pub struct EtcDir(pub std::path::PathBuf);

/// How many `EtcDir`s of this process are alive, and whether one of them created `/etc/netns`:
/// both under one lock, so that making one and removing the last are never interleaved.
static ETC_DIRS: std::sync::Mutex<(usize, bool)> = std::sync::Mutex::new((0, false));

impl EtcDir {
    pub fn new(name: &str, files: &[(&str, &str)]) -> EtcDir {
        let mut live = ETC_DIRS.lock().unwrap_or_else(|e| e.into_inner());
        if fs::create_dir(in_netns::ETC_DIR).is_ok() {
            live.1 = true;
        }
        live.0 += 1;
        let dir = Path::new(in_netns::ETC_DIR).join(name);
        fs::create_dir_all(&dir).unwrap();
        for (file, content) in files {
            fs::write(dir.join(file), content).unwrap();
        }
        EtcDir(dir)
    }
}

impl Drop for EtcDir {
    fn drop(&mut self) {
        let mut live = ETC_DIRS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = fs::remove_dir_all(&self.0);
        live.0 -= 1;
        if live.0 == 0 && live.1 && fs::remove_dir(in_netns::ETC_DIR).is_ok() {
            live.1 = false;
        }
    }
}

/// Collects a child's checks; each prints `ok: ...` or `FAIL: ...`.
#[derive(Default)]
pub struct Checks {
    failed: usize,
}

impl Checks {
    pub fn check(&mut self, what: &str, passed: bool, detail: impl std::fmt::Debug) {
        if passed {
            println!("ok: {what}");
        } else {
            self.failed += 1;
            println!("FAIL: {what}: got {detail:?}");
        }
    }

    pub fn exit(self) -> std::process::ExitCode {
        if self.failed == 0 {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs `f` on a helper thread and returns its result, failing the test if it has not finished
/// within `seconds` (turning a hang into a failure; the stuck thread is left to the process).
pub fn within<T: Send + 'static>(seconds: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(f()));
    result
        .recv_timeout(Duration::from_secs(seconds))
        .unwrap_or_else(|_| panic!("still running after {seconds}s: a hang"))
}

/// Runs the ignored tests `names` of this test binary in a process of their own, with `env`
/// added, on `threads` test threads: a plain run of them (not a rerun of `#[in_netns::test]`),
/// so they get this process's privilege or its lack. `Err` with their output unless all passed.
pub fn run_ignored_tests(
    names: &[&str],
    threads: usize,
    env: &[(&str, &std::ffi::OsStr)],
) -> Result<(), String> {
    let exe = std::env::current_exe().unwrap();
    let threads = format!("--test-threads={threads}");
    let output = std::process::Command::new(&exe)
        .args(names)
        .args(["--exact", "--ignored", &threads])
        .env_remove("IN_NETNS_TEST_RERUN")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let passed = format!("test result: ok. {} passed;", names.len());
    match output.status.success() && stdout.contains(&passed) {
        true => Ok(()),
        false => Err(format!(
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

/// Forks; the child runs `child` under a 10 s alarm (killed if it hangs) and exits with its
/// result, the parent returns how the child ended.
pub fn in_forked_child(child: impl FnOnce() -> bool) -> Result<(), String> {
    // SAFETY: the child only runs `child` (no locks that another thread may hold: the worker's
    // calls either return at once or run inline) and leaves with `_exit`, skipping destructors
    // and atexit handlers that belong to the parent.
    let pid = unsafe { nix::libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: alarm and _exit are async-signal-safe.
        unsafe {
            nix::libc::alarm(10);
            nix::libc::_exit(if child() { 0 } else { 1 });
        }
    }
    child_status(pid)
}

/// Waits for the child `pid` and says how it ended.
pub fn child_status(pid: i32) -> Result<(), String> {
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out-pointer.
    let waited = unsafe { nix::libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid failed");
    if nix::libc::WIFSIGNALED(status) && nix::libc::WTERMSIG(status) == nix::libc::SIGALRM {
        Err("the child hung (killed by its 10 s alarm)".to_owned())
    } else if nix::libc::WIFEXITED(status) && nix::libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(format!(
            "the child's checks failed (wait status {status:#x})"
        ))
    }
}

/// A registry in a directory of its own under the temp dir; everything in it, the directory's
/// own bind mount (made on first create) and the directory go when dropped.
pub struct TempRegistry {
    pub registry: Registry,
}

impl TempRegistry {
    pub fn new(tag: &str) -> TempRegistry {
        let dir = std::env::temp_dir().join(unique_name(tag));
        TempRegistry {
            registry: Registry::at(&dir).unwrap(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.registry.dir()
    }
}

impl Drop for TempRegistry {
    fn drop(&mut self) {
        for name in self.registry.list().unwrap_or_default() {
            let _ = self.registry.remove(&name);
        }
        // The run dir is a bind mount of itself once a name was made there.
        while nix::mount::umount2(self.dir(), nix::mount::MntFlags::MNT_DETACH).is_ok() {}
        let _ = fs::remove_dir_all(self.dir());
    }
}

std::thread_local! {
    /// Handles a body leaves on the thread it runs on, dropped when that thread ends.
    static KEPT: std::cell::RefCell<Vec<NetNs>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Keeps `ns` in a thread-local of the calling thread until that thread ends.
pub fn keep_until_this_thread_ends(ns: NetNs) {
    KEPT.with(|kept| kept.borrow_mut().push(ns));
}

/// How many threads of the process are in `id` now.
pub fn threads_in(id: NsId) -> usize {
    thread_namespaces()
        .iter()
        .filter(|(_, ns)| *ns == id)
        .count()
}

/// The warnings the crate logs, as `target: message`.
static WARNINGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct CaptureWarnings;

impl log::Log for CaptureWarnings {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = format!("{}: {}", record.target(), record.args());
            WARNINGS.lock().unwrap().push(line);
        }
    }

    fn flush(&self) {}
}

/// Installs the capturing logger (once for this test binary).
pub fn capture_warnings() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&CaptureWarnings).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// The captured warnings that mention `needle`.
pub fn warnings_about(needle: &str) -> Vec<String> {
    let warnings = WARNINGS.lock().unwrap();
    warnings
        .iter()
        .filter(|w| w.contains(needle))
        .cloned()
        .collect()
}

/// Whether this process is root outside any user namespace: only then can a test switch to
/// another user or filesystem id (in the user namespace of a test without root, only its own
/// ids are mapped).
pub fn really_root() -> bool {
    nix::unistd::getuid().is_root() && !in_user_namespace()
}

/// Whether this process is in a user namespace other than the initial one (as tests without
/// root are): only the ids of its map exist there.
pub fn in_user_namespace() -> bool {
    fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|map| map.split_whitespace().nth(2) != Some("4294967295"))
}

// --- capabilities ---------------------------------------------------------------------------

/// A thread's capability sets as `capget` version 3 gives them: two words (capabilities 0 to
/// 31, then 32 to 63) of effective, permitted and inheritable bits.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct CapWord {
    pub effective: u32,
    pub permitted: u32,
    pub inheritable: u32,
}

/// `struct __user_cap_header_struct`, version 3, for the calling thread.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_SYS_ADMIN: u32 = 21;

/// The calling thread's capability sets.
pub fn capget() -> [CapWord; 2] {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut sets = [CapWord::default(); 2];
    // SAFETY: a version-3 header and room for the two words that version writes.
    let result =
        unsafe { nix::libc::syscall(nix::libc::SYS_capget, &mut header, sets.as_mut_ptr()) };
    assert_eq!(result, 0, "capget: {}", std::io::Error::last_os_error());
    sets
}

/// Makes `sets` the calling thread's capability sets (this thread only: the system call).
pub fn capset(sets: [CapWord; 2]) {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: a version-3 header for the calling thread and the two words that version reads.
    let result = unsafe { nix::libc::syscall(nix::libc::SYS_capset, &mut header, sets.as_ptr()) };
    assert_eq!(result, 0, "capset: {}", std::io::Error::last_os_error());
}

/// Takes capability `cap` out of the calling thread's effective and permitted sets (this
/// thread only: the system call).
pub fn drop_capability(cap: u32) {
    let mut sets = capget();
    let (word, bit) = ((cap / 32) as usize, 1 << (cap % 32));
    sets[word].effective &= !bit;
    sets[word].permitted &= !bit;
    capset(sets);
}

/// The calling thread's effective capabilities, as `/proc/thread-self/status` shows them.
pub fn effective_capabilities() -> String {
    std::fs::read_to_string("/proc/thread-self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .unwrap()
        .trim()
        .to_owned()
}
