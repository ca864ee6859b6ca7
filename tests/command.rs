//! `CommandExt`: children that start inside a namespace, with `ip netns exec`'s views, while no
//! thread of the parent moves.

mod common;

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::time::Duration;

use common::{EtcDir, TempNs, current_id};
use in_netns::{CommandExt, Error, NetNs, NetnsCommand, Options};

/// The interface names a `/proc/.../net/dev` text lists.
fn links_in(dev: &str) -> Vec<String> {
    dev.lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(|name| name.trim().to_owned())
        .collect()
}

fn output_of(mut command: NetnsCommand<'_, Command>) -> String {
    let output = command.output().expect("spawn");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[in_netns::test]
fn a_child_lists_only_the_namespaces_links_and_the_parent_stays() {
    let target = TempNs::new("cmd-links");
    let home = current_id();
    let host_links = links_in(&fs::read_to_string("/proc/self/net/dev").unwrap());
    let inside = output_of(
        Command::new("cat")
            .arg("/proc/self/net/dev")
            .netns(&target.ns),
    );
    assert_eq!(links_in(&inside), ["lo"]);
    let ns_of_child = output_of(
        Command::new("readlink")
            .arg("/proc/self/ns/net")
            .netns(&target.ns),
    );
    assert_eq!(ns_of_child.trim(), target.id().to_string());
    assert_eq!(current_id(), home);
    assert_eq!(
        links_in(&fs::read_to_string("/proc/self/net/dev").unwrap()),
        host_links
    );
}

#[in_netns::test]
fn with_etc_and_sysfs_a_child_sees_the_namespaces_files_and_the_host_mounts_stay() {
    let target = TempNs::new("cmd-etc");
    let _etc = EtcDir::new(&target.name, &[("resolv.conf", "nameserver 192.0.2.53\n")]);
    // Other tests make and remove names meanwhile: their mounts are not this test's.
    let mounts = || {
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|line| !line.contains("/netns-test-"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mounts_before = mounts();
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap();
    let options = Options::default().etc(true).sysfs(true);
    let seen = output_of(
        Command::new("sh")
            .args(["-c", "cat /etc/resolv.conf; ls /sys/class/net"])
            .netns_with(&target.ns, &options)
            .unwrap(),
    );
    assert_eq!(seen, "nameserver 192.0.2.53\nlo\n");
    assert_eq!(fs::read_to_string("/etc/resolv.conf").unwrap(), host_resolv);
    assert_eq!(mounts(), mounts_before);
}

/// A child that runs as another user drops its privileges before `pre_exec` closures run (std
/// calls `setgid` and `setuid` first), so entering there fails: spawned through the
/// `NetnsCommand`, it is forked from a thread inside and has nothing to enter.
#[in_netns::test]
fn a_child_that_runs_as_another_user_starts_inside() {
    let target = TempNs::new("cmd-uid");
    // As root, `nobody`: the privilege drop that used to fail with EPERM. Without root, in the
    // user namespace of the test, only the test's own ids are mapped: the command still sets
    // them, and starts inside the same way.
    let (uid, gid) = match nix::unistd::getuid().is_root() && !in_user_namespace() {
        true => (65534, 65534),
        false => (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        ),
    };
    let seen = output_of(
        Command::new("sh")
            .args(["-c", "id -u; id -g; readlink /proc/self/ns/net"])
            .uid(uid)
            .gid(gid)
            .netns(&target.ns),
    );
    assert_eq!(seen, format!("{uid}\n{gid}\n{}\n", target.id()));
    let with_views = output_of(
        Command::new("sh")
            .args(["-c", "id -u; ls /sys/class/net"])
            .uid(uid)
            .gid(gid)
            .netns_with(&target.ns, &Options::default().sysfs(true))
            .unwrap(),
    );
    assert_eq!(with_views, format!("{uid}\nlo\n"));
}

/// The ids a test can run a child as: as root, `nobody`, a real drop of privileges; without
/// root, in the test's user namespace where only its own ids are mapped, those.
fn another_user() -> (u32, u32) {
    match nix::unistd::getuid().is_root() && !in_user_namespace() {
        true => (65534, 65534),
        false => (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        ),
    }
}

/// A child that runs as another user is the caller thread's child like any other: it keeps the
/// thread's sandbox (`no_new_privs` here), writes nothing to its standard error on the way in,
/// and has no capability left once inside.
#[in_netns::test]
fn a_child_that_runs_as_another_user_keeps_the_callers_sandbox_and_says_nothing() {
    let (first, second) = (TempNs::new("cmd-uid-a"), TempNs::new("cmd-uid-b"));
    let (uid, gid) = another_user();
    // A thread of its own: `no_new_privs` cannot be undone.
    let (restricted, second_ns) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sys::prctl::set_no_new_privs().unwrap();
                let command = || {
                    let mut command = Command::new("sh");
                    let script = "grep -E '^(NoNewPrivs|CapPrm|CapEff)' /proc/self/status; \
                                  readlink /proc/self/ns/net";
                    command.args(["-c", script]).uid(uid).gid(gid);
                    command
                };
                let first_run = command().netns(&first.ns).output().unwrap();
                let second_run = command().netns(&second.ns).output().unwrap();
                (first_run, second_run)
            })
            .join()
            .unwrap()
    });
    for output in [&restricted, &second_ns] {
        assert!(output.status.success(), "{output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            "",
            "nothing on stderr"
        );
    }
    let seen = String::from_utf8_lossy(&restricted.stdout);
    assert!(
        seen.ends_with(&format!("NoNewPrivs:\t1\n{}\n", first.id())),
        "{seen}"
    );
    if uid != 0 {
        // Root dropped to another user: no capability left once inside.
        let none = "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n";
        assert!(seen.starts_with(none), "{seen}");
    }
    assert!(
        String::from_utf8_lossy(&second_ns.stdout).ends_with(&format!("{}\n", second.id())),
        "{second_ns:?}"
    );
}

