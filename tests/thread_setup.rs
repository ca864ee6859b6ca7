//! What a body's thread is given besides the namespace: a stack as deep as a main thread's (or
//! the size asked for). A regression here overflows a stack, which aborts the process, so the
//! namespaces are anonymous: they cannot be left behind. Each test has a process of its own:
//! glibc reuses a cached thread stack up to four times the size asked for, so another test's
//! 32 MiB thread could otherwise serve an 8 MiB request.

mod common;

use in_netns::{NetNs, Options, Setup, Worker, in_netns};

/// A namespace of its own, which ends with its last handle (or with the process).
fn anonymous() -> NetNs {
    common::require_privilege();
    NetNs::new().unwrap()
}

/// Recurses `depth` frames of about 1.5 KiB each, a small function as ordinary recursive code
/// has (3 000 of them need more than std's 2 MiB thread stack); returns `depth`.
fn recurse(depth: u32) -> u32 {
    let frame = [depth as u8; 1400];
    std::hint::black_box(&frame);
    if depth == 0 {
        return 0;
    }
    recurse(depth - 1) + 1
}

/// The size of the calling thread's stack, as the thread library reports it.
fn stack_size() -> usize {
    // SAFETY: `attr` is initialized by pthread_getattr_np before it is read, and destroyed once.
    unsafe {
        let mut attr = std::mem::zeroed::<nix::libc::pthread_attr_t>();
        assert_eq!(
            nix::libc::pthread_getattr_np(nix::libc::pthread_self(), &mut attr),
            0
        );
        let mut size = 0;
        assert_eq!(nix::libc::pthread_attr_getstacksize(&attr, &mut size), 0);
        nix::libc::pthread_attr_destroy(&mut attr);
        size
    }
}

#[in_netns(ns)]
fn deep(ns: &NetNs, depth: u32) -> in_netns::Result<u32> {
    Ok(recurse(depth))
}

#[in_netns(ns, stack_size = 32 << 20)]
fn with_a_big_stack(ns: &NetNs) -> in_netns::Result<usize> {
    Ok(stack_size())
}

#[in_netns::test(own_process)]
fn a_body_recursing_3000_frames_works_with_the_default_stack() {
    let ns = &anonymous();
    assert_eq!(ns.run(|| recurse(3000)).unwrap(), 3000);
    assert_eq!(deep(ns, 3000).unwrap(), 3000);
    assert_eq!(ns.spawn(|| recurse(3000)).unwrap().join().unwrap(), 3000);
    let worker = ns.worker().unwrap();
    assert_eq!(worker.run(|| recurse(3000)).unwrap(), 3000);
    let default = Setup::DEFAULT_STACK_SIZE;
    assert_eq!(default, 8 << 20);
    for size in [
        ns.run(stack_size).unwrap(),
        worker.run(stack_size).unwrap(),
        ns.spawn(stack_size).unwrap().join().unwrap(),
    ] {
        assert!((default..default + (64 << 10)).contains(&size), "{size}");
    }
}

#[in_netns::test(own_process)]
fn stack_size_sets_the_stack_of_every_kind_of_body_thread() {
    let ns = &anonymous();
    let asked = 32 << 20;
    let options = Options::default().stack_size(asked);
    assert_eq!(options.setup().thread_stack_size(), asked);
    let sizes = [
        ns.run_with(&options, stack_size).unwrap(),
        ns.spawn_with(&options, stack_size).unwrap().join().unwrap(),
        ns.worker_with(&options.setup())
            .unwrap()
            .run(stack_size)
            .unwrap(),
        with_a_big_stack(ns).unwrap(),
    ];
    for size in sizes {
        assert!((asked..asked + (64 << 10)).contains(&size), "{size}");
    }
    // And the stack is really there: 12 000 frames need more than the default.
    assert_eq!(ns.run_with(&options, || recurse(12_000)).unwrap(), 12_000);
}

/// A large argument, passed by value.
type Big = [u8; 512 << 10];

