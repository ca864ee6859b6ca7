//! What `#[in_netns::test]` expansions call: each test body runs in a fresh network namespace
//! with `lo` up, on a dedicated thread; without privilege, in a process of its own, run again
//! inside a fresh user namespace.

use std::process::Command;

use netns_core::{NetNs, rootless};

/// Set in the environment of a test process that a parent ran again for one test.
const RERUN: &str = "IN_NETNS_TEST_RERUN";

/// What a test function may return, and its value when the test passed in a child process.
pub trait TestReturn {
    /// The value of a passed test.
    fn passed() -> Self;
}

impl TestReturn for () {
    fn passed() {}
}

impl<E> TestReturn for Result<(), E> {
    fn passed() -> Self {
        Ok(())
    }
}

/// Runs a test's `body` in a fresh network namespace with `lo` up. `path` is
/// `module_path!()::name`, from which the name libtest knows the test by is derived;
/// `should_panic` says whether the test is `#[should_panic]`, `own_process` whether it runs in
/// a process of its own even with privilege.
pub fn run<R, F>(path: &str, should_panic: bool, own_process: bool, body: F) -> R
where
    R: TestReturn + Send,
    F: FnOnce() -> R + Send,
{
    if rerun_here(own_process) {
        rerun(path, should_panic);
        return R::passed();
    }
    let ns = fresh_namespace(path);
    ns.run(body).unwrap_or_else(|err| {
        panic!("#[in_netns::test] {path}: could not enter its namespace: {err}")
    })
}

/// [`run`] for an `async fn` test: its future runs on a current-thread tokio runtime whose
/// every thread is inside the namespace.
#[cfg(feature = "tokio")]
pub fn run_async<R, F, Fut>(path: &str, should_panic: bool, own_process: bool, body: F) -> R
where
    R: TestReturn + Send,
    F: FnOnce() -> Fut + Send,
    Fut: std::future::Future<Output = R>,
{
    if rerun_here(own_process) {
        rerun(path, should_panic);
        return R::passed();
    }
    let ns = fresh_namespace(path);
    let runtime = ns
        .runtime(tokio::runtime::Builder::new_current_thread().enable_all())
        .unwrap_or_else(|err| {
            panic!("#[in_netns::test] {path}: could not start its runtime: {err}")
        });
    // The runtime's driver thread drives I/O and timers; the body is polled on a thread inside.
    ns.run(|| runtime.handle().block_on(body()))
        .unwrap_or_else(|err| {
            panic!("#[in_netns::test] {path}: could not enter its namespace: {err}")
        })
}

/// Whether this process runs the test again in a child: without privilege (the child gets a
/// user namespace), or for a test that wants a process of its own (unless this is that child).
fn rerun_here(own_process: bool) -> bool {
    let in_rerun = std::env::var_os(RERUN).is_some();
    !rootless::privileged() || (own_process && !in_rerun)
}

fn fresh_namespace(path: &str) -> NetNs {
    let ns = NetNs::new().unwrap_or_else(|err| {
        panic!("#[in_netns::test] {path}: could not make a network namespace: {err}")
    });
    ns.set_loopback_up()
        .unwrap_or_else(|err| panic!("#[in_netns::test] {path}: could not bring lo up: {err}"));
    ns
}

/// Runs this one test again in a child process (made rootless between `fork` and `exec` when
/// this process is unprivileged), and fails (panics) unless it ran there and passed; a
/// `should_panic` test that passed there panics here with the child's message.
fn rerun(path: &str, should_panic: bool) {
    if std::env::var_os(RERUN).is_some() && !rootless::privileged() {
        panic!(
            "#[in_netns::test] {path}: still without CAP_SYS_ADMIN in the process made for it: {}",
            netns_core::Error::PermissionDenied {
                operation: "a user namespace for the test",
                path: None
            }
        );
    }
    // libtest names a test by its path without the crate's name.
    let name = path.split_once("::").map_or(path, |(_, name)| name);
    let exe = std::env::current_exe().unwrap_or_else(|err| {
        panic!("#[in_netns::test] {name}: cannot find the test binary: {err}")
    });
    let mut command = Command::new(exe);
    command
        .args([
            name,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(RERUN, "1");
    if let Err(err) = rootless::in_child(&mut command) {
        panic!("#[in_netns::test] {name}: {err}");
    }
    let output = command.output().unwrap_or_else(|err| {
        let reason = match rootless::forbidding_setting() {
            Some(setting) => {
                format!("{err}; this system forbids unprivileged user namespaces: {setting}")
            }
            None => err.to_string(),
        };
        panic!(
            "#[in_netns::test] {name}: could not run it in a user namespace of its own: {reason}"
        )
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Shown by the harness with the test's own output.
    print!("{stdout}");
    eprint!("{stderr}");
    let ran_one = stdout.contains("test result: ok. 1 passed;");
    if !output.status.success() || !ran_one {
        panic!(
            "#[in_netns::test] {name} failed in its own process ({}):\n{stdout}{stderr}",
            output.status
        );
    }
    if should_panic {
        // It passed there by panicking as expected: panic here too, with its message.
        panic!("#[in_netns::test] {name} panicked in its own process:\n{stderr}");
    }
}
