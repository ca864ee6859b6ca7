//! `NetnsCommandExt`: children that start inside a namespace, with `ip netns exec`'s views, while no
//! thread of the parent moves.

mod common;

use std::fs;
use std::ops::DerefMut as _;
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::time::Duration;

use common::{CAP_NET_ADMIN, CapWord, EtcDir, TempNs, capget, capset, current_id, really_root};
use in_netns::{Error, NetNs, NetnsCommandExt, Setup};

/// The interface names a `/proc/.../net/dev` text lists.
fn links_in(dev: &str) -> Vec<String> {
    dev.lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(|name| name.trim().to_owned())
        .collect()
}

/// A command's output, which must be a success (a `NetnsCommand` passes as its command).
fn output_of(command: &mut Command) -> String {
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
        &mut Command::new("cat")
            .arg("/proc/self/net/dev")
            .netns(&target.ns),
    );
    assert_eq!(links_in(&inside), ["lo"]);
    let ns_of_child = output_of(
        &mut Command::new("readlink")
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
    let setup = Setup::default().etc(true).sysfs(true);
    let seen = output_of(
        &mut Command::new("sh")
            .args(["-c", "cat /etc/resolv.conf; ls /sys/class/net"])
            .netns_with(&target.ns, &setup)
            .unwrap(),
    );
    assert_eq!(seen, "nameserver 192.0.2.53\nlo\n");
    assert_eq!(fs::read_to_string("/etc/resolv.conf").unwrap(), host_resolv);
    assert_eq!(mounts(), mounts_before);
}

/// A child that runs as another user switches once inside: the user is set on the
/// `NetnsCommand`, and the child switches after the entry and the views (std's own `uid` would
/// switch before, dropping the privilege to enter).
#[in_netns::test]
fn a_child_that_runs_as_another_user_starts_inside() {
    let target = TempNs::new("cmd-uid");
    // As root, `nobody`: a real drop of privileges. Without root, in the user namespace of the
    // test, only the test's own ids are mapped: the command still sets them, and starts inside
    // the same way.
    let (uid, gid) = another_user();
    let seen = output_of(
        Command::new("sh")
            .args(["-c", "id -u; id -g; readlink /proc/self/ns/net"])
            .netns(&target.ns)
            .uid(uid)
            .gid(gid),
    );
    assert_eq!(seen, format!("{uid}\n{gid}\n{}\n", target.id()));
    let mut with_views = Command::new("sh");
    with_views
        .args(["-c", "id -u; ls /sys/class/net"])
        .netns_with(&target.ns, &Setup::default().sysfs(true))
        .unwrap()
        .uid(uid)
        .gid(gid);
    assert_eq!(output_of(&mut with_views), format!("{uid}\nlo\n"));
}

