//! Faults that need a process of their own: no CAP_SYS_ADMIN (dropped with `setpriv`), thread
//! creation refused (an address-space limit too small for a thread stack), the descriptor
//! limit reached (feature "tokio": a runtime tokio cannot build), and the inotify watch limit
//! reached (in a user namespace of the child's own). The parent
//! (what `cargo test` runs) makes a namespace, runs this binary again as each child, and checks
//! every line the child reports.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};

use common::{
    Checks, EtcDir, TempNs, TempRegistry, capture_warnings, fd_count, require_privilege,
    unique_name, warnings_about,
};
use in_netns::{Error, NetNs, Options};

const MODE: &str = "NETNS_CHILD_FAULT";
const FIXTURE: &str = "NETNS_CHILD_FIXTURE";

/// Without CAP_SYS_ADMIN every privileged step is `PermissionDenied`, and nothing is left behind.
fn child_unprivileged(fixture: &str) -> ExitCode {
    let mut checks = Checks::default();
    let new = NetNs::new();
    checks.check(
        "new() is PermissionDenied",
        matches!(new, Err(Error::PermissionDenied { .. })),
        &new,
    );
    let message = new.map(drop).unwrap_err().to_string();
    checks.check(
        "the message says CAP_SYS_ADMIN",
        message.contains("CAP_SYS_ADMIN"),
        &message,
    );

    let ns = NetNs::named(fixture).expect("opening needs no privilege");
    let mut ran = false;
    let run = ns.run(|| ran = true);
    checks.check(
        "run() is PermissionDenied",
        matches!(
            run,
            Err(Error::PermissionDenied {
                operation: "setns",
                ..
            })
        ),
        &run,
    );
    checks.check("the body did not run", !ran, ran);

    let name = unique_name("child-create");
    let create = NetNs::create(&name);
    checks.check(
        "create() is PermissionDenied",
        matches!(create, Err(Error::PermissionDenied { .. })),
        &create,
    );
    let left = Path::new(in_netns::RUN_DIR).join(&name);
    checks.check("create() left no file", !left.exists(), left);

    let remove = NetNs::remove(fixture);
    checks.check(
        "remove() is PermissionDenied",
        matches!(remove, Err(Error::PermissionDenied { .. })),
        &remove,
    );
    checks.check(
        "remove() left the namespace",
        NetNs::named(fixture).is_ok(),
        fixture,
    );
    checks.exit()
}

/// With CAP_SYS_ADMIN but without CAP_SYS_PTRACE, another process's namespace file is refused
/// by the ptrace access check (EACCES): `AccessDenied`, whose message says so, not that
/// CAP_SYS_ADMIN is missing.
fn child_without_ptrace(process: &str) -> ExitCode {
    let mut checks = Checks::default();
    let pid: u32 = process.parse().expect("a pid");
    let open = NetNs::of_pid(pid);
    checks.check(
        "of_pid() of a process with more capabilities is AccessDenied",
        matches!(
            open,
            Err(Error::AccessDenied {
                operation: "open",
                ..
            })
        ),
        &open,
    );
    if let Err(err) = open {
        let message = err.to_string();
        checks.check(
            "the message names the ptrace access check, not CAP_SYS_ADMIN",
            message.contains("ptrace access check") && !message.contains("need CAP_SYS_ADMIN"),
            &message,
        );
        checks.check(
            "the kind is PermissionDenied",
            err.kind() == std::io::ErrorKind::PermissionDenied,
            err.kind(),
        );
    }
    let new = NetNs::new();
    checks.check("CAP_SYS_ADMIN is there: new() works", new.is_ok(), new);
    checks.exit()
}

