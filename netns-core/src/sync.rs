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

/// How a waiter waits before it sleeps: spin on the word for a while (answers from a thread
/// running on another CPU come within a microsecond), then yield the CPU a few times (an answer
/// from a thread placed on this CPU comes as soon as it may run, with no sleep or wake-up), then
/// sleep on the futex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Spin {
    /// How long to spin (zero: not at all).
    pub(crate) spin_for: Duration,
    /// How many times to yield after the spin, at least.
    pub(crate) yields: u32,
    /// How long to go on yielding after those, when the answer has not come (zero: not at all).
    /// On a CPU of its own a yield returns at once, and a few of them would not outlast the
    /// other side's work (its put-back after a call takes 1 to 2 µs), so a waiter whose recent
    /// waits were short yields for a few microseconds, rather than sleep at once.
    pub(crate) yield_for: Duration,
}

impl Spin {
    /// Straight to sleep.
    pub(crate) const NONE: Spin = Spin {
        spin_for: Duration::ZERO,
        yields: 0,
        yield_for: Duration::ZERO,
    };
}

/// How a wait ended: answered while spinning, while yielding, or after sleeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    Spinning,
    Yielding,
    Sleeping,
}

/// How long one side of a hand-off spins before it sleeps, learnt from its recent waits, as
/// glibc's adaptive mutexes, parking_lot's `SpinWait` and Linux's optimistic spinning reason:
/// spinning pays only while the other side is running on another CPU and answers sooner than a
/// sleep and a wake-up would take. So a waiter:
///
/// - spins while spinning has paid lately (a score that a wait answered while spinning raises,
///   and one that had to yield or sleep lowers), for about four times as long as those waits
///   took, at least a few hand-offs' worth and at most `cap`;
/// - once spinning has stopped paying (calls that come far apart, long bodies, the other side
///   placed on this CPU, or a busy machine where it does not get a CPU), does not spin, but for
///   a short probe every few waits that tells when it pays again: it yields a few times (which
///   lets a thread placed on this CPU answer at once) and sleeps, using no CPU;
/// - does not spin right after waking the other side from its sleep, which takes longer than any
///   spin, and may place it on this very CPU: it yields instead;
/// - spins only while fewer threads of the process spin than there are CPUs but one
///   ([`SpinSlot`]), so spinners never take every CPU from the threads that have work.
pub(crate) struct Patience {
    /// The moving average of waits that a spin answered, in nanoseconds.
    typical: std::sync::atomic::AtomicU64,
    /// The moving average of all waits, in nanoseconds: whether answers come soon at all.
    recent: std::sync::atomic::AtomicU64,
    /// How much spinning has paid lately, `0..=MAX_SCORE` (0: it does not; probe now and then).
    score: AtomicU32Std,
    /// Waits since the last probe, while the score is 0.
    since_probe: AtomicU32Std,
    /// How well yielding has done lately, `0..=MAX_SCORE`: a yield that took long (another
    /// process had this CPU, and kept it for its time slice) lowers it; at 0 the waiter sleeps
    /// at once rather than yield, as a sleeper's wake-up is what gets it the CPU back soonest on
    /// a busy machine (probing now and then).
    yield_score: AtomicU32Std,
    /// Waits since the last probe, while the yield score is 0.
    since_yield_probe: AtomicU32Std,
    cap: Duration,
}