/// The ids a test can run a child as: as root, `nobody`, a real drop of privileges; without
/// root, in the test's user namespace where only its own ids are mapped, those.
fn another_user() -> (u32, u32) {
    match really_root() {
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
                    command.args(["-c", script]);
                    command
                };
                let first_run = command()
                    .netns(&first.ns)
                    .uid(uid)
                    .gid(gid)
                    .output()
                    .unwrap();
                let second_run = command()
                    .netns(&second.ns)
                    .uid(uid)
                    .gid(gid)
                    .output()
                    .unwrap();
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
    let result = command.netns_with(&anonymous, &Setup::default().etc(true));
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
        .netns_with(&target.ns, &Setup::default().sysfs(true))
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

/// Spawns `command`, whose spawn must fail: the error, and what the child wrote to its standard
/// error before it gave up.
fn failed_spawn(command: &mut Command) -> (std::io::Error, String) {
    use std::io::Read as _;
    // Close-on-exec, so that children other tests spawn meanwhile do not hold the write end.
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    command.stderr(std::process::Stdio::from(write));
    let err = command.status().expect_err("the spawn fails");
    // The command holds the write end: let go of it so that reading sees the end.
    command.stderr(std::process::Stdio::null());
    let mut stderr = String::new();
    fs::File::from(read).read_to_string(&mut stderr).unwrap();
    (err, stderr)
}

/// What a child whose user std changed is told: the fix, in so many words.
const USE_NETNS_COMMAND_UID: &str =
    "set the user with NetnsCommand::uid/gid after netns(), not std's CommandExt::uid";

/// glibc's `setuid` applies to every thread of the process. A daemon that drops root on one
/// thread while another spawns a command that runs as another user must be left with no
/// capability on any thread: the spawning thread is not special (no keep-capabilities flag is
/// raised on it), the child switches user on its own, once inside. In a process of its own,
/// since the whole process becomes `nobody`.
#[in_netns::test(own_process)]
fn dropping_root_while_a_thread_spawns_a_command_as_another_user_leaves_no_capability() {
    if !really_root() {
        println!("skipped: needs root outside a user namespace (the process drops root to nobody)");
        return;
    }
    // Anonymous: once this process is nobody, it could not remove a name.
    let ns = NetNs::new().unwrap();
    let (spawning, started) = std::sync::mpsc::channel();
    let (finished, output) = std::sync::mpsc::channel();
    let (checked, done) = std::sync::mpsc::channel::<()>();
    let spawner = std::thread::spawn(move || {
        spawning.send(()).unwrap();
        let result = Command::new("sh")
            .args(["-c", "sleep 0.5; id -u"])
            .netns(&ns)
            .uid(65534)
            .gid(65534)
            .output();
        finished.send(result).unwrap();
        // Alive until its capabilities were looked at.
        let _ = done.recv();
    });
    started.recv().unwrap();
    std::thread::sleep(Duration::from_millis(150));
    // The daemon drops root as daemons do, through glibc, which applies it to every thread.
    // SAFETY: plain calls without pointers (but setgroups' null list of length 0).
    unsafe {
        assert_eq!(nix::libc::setgroups(0, std::ptr::null()), 0);
        assert_eq!(nix::libc::setgid(65534), 0);
        assert_eq!(nix::libc::setuid(65534), 0);
    }
    let output = output.recv().unwrap();
    let mut permitted = Vec::new();
    for task in fs::read_dir("/proc/self/task").unwrap().flatten() {
        // A thread may end between the listing and the read.
        if let Ok(status) = fs::read_to_string(task.path().join("status")) {
            let line = status.lines().find(|line| line.starts_with("CapPrm:"));
            permitted.push((task.file_name(), line.unwrap().to_owned()));
        }
    }
    checked.send(()).unwrap();
    spawner.join().unwrap();
    let output = output.expect("spawn");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "65534\n");
    assert!(
        permitted
            .iter()
            .all(|(_, line)| line == "CapPrm:\t0000000000000000"),
        "a thread kept capabilities after the process dropped root: {permitted:?}"
    );
}

/// The user set on the `NetnsCommand` stays set when the command is configured further through
/// `Deref` (which returns the plain command) and spawned with the command's own methods, std's
/// and tokio's; groups set on it are the child's.
#[in_netns::test]
fn a_user_set_on_the_netns_command_survives_chaining_through_deref() {
    if !really_root() {
        println!(
            "skipped: needs root outside a user namespace (only the test's own ids exist in its \
             user namespace, so no switch to another user shows)"
        );
        return;
    }
    let target = TempNs::new("cmd-chain");
    let expected = format!("65534\n65534 65533\n{}\n", target.id());
    let script = "id -u; id -G; readlink /proc/self/ns/net";
    let output = Command::new("sh")
        .netns(&target.ns)
        .uid(65534)
        .gid(65534)
        .groups(&[65533])
        .arg("-c")
        .arg(script)
        .output()
        .expect("spawn");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);

    // Without groups, the supplementary ones are dropped, as std's `uid` drops them.
    let output = Command::new("id")
        .netns(&target.ns)
        .uid(65534)
        .gid(65534)
        .arg("-G")
        .output()
        .expect("spawn");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "65534\n");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let output = runtime.block_on(async {
        tokio::process::Command::new("sh")
            .netns(&target.ns)
            .uid(65534)
            .gid(65534)
            .groups(&[65533])
            .arg("-c")
            .arg(script)
            .output()
            .await
            .expect("spawn")
    });
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
}

