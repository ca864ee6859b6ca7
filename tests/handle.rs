//! The handle API and the scoped runner, against real namespaces: the CNI `pkg/ns` test suite
//! ported one case per test, plus the hazards no peer tests.

mod common;

use std::collections::HashSet;
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{
    TempNs, bad_names, current_id, require_privilege, socket_ns, unique_name, wait_no_thread_in,
};
use in_netns::{Error, NetNs, NsId, RUN_DIR};

// --- ported from CNI plugins pkg/ns ---------------------------------------------------------

#[in_netns::test]
fn callback_runs_in_the_target_namespace() {
    let target = TempNs::new("target");
    let caller = current_id();
    let inside = target.ns.run(current_id).unwrap();
    assert_eq!(inside, target.id());
    assert_ne!(inside, caller);
    assert_eq!(current_id(), caller, "the caller's thread never moves");
}

#[in_netns::test]
fn nested_calls_see_the_inner_then_the_outer_namespace() {
    let outer = TempNs::new("outer");
    let inner = TempNs::new("inner");
    let (before, nested, after) = outer
        .ns
        .run(|| {
            let before = current_id();
            let nested = inner.ns.run(current_id).unwrap();
            (before, nested, current_id())
        })
        .unwrap();
    assert_eq!(
        (before, nested, after),
        (outer.id(), inner.id(), outer.id())
    );
}