/// With thread creation refused every call is `ThreadSpawn`, and nothing leaks.
fn child_no_threads(fixture: &str) -> ExitCode {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let mut checks = Checks::default();
    let ns = NetNs::named(fixture).unwrap();
    let fds = fd_count();
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let vm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let (soft, hard) = getrlimit(Resource::RLIMIT_AS).unwrap();
    // Room for small allocations, none for a thread stack.
    setrlimit(Resource::RLIMIT_AS, (vm_kib + 1024) * 1024, hard).unwrap();

    let run = ns.run(|| ());
    checks.check(
        "run() is ThreadSpawn",
        matches!(run, Err(Error::ThreadSpawn { .. })),
        &run,
    );
    let spawn = ns.spawn(|| ());
    checks.check(
        "spawn() is ThreadSpawn",
        matches!(spawn, Err(Error::ThreadSpawn { .. })),
        spawn.map(drop),
    );
    let worker = ns.worker();
    checks.check(
        "ns.worker() is ThreadSpawn",
        matches!(worker, Err(Error::ThreadSpawn { .. })),
        worker.map(drop),
    );
    let name = unique_name("child-interrupted");
    let create = NetNs::create(&name);
    checks.check(
        "create() interrupted half-way is ThreadSpawn",
        matches!(create, Err(Error::ThreadSpawn { .. })),
        create.map(drop),
    );
    let left = Path::new(in_netns::RUN_DIR).join(&name);
    checks.check(
        "create() interrupted half-way left no file",
        !left.exists(),
        left,
    );
    checks.check("no descriptor leaked", fd_count() == fds, (fds, fd_count()));

    setrlimit(Resource::RLIMIT_AS, soft, hard).unwrap();
    let again = ns.run(|| 7);
    checks.check(
        "run() works again once threads can start",
        matches!(again, Ok(7)),
        &again,
    );
    checks.exit()
}

/// At the limit of inotify watches, an `etc` view whose `/etc/netns/NAME` cannot be watched is
/// built anew for each call, with one warning: no change there goes unseen. The child runs in
/// a user namespace of its own (`unshare --user`), whose limit (`/proc/sys/user`) is its own to
/// lower, and holds for the watches of its processes whatever the host's is.
fn child_no_watches() -> ExitCode {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let mut checks = Checks::default();
    capture_warnings();
    // Room for `/etc` and `/etc/netns`, none for `/etc/netns/NAME`.
    fs::write("/proc/sys/user/max_inotify_watches", "2").unwrap();
    let probe = Inotify::init(InitFlags::IN_CLOEXEC).unwrap();
    let third =
        ["/etc", "/proc", "/"].map(|dir| probe.add_watch(dir, AddWatchFlags::IN_CREATE).map(drop));
    checks.check(
        "the lowered limit holds: a third watch is ENOSPC",
        third == [Ok(()), Ok(()), Err(nix::errno::Errno::ENOSPC)],
        third,
    );
    drop(probe);

    let temp = TempRegistry::new("child-watches");
    let name = unique_name("watches");
    let ns = temp.registry.create(&name).unwrap();
    let etc = EtcDir::new(&name, &[("hosts", "192.0.2.1 v0\n")]);
    let options = Options::default().etc(true);
    let hosts = || fs::read_to_string("/etc/hosts").unwrap();
    ns.run_with(&options, hosts).unwrap(); // the first call: a fresh thread's; then warm ones
    let mut stale = Vec::new();
    for version in 1..=10 {
        // Replaced as editors and package managers do it: a new file renamed over the old.
        let written = format!("192.0.2.1 v{version}\n");
        fs::write(etc.0.join("hosts.new"), &written).unwrap();
        fs::rename(etc.0.join("hosts.new"), etc.0.join("hosts")).unwrap();
        let seen = ns.run_with(&options, hosts).unwrap();
        if seen != written {
            stale.push((version, seen));
        }
    }
    checks.check(
        "every change to /etc/netns/NAME is seen",
        stale.is_empty(),
        stale,
    );
    let warned = warnings_about("cannot be watched");
    checks.check("one warning says so", warned.len() == 1, warned);
    checks.exit()
}

