//! A body runs with its caller's security context, never another thread's, and nothing a body
//! does to its thread's rights, keyrings, priorities or pending signals reaches a later call; a
//! thread a body ends (a seccomp kill, a raw `exit`) costs that call an error and nothing more.

mod common;

use std::fs;
use std::time::Duration;

use common::within;
use in_netns::{Error, NetNs};
use nix::libc;

/// `/proc/thread-self/status`'s `field:` value.
fn status(field: &str) -> String {
    let status = fs::read_to_string("/proc/thread-self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/thread-self/status"))
        .trim()
        .to_owned()
}

/// What a body's rights are, as procfs shows them: ids, groups, capabilities, `no_new_privs`,
/// seccomp filters.
fn rights() -> Vec<String> {
    [
        "Uid",
        "Gid",
        "Groups",
        "CapEff",
        "CapPrm",
        "NoNewPrivs",
        "Seccomp_filters",
    ]
    .map(status)
    .to_vec()
}

/// A seccomp filter on the calling thread that allows everything but `killed`, which kills the
/// thread (`None`: allows everything). Sets `no_new_privs` first, which it needs without
/// `CAP_SYS_ADMIN`.
fn install_filter(killed: Option<libc::c_long>) {
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_KILL_THREAD: u32 = 0;
    let nr = killed.unwrap_or(-1) as u32;
    let program = [
        // Load the syscall number (offset 0 of `struct seccomp_data`).
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: nr,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: RET_KILL_THREAD,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut _,
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers; seccomp reads the program, which outlives the
    // call, and applies to the calling thread only (no TSYNC).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let installed = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        );
        assert_eq!(installed, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
}

/// Sandboxes the calling thread: a filter (which sets `no_new_privs`), and as root a
/// filesystem uid of `nobody`'s.
fn sandbox_this_thread() {
    install_filter(None);
    if nix::unistd::geteuid().is_root() {
        // SAFETY: setfsuid takes an id and changes only the calling thread's.
        unsafe { libc::setfsuid(65534) };
    }
}

/// A handle whose next plain call runs on a warm thread started by the calling thread.
fn warmed_here(ns: &NetNs) {
    ns.run(|| ()).unwrap(); // the first call, on a fresh thread
    ns.run(|| ()).unwrap(); // starts a warm thread from this one
}

#[in_netns::test]
fn a_sandboxed_caller_runs_its_body_sandboxed_on_a_warm_thread_started_by_another() {
    let ns = NetNs::new().unwrap();
    warmed_here(&ns);
    let (caller, body) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                sandbox_this_thread();
                (rights(), ns.run(rights).unwrap())
            })
            .join()
            .unwrap()
    });
    assert_eq!(body, caller, "the body runs with its caller's rights");
    assert_eq!(ns.run(rights).unwrap(), rights(), "and so does the next");
}

#[in_netns::test]
fn a_warm_thread_started_by_a_sandboxed_caller_sandboxes_no_later_caller() {
    let ns = NetNs::new().unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            sandbox_this_thread();
            warmed_here(&ns);
            assert_eq!(ns.run(rights).unwrap(), rights());
        });
    });
    for _ in 0..3 {
        assert_eq!(ns.run(rights).unwrap(), rights(), "an unsandboxed caller");
    }
}

/// Awaits `ns.run_async` of a body that returns its rights, from a runtime on this thread.
#[cfg(feature = "tokio")]
fn rights_of_an_async_body(ns: &NetNs) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(ns.run_async(|| async { rights() }))
        .unwrap()
}

#[cfg(feature = "tokio")]
#[in_netns::test]
fn async_bodies_run_with_their_callers_rights() {
    let ns = NetNs::new().unwrap();
    let plain = rights();
    assert_eq!(rights_of_an_async_body(&ns), plain);
    let (caller, body) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                sandbox_this_thread();
                (rights(), rights_of_an_async_body(&ns))
            })
            .join()
            .unwrap()
    });
    assert_eq!(body, caller, "a sandboxed caller's body");
    assert_eq!(
        rights_of_an_async_body(&ns),
        plain,
        "an unsandboxed caller's"
    );
}

#[in_netns::test]
fn a_worker_runs_with_its_makers_rights_whoever_calls() {
    let ns = NetNs::new().unwrap();
    let (maker, worker) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                sandbox_this_thread();
                (rights(), ns.worker().unwrap())
            })
            .join()
            .unwrap()
    });
    assert_ne!(maker, rights(), "the maker was sandboxed");
    for _ in 0..3 {
        assert_eq!(worker.run(rights).unwrap(), maker);
    }
}

