//! The primitives the hand-off uses: std's atomics and a futex normally, loom's atomics and a
//! yielding wait when the protocol is model-checked (`RUSTFLAGS="--cfg loom"`).

#[cfg(loom)]
pub(crate) use loom::{
    cell::UnsafeCell,
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
    sync::{Mutex, MutexGuard},
};

use std::time::Duration;

#[cfg(not(loom))]
use crate::sys;
#[cfg(not(loom))]
use nix::errno::Errno;
#[cfg(not(loom))]
pub(crate) use std::{
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
    sync::{Mutex, MutexGuard},
};

/// `T` aligned to (and so alone on) a cache line, or the pair of lines that the adjacent-line
/// prefetcher moves together, as far as false sharing goes on each architecture. The sizes are
/// crossbeam-utils' (`crossbeam-utils/src/cache_padded.rs`, which cites the vendors' manuals);
/// `repr(align)` takes only a literal, so this type is where they are written, once.
#[cfg_attr(
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "arm64ec",
        target_arch = "powerpc64",
    ),
    repr(C, align(128))
)]
#[cfg_attr(
    any(
        target_arch = "arm",
        target_arch = "mips",
        target_arch = "mips32r6",
        target_arch = "mips64",
        target_arch = "mips64r6",
        target_arch = "sparc",
        target_arch = "hexagon",
    ),
    repr(C, align(32))
)]
#[cfg_attr(target_arch = "m68k", repr(C, align(16)))]
#[cfg_attr(target_arch = "s390x", repr(C, align(256)))]
#[cfg_attr(
    not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "arm64ec",
        target_arch = "powerpc64",
        target_arch = "arm",
        target_arch = "mips",
        target_arch = "mips32r6",
        target_arch = "mips64",
        target_arch = "mips64r6",
        target_arch = "sparc",
        target_arch = "hexagon",
        target_arch = "m68k",
        target_arch = "s390x",
    )),
    repr(C, align(64))
)]
pub(crate) struct CachePadded<T>(pub(crate) T);

/// std's `UnsafeCell` with loom's access API, so one body of code serves both.
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Spins until `ready(word)` holds, for at most about `spin_for`; returns whether it does.
#[cfg(not(loom))]
fn spin_until(word: &AtomicU32, ready: &impl Fn(u32) -> bool, spin_for: Duration) -> bool {
    // The clock is read only once a first batch of spins has failed, keeping it off the warm path.
    let mut started: Option<std::time::Instant> = None;
    loop {
        for _ in 0..64 {
            if ready(word.load(Ordering::Acquire)) {
                return true;
            }
            std::hint::spin_loop();
        }
        let start = *started.get_or_insert_with(std::time::Instant::now);
        if start.elapsed() > spin_for {
            return false;
        }
    }
}

/// Waits until `ready(word)` holds for the value of `word`.
///
/// Spins first (the other side usually answers within a microsecond), then sleeps on the futex
/// `word`, announcing itself in `sleeping` so the other side knows to wake it ([`wake`]). An
/// idle waiter uses no CPU.
#[cfg(not(loom))]
pub(crate) fn wait_until(
    word: &AtomicU32,
    sleeping: &AtomicBool,
    ready: impl Fn(u32) -> bool,
    spin_for: Duration,
) {
    if spin_until(word, &ready, spin_for) {
        return;
    }
    // Dekker-style with `wake`: this thread stores `sleeping` then loads `word`; the waker stores
    // `word` then loads `sleeping` (all SeqCst). At least one sees the other's store, so either
    // this thread sees the new value, or the waker sees `sleeping` and wakes it; and FUTEX_WAIT
    // itself returns at once if `word` changed after our load.
    sleeping.store(true, Ordering::SeqCst);
    loop {
        let value = word.load(Ordering::SeqCst);
        if ready(value) {
            break;
        }
        futex_wait(word, value);
    }
    sleeping.store(false, Ordering::Relaxed);
}

/// [`wait_until`] for at most `timeout` (after the spin); returns whether `ready` holds. A warm
/// thread waits this way, so that it can end after an idle time.
#[cfg(not(loom))]
pub(crate) fn wait_until_or_timeout(
    word: &AtomicU32,
    sleeping: &AtomicBool,
    ready: impl Fn(u32) -> bool,
    timeout: std::time::Duration,
    spin_for: Duration,
) -> bool {
    if spin_until(word, &ready, spin_for) {
        return true;
    }
    // A timeout past what an `Instant` holds (`Duration::MAX`: never idle out) is no timeout.
    let Some(deadline) = std::time::Instant::now().checked_add(timeout) else {
        wait_until(word, sleeping, ready, Duration::ZERO);
        return true;
    };
    // Announced as in `wait_until`, so a waker wakes this thread.
    sleeping.store(true, Ordering::SeqCst);
    let ready_now = loop {
        let value = word.load(Ordering::SeqCst);
        if ready(value) {
            break true;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break false;
        }
        futex_wait_for(word, value, left);
    };
    sleeping.store(false, Ordering::Relaxed);
    ready_now
}

/// Waits until `ready(word)` holds, where the waker swaps the final value in and wakes the
/// address only if it finds `asleep`: after spinning, the waiter moves `word` from `awake` to
/// `asleep` (failing only if the final value arrived first) and sleeps while it stays `asleep`.
#[cfg(not(loom))]
pub(crate) fn wait_until_marked(
    word: &AtomicU32,
    ready: impl Fn(u32) -> bool,
    awake: u32,
    asleep: u32,
    spin_for: Duration,
) {
    if spin_until(word, &ready, spin_for) {
        return;
    }
    if word
        .compare_exchange(awake, asleep, Ordering::Acquire, Ordering::Acquire)
        .is_err()
    {
        return; // the final value arrived
    }
    while !ready(word.load(Ordering::Acquire)) {
        futex_wait(word, asleep);
    }
}

