//! What a body's thread is given besides the namespace: a stack as deep as a main thread's (or
//! the size asked for).

mod common;

use common::TempNs;
use in_netns::{NetNs, Options, Worker, in_netns};

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

#[test]
fn a_body_recursing_3000_frames_works_with_the_default_stack() {
    let target = TempNs::new("stack-default");
    let ns = &target.ns;
    assert_eq!(ns.run(|| recurse(3000)).unwrap(), 3000);
    assert_eq!(deep(ns, 3000).unwrap(), 3000);
    assert_eq!(ns.spawn(|| recurse(3000)).unwrap().join().unwrap(), 3000);
    let worker = Worker::new(ns).unwrap();
    assert_eq!(worker.run(|| recurse(3000)).unwrap(), 3000);
    let default = Options::DEFAULT_STACK_SIZE;
    assert_eq!(default, 8 << 20);
    for size in [
        ns.run(stack_size).unwrap(),
        worker.run(stack_size).unwrap(),
        ns.spawn(stack_size).unwrap().join().unwrap(),
    ] {
        assert!((default..default + (64 << 10)).contains(&size), "{size}");
    }
}

#[test]
fn stack_size_sets_the_stack_of_every_kind_of_body_thread() {
    let target = TempNs::new("stack-size");
    let ns = &target.ns;
    let asked = 32 << 20;
    let options = Options::default().stack_size(asked);
    assert_eq!(options.thread_stack_size(), asked);
    let sizes = [
        ns.run_with(&options, stack_size).unwrap(),
        ns.spawn_with(&options, stack_size).unwrap().join().unwrap(),
        Worker::with_options(ns, &options)
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
