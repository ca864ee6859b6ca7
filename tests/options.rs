//! `sysfs` and `etc`: the body's view of `/sys` and `/etc` describes the namespace, as under
//! `ip netns exec`, and the host's mounts are never touched (also when the body panics).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{EtcDir, TempNs, capture_warnings, current_id, warnings_about};
use in_netns::{Error, NetNs, Options, in_netns};

/// The calling thread's mount table, without the run-dir mounts that other tests running in
/// parallel add and remove (they are not this test's to compare).
fn host_mounts() -> Vec<String> {
    fs::read_to_string("/proc/thread-self/mountinfo")
        .unwrap()
        .lines()
        .filter(|line| {
            !line
                .split(' ')
                .nth(4)
                .unwrap_or("")
                .starts_with("/run/netns/")
        })
        .map(str::to_owned)
        .collect()
}

fn links_in_sys() -> Vec<String> {
    let mut links: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    links.sort();
    links
}

/// A namespace with one extra link, `nsopt0` (a bridge: every kernel here has the driver).
fn namespace_with_a_link(tag: &str) -> TempNs {
    let target = TempNs::new(tag);
    let status = Command::new("ip")
        .args([
            "-n",
            &target.name,
            "link",
            "add",
            "nsopt0",
            "type",
            "bridge",
        ])
        .status()
        .unwrap();
    assert!(status.success(), "ip link add failed");
    target
}

#[in_netns::test]
fn sysfs_lists_the_namespaces_links_and_the_hosts_stay() {
    let target = namespace_with_a_link("sysfs");
    let host_links = links_in_sys();
    let mounts_before = host_mounts();
    let inside = target
        .ns
        .run_with(&Options::default().sysfs(true), links_in_sys)
        .unwrap();
    assert_eq!(inside, ["lo", "nsopt0"]);
    assert_eq!(links_in_sys(), host_links, "the host's /sys is untouched");
    assert!(!host_links.contains(&"nsopt0".to_owned()));
    assert_eq!(
        host_mounts(),
        mounts_before,
        "the host's mount table is untouched"
    );
}

/// The links `/proc/.../net/dev` lists (after its two header lines, each line is `NAME: ...`).
fn links_in_proc(path: &str) -> Vec<String> {
    let dev = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let mut links: Vec<String> = dev
        .lines()
        .skip(2)
        .filter_map(|line| Some(line.split_once(':')?.0.trim().to_owned()))
        .collect();
    links.sort();
    links
}

/// What `/proc/net/dev`, `/proc/self/net/dev` and `/proc/thread-self/net/dev` list, and what
/// `/proc/self` is.
fn proc_net_view() -> ([Vec<String>; 3], PathBuf) {
    (
        [
            links_in_proc("/proc/net/dev"),
            links_in_proc("/proc/self/net/dev"),
            links_in_proc("/proc/thread-self/net/dev"),
        ],
        fs::read_link("/proc/self").unwrap(),
    )
}