/// Wakes the thread sleeping on `word`, if [`wait_until`] announced one; call after storing a
/// new value into `word`.
#[cfg(not(loom))]
pub(crate) fn wake(word: &AtomicU32, sleeping: &AtomicBool) {
    if sleeping.load(Ordering::SeqCst) {
        futex_wake(word);
    }
}

/// `FUTEX_WAIT` for at most `timeout`.
#[cfg(not(loom))]
fn futex_wait_for(word: &AtomicU32, expected: u32, timeout: std::time::Duration) {
    // It returns at once unless the u32 still equals `expected`. EINTR, timeouts and spurious
    // returns are fine: the caller loops and re-checks.
    let result = sys::futex_wait(word, expected, Some(timeout));
    debug_assert!(
        matches!(
            result,
            Ok(()) | Err(Errno::EAGAIN | Errno::EINTR | Errno::ETIMEDOUT)
        ),
        "FUTEX_WAIT returned {result:?}"
    );
}

#[cfg(not(loom))]
fn futex_wait(word: &AtomicU32, expected: u32) {
    // It returns at once (EAGAIN) unless that u32 still equals `expected`. EINTR and spurious
    // returns are fine: the callers loop and re-check.
    let result = sys::futex_wait(word, expected, None);
    // Woken, or the word had already changed (EAGAIN), or a signal (EINTR): nothing else can
    // come back for a valid address and no timeout.
    debug_assert!(
        matches!(result, Ok(()) | Err(Errno::EAGAIN | Errno::EINTR)),
        "FUTEX_WAIT returned {result:?}"
    );
}

/// Wakes the thread sleeping on the futex at `word`. Only the address is used, never the
/// memory, so `word` may already be gone (a wake-up is then at worst spurious for a waiter
/// that reused the address, and every waiter re-checks its condition).
#[cfg(not(loom))]
pub(crate) fn futex_wake(word: *const AtomicU32) {
    // Each word has one waiter at most: the worker on `published`, a caller on its frame.
    let result = sys::futex_wake(word, 1);
    // The number of threads woken; a private wake of an aligned user address cannot fail.
    debug_assert!(
        matches!(result, Ok(0 | 1)),
        "FUTEX_WAKE returned {result:?}"
    );
}

/// Under loom the waits are yielding spins, so loom explores every order of the hand-off's
/// atomics. (The futex sleeps above are not modeled; their correctness rests on the Dekker
/// argument there, the compare-and-swap into `asleep`, and the kernel's compare-and-sleep.)
#[cfg(loom)]
pub(crate) fn wait_until(
    word: &AtomicU32,
    _sleeping: &AtomicBool,
    ready: impl Fn(u32) -> bool,
    _spin_for: Duration,
) {
    while !ready(word.load(Ordering::Acquire)) {
        loom::thread::yield_now();
    }
}

/// Under loom an idle timeout is "now": a warm thread that finds no call at once tries to
/// expire, so loom explores expiring against every order of callers taking the thread.
#[cfg(loom)]
pub(crate) fn wait_until_or_timeout(
    word: &AtomicU32,
    _sleeping: &AtomicBool,
    ready: impl Fn(u32) -> bool,
    _timeout: std::time::Duration,
    _spin_for: Duration,
) -> bool {
    let ready_now = ready(word.load(Ordering::Acquire));
    if !ready_now {
        loom::thread::yield_now();
    }
    ready_now
}

#[cfg(loom)]
pub(crate) fn wait_until_marked(
    word: &AtomicU32,
    ready: impl Fn(u32) -> bool,
    _: u32,
    _: u32,
    _spin_for: Duration,
) {
    while !ready(word.load(Ordering::Acquire)) {
        loom::thread::yield_now();
    }
}

#[cfg(loom)]
pub(crate) fn wake(_word: &AtomicU32, _sleeping: &AtomicBool) {}

#[cfg(loom)]
pub(crate) fn futex_wake(_word: *const AtomicU32) {}

/// Locks `mutex`, also after a panic elsewhere left it poisoned: the crate's locks guard lists,
/// counters and the hand-off's caller slot, which no code leaves half-changed when it panics, so
/// what they guard stays consistent. The one way the crate takes a lock: std's, or (in the
/// hand-off, under `--cfg loom`) loom's.
pub(crate) fn lock<'a, M: Lockable<'a>>(mutex: &'a M) -> M::Guard {
    mutex.lock_even_if_poisoned()
}

/// A mutex [`lock`] takes.
pub(crate) trait Lockable<'a> {
    type Guard;
    fn lock_even_if_poisoned(&'a self) -> Self::Guard;
}

impl<'a, T: 'a> Lockable<'a> for std::sync::Mutex<T> {
    type Guard = std::sync::MutexGuard<'a, T>;
    fn lock_even_if_poisoned(&'a self) -> Self::Guard {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(loom)]
impl<'a, T: 'a> Lockable<'a> for loom::sync::Mutex<T> {
    type Guard = loom::sync::MutexGuard<'a, T>;
    fn lock_even_if_poisoned(&'a self) -> Self::Guard {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