std::thread_local! {
    /// Whether a yield of the calling thread's last wait took long ([`YIELD_STALL`]): told by the
    /// wait to its `Patience::record`, which runs on the same thread right after it.
    static YIELD_STALLED: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// A yield that takes longer than this gave the CPU to another process.
const YIELD_STALL: Duration = Duration::from_micros(20);

/// Patience's counters are heuristics, outside what loom models: std's atomics, always.
type AtomicU32Std = std::sync::atomic::AtomicU32;

/// The shortest spin, in nanoseconds: a few hand-offs' worth, so that a waiter whose waits were
/// all short does not sleep at the first one that takes a little longer (which would cost a
/// sleep and a wake-up, several microseconds).
const SPIN_FLOOR: u64 = 5_000;
/// How many times a waiter yields before it sleeps.
const YIELDS: u32 = 4;
/// The score's ceiling, and what a wait that spun in vain takes off it.
const MAX_SCORE: u32 = 8;
const MISSED_SPIN_COST: u32 = 2;
/// While spinning does not pay, one wait in this many spins (the floor) to see whether it does.
const PROBE_EVERY: u32 = 16;

impl Patience {
    /// Patience that spins at most `cap`, starting as if spinning paid, for a quarter of it.
    pub(crate) fn new(cap: Duration) -> Patience {
        Patience {
            typical: std::sync::atomic::AtomicU64::new(nanos(cap) / 4),
            recent: std::sync::atomic::AtomicU64::new(nanos(cap) / 4),
            score: AtomicU32Std::new(MAX_SCORE / 2),
            since_probe: AtomicU32Std::new(0),
            yield_score: AtomicU32Std::new(MAX_SCORE / 2),
            since_yield_probe: AtomicU32Std::new(0),
            cap,
        }
    }

    /// How to wait now; `woke_the_other` says that this waiter just woke the side it waits for.
    pub(crate) fn plan(&self, woke_the_other: bool) -> Spin {
        use std::sync::atomic::Ordering::Relaxed;
        let cap = nanos(self.cap);
        // Keep yielding for a while only when answers have come soon lately.
        let yield_for = match self.recent.load(Relaxed) <= cap {
            true => Duration::from_nanos(SPIN_FLOOR.min(cap)),
            false => Duration::ZERO,
        };
        let yields_pay = self.yield_score.load(Relaxed) > 0 || {
            let since = self.since_yield_probe.load(Relaxed) + 1;
            let probe = since >= PROBE_EVERY;
            self.since_yield_probe
                .store(if probe { 0 } else { since }, Relaxed);
            probe
        };
        let no_spin = match yields_pay {
            true => Spin {
                spin_for: Duration::ZERO,
                yields: YIELDS,
                yield_for,
            },
            false => Spin::NONE,
        };
        if woke_the_other {
            return no_spin;
        }
        if self.score.load(Relaxed) == 0 {
            let since = self.since_probe.load(Relaxed) + 1;
            if since < PROBE_EVERY {
                self.since_probe.store(since, Relaxed);
                return no_spin;
            }
            self.since_probe.store(0, Relaxed);
            return Spin {
                spin_for: Duration::from_nanos(SPIN_FLOOR.min(cap)),
                ..no_spin
            };
        }
        let typical = self.typical.load(Relaxed);
        Spin {
            spin_for: Duration::from_nanos((4 * typical).clamp(SPIN_FLOOR.min(cap), cap)),
            ..no_spin
        }
    }

    /// Learns from a wait planned as `spin` that ended as `waited`, after `elapsed`. A wait that
    /// did not spin says nothing about spinning.
    pub(crate) fn record(&self, spin: Spin, waited: Waited, elapsed: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let recent = self.recent.load(Relaxed);
        let waited_for = nanos(elapsed).min(4 * nanos(self.cap) + 1);
        self.recent
            .store(recent - recent / 4 + waited_for / 4, Relaxed);
        match YIELD_STALLED.with(|stalled| stalled.take()) {
            Some(true) => {
                let score = self.yield_score.load(Relaxed);
                self.yield_score
                    .store(score.saturating_sub(MISSED_SPIN_COST), Relaxed);
            }
            Some(false) => {
                let score = self.yield_score.load(Relaxed);
                self.yield_score.store((score + 1).min(MAX_SCORE), Relaxed);
            }
            None => {}
        }
        let score = self.score.load(Relaxed);
        match waited {
            Waited::Spinning => {
                self.score.store((score + 1).min(MAX_SCORE), Relaxed);
                let typical = self.typical.load(Relaxed);
                let elapsed = nanos(elapsed).min(nanos(self.cap));
                self.typical
                    .store(typical - typical / 4 + elapsed / 4, Relaxed);
            }
            Waited::Yielding | Waited::Sleeping if !spin.spin_for.is_zero() => {
                self.score
                    .store(score.saturating_sub(MISSED_SPIN_COST), Relaxed);
            }
            Waited::Yielding | Waited::Sleeping => {}
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A place among the threads of the process that may spin at once: one fewer than the CPUs the
/// process may run on (none on one CPU), as Go's scheduler spins only while other CPUs are idle.
struct SpinSlot;

/// Threads spinning now.
static SPINNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl SpinSlot {
    fn take() -> Option<SpinSlot> {
        static MAX: crate::once::NoWaitOnce<usize> = crate::once::NoWaitOnce::new();
        let max = *MAX
            .get_or_init(|| std::thread::available_parallelism().map_or(0, |cpus| cpus.get() - 1));
        if SPINNING.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < max {
            return Some(SpinSlot);
        }
        SPINNING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        None
    }
}

impl Drop for SpinSlot {
    fn drop(&mut self) {
        SPINNING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Waits as `spin` says, until `ready(word)` holds; returns how it was answered, if it was.
#[cfg(not(loom))]
fn spin_until(word: &AtomicU32, ready: &impl Fn(u32) -> bool, spin: Spin) -> Option<Waited> {
    if ready(word.load(Ordering::Acquire)) {
        return Some(Waited::Spinning);
    }
    if !spin.spin_for.is_zero() {
        if let Some(_slot) = SpinSlot::take() {
            // The clock is read only once a first batch of spins has failed, keeping it off the
            // warm path.
            let mut started: Option<std::time::Instant> = None;
            'spin: loop {
                for _ in 0..64 {
                    if ready(word.load(Ordering::Acquire)) {
                        return Some(Waited::Spinning);
                    }
                    std::hint::spin_loop();
                }
                let start = *started.get_or_insert_with(std::time::Instant::now);
                if start.elapsed() > spin.spin_for {
                    break 'spin;
                }
            }
        }
    }
    if spin.yields == 0 {
        return None;
    }
    let started = std::time::Instant::now();
    let mut last = started;
    let mut stalled = false;
    let mut answered = None;
    for yielded in 1.. {
        std::thread::yield_now();
        let now = std::time::Instant::now();
        stalled |= now - last > YIELD_STALL;
        last = now;
        if ready(word.load(Ordering::Acquire)) {
            answered = Some(Waited::Yielding);
            break;
        }
        if yielded >= spin.yields && now - started >= spin.yield_for {
            break;
        }
    }
    YIELD_STALLED.with(|told| told.set(Some(stalled)));
    answered
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
    spin: Spin,
) -> Waited {
    if let Some(waited) = spin_until(word, &ready, spin) {
        return waited;
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
    Waited::Sleeping
}

/// [`wait_until`] for at most `timeout` (after the spin); returns how `ready` came to hold, or
/// `None` when it did not. A warm thread waits this way, so that it can end after an idle time.
#[cfg(not(loom))]
pub(crate) fn wait_until_or_timeout(
    word: &AtomicU32,
    sleeping: &AtomicBool,
    ready: impl Fn(u32) -> bool,
    timeout: std::time::Duration,
    spin: Spin,
) -> Option<Waited> {
    if let Some(waited) = spin_until(word, &ready, spin) {
        return Some(waited);
    }
    // A timeout past what an `Instant` holds (`Duration::MAX`: never idle out) is no timeout.
    let Some(deadline) = std::time::Instant::now().checked_add(timeout) else {
        return Some(wait_until(word, sleeping, ready, Spin::NONE));
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
    ready_now.then_some(Waited::Sleeping)
}

/// How often a sleeping waiter asks whether the thread it waits for still exists.
#[cfg(not(loom))]
const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_millis(20);

/// Waits until `ready(word)` holds, where the waker swaps the final value in and wakes the
/// address only if it finds `asleep`: after spinning, the waiter moves `word` from `awake` to
/// `asleep` (failing only if the final value arrived first) and sleeps while it stays `asleep`.
///
/// While asleep it asks `alive` every [`LOOK_AGAIN`] whether the waker still exists: `None` when
/// it does not, and never will set the final value (a thread that ended without unwinding).
#[cfg(not(loom))]
pub(crate) fn wait_until_marked(
    word: &AtomicU32,
    ready: impl Fn(u32) -> bool,
    (awake, asleep): (u32, u32),
    spin: Spin,
    alive: impl Fn() -> bool,
) -> Option<Waited> {
    if let Some(waited) = spin_until(word, &ready, spin) {
        return Some(waited);
    }
    if word
        .compare_exchange(awake, asleep, Ordering::Acquire, Ordering::Acquire)
        .is_err()
    {
        return Some(Waited::Yielding); // the final value arrived, without a sleep
    }
    while !ready(word.load(Ordering::Acquire)) {
        futex_wait_for(word, asleep, LOOK_AGAIN);
        // Looked at again after `alive`: a waker that set the value and then ended is no loss.
        if !alive() && !ready(word.load(Ordering::Acquire)) {
            return None;
        }
    }
    Some(Waited::Sleeping)
}

/// Wakes the thread sleeping on `word`, if [`wait_until`] announced one; call after storing a
/// new value into `word`. Returns whether it had to.
#[cfg(not(loom))]
pub(crate) fn wake(word: &AtomicU32, sleeping: &AtomicBool) -> bool {
    let asleep = sleeping.load(Ordering::SeqCst);
    if asleep {
        futex_wake(word);
    }
    asleep
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
    _spin: Spin,
) -> Waited {
    while !ready(word.load(Ordering::Acquire)) {
        loom::thread::yield_now();
    }
    Waited::Yielding
}

/// Under loom an idle timeout is "now": a warm thread that finds no call at once tries to
/// expire, so loom explores expiring against every order of callers taking the thread.
#[cfg(loom)]
pub(crate) fn wait_until_or_timeout(
    word: &AtomicU32,
    _sleeping: &AtomicBool,
    ready: impl Fn(u32) -> bool,
    _timeout: std::time::Duration,
    _spin: Spin,
) -> Option<Waited> {
    let ready_now = ready(word.load(Ordering::Acquire));
    if !ready_now {
        loom::thread::yield_now();
    }
    ready_now.then_some(Waited::Yielding)
}

#[cfg(loom)]
pub(crate) fn wait_until_marked(
    word: &AtomicU32,
    ready: impl Fn(u32) -> bool,
    _: (u32, u32),
    _spin: Spin,
    _alive: impl Fn() -> bool,
) -> Option<Waited> {
    while !ready(word.load(Ordering::Acquire)) {
        loom::thread::yield_now();
    }
    Some(Waited::Yielding)
}

#[cfg(loom)]
pub(crate) fn wake(_word: &AtomicU32, _sleeping: &AtomicBool) -> bool {
    false
}

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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{MAX_SCORE, PROBE_EVERY, Patience, SPIN_FLOOR, Spin, SpinSlot, Waited};
    use std::time::Duration;

    const CAP: Duration = Duration::from_micros(50);

    fn spins(spin: Spin) -> bool {
        !spin.spin_for.is_zero()
    }

    /// Spinning stops once it has stopped paying, but for a probe every `PROBE_EVERY` waits, and
    /// comes back once a probe pays.
    #[test]
    fn spinning_stops_when_it_does_not_pay_and_comes_back_when_a_probe_does() {
        let patience = Patience::new(CAP);
        assert!(spins(patience.plan(false)), "a new waiter spins");
        for _ in 0..MAX_SCORE {
            let spin = patience.plan(false);
            patience.record(spin, Waited::Sleeping, Duration::from_micros(200));
        }
        let plans: Vec<Spin> = (0..PROBE_EVERY).map(|_| patience.plan(false)).collect();
        let probes = plans.iter().filter(|spin| spins(**spin)).count();
        assert_eq!(probes, 1, "one probe in {PROBE_EVERY} waits: {plans:?}");
        let probe = *plans.iter().find(|spin| spins(**spin)).unwrap();
        assert_eq!(probe.spin_for, Duration::from_nanos(SPIN_FLOOR));
        patience.record(probe, Waited::Spinning, Duration::from_micros(1));
        assert!(
            spins(patience.plan(false)),
            "a probe that paid brings spinning back"
        );
    }

    /// A waiter spins about four times its typical answered wait, within the floor and the cap.
    #[test]
    fn the_spin_follows_how_long_answered_waits_took_within_the_floor_and_the_cap() {
        let patience = Patience::new(CAP);
        for _ in 0..32 {
            let spin = patience.plan(false);
            patience.record(spin, Waited::Spinning, Duration::from_micros(3));
        }
        let spin = patience.plan(false).spin_for;
        assert!(
            spin >= Duration::from_micros(11) && spin <= Duration::from_micros(13),
            "{spin:?}"
        );
        for _ in 0..32 {
            let spin = patience.plan(false);
            patience.record(spin, Waited::Spinning, Duration::ZERO);
        }
        assert_eq!(
            patience.plan(false).spin_for,
            Duration::from_nanos(SPIN_FLOOR)
        );
        for _ in 0..32 {
            let spin = patience.plan(false);
            patience.record(spin, Waited::Spinning, Duration::from_millis(5));
        }
        assert_eq!(patience.plan(false).spin_for, CAP);
    }

    /// Right after waking the other side a waiter yields instead of spinning; a wait that did not
    /// spin teaches nothing about spinning.
    #[test]
    fn a_waiter_that_woke_the_other_side_yields_and_learns_nothing() {
        let patience = Patience::new(CAP);
        let after_wake = patience.plan(true);
        assert!(
            !spins(after_wake) && after_wake.yields > 0,
            "{after_wake:?}"
        );
        for _ in 0..4 * MAX_SCORE {
            patience.record(after_wake, Waited::Sleeping, Duration::from_millis(1));
        }
        assert!(spins(patience.plan(false)));
    }

    /// At most one thread fewer than the CPUs spins at once.
    #[test]
    fn no_more_threads_spin_than_cpus_but_one() {
        let cpus = std::thread::available_parallelism().map_or(1, |cpus| cpus.get());
        let slots: Vec<SpinSlot> = std::iter::from_fn(SpinSlot::take).take(cpus + 4).collect();
        assert!(
            slots.len() < cpus,
            "{} spinners on {cpus} CPUs",
            slots.len()
        );
        drop(slots);
        if cpus > 1 {
            assert!(
                SpinSlot::take().is_some(),
                "slots come back when spinners stop"
            );
        }
    }
}