#[in_netns::test]
fn a_body_that_changes_its_rights_gives_them_to_no_later_call() {
    let ns = NetNs::new().unwrap();
    warmed_here(&ns);
    let worker = ns.worker().unwrap();
    let expected = rights();
    ns.run(sandbox_this_thread).unwrap();
    assert_eq!(ns.run(rights).unwrap(), expected, "warm");
    worker.run(sandbox_this_thread).unwrap();
    assert_eq!(worker.run(rights).unwrap(), expected, "worker");
}

/// What else a body may change on its thread: I/O priority, personality, memory policy, and its
/// session keyring's serial number (`None` where keyrings are not allowed, as in some
/// containers).
fn thread_settings() -> (i64, i64, i64, Option<i64>) {
    // SAFETY: each call takes integers and the one pointer to a live int it writes.
    unsafe {
        let ioprio = libc::syscall(libc::SYS_ioprio_get, 1, 0);
        let personality = libc::personality(0xffff_ffff) as i64;
        // Stays -1 on a kernel without NUMA.
        let mut mode: libc::c_int = -1;
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode,
            std::ptr::null_mut::<u64>(),
            0,
            std::ptr::null::<u8>(),
            0,
        );
        let session = libc::syscall(libc::SYS_keyctl, 0, -3, 0);
        (
            ioprio,
            personality,
            mode.into(),
            (session >= 0).then_some(session),
        )
    }
}

/// Changes every one of [`thread_settings`] on the calling thread, and puts a key in a new
/// session keyring of its own.
fn change_thread_settings() {
    const IOPRIO_IDLE: i64 = 3 << 13;
    const ADDR_NO_RANDOMIZE: libc::c_ulong = 0x0040000;
    const MPOL_PREFERRED: libc::c_int = 1;
    // SAFETY: as in `thread_settings`; the key's name and payload outlive the call.
    unsafe {
        assert_eq!(libc::syscall(libc::SYS_ioprio_set, 1, 0, IOPRIO_IDLE), 0);
        assert!(libc::personality(ADDR_NO_RANDOMIZE) >= 0);
        let node0: u64 = 1;
        // Fails (ENOSYS) only on a kernel without NUMA, where the policy cannot change.
        libc::syscall(libc::SYS_set_mempolicy, MPOL_PREFERRED, &node0, 64);
        // KEYCTL_JOIN_SESSION_KEYRING (1) with no name: a new anonymous session keyring.
        if libc::syscall(libc::SYS_keyctl, 1, 0) >= 0 {
            let added = libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                c"in-netns-test-secret".as_ptr(),
                b"secret".as_ptr(),
                6,
                -3, // KEY_SPEC_SESSION_KEYRING
            );
            assert!(added >= 0, "add_key: {}", std::io::Error::last_os_error());
        }
    }
}

#[in_netns::test]
fn a_bodys_keyrings_priorities_personality_and_memory_policy_reach_no_later_call() {
    let ns = NetNs::new().unwrap();
    warmed_here(&ns);
    let worker = ns.worker().unwrap();
    let expected = ns.run(thread_settings).unwrap();
    if expected.3.is_none() {
        eprintln!("keyrings are not allowed here: their part is not checked");
    }
    ns.run(change_thread_settings).unwrap();
    let changed = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                change_thread_settings();
                thread_settings()
            })
            .join()
            .unwrap()
    });
    assert_ne!(changed, expected, "the changes show on a thread");
    assert_eq!(ns.run(thread_settings).unwrap(), expected, "warm");
    worker.run(change_thread_settings).unwrap();
    assert_eq!(worker.run(thread_settings).unwrap(), expected, "worker");
}

#[in_netns::test]
fn a_thread_a_body_ends_fails_that_call_only_and_the_next_gets_another() {
    let ns = NetNs::new().unwrap();
    warmed_here(&ns);
    let worker = ns.worker().unwrap();
    let (ns, worker) = within(30, move || {
        // SAFETY: a raw exit ends the calling thread only, without unwinding; the body owns
        // nothing that needs dropping.
        let exit = || unsafe {
            libc::syscall(libc::SYS_exit, 0);
        };
        let warm = ns.run(exit);
        assert!(matches!(warm, Err(Error::ThreadEnded { .. })), "{warm:?}");
        assert_eq!(ns.run(|| 7).unwrap(), 7, "the next warm call");
        let on_worker = worker.run(exit);
        assert!(
            matches!(on_worker, Err(Error::ThreadEnded { .. })),
            "{on_worker:?}"
        );
        assert_eq!(worker.run(|| 7).unwrap(), 7, "the worker's next call");
        (ns, worker)
    });
    within(30, move || {
        drop(worker);
        drop(ns);
    });
}

