//! `rootless::enter()`, each case in a process of its own, since it must run while the process
//! is single-threaded. Every case runs without privilege: as root, the child becomes `nobody`
//! without capabilities first (`setpriv`), so the cases mean the same in root's run and an
//! unprivileged user's. The parent checks every line each child reports.

mod common;

use std::fs;
use std::process::{Command, ExitCode};

use common::Checks;
use in_netns::{Error, NetNs, Options, rootless};

const CASE: &str = "IN_NETNS_ROOTLESS_CASE";

fn user_namespace() -> String {
    fs::read_link("/proc/self/ns/user")
        .map(|link| link.display().to_string())
        .unwrap_or_default()
}

/// Unprivileged, `enter` makes everything the crate offers work, and a second call does nothing.
fn case_success() -> ExitCode {
    let mut checks = Checks::default();
    checks.check("starts unprivileged", !rootless::privileged(), ());
    let before = user_namespace();
    let entered = rootless::enter();
    checks.check("enter() succeeds", entered.is_ok(), &entered);
    if entered.is_err() {
        // Nothing below means anything without it (and must not touch the host's files).
        return checks.exit();
    }
    let inside = user_namespace();
    checks.check("in a new user namespace", inside != before, &inside);
    checks.check("privileged afterwards", rootless::privileged(), ());

    let again = rootless::enter();
    checks.check(
        "a second call is a no-op",
        again.is_ok() && user_namespace() == inside,
        &again,
    );

    let name = format!("rootless-case-{}", std::process::id());
    let created = NetNs::create(&name);
    checks.check("create() in the private run dir", created.is_ok(), &created);
    let Ok(ns) = created else {
        return checks.exit();
    };
    let listed = NetNs::list().unwrap_or_default();
    checks.check("list() shows it", listed.contains(&name), &listed);
    let entered = ns.run(|| fs::read_link("/proc/thread-self/ns/net").ok());
    let expected = ns.id().to_string();
    checks.check(
        "run() enters it",
        matches!(&entered, Ok(Some(link)) if link.display().to_string() == expected),
        &entered,
    );
    let spawned = ns.spawn(|| 7).map(|thread| thread.join().ok());
    checks.check("spawn()", matches!(spawned, Ok(Some(7))), &spawned);
    let worker = ns.worker().and_then(|worker| worker.run(|| 8));
    checks.check("a Worker", matches!(worker, Ok(8)), &worker);
    let anonymous = NetNs::new().and_then(|fresh| fresh.set_loopback_up());
    checks.check("new() and lo up", anonymous.is_ok(), &anonymous);

    let etc = std::path::Path::new(in_netns::ETC_DIR).join(&name);
    let written =
        fs::create_dir_all(&etc).and_then(|()| fs::write(etc.join("hosts"), "192.0.2.9 x\n"));
    checks.check(
        "/etc/netns is private and writable",
        written.is_ok(),
        &written,
    );
    let options = Options::default().etc(true).sysfs(true);
    let seen = ns.run_with(&options, || {
        let hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
        let links = fs::read_dir("/sys/class/net")
            .map(|d| d.count())
            .unwrap_or(0);
        (hosts, links)
    });
    checks.check(
        "etc and sysfs views",
        matches!(&seen, Ok((hosts, 1)) if hosts == "192.0.2.9 x\n"),
        &seen,
    );
    let removed = NetNs::remove(&name);
    checks.check("remove()", removed.is_ok(), &removed);
    checks.exit()
}

/// After a thread started, `enter` refuses, saying it must come first.
fn case_multithreaded() -> ExitCode {
    let mut checks = Checks::default();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || stopped.recv());
    let result = rootless::enter();
    let message = result
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    checks.check(
        "NotSingleThreaded",
        matches!(result, Err(Error::NotSingleThreaded { threads: 2 })),
        &result,
    );
    checks.check(
        "the message says to call it first",
        message.contains("before any thread starts"),
        &message,
    );
    drop(stop);
    let _ = thread.join();
    checks.exit()
}