#[in_netns::test]
fn two_hundred_concurrent_callers_each_keep_their_own_namespace() {
    let targets = [TempNs::new("conc-a"), TempNs::new("conc-b")];
    let home = current_id();
    let barrier = Arc::new(Barrier::new(200));
    std::thread::scope(|scope| {
        let callers: Vec<_> = (0..200)
            .map(|i| {
                let target = &targets[i % 2];
                let barrier = Arc::clone(&barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let inside = target.ns.run(current_id).unwrap();
                    (inside == target.id(), current_id() == home)
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.join().unwrap(), (true, true));
        }
    });
}

#[in_netns::test]
fn an_error_from_the_callback_is_returned_and_the_caller_is_unchanged() {
    let target = TempNs::new("err");
    let home = current_id();
    let result: Result<(), std::io::Error> = target
        .ns
        .run(|| Err(std::io::Error::other("callback failed")))
        .unwrap();
    assert_eq!(result.unwrap_err().to_string(), "callback failed");
    assert_eq!(current_id(), home);
}

#[in_netns::test]
fn distinct_namespaces_have_distinct_nonzero_ids() {
    let a = NetNs::new().unwrap();
    let b = NetNs::new().unwrap();
    assert_ne!(a.id(), b.id());
    assert_ne!(a, b);
    assert!(a.id().ino() != 0 && b.id().ino() != 0);
    assert_eq!(a, a.try_clone().unwrap());
    let set: HashSet<_> = [a.try_clone().unwrap(), a, b].into_iter().collect();
    assert_eq!(set.len(), 2, "Hash and Eq go by namespace identity");
}

#[in_netns::test]
fn after_a_namespace_is_dropped_no_thread_of_the_process_is_in_it() {
    let ns = NetNs::new().unwrap();
    let id = ns.id();
    ns.run(|| std::thread::scope(|s| s.spawn(|| ()).join().unwrap()))
        .unwrap();
    drop(ns);
    let stuck = wait_no_thread_in(id, Duration::from_secs(1));
    assert!(stuck.is_empty(), "threads {stuck:?} are still in {id}");
}

#[in_netns::test]
fn a_regular_file_is_not_netns_and_not_not_found() {
    let file = std::env::temp_dir().join(unique_name("regular"));
    std::fs::write(&file, b"not a namespace").unwrap();
    let result = NetNs::open(&file);
    std::fs::remove_file(&file).unwrap();
    match result {
        Err(Error::NotNetns { path, found }) => {
            assert_eq!(path, file);
            assert_eq!(found, "a regular file");
        }
        other => panic!("expected NotNetns, got {other:?}"),
    }
}

#[in_netns::test]
fn a_namespace_path_is_accepted() {
    require_privilege();
    // `/proc/self` is the process (its main thread), `/proc/thread-self` the calling thread.
    let process = common::id_of_path("/proc/self/ns/net");
    for (path, id) in [
        ("/proc/self/ns/net", process),
        ("/proc/thread-self/ns/net", current_id()),
    ] {
        let ns = NetNs::open(path).unwrap();
        assert_eq!(ns.id(), id);
        assert_eq!(ns.path(), Some(Path::new(path)));
    }
    let target = TempNs::new("path");
    assert_eq!(NetNs::open(target.path()).unwrap().id(), target.id());
    let pid = std::process::id();
    let task = format!("/proc/{pid}/task/{pid}/ns/net");
    assert_eq!(
        NetNs::open(&task).unwrap().id(),
        NetNs::of_pid(pid).unwrap().id()
    );
}

#[in_netns::test]
fn a_missing_path_is_not_found_and_not_not_netns() {
    let path = Path::new("/run/netns-does-not-exist/x");
    match NetNs::open(path) {
        Err(Error::NotFound { path: got }) => assert_eq!(got, path),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[in_netns::test]
fn a_name_written_as_a_relative_path_says_to_pass_the_name() {
    let target = TempNs::new("name-as-path");
    assert!(
        !Path::new(&target.name).exists(),
        "run from a directory without it"
    );
    match NetNs::open(&target.name) {
        Err(err @ Error::NameAsPath { .. }) => {
            let Error::NameAsPath { path, name } = &err else {
                unreachable!()
            };
            assert_eq!(
                (path.as_path(), name.as_str()),
                (Path::new(&target.name), target.name.as_str())
            );
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
            let message = err.to_string();
            assert!(
                message.contains(&format!("#[in_netns(name = {:?})]", target.name)),
                "{message}"
            );
        }
        other => panic!("expected NameAsPath, got {other:?}"),
    }
    // A relative path that is no run-dir entry is still NotFound.
    let missing = unique_name("nowhere");
    assert!(matches!(NetNs::open(&missing), Err(Error::NotFound { .. })));
}

// --- hazards no peer tests ------------------------------------------------------------------

#[in_netns::test]
fn a_panic_in_the_body_reaches_the_caller_with_its_payload_and_strands_no_thread() {
    let ns = NetNs::new().unwrap();
    let id = ns.id();
    let home = current_id();
    let payload = std::panic::catch_unwind(|| {
        ns.run(|| std::panic::panic_any(42_u64)).unwrap();
    })
    .unwrap_err();
    assert_eq!(payload.downcast_ref::<u64>(), Some(&42));
    assert_eq!(current_id(), home);
    drop(ns);
    assert!(wait_no_thread_in(id, Duration::from_secs(1)).is_empty());
}

#[in_netns::test]
fn threads_started_in_the_body_start_in_the_target_namespace() {
    let target = TempNs::new("threads");
    let inner = target
        .ns
        .run(|| std::thread::spawn(current_id).join().unwrap())
        .unwrap();
    assert_eq!(inner, target.id());
}

#[in_netns::test]
fn a_pool_thread_first_started_in_a_body_stays_inside_and_serves_the_host_later() {
    // tokio's blocking pool starts a thread from whichever thread first needs one: here the
    // body's. The thread outlives the call, and later host work runs on it, inside.
    let target = TempNs::new("pool");
    // A current-thread runtime: its blocking pool starts with no thread at all.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .thread_keep_alive(Duration::from_secs(600))
        .build()
        .unwrap();
    let handle = runtime.handle();
    let (first, later) = target
        .ns
        .run(|| {
            let _entered = handle.enter();
            tokio::task::spawn_blocking(|| (current_id(), common::gettid()))
        })
        .map(|task| {
            let first: (NsId, u32) = handle.block_on(task).unwrap();
            // Once the pool thread sleeps, it is idle, and tokio hands it the next task.
            let stat = format!("/proc/self/task/{}/stat", first.1);
            let asleep = || std::fs::read_to_string(&stat).unwrap().contains(") S ");
            for _ in 0..2000 {
                if asleep() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let later = handle.block_on(handle.spawn_blocking(|| (current_id(), common::gettid())));
            (first, later.unwrap())
        })
        .unwrap();
    assert_eq!(first.0, target.id());
    assert_eq!(
        later, first,
        "host work ran on the same pool thread, inside"
    );
    assert_ne!(current_id(), target.id());
}

#[in_netns::test]
fn a_socket_made_in_the_body_belongs_to_the_namespace_for_life() {
    let target = TempNs::new("socket");
    let socket = target
        .ns
        .run(|| UdpSocket::bind("127.0.0.1:0"))
        .unwrap()
        .unwrap();
    assert_eq!(socket_ns(&socket), target.id());
    let here = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(socket_ns(&here), current_id());
}

#[in_netns::test]
fn spawn_returns_a_thread_already_inside() {
    let target = TempNs::new("spawn");
    let handle = target.ns.spawn(current_id).unwrap();
    assert_eq!(handle.thread().name(), Some("in-netns"));
    assert_eq!(handle.join().unwrap(), target.id());
}

#[in_netns::test]
fn new_does_not_move_the_caller_and_lives_while_held() {
    require_privilege();
    let home = current_id();
    let ns = NetNs::new().unwrap();
    assert_eq!(current_id(), home);
    assert_ne!(ns.id(), home);
    assert_eq!(ns.path(), None);
    // The namespace is alive: a second call enters the same one.
    assert_eq!(ns.run(current_id).unwrap(), ns.id());
    assert_eq!(ns.run(current_id).unwrap(), ns.id());
}

#[in_netns::test]
fn current_and_of_socket_name_the_namespace_they_see() {
    require_privilege();
    let current = NetNs::current().unwrap();
    assert_eq!(current.id(), current_id());
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(NetNs::of_socket(&socket).unwrap(), current);
}

#[in_netns::test]
fn id_displays_like_readlink() {
    require_privilege();
    let link = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    assert_eq!(
        NetNs::current().unwrap().id().to_string(),
        link.to_string_lossy()
    );
}

#[in_netns::test]
fn clone_shares_the_descriptor_and_try_clone_duplicates_it() {
    use std::os::fd::AsRawFd;
    let ns = NetNs::new().unwrap();
    let shared = ns.clone();
    let duplicated = ns.try_clone().unwrap();
    assert_eq!(shared.as_raw_fd(), ns.as_raw_fd());
    assert_ne!(duplicated.as_raw_fd(), ns.as_raw_fd());
    assert!(ns == shared && ns == duplicated);
    let raw = ns.as_raw_fd();
    drop(ns);
    // The descriptor stays open while a clone holds it.
    assert_eq!(shared.run(current_id).unwrap(), shared.id());
    assert_eq!(shared.as_raw_fd(), raw);
}

#[in_netns::test]
fn handles_and_errors_have_the_promised_traits() {
    use std::fmt::Debug;
    use std::hash::Hash;
    use std::os::fd::{AsFd, AsRawFd};
    use std::panic::{RefUnwindSafe, UnwindSafe};
    fn handle<
        T: Send + Sync + UnwindSafe + RefUnwindSafe + Debug + Clone + Eq + Hash + AsFd + AsRawFd,
    >() {
    }
    fn error<T: std::error::Error + Send + Sync + 'static + Into<std::io::Error>>() {}
    fn id<T: Copy + Eq + Hash + Ord + Debug + std::fmt::Display>() {}
    fn worker<T: Send + Sync + Clone + UnwindSafe + RefUnwindSafe + Debug>() {}
    fn value<T: Send + Sync + Copy + Debug + Default + Eq + Hash>() {}
    fn registry<T: Send + Sync + Clone + Debug + Default + Eq + Hash>() {}
    fn event<T: Send + Sync + Clone + Debug + Eq + Hash>() {}
    fn watch<T: Send + Sync + Debug + std::iter::FusedIterator>() {}
    fn command<T: Send + Sync + Debug>() {}
    handle::<NetNs>();
    error::<Error>();
    id::<in_netns::NsId>();
    worker::<in_netns::Worker>();
    value::<in_netns::Options>();
    value::<in_netns::Setup>();
    registry::<in_netns::Registry>();
    event::<in_netns::WatchEvent>();
    watch::<in_netns::Watch>();
    command::<in_netns::NetnsCommand<'static, Command>>();
    #[cfg(feature = "tokio")]
    {
        fn runtime<T: Send + Sync + Debug>() {}
        fn hooks<T: Send + Sync + Clone + Debug + Default>() {}
        fn future<T: Send + Sync + Debug + std::future::Future + Unpin>() {}
        fn stream<T: Send + Sync + Debug + futures_util::stream::FusedStream>() {}
        runtime::<in_netns::NetnsRuntime>();
        hooks::<in_netns::RuntimeHooks>();
        future::<in_netns::RunAsync<u32>>();
        stream::<in_netns::AsyncWatch>();
    }
}

// --- lifecycle and interoperation with ip netns ---------------------------------------------

fn ip(args: &[&str]) -> (bool, String) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[in_netns::test]
fn created_namespaces_are_seen_by_ip_netns() {
    let target = TempNs::new("ip-sees");
    let (ok, list) = ip(&["netns", "list"]);
    assert!(
        ok && list
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&target.name))
    );
    let (ok, exec) = ip(&[
        "netns",
        "exec",
        &target.name,
        "readlink",
        "/proc/self/ns/net",
    ]);
    assert!(ok);
    assert_eq!(exec.trim(), target.id().to_string());
    assert!(NetNs::list().unwrap().contains(&target.name));
    assert_eq!(target.ns.name(), Some(target.name.as_str()));
}

#[in_netns::test]
fn namespaces_added_by_ip_netns_open_by_name_and_remove() {
    require_privilege();
    let name = unique_name("ip-add");
    /// Removes the name if the test fails before it does.
    struct IpNetns<'a>(&'a str);
    impl Drop for IpNetns<'_> {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", self.0]).output();
        }
    }
    assert!(ip(&["netns", "add", &name]).0);
    let _cleanup = IpNetns(&name);
    let ns = NetNs::named(&name).unwrap();
    let (_, exec) = ip(&["netns", "exec", &name, "readlink", "/proc/self/ns/net"]);
    assert_eq!(exec.trim(), ns.id().to_string());
    NetNs::remove(&name).unwrap();
    assert!(!ip(&["netns", "list"]).1.contains(&name));
    // Open handles stay valid after the name is gone.
    assert_eq!(ns.run(current_id).unwrap(), ns.id());
}