#[in_netns::test]
fn a_thread_killed_by_its_bodys_seccomp_filter_hangs_no_caller() {
    let ns = NetNs::new().unwrap();
    warmed_here(&ns);
    let worker = ns.worker().unwrap();
    within(30, move || {
        // The put-back's `setns` after the call kills the thread.
        let forbid_setns = || install_filter(Some(libc::SYS_setns));
        for _ in 0..3 {
            ns.run(forbid_setns).unwrap();
            assert_eq!(ns.run(|| 7).unwrap(), 7, "the next warm call");
            worker.run(forbid_setns).unwrap();
            assert_eq!(worker.run(|| 7).unwrap(), 7, "the worker's next call");
        }
        // Leaves a killed thread idle, then drops everything.
        ns.run(forbid_setns).unwrap();
        worker.run(forbid_setns).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(worker);
        drop(ns);
    });
}

// A body that leaves a signal pending would end the whole process: a process of its own.
#[in_netns::test(own_process)]
fn a_signal_a_body_leaves_pending_is_discarded_with_the_call() {
    let ns = NetNs::new().unwrap();
    warmed_here(&ns);
    let worker = ns.worker().unwrap();
    let leave_sigusr1_pending = || {
        let mut usr1 = nix::sys::signal::SigSet::empty();
        usr1.add(nix::sys::signal::Signal::SIGUSR1);
        usr1.thread_block().unwrap();
        // SAFETY: sends SIGUSR1 to the calling thread, which blocks it: it stays pending.
        unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                libc::getpid(),
                libc::gettid(),
                libc::SIGUSR1,
            )
        };
        assert_ne!(status("SigPnd"), "0000000000000000", "pending");
    };
    for _ in 0..3 {
        ns.run(leave_sigusr1_pending).unwrap();
        assert_eq!(ns.run(|| status("SigPnd")).unwrap(), "0000000000000000");
        worker.run(leave_sigusr1_pending).unwrap();
        assert_eq!(worker.run(|| status("SigPnd")).unwrap(), "0000000000000000");
    }
}

/// The calling thread's `struct rseq` (the C library's, glibc 2.35 and later), and the size it
/// was registered with; `None` where there is none.
#[cfg(target_arch = "x86_64")]
fn rseq_area() -> Option<(*const u8, u32)> {
    // SAFETY: dlsym only looks names up; the symbols are glibc's `ptrdiff_t __rseq_offset` and
    // `unsigned int __rseq_size`. The thread pointer is at `%fs:0` on x86-64.
    unsafe {
        let offset = libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr());
        let size = libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_size".as_ptr());
        if offset.is_null() || size.is_null() || *(size as *const u32) == 0 {
            return None;
        }
        let pointer: *const u8;
        std::arch::asm!("mov {}, qword ptr fs:0", out(reg) pointer);
        Some((
            pointer.wrapping_offset(*(offset as *const isize)),
            *(size as *const u32),
        ))
    }
}

/// Whether the kernel keeps the calling thread's rseq area (its `cpu_id` is a CPU).
#[cfg(target_arch = "x86_64")]
fn rseq_registered() -> bool {
    let (area, _) = rseq_area().unwrap();
    // SAFETY: the area lives as long as the thread; `cpu_id` is its second u32.
    unsafe { std::ptr::read_volatile(area.add(4) as *const i32) >= 0 }
}

#[cfg(target_arch = "x86_64")]
#[in_netns::test]
fn a_body_that_unregisters_its_restartable_sequences_leaves_no_later_call_without() {
    if rseq_area().is_none() {
        eprintln!("the C library registers no rseq area here: nothing to check");
        return;
    }
    let ns = NetNs::new().unwrap();
    warmed_here(&ns);
    let worker = ns.worker().unwrap();
    let unregister = || {
        let (area, size) = rseq_area().unwrap();
        const RSEQ_FLAG_UNREGISTER: i32 = 1;
        const RSEQ_SIG: u32 = 0x5305_3053;
        // The kernel wants the length it was registered with: 32 or glibc's size.
        let unregistered = [32, size].into_iter().any(|len| {
            // SAFETY: unregisters the calling thread's area, with the length and signature it
            // was registered with; nothing else is touched.
            unsafe { libc::syscall(libc::SYS_rseq, area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) == 0 }
        });
        assert!(
            unregistered,
            "rseq unregister: {}",
            std::io::Error::last_os_error()
        );
        assert!(!rseq_registered());
    };
    assert!(ns.run(rseq_registered).unwrap());
    ns.run(unregister).unwrap();
    assert!(ns.run(rseq_registered).unwrap(), "warm");
    worker.run(unregister).unwrap();
    assert!(worker.run(rseq_registered).unwrap(), "worker");
}