/// With the descriptor limit reached, a runtime that tokio cannot build is an error naming
/// that (`Os`, EMFILE, with tokio's error as its source), not `ThreadSpawn`; nothing leaks.
#[cfg(feature = "tokio")]
fn child_no_descriptors(fixture: &str) -> ExitCode {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let mut checks = Checks::default();
    let ns = NetNs::named(fixture).unwrap();
    let fds = fd_count();
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, fds as u64 + 16, hard).unwrap();
    // Every descriptor under the limit taken but one: the runtime's handle gets it, tokio's
    // driver none.
    let mut taken: Vec<fs::File> =
        std::iter::from_fn(|| fs::File::open("/dev/null").ok()).collect();
    taken.pop();
    let runtime = ns.runtime(tokio::runtime::Builder::new_current_thread().enable_all());
    drop(taken);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    let err = runtime.map(drop).unwrap_err();
    checks.check(
        "runtime() is Os building the tokio runtime, not ThreadSpawn",
        matches!(err, Error::Os { operation, .. } if operation.contains("tokio runtime")),
        &err,
    );
    checks.check(
        "its errno is EMFILE",
        err.raw_os_error() == Some(nix::libc::EMFILE),
        err.raw_os_error(),
    );
    let source = std::error::Error::source(&err)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error);
    checks.check(
        "tokio's error is its source, with the errno",
        source == Some(nix::libc::EMFILE),
        source,
    );
    checks.check("no descriptor leaked", fd_count() == fds, (fds, fd_count()));
    let again = ns.runtime(tokio::runtime::Builder::new_current_thread().enable_all());
    checks.check(
        "runtime() works again below the limit",
        again.is_ok(),
        again.map(drop),
    );
    checks.exit()
}

/// Runs this binary as the child `mode`, prefixed by `wrapper`, and checks its report.
fn run_child(mode: &str, wrapper: &[&str], fixture: &str) -> bool {
    let exe = std::env::current_exe().unwrap();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(&exe);
            command
        }
        None => Command::new(&exe),
    };
    let output = command
        .env(MODE, mode)
        .env(FIXTURE, fixture)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    println!(
        "child {mode}:\n{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let oks = report.lines().filter(|l| l.starts_with("ok: ")).count();
    output.status.success() && oks > 0 && !report.contains("FAIL: ")
}

fn main() -> ExitCode {
    match (std::env::var(MODE).as_deref(), std::env::var(FIXTURE)) {
        (Ok("unprivileged"), Ok(fixture)) => return child_unprivileged(&fixture),
        (Ok("no-threads"), Ok(fixture)) => return child_no_threads(&fixture),
        (Ok("no-ptrace"), Ok(process)) => return child_without_ptrace(&process),
        (Ok("no-watches"), Ok(_)) => return child_no_watches(),
        #[cfg(feature = "tokio")]
        (Ok("no-descriptors"), Ok(fixture)) => return child_no_descriptors(&fixture),
        _ => {}
    }
    // Without root, a user namespace of this process's own (it is still single-threaded);
    // the children below then drop their capabilities in it, as they would as root.
    if let Err(err) = in_netns::rootless::enter() {
        panic!("child_faults needs root or user namespaces: {err}");
    }
    require_privilege();
    let fixture = TempNs::new("child");
    let drop_all_capabilities = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"];
    let results = [
        (
            "unprivileged",
            run_child("unprivileged", &drop_all_capabilities, &fixture.name),
        ),
        ("no-threads", run_child("no-threads", &[], &fixture.name)),
        ("no-watches", {
            let own_user_namespace = ["unshare", "--user", "--map-root-user", "--mount", "--"];
            run_child("no-watches", &own_user_namespace, &fixture.name)
        }),
        #[cfg(feature = "tokio")]
        (
            "no-descriptors",
            run_child("no-descriptors", &[], &fixture.name),
        ),
        ("no-ptrace", {
            // A process with every capability this one has, which the child lacks one of.
            let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
            let drop_ptrace = [
                "setpriv",
                "--inh-caps=-sys_ptrace",
                "--bounding-set=-sys_ptrace",
                "--",
            ];
            let passed = run_child("no-ptrace", &drop_ptrace, &sleeper.id().to_string());
            let _ = sleeper.kill();
            let _ = sleeper.wait();
            passed
        }),
    ];
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(mode, _)| *mode)
        .collect();
    println!(
        "child_faults: {} passed, {} failed",
        results.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