/// Waits until the calling thread is the only one of the process in `id` (a thread that ended
/// lingers in /proc for a moment).
fn wait_alone_in(id: in_netns::NsId) {
    let me = common::gettid();
    for _ in 0..2000 {
        let others = common::thread_namespaces()
            .into_iter()
            .filter(|&(tid, ns)| ns == id && tid != me)
            .count();
        if others == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("other threads stayed in {id}");
}

#[in_netns::test]
fn sysfs_makes_proc_net_the_namespaces_and_the_hosts_stays() {
    let target = namespace_with_a_link("procnet");
    let host = proc_net_view();
    assert!(!host.0[0].contains(&"nsopt0".to_owned()));
    let mounts_before = host_mounts();
    let inside = || {
        let links = vec!["lo".to_owned(), "nsopt0".to_owned()];
        ([links.clone(), links.clone(), links], host.1.clone())
    };
    let options = Options::default().sysfs(true);
    // `/proc/self` is still the process (the documented difference from a process inside).
    assert_eq!(
        target.ns.run_with(&options, proc_net_view).unwrap(),
        inside()
    );
    // A spawned thread and a worker read it once the thread that set up their view has ended.
    let id = target.id();
    let spawned = target.ns.spawn_with(&options, move || {
        wait_alone_in(id);
        proc_net_view()
    });
    assert_eq!(spawned.unwrap().join().unwrap(), inside());
    let worker = target.ns.worker_with(&options.setup()).unwrap();
    worker.run(|| wait_alone_in(id)).unwrap();
    assert_eq!(worker.run(proc_net_view).unwrap(), inside());
    drop(worker);
    assert_eq!(proc_net_view(), host, "the host's /proc is untouched");
    assert_eq!(host_mounts(), mounts_before);
}

#[in_netns::test]
fn without_sysfs_the_body_sees_the_hosts_sys() {
    let target = namespace_with_a_link("nosysfs");
    assert_eq!(target.ns.run(links_in_sys).unwrap(), links_in_sys());
}

#[in_netns::test]
fn sysfs_is_read_only_exactly_when_the_hosts_is() {
    let target = TempNs::new("sysfs-ro");
    let options_of_sys = || {
        fs::read_to_string("/proc/thread-self/mountinfo")
            .unwrap()
            .lines()
            .rfind(|line| line.split(' ').nth(4) == Some("/sys"))
            .map(|line| {
                line.split(' ')
                    .nth(5)
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .unwrap()
    };
    let inside = target
        .ns
        .run_with(&Options::default().sysfs(true), options_of_sys)
        .unwrap();
    assert_eq!(inside, options_of_sys());
}

#[in_netns::test]
fn etc_binds_the_namespaces_files_over_etc() {
    let target = TempNs::new("etc");
    let resolv = format!("nameserver 192.0.2.53 # {}\n", target.name);
    let _etc = EtcDir::new(
        &target.name,
        &[("resolv.conf", &resolv), ("hosts", "192.0.2.1 inside\n")],
    );
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap();
    let mounts_before = host_mounts();
    let read = || {
        (
            fs::read_to_string("/etc/resolv.conf").unwrap(),
            fs::read_to_string("/etc/hosts").unwrap(),
        )
    };
    let inside = target
        .ns
        .run_with(&Options::default().etc(true), read)
        .unwrap();
    assert_eq!(inside, (resolv, "192.0.2.1 inside\n".to_owned()));
    assert_eq!(fs::read_to_string("/etc/resolv.conf").unwrap(), host_resolv);
    assert_eq!(host_mounts(), mounts_before);
}

#[in_netns::test]
fn etc_binds_every_entry_it_can_and_warns_of_each_one_it_skips() {
    capture_warnings();
    let target = TempNs::new("etc-odd");
    let resolv = format!("nameserver 192.0.2.54 # {}\n", target.name);
    let etc = EtcDir::new(
        &target.name,
        &[
            ("resolv.conf", &resolv),
            ("netns-test-no-counterpart.conf", "x\n"),
        ],
    );
    // A dangling symlink, and a directory where /etc has a file.
    std::os::unix::fs::symlink("/nonexistent/netns-test", etc.0.join("hosts")).unwrap();
    fs::create_dir(etc.0.join("hostname")).unwrap();
    let host = |file: &str| fs::read_to_string(Path::new("/etc").join(file)).unwrap();
    let (host_hosts, host_hostname) = (host("hosts"), host("hostname"));
    let mounts_before = host_mounts();

    let inside = target
        .ns
        .run_with(&Options::default().etc(true), || {
            (host("resolv.conf"), host("hosts"), host("hostname"))
        })
        .unwrap();
    assert_eq!(inside, (resolv, host_hosts, host_hostname));
    assert_eq!(host_mounts(), mounts_before);

    let warnings = warnings_about(&format!("/etc/netns/{}/", target.name));
    for skipped in ["netns-test-no-counterpart.conf", "hosts", "hostname"] {
        let source = format!(
            "/etc/netns/{}/{skipped} was not bound over /etc/{skipped}: ",
            target.name
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("in_netns: ") && w.contains(&source)),
            "no warning for {skipped} in {warnings:#?}"
        );
    }
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
}

#[in_netns::test]
fn etc_without_a_name_is_an_error_not_a_no_op() {
    common::require_privilege();
    let anonymous = NetNs::new().unwrap();
    let result = anonymous.run_with(&Options::default().etc(true), || ());
    match result {
        Err(Error::Unnamed { namespace }) => assert_eq!(namespace, anonymous.id().to_string()),
        other => panic!("expected Unnamed, got {other:?}"),
    }
    let by_pid = NetNs::of_pid(std::process::id()).unwrap();
    assert!(matches!(
        by_pid.spawn_with(&Options::default().etc(true), || ()),
        Err(Error::Unnamed { .. })
    ));
}

#[in_netns::test]
fn a_panic_under_options_leaves_the_host_mounts_untouched() {
    let target = namespace_with_a_link("sysfs-panic");
    let _etc = EtcDir::new(&target.name, &[("hosts", "192.0.2.2 panic\n")]);
    let mounts_before = host_mounts();
    let host_links = links_in_sys();
    let options = Options::default().sysfs(true).etc(true);
    let payload = std::panic::catch_unwind(|| {
        target
            .ns
            .run_with(&options, || panic!("inside with mounts"))
            .unwrap();
    })
    .unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"inside with mounts"));
    assert_eq!(host_mounts(), mounts_before);
    assert_eq!(links_in_sys(), host_links);
}

#[in_netns::test]
fn spawned_threads_and_workers_keep_their_view() {
    let target = namespace_with_a_link("sysfs-spawn");
    let options = Options::default().sysfs(true);
    let spawned = target.ns.spawn_with(&options, links_in_sys).unwrap();
    assert_eq!(spawned.join().unwrap(), ["lo", "nsopt0"]);
    let worker = target.ns.worker_with(&options.setup()).unwrap();
    assert_eq!(worker.setup(), options.setup());
    assert_eq!(worker.run(links_in_sys).unwrap(), ["lo", "nsopt0"]);
    assert_eq!(worker.run(links_in_sys).unwrap(), ["lo", "nsopt0"]);
}

#[in_netns(name = name, sysfs, etc)]
fn view_through_the_macro(name: &str) -> in_netns::Result<(Vec<String>, String, in_netns::NsId)> {
    Ok((
        links_in_sys(),
        fs::read_to_string("/etc/hosts").unwrap(),
        current_id(),
    ))
}

#[in_netns::test]
fn macro_flags_apply_the_options() {
    let target = namespace_with_a_link("sysfs-macro");
    let _etc = EtcDir::new(&target.name, &[("hosts", "192.0.2.3 macro\n")]);
    let (links, hosts, id) = view_through_the_macro(&target.name).unwrap();
    assert_eq!(
        (links, hosts, id),
        (
            vec!["lo".to_owned(), "nsopt0".to_owned()],
            "192.0.2.3 macro\n".to_owned(),
            target.id()
        )
    );
}