#[in_netns::test]
fn a_body_that_ends_a_fresh_thread_fails_its_call_and_nothing_hangs() {
    within(30, || {
        // SAFETY: as above: a raw exit ends the calling thread only.
        let exit = || unsafe {
            libc::syscall(libc::SYS_exit, 0);
        };
        let ns = NetNs::new().unwrap();
        let first = ns.run(exit); // on a shared warm thread (or the process's first, fresh)
        assert!(matches!(first, Err(Error::ThreadEnded { .. })), "{first:?}");
        let fresh = in_netns::Options::default().fresh_thread(true);
        let again = ns.run_with(&fresh, exit);
        assert!(matches!(again, Err(Error::ThreadEnded { .. })), "{again:?}");
        assert_eq!(ns.run(|| 7).unwrap(), 7);
    });
}

/// The serial number of the calling thread's session keyring (`None` where keyrings are not
/// allowed).
fn session_keyring() -> Option<i64> {
    // SAFETY: KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3), without creating it.
    let id = unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) };
    (id >= 0).then_some(id)
}

#[in_netns::test]
fn a_warm_thread_never_serves_a_caller_with_its_starters_session_keyring() {
    let ns = NetNs::new().unwrap();
    let Some(own) = session_keyring() else {
        eprintln!("keyrings are not allowed here: nothing to check");
        return;
    };
    let starters = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: KEYCTL_JOIN_SESSION_KEYRING (1) with no name: a new anonymous session
                // keyring for this thread only.
                unsafe { libc::syscall(libc::SYS_keyctl, 1, 0) };
                warmed_here(&ns);
                session_keyring()
            })
            .join()
            .unwrap()
    });
    assert_ne!(starters, Some(own), "the starter had a keyring of its own");
    for _ in 0..3 {
        assert_eq!(ns.run(session_keyring).unwrap(), Some(own));
    }
}

/// The calling thread's filesystem uid.
fn fsuid() -> u32 {
    // SAFETY: -1 is no id: setfsuid changes nothing and returns the current one.
    unsafe { libc::setfsuid(u32::MAX) as u32 }
}

#[in_netns::test]
fn a_worker_keeps_its_makers_rights_when_a_body_takes_the_main_threads() {
    if !common::really_root() {
        eprintln!("skipped: needs real root to set another filesystem uid");
        return;
    }
    let ns = NetNs::new().unwrap();
    let worker = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: setfsuid changes the calling thread's only.
                unsafe { libc::setfsuid(1000) };
                ns.worker().unwrap()
            })
            .join()
            .unwrap()
    });
    assert_eq!(worker.run(fsuid).unwrap(), 1000);
    // The body takes fsuid 0, which the main thread has: not a change of the process, so the
    // thread is retired, and its replacement must be born from a thread like the maker.
    // SAFETY: as above.
    worker.run(|| unsafe { libc::setfsuid(0) }).unwrap();
    let from_root = worker.run(fsuid);
    assert!(
        matches!(from_root, Err(Error::WorkerContext { .. })),
        "{from_root:?}"
    );
    let like_the_maker = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: as above.
                unsafe { libc::setfsuid(1000) };
                worker.run(fsuid).unwrap()
            })
            .join()
            .unwrap()
    });
    assert_eq!(like_the_maker, 1000);
    assert_eq!(worker.run(fsuid).unwrap(), 1000, "then from any thread");
}

// Changes the process's group id (the C library changes every thread's): a process of its own.
#[in_netns::test(own_process)]
fn a_busy_worker_follows_a_change_the_whole_process_makes() {
    if !common::really_root() {
        eprintln!("skipped: needs real root to change the process's group");
        return;
    }
    let ns = NetNs::new().unwrap();
    let worker = ns.worker().unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = worker.run(|| ());
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: the C library's setegid changes every thread's effective gid.
        assert_eq!(unsafe { libc::setegid(100) }, 0);
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let egid = || status("Gid").split_whitespace().nth(1).unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(worker.run(egid).unwrap(), "100");
    }
}

#[in_netns::test]
fn socket_stocks_and_their_threads_stay_few_whatever_the_callers_owners() {
    if !common::really_root() {
        eprintln!("skipped: needs real root to set filesystem uids");
        return;
    }
    let ns = NetNs::new().unwrap();
    std::thread::scope(|scope| {
        for uid in 2000..2040 {
            let ns = &ns;
            scope.spawn(move || {
                // SAFETY: setfsuid changes the calling thread's only.
                unsafe { libc::setfsuid(uid) };
                for _ in 0..20 {
                    let socket = ns.udp_bind("127.0.0.1:0".parse().unwrap()).unwrap();
                    assert_eq!(common::socket_ns(&socket), ns.id());
                }
            });
        }
    });
    // At most four stocks' threads and nine pools' warm threads (the plain pool's and eight
    // others'; further callers get fresh threads, which have ended). Without the bounds: 80.
    let threads = common::threads_in(ns.id());
    assert!(threads <= 13, "{threads} threads inside");
}