/// std's own `uid`, set before `netns` or after it through `Deref`, switches user before the
/// entry and takes away the privilege to enter: the spawn fails, and the child says what to
/// do instead, rather than failing silently or blaming something else.
#[in_netns::test]
fn a_user_set_with_stds_uid_fails_the_spawn_and_the_child_says_what_to_do() {
    if !really_root() {
        println!(
            "skipped: needs root outside a user namespace (only the test's own ids exist in its \
             user namespace, and switching to them drops nothing)"
        );
        return;
    }
    let target = TempNs::new("cmd-std-uid");
    let mut before = Command::new("true");
    before.uid(65534).gid(65534).netns(&target.ns);
    let mut after = Command::new("true");
    after.netns(&target.ns).arg("ignored").uid(65534);
    for (when, command) in [("before netns", &mut before), ("after netns", &mut after)] {
        let (err, stderr) = failed_spawn(command);
        assert_eq!(err.raw_os_error(), Some(nix::libc::EPERM), "{when}: {err}");
        assert!(
            stderr.contains(USE_NETNS_COMMAND_UID),
            "{when}: the child's stderr: {stderr:?}"
        );
    }
}

/// A call from a thread that may not enter says what it lacks (CAP_SYS_ADMIN), about the
/// call's namespace: not about where shared threads go back to between calls.
#[in_netns::test]
fn a_call_from_a_thread_without_the_privilege_to_enter_says_it_lacks_cap_sys_admin() {
    let target = TempNs::new("run-no-privilege");
    target.ns.run(|| ()).unwrap();
    let refused = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                capset([CapWord::default(); 2]);
                (target.ns.run(|| ()), target.ns.run(|| ()))
            })
            .join()
            .unwrap()
    });
    for result in [refused.0, refused.1] {
        let message = result
            .expect_err("entered without CAP_SYS_ADMIN")
            .to_string();
        assert!(message.contains("CAP_SYS_ADMIN"), "{message}");
        assert!(!message.contains("/proc/self"), "{message}");
        assert!(!message.contains("unshare"), "{message}");
    }
    assert_eq!(
        target.ns.run(|| 7).unwrap(),
        7,
        "a privileged caller still enters"
    );
}

/// A child that may not enter, with no user set, says what it lacks (CAP_SYS_ADMIN), not
/// something about users.
#[in_netns::test]
fn a_child_without_the_privilege_to_enter_says_it_lacks_cap_sys_admin() {
    let target = TempNs::new("cmd-no-privilege");
    // A thread of its own, which gives up every capability (this thread only: the system call).
    let (err, stderr) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                capset([CapWord::default(); 2]);
                failed_spawn(Command::new("true").netns(&target.ns).deref_mut())
            })
            .join()
            .unwrap()
    });
    assert_eq!(err.raw_os_error(), Some(nix::libc::EPERM), "{err}");
    assert!(stderr.contains("needs CAP_SYS_ADMIN"), "{stderr:?}");
    assert!(!stderr.contains("uid"), "{stderr:?}");
}