/// Whether this process is in a user namespace other than the initial one (as tests without
/// root are): only the ids of its map exist there.
fn in_user_namespace() -> bool {
    fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|map| map.split_whitespace().nth(2) != Some("4294967295"))
}

/// Configured after `netns` and spawned with the command's own methods, a child still starts
/// inside: it enters between `fork` and `exec`.
#[in_netns::test]
fn a_child_spawned_by_the_commands_own_methods_enters_after_the_fork() {
    let target = TempNs::new("cmd-pre-exec");
    let mut command = Command::new("readlink");
    command.netns(&target.ns);
    command.arg("/proc/self/ns/net");
    let output = command.output().expect("spawn");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        target.id().to_string()
    );
}

#[in_netns::test]
fn options_that_cannot_apply_fail_before_anything_is_spawned() {
    let anonymous = NetNs::new().unwrap();
    let mut command = Command::new("true");
    let result = command.netns_with(&anonymous, &Options::default().etc(true));
    assert!(matches!(result, Err(Error::Unnamed { .. })));
}

#[in_netns::test]
fn a_tokio_child_inside_does_not_block_a_current_thread_runtime() {
    let target = TempNs::new("cmd-tokio");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = std::sync::Arc::clone(&ticks);
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let output = tokio::process::Command::new("sh")
            .args(["-c", "sleep 0.3; readlink /proc/self/ns/net"])
            .netns(&target.ns)
            .output()
            .await
            .unwrap();
        ticker.abort();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            target.id().to_string()
        );
        // The runtime's only thread kept running other tasks while the child ran.
        assert!(ticks.load(std::sync::atomic::Ordering::SeqCst) > 5);
    });
}

/// A command given another namespace for a second spawn starts there: the namespace of the
/// latest `netns` call, whichever way the child is spawned.
#[in_netns::test]
fn a_command_reused_with_another_namespace_starts_in_the_latest() {
    let (first, second) = (TempNs::new("cmd-reuse-a"), TempNs::new("cmd-reuse-b"));
    let mut command = Command::new("readlink");
    command.arg("/proc/self/ns/net");
    let in_first = command.netns(&first.ns).output().unwrap();
    let in_second = command.netns(&second.ns).output().unwrap();
    let seen =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(seen(&in_first), first.id().to_string());
    assert_eq!(seen(&in_second), second.id().to_string());
}

/// A child whose parent-death signal is set (`PR_SET_PDEATHSIG`) lives as long as the thread
/// that spawned it, which is the caller's: it is not forked from a thread of the crate that ends
/// sooner (a view's thread ends with its call).
#[in_netns::test]
fn a_child_with_a_parent_death_signal_outlives_the_call_that_spawned_it() {
    let target = TempNs::new("cmd-pdeathsig");
    let mut command = Command::new("sleep");
    command.arg("30");
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = command
        .netns_with(&target.ns, &Options::default().sysfs(true))
        .unwrap()
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        still_running,
        "the child was killed when a thread of the crate ended"
    );
}

/// Options about how a call finds its thread mean nothing to a child: refused by name.
#[in_netns::test]
fn a_command_refuses_settings_of_how_a_call_finds_its_thread() {
    let target = TempNs::new("cmd-dispatch");
    let mut command = Command::new("true");
    let result = command.netns_with(&target.ns, &Options::default().fresh_thread(true));
    assert!(
        matches!(
            result,
            Err(Error::NotApplicable {
                option: "fresh_thread",
                to: "a command"
            })
        ),
        "{result:?}"
    );
}
