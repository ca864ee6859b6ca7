//! What `#[in_netns::test]` expansions call: each test body runs in a fresh network namespace
//! with `lo` up, on a dedicated thread; without privilege, in a process of its own, run again
//! inside a fresh user namespace.

use std::fmt::Debug;
use std::process::Command;

use netns_core::{NetNs, rootless};

/// Set in the environment of a test process that a parent ran again for one test.
const RERUN: &str = "IN_NETNS_TEST_RERUN";

/// What a test function may return: `()` or `Result<(), E>` with `E: Debug`, as for `#[test]`.
#[diagnostic::on_unimplemented(
    message = "`#[in_netns::test]` functions return `()` or `Result<(), E>` with `E: Debug`, not `{Self}`",
    label = "as a `#[test]` may"
)]
pub trait TestReturn {
    /// The value of a test that passed (where it ran, or in its child process).
    fn passed() -> Self;

    /// Fails the test (panics, with the error) unless it passed. Run on the body's thread, so
    /// that the error, which need not be `Send`, never crosses threads.
    fn check(self);
}

impl TestReturn for () {
    fn passed() {}

    fn check(self) {}
}

impl<E: Debug> TestReturn for Result<(), E> {
    fn passed() -> Self {
        Ok(())
    }

    fn check(self) {
        if let Err(err) = self {
            panic!("the test returned an error: {err:?}");
        }
    }
}

/// Runs a test's `body` in a fresh network namespace with `lo` up. `path` is
/// `module_path!()::name`, from which the name libtest knows the test by is derived;
/// `should_panic` says whether the test is `#[should_panic]`, `own_process` whether it runs in
/// a process of its own even with privilege.
pub fn run<R, F>(path: &str, should_panic: bool, own_process: bool, body: F) -> R
where
    R: TestReturn,
    F: FnOnce() -> R + Send,
{
    if rerun_here(own_process) {
        return rerun(path, should_panic);
    }
    let ns = fresh_namespace(path);
    ns.run(|| body().check()).unwrap_or_else(|err| {
        panic!("#[in_netns::test] {path}: could not enter its namespace: {err:?}")
    });
    R::passed()
}

/// [`run`] for an `async fn` test: its future runs on a current-thread tokio runtime whose
/// every thread is inside the namespace.
#[cfg(feature = "tokio")]
pub fn run_async<R, F, Fut>(path: &str, should_panic: bool, own_process: bool, body: F) -> R
where
    R: TestReturn,
    F: FnOnce() -> Fut + Send,
    Fut: std::future::Future<Output = R>,
{
    if rerun_here(own_process) {
        return rerun(path, should_panic);
    }
    let ns = fresh_namespace(path);
    let runtime = ns
        .runtime(tokio::runtime::Builder::new_current_thread().enable_all())
        .unwrap_or_else(|err| {
            panic!("#[in_netns::test] {path}: could not start its runtime: {err:?}")
        });
    // The runtime's driver thread drives I/O and timers; the body is polled on a thread inside.
    ns.run(|| runtime.handle().block_on(body()).check())
        .unwrap_or_else(|err| {
            panic!("#[in_netns::test] {path}: could not enter its namespace: {err:?}")
        });
    R::passed()
}

/// Whether this process runs the test again in a child: without privilege (the child gets a
/// user namespace), or for a test that wants a process of its own (unless this is that child).
fn rerun_here(own_process: bool) -> bool {
    let in_rerun = std::env::var_os(RERUN).is_some();
    !rootless::privileged() || (own_process && !in_rerun)
}

fn fresh_namespace(path: &str) -> NetNs {
    let ns = NetNs::new().unwrap_or_else(|err| {
        panic!("#[in_netns::test] {path}: could not make a network namespace: {err:?}")
    });
    ns.set_loopback_up()
        .unwrap_or_else(|err| panic!("#[in_netns::test] {path}: could not bring lo up: {err:?}"));
    ns
}

/// Runs this one test again in a child process (made rootless between `fork` and `exec` when
/// this process is unprivileged) and reports its verdict here: a test passes here exactly when
/// it passed there.
///
/// libtest judges the child's test, `#[should_panic]` and its `expected` text included. Here,
/// a passed `should_panic` test must panic (with the child's message), and a failed one must
/// return normally ("did not panic"), so that this process's verdict is the child's.
fn rerun<R: TestReturn>(path: &str, should_panic: bool) -> R {
    match run_child(path) {
        Ok(stderr) if should_panic => {
            panic!("#[in_netns::test] {path} panicked as expected in its own process:\n{stderr}")
        }
        Ok(_) => R::passed(),
        Err(report) if should_panic => {
            // Returning is how a `should_panic` test fails.
            eprintln!("{report}");
            R::passed()
        }
        Err(report) => panic!("{report}"),
    }
}

/// Runs the child; `Ok` with its standard error when it ran the one test and the test passed,
/// else a report of what happened.
fn run_child(path: &str) -> Result<String, String> {
    if std::env::var_os(RERUN).is_some() && !rootless::privileged() {
        return Err(format!(
            "#[in_netns::test] {path}: still without CAP_SYS_ADMIN in the process made for it"
        ));
    }
    // libtest names a test by its path without the crate's name.
    let name = path.split_once("::").map_or(path, |(_, name)| name);
    let exe = std::env::current_exe()
        .map_err(|err| format!("#[in_netns::test] {name}: cannot find the test binary: {err}"))?;
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
    netns_core::__private::rootless_in_child(&mut command)
        .map_err(|err| format!("#[in_netns::test] {name}: {err:?}"))?;
    let output = command.output().map_err(|err| {
        let reason = match rootless::forbidding_setting() {
            Some(setting) => {
                format!("{err}; this system forbids unprivileged user namespaces: {setting}")
            }
            None => err.to_string(),
        };
        format!("#[in_netns::test] {name}: could not run it in a process of its own: {reason}")
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let ran_and_passed = output.status.success() && stdout.contains("test result: ok. 1 passed;");
    if !ran_and_passed {
        return Err(format!(
            "#[in_netns::test] {name} failed in its own process ({}):\n{stdout}{stderr}",
            output.status
        ));
    }
    // Shown by the harness with the test's own output.
    print!("{stdout}");
    eprint!("{stderr}");
    Ok(stderr)
}
