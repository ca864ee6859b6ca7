//! "Am I on one of my own threads?", answered one way for every kind of thread this layer
//! keeps (served threads of warm pools and `Worker`s, runtime threads): each keeper has an
//! [`Owner`] id, and each of its threads records it in a thread-local when it starts.
//!
//! It matters wherever a thread might wait for itself: a call made on a `Worker`'s own thread
//! runs inline, a pool or runtime dropped on one of its own threads does not join it. And a
//! thread of ours that is ending ([`ending`]) never joins anyone: what its thread-locals drop
//! on its way out (the last clone of another handle, whose threads may in turn hold the last
//! clone of this one) must not wait for threads that may be waiting for it.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

std::thread_local! {
    /// The keeper of the current thread (0: none, a thread of the user's).
    static OWNER: Cell<u64> = const { Cell::new(0) };
    /// Whether the current thread, one of ours, has finished its work and is ending.
    static ENDING: Cell<bool> = const { Cell::new(false) };
}

/// Who keeps a set of threads: unique in the process (and kept by a forked child's copy of the
/// thread that forked, so a copy still knows itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner(u64);

impl Owner {
    /// A new, unique keeper.
    pub(crate) fn new() -> Owner {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Owner(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// Marks the calling thread as one of this keeper's, first thing on a new thread.
    pub(crate) fn adopt_current_thread(self) {
        OWNER.with(|owner| owner.set(self.0));
    }

    /// Whether the calling thread is one of this keeper's.
    pub(crate) fn owns_current_thread(self) -> bool {
        OWNER.with(Cell::get) == self.0
    }
}

/// Marks the calling thread, one of ours, as ending: it runs no more calls, and what it drops
/// from now on (its thread-locals included) does not join threads.
pub(crate) fn mark_ending() {
    ENDING.with(|ending| ending.set(true));
}

/// Whether the calling thread is one of ours that is ending: it must not wait for other threads
/// (see the module's docs).
pub(crate) fn ending() -> bool {
    // Plain `Cell`s without destructors: readable while other thread-locals are destroyed.
    ENDING.with(Cell::get)
}
