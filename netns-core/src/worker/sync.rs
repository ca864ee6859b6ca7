//! The synchronization primitives the hand-off uses: std's normally, loom's when the protocol
//! is model-checked (`RUSTFLAGS="--cfg loom"`).

#[cfg(loom)]
pub(crate) use loom::{
    cell::UnsafeCell,
    sync::atomic::{AtomicBool, AtomicU8, Ordering},
    sync::{Arc, Mutex},
    thread::{self, Thread},
};

#[cfg(not(loom))]
pub(crate) use std::{
    sync::atomic::{AtomicBool, AtomicU8, Ordering},
    sync::{Arc, Mutex},
    thread::{self, Thread},
};

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

/// Waits until `ready()` holds: spins briefly (the other side usually answers within
/// microseconds), then parks until unparked. Spinning is bounded, so an idle thread uses no CPU.
pub(crate) fn wait_until(ready: impl Fn() -> bool) {
    #[cfg(not(loom))]
    {
        const SPIN_FOR: std::time::Duration = std::time::Duration::from_micros(50);
        let start = std::time::Instant::now();
        'spin: loop {
            for _ in 0..64 {
                if ready() {
                    return;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() > SPIN_FOR {
                break 'spin;
            }
        }
    }
    while !ready() {
        thread::park();
    }
}