/// Step one of the forbidden case: in a user namespace of its own, forbid nested ones, then run
/// step two there without capabilities.
fn case_forbidden() -> ExitCode {
    let mut checks = Checks::default();
    let entered = rootless::enter();
    checks.check("enter() succeeds", entered.is_ok(), &entered);
    if entered.is_err() {
        return checks.exit();
    }
    let lowered = fs::write("/proc/sys/user/max_user_namespaces", "0");
    checks.check(
        "user.max_user_namespaces lowered to 0 here",
        lowered.is_ok(),
        &lowered,
    );
    let step_two = run_case("forbidden-step-two");
    checks.check(
        "without capabilities, enter() names the setting",
        step_two,
        (),
    );
    checks.exit()
}

fn case_forbidden_step_two() -> ExitCode {
    let mut checks = Checks::default();
    let result = rootless::enter();
    let message = result
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    checks.check(
        "Rootless error naming user.max_user_namespaces",
        matches!(&result, Err(Error::Rootless { forbidden_by: Some(setting), .. })
            if setting.contains("user.max_user_namespaces")),
        &result,
    );
    checks.check(
        "the message says the system forbids it",
        message.contains("forbids unprivileged user namespaces"),
        &message,
    );
    checks.exit()
}

/// Runs this binary as `case` without any capability (and, as root, as the unprivileged user
/// `nobody`, since root without capabilities still may not map uid 0), prints its lines, and
/// says whether it passed.
fn run_case(case: &str) -> bool {
    let exe = std::env::current_exe().expect("the test binary");
    let mut setpriv = Command::new("setpriv");
    let _copy;
    // As root (and not already a case, which may be root of its own user namespace).
    let as_root = std::env::var_os(CASE).is_none() && nix::unistd::geteuid().is_root();
    let exe = if as_root && rootless::privileged() {
        // `nobody` may not reach the build directory: run a copy of this binary from /tmp.
        let copy = TempCopy::of(&exe);
        setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        let path = copy.0.clone();
        _copy = copy;
        path
    } else {
        exe
    };
    let output = setpriv
        .args(["--inh-caps=-all", "--bounding-set=-all", "--"])
        .arg(exe)
        .env(CASE, case)
        .output()
        .expect("run setpriv (util-linux)");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    output.status.success() && stdout.contains("ok: ") && !stdout.contains("FAIL")
}

/// A world-executable copy of a file in /tmp, removed on drop.
struct TempCopy(std::path::PathBuf);

impl TempCopy {
    fn of(file: &std::path::Path) -> TempCopy {
        use std::os::unix::fs::PermissionsExt;
        let copy = TempCopy(
            std::env::temp_dir().join(format!("in-netns-rootless-test-{}", std::process::id())),
        );
        fs::copy(file, &copy.0).expect("copy the test binary to /tmp");
        fs::set_permissions(&copy.0, fs::Permissions::from_mode(0o755)).expect("chmod");
        copy
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn main() -> ExitCode {
    match std::env::var(CASE).as_deref() {
        Ok("success") => return case_success(),
        Ok("multithreaded") => return case_multithreaded(),
        Ok("forbidden") => return case_forbidden(),
        Ok("forbidden-step-two") => return case_forbidden_step_two(),
        _ => {}
    }
    let etc_existed = fs::exists(in_netns::ETC_DIR).unwrap_or(true);
    let cases = ["success", "multithreaded", "forbidden"];
    let failed: Vec<&str> = cases
        .into_iter()
        .filter(|case| {
            println!("--- {case}");
            !run_case(case)
        })
        .collect();
    let host_untouched = etc_existed || !fs::exists(in_netns::ETC_DIR).unwrap_or(true);
    if !host_untouched {
        println!("FAIL: the host's /etc/netns was created");
    }
    let failures = failed.len() + usize::from(!host_untouched);
    println!(
        "rootless: {} passed, {} failed",
        cases.len() + 1 - failures,
        failures
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
