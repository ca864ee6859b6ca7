//! A body's working directory and umask: relative paths mean what they mean to the caller at
//! the call, with or without options; a body with options has a directory of its own, so its
//! `set_current_dir` does not move the process, while a plain body shares the process's (as
//! any thread does). These tests change the process's directory and umask, so they hold a lock
//! and put both back on drop.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use common::{TempNs, unique_name};
use in_netns::{NetNs, Options, in_netns};

const FILE: &str = "netns-test-where";

/// Serializes the tests here, and restores the process's directory and umask when dropped;
/// also removes the directories it made.
struct ProcessState {
    cwd: PathBuf,
    umask: nix::sys::stat::Mode,
    dirs: Vec<PathBuf>,
    _serial: MutexGuard<'static, ()>,
}

impl ProcessState {
    fn hold() -> ProcessState {
        static SERIAL: Mutex<()> = Mutex::new(());
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        nix::sys::stat::umask(umask);
        ProcessState {
            cwd: std::env::current_dir().unwrap(),
            umask,
            dirs: Vec::new(),
            _serial: serial,
        }
    }

    /// A fresh directory holding `FILE` with `content`.
    fn dir(&mut self, content: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(unique_name(content));
        fs::create_dir(&dir).unwrap();
        self.dirs.push(dir.clone());
        fs::write(dir.join(FILE), content).unwrap();
        dir
    }
}

impl Drop for ProcessState {
    fn drop(&mut self) {
        let _ = std::env::set_current_dir(&self.cwd);
        nix::sys::stat::umask(self.umask);
        for dir in &self.dirs {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Reads `FILE` by its relative path.
fn read_relative() -> String {
    fs::read_to_string(FILE).unwrap_or_else(|e| format!("<{e}>"))
}

#[in_netns(ns, sysfs)]
fn relative_through_the_macro(ns: &NetNs) -> in_netns::Result<String> {
    Ok(read_relative())
}

#[in_netns::test]
fn relative_paths_resolve_against_the_callers_directory_at_the_call() {
    let mut state = ProcessState::hold();
    let target = TempNs::new("cwd");
    let ns = &target.ns;
    let (first, second) = (state.dir("first"), state.dir("second"));
    let sysfs = Options::default().sysfs(true);
    let etc = Options::default().etc(true);

    std::env::set_current_dir(&first).unwrap();
    // Made while the process is in `first`.
    let plain_worker = ns.worker().unwrap();
    let sysfs_worker = ns.worker_with(&sysfs.setup()).unwrap();
    let etc_worker = ns.worker_with(&etc.setup()).unwrap();
    assert_eq!(sysfs_worker.run(read_relative).unwrap(), "first");

    std::env::set_current_dir(&second).unwrap();
    let read = [
        ns.run(read_relative).unwrap(),
        ns.run_with(&sysfs, read_relative).unwrap(),
        ns.run_with(&etc, read_relative).unwrap(),
        ns.spawn_with(&sysfs, read_relative)
            .unwrap()
            .join()
            .unwrap(),
        relative_through_the_macro(ns).unwrap(),
        plain_worker.run(read_relative).unwrap(),
        sysfs_worker.run(read_relative).unwrap(),
        etc_worker.run(read_relative).unwrap(),
    ];
    assert_eq!(read, ["second"; 8].map(String::from));
}

#[in_netns::test]
fn set_current_dir_in_a_body_with_options_moves_only_the_body() {
    let mut state = ProcessState::hold();
    let target = TempNs::new("cwd-set");
    let ns = &target.ns;
    let (home, elsewhere) = (state.dir("home"), state.dir("elsewhere"));
    let sysfs = Options::default().sysfs(true);
    std::env::set_current_dir(&home).unwrap();
    let cwd = || std::env::current_dir().unwrap();

    let moved = ns.run_with(&sysfs, || {
        std::env::set_current_dir(&elsewhere).unwrap();
        (cwd(), read_relative())
    });
    assert_eq!(moved.unwrap(), (elsewhere.clone(), "elsewhere".to_owned()));
    assert_eq!(cwd(), home, "the process did not move");

    let worker = ns.worker_with(&sysfs.setup()).unwrap();
    worker
        .run(|| std::env::set_current_dir(&elsewhere).unwrap())
        .unwrap();
    assert_eq!(cwd(), home, "the process did not move");
    assert_eq!(
        worker.run(read_relative).unwrap(),
        "home",
        "the next call starts in the caller's directory again"
    );

    // A plain body shares the process's directory, as every thread of a process does.
    ns.run(|| std::env::set_current_dir(&elsewhere).unwrap())
        .unwrap();
    assert_eq!(cwd(), elsewhere);
}

/// The permission bits a file created with mode 0o666 gets.
fn created_mode(dir: &Path, name: &str) -> u32 {
    let path = dir.join(name);
    fs::write(&path, "").unwrap();
    fs::metadata(&path).unwrap().permissions().mode() & 0o777
}

#[in_netns::test]
fn the_umask_is_the_callers_at_the_call_and_a_workers_with_options_from_its_making() {
    let mut state = ProcessState::hold();
    let target = TempNs::new("umask");
    let ns = &target.ns;
    let dir = state.dir("umask");
    let sysfs = Options::default().sysfs(true);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let worker = ns.worker_with(&sysfs.setup()).unwrap();

    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    assert_eq!(ns.run(|| created_mode(&dir, "plain")).unwrap(), 0o600);
    assert_eq!(
        ns.run_with(&sysfs, || created_mode(&dir, "sysfs")).unwrap(),
        0o600
    );
    assert_eq!(worker.run(|| created_mode(&dir, "worker")).unwrap(), 0o644);
}