#[in_netns::test]
fn an_existing_name_is_already_exists_and_left_untouched() {
    let target = TempNs::new("exists");
    match NetNs::create(&target.name) {
        Err(Error::AlreadyExists { name }) => assert_eq!(name, target.name),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(NetNs::named(&target.name).unwrap().id(), target.id());
}

#[in_netns::test]
fn of_concurrent_creates_of_one_name_exactly_one_succeeds() {
    require_privilege();
    let name = unique_name("race");
    let barrier = Barrier::new(8);
    let results: Vec<_> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    NetNs::create(&name)
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let created = results.iter().filter(|r| r.is_ok()).count();
    let exists = results
        .iter()
        .filter(|r| matches!(r, Err(Error::AlreadyExists { .. })))
        .count();
    NetNs::remove(&name).unwrap();
    assert_eq!((created, exists), (1, 7), "{results:?}");
}

#[in_netns::test]
fn remove_of_a_missing_name_is_not_found() {
    require_privilege();
    let name = unique_name("missing");
    assert!(matches!(NetNs::remove(&name), Err(Error::NotFound { .. })));
    assert!(matches!(NetNs::named(&name), Err(Error::NotFound { .. })));
}

// --- bad names and bad paths ----------------------------------------------------------------

#[in_netns::test]
fn bad_names_are_invalid_name_before_the_filesystem_is_touched() {
    for name in bad_names() {
        for result in [
            NetNs::named(&name).map(drop),
            NetNs::create(&name).map(drop),
            NetNs::remove(&name),
        ] {
            match result {
                Err(Error::InvalidName { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{name:?}: expected InvalidName, got {other:?}"),
            }
        }
    }
}

#[in_netns::test]
fn a_pid_that_exited_is_not_found() {
    require_privilege();
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    assert!(matches!(NetNs::of_pid(pid), Err(Error::NotFound { .. })));
}

#[in_netns::test]
fn errors_convert_to_io_errors_keeping_the_kind() {
    use std::io::ErrorKind;
    let kind = |e: Error| std::io::Error::from(e).kind();
    assert_eq!(
        kind(NetNs::open("/nonexistent").unwrap_err()),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(NetNs::named("a/b").unwrap_err()),
        ErrorKind::InvalidInput
    );
    let message = NetNs::named("a/b").unwrap_err().to_string();
    assert!(
        message.contains("\"a/b\"") && message.contains("'/'"),
        "{message}"
    );
}

#[in_netns::test]
fn a_remove_on_a_read_only_run_dir_fails_and_leaves_the_name_usable() {
    use nix::mount::{MsFlags, mount};
    use nix::sched::{CloneFlags, unshare};
    let target = TempNs::new("remove-ro");
    let (name, id) = (target.name.clone(), target.id());
    // A thread of its own with a private mount namespace where the run dir is read-only; the
    // host's run dir is untouched, and the view ends with the thread.
    let inside_view = std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNS).unwrap();
        let none = None::<&str>;
        mount(none, "/", none, MsFlags::MS_SLAVE | MsFlags::MS_REC, none).unwrap();
        let read_only = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        mount(none, RUN_DIR, none, read_only, none).unwrap();
        let removed = NetNs::remove(&name);
        (removed, NetNs::named(&name).map(|ns| ns.id()))
    })
    .join()
    .unwrap();
    let (removed, after) = inside_view;
    assert_eq!(after.unwrap(), id, "the name still opens its namespace");
    match removed {
        Err(ref err @ Error::Os { ref path, .. }) => {
            assert_eq!(path.as_deref(), Some(Path::new(RUN_DIR)));
            assert_eq!(err.raw_os_error(), Some(nix::libc::EROFS));
            assert!(err.to_string().contains("write access"), "{err}");
        }
        other => panic!("expected an Os error about the run dir, got {other:?}"),
    }
    assert_eq!(NetNs::named(&target.name).unwrap().id(), id);
}