/// How deep the stack of thread `tid` is below `top` once it waits for a body (blocked in
/// `futex`): its stack pointer, from `/proc/self/task/TID/syscall` (second-to-last field).
fn depth_while_waiting(tid: u32, top: usize) -> usize {
    let path = format!("/proc/self/task/{tid}/syscall");
    for _ in 0..10_000 {
        let line = std::fs::read_to_string(&path).unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() == Some(&nix::libc::SYS_futex.to_string().as_str()) {
            let sp = fields[fields.len() - 2].trim_start_matches("0x");
            return top - usize::from_str_radix(sp, 16).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("thread {tid} never waited in futex");
}

/// How deep the calling thread's stack is: from its top (as the thread library reports it) to
/// a local here.
fn own_depth() -> usize {
    let here = 0_u8;
    // SAFETY: `attr` is initialized by pthread_getattr_np before it is read, and destroyed once.
    let top = unsafe {
        let mut attr = std::mem::zeroed::<nix::libc::pthread_attr_t>();
        assert_eq!(
            nix::libc::pthread_getattr_np(nix::libc::pthread_self(), &mut attr),
            0
        );
        let (mut base, mut size) = (std::ptr::null_mut(), 0);
        assert_eq!(
            nix::libc::pthread_attr_getstack(&attr, &mut base, &mut size),
            0
        );
        nix::libc::pthread_attr_destroy(&mut attr);
        base as usize + size
    };
    top - std::ptr::addr_of!(here) as usize
}

/// What a body reports: the caller's stack depth while it waits, the body's own, and a byte of
/// the argument (so the argument is really used).
type Report = (usize, usize, u8);

fn report(caller: (u32, usize), big: &Big) -> Report {
    (depth_while_waiting(caller.0, caller.1), own_depth(), big[7])
}

/// The same call without the macro: a plain function that takes the argument by value.
fn plain(ns: &NetNs, big: Big, caller: (u32, usize)) -> in_netns::Result<Report> {
    ns.run(|| report(caller, &big))
}

#[in_netns(ns)]
fn expanded(ns: &NetNs, big: Big, caller: (u32, usize)) -> in_netns::Result<Report> {
    Ok(report(caller, &big))
}

#[in_netns(worker)]
fn on_worker(worker: &Worker, big: Big, caller: (u32, usize)) -> in_netns::Result<Report> {
    Ok(report(caller, &big))
}

#[in_netns::test(own_process)]
fn a_large_argument_is_moved_into_one_slot_not_through_every_call() {
    let ns = &anonymous();
    let worker = ns.worker().unwrap();
    let plain_body = ns.run(own_depth).unwrap();
    let worker_body = worker.run(own_depth).unwrap();
    // A caller with room to spare, so that a regression fails an assertion, not the process.
    let reports = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(scope, || {
                let marker = 0_u8;
                let caller = (common::gettid(), std::ptr::addr_of!(marker) as usize);
                [
                    plain(ns, [1; 512 << 10], caller).unwrap(),
                    expanded(ns, [2; 512 << 10], caller).unwrap(),
                    on_worker(&worker, [3; 512 << 10], caller).unwrap(),
                ]
            })
            .unwrap()
            .join()
            .unwrap()
    });
    eprintln!("(caller's stack while waiting, body's stack, byte): {reports:?}");
    assert_eq!(reports.map(|(_, _, byte)| byte), [1, 2, 3]);
    let kib = |bytes: usize| bytes >> 10;
    let (plain_caller, plain_body_with_big, _) = reports[0];
    assert!(kib(plain_body_with_big) < kib(plain_body) + 64);
    for (caller, body, base) in [
        (reports[1].0, reports[1].1, plain_body),
        (reports[2].0, reports[2].1, worker_body),
    ] {
        // The argument's slot, and the temporary a debug build makes to pass it to the check.
        assert!(
            kib(caller) < kib(plain_caller) + 2 * 512 + 64,
            "{} KiB on the caller's stack, against {} KiB for a plain call",
            kib(caller),
            kib(plain_caller)
        );
        // The body takes it out of the slot once.
        assert!(
            kib(body) < kib(base) + 512 + 64,
            "{} KiB on the body's stack, against {} KiB for an empty body",
            kib(body),
            kib(base)
        );
    }
    // The case that overflowed: a 4 MiB caller passing 512 KiB by value, in a debug build.
    let on_4_mib = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(4 << 20)
            .spawn_scoped(scope, || {
                let marker = 0_u8;
                let caller = (common::gettid(), std::ptr::addr_of!(marker) as usize);
                expanded(ns, [4; 512 << 10], caller).map(|(_, _, byte)| byte)
            })
            .unwrap()
            .join()
            .unwrap()
    });
    assert_eq!(on_4_mib.unwrap(), 4);
}