/// A caller that keeps CAP_SYS_ADMIN permitted but not effective (a service that raises its
/// capabilities only when it needs them) still gets a child inside, and the child starts with
/// exactly the caller's capabilities: its ambient CAP_NET_ADMIN reaches the program.
#[in_netns::test]
fn a_caller_with_cap_sys_admin_permitted_not_effective_gives_the_child_its_capabilities() {
    if !really_root() {
        println!(
            "skipped: needs root outside a user namespace (the thread becomes nobody, keeping \
             its capabilities, which only root can do)"
        );
        return;
    }
    let target = TempNs::new("cmd-permitted");
    let output = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // This thread only (system calls, not glibc's process-wide wrappers): nobody,
                // with every capability permitted and none effective, and CAP_NET_ADMIN ambient.
                // SAFETY: prctl and setresuid take integers, no pointers.
                unsafe {
                    assert_eq!(nix::libc::prctl(nix::libc::PR_SET_KEEPCAPS, 1, 0, 0, 0), 0);
                    let nobody = 65534;
                    let set = nix::libc::syscall(nix::libc::SYS_setresuid, nobody, nobody, nobody);
                    assert_eq!(set, 0, "setresuid: {}", std::io::Error::last_os_error());
                }
                let mut sets = capget();
                assert_eq!((sets[0].effective, sets[1].effective), (0, 0), "{sets:?}");
                sets[0].inheritable |= 1 << CAP_NET_ADMIN;
                capset(sets);
                // SAFETY: prctl takes integers, no pointers.
                let raised = unsafe {
                    nix::libc::prctl(
                        nix::libc::PR_CAP_AMBIENT,
                        nix::libc::PR_CAP_AMBIENT_RAISE,
                        CAP_NET_ADMIN,
                        0,
                        0,
                    )
                };
                assert_eq!(raised, 0, "{}", std::io::Error::last_os_error());
                Command::new("sh")
                    .args([
                        "-c",
                        "grep -E '^Cap(Prm|Eff|Amb)' /proc/self/status; readlink /proc/self/ns/net",
                    ])
                    .netns(&target.ns)
                    .output()
                    .expect("spawn")
            })
            .join()
            .unwrap()
    });
    assert!(output.status.success(), "{output:?}");
    let net_admin = "0000000000001000";
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!(
            "CapPrm:\t{net_admin}\nCapEff:\t{net_admin}\nCapAmb:\t{net_admin}\n{}\n",
            target.id()
        )
    );
}

/// The views of `netns_with` are prepared once, when it is called: every child of that command
/// gets the `/etc/netns/NAME` entries listed then (as documented), and a new `netns_with` lists
/// them again.
#[in_netns::test]
fn a_commands_etc_view_is_the_one_listed_at_netns_with() {
    let target = TempNs::new("cmd-etc-listed");
    let etc = EtcDir::new(&target.name, &[("hosts", "192.0.2.1 listed\n")]);
    let setup = Setup::default().etc(true);
    let script = "cat /etc/hosts; grep -c 192.0.2.53 /etc/resolv.conf || true";
    let mut command = Command::new("sh");
    command
        .args(["-c", script])
        .netns_with(&target.ns, &setup)
        .unwrap();
    assert_eq!(output_of(&mut command), "192.0.2.1 listed\n0\n");
    // An entry added after `netns_with`: not bound for that command's later children ...
    fs::write(etc.0.join("resolv.conf"), "nameserver 192.0.2.53\n").unwrap();
    assert_eq!(output_of(&mut command), "192.0.2.1 listed\n0\n");
    // ... and bound for a command whose `netns_with` comes after it.
    let mut again = Command::new("sh");
    again
        .args(["-c", script])
        .netns_with(&target.ns, &setup)
        .unwrap();
    assert_eq!(output_of(&mut again), "192.0.2.1 listed\n1\n");
}

/// The user set on a `NetnsCommand` is switched to right after its entry: an entry added by a
/// later `netns` call then has no privilege left, and the child says so (not that std's `uid`
/// was used).
#[in_netns::test]
fn an_entry_after_a_user_switch_fails_and_says_to_make_a_new_command() {
    if !really_root() {
        println!(
            "skipped: needs root outside a user namespace (only the test's own ids exist in its \
             user namespace, and switching to them drops nothing)"
        );
        return;
    }
    let (first, second) = (TempNs::new("cmd-switched-a"), TempNs::new("cmd-switched-b"));
    let mut command = Command::new("true");
    command.netns(&first.ns).uid(65534);
    command.netns(&second.ns);
    let (err, stderr) = failed_spawn(&mut command);
    assert_eq!(err.raw_os_error(), Some(nix::libc::EPERM), "{err}");
    assert!(
        stderr.contains("make a new command for each namespace"),
        "{stderr:?}"
    );
}
