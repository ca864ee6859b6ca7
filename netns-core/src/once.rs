//! Values made on first use that no thread ever waits for: the one lazy cell of this crate.
//!
//! `std::sync::OnceLock` makes a racing thread wait while another makes the value. After a
//! `fork` made while a parent thread was making one, the child, which has no copy of that
//! thread, would wait forever (a test caught a child hung in a handle's first call this way).
//! [`NoWaitOnce`] never waits: threads that race each make a value, the first stored wins, and
//! the others drop theirs (the design of once_cell's `race::OnceBox`). So what it makes must be
//! cheap and have no effect beyond the value, or one that may happen more than once.

use std::marker::PhantomData;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

/// A `T` made on first use; threads that race make one each, and all get the first stored.
pub(crate) struct NoWaitOnce<T> {
    /// Null until a value is stored; then a `Box<T>` leaked into it, owned by the cell.
    value: AtomicPtr<T>,
    owns: PhantomData<Box<T>>,
}

// SAFETY: the cell owns a `T` (as `OnceLock<T>` does): sending it sends the `T`.
unsafe impl<T: Send> Send for NoWaitOnce<T> {}
// SAFETY: shared, the cell hands out `&T` (needs `T: Sync`) and stores a `T` made on whichever
// thread won the race (needs `T: Send`), as `OnceLock<T>` requires.
unsafe impl<T: Send + Sync> Sync for NoWaitOnce<T> {}

impl<T> NoWaitOnce<T> {
    /// An empty cell.
    pub(crate) const fn new() -> NoWaitOnce<T> {
        NoWaitOnce {
            value: AtomicPtr::new(null_mut()),
            owns: PhantomData,
        }
    }

    /// The value, if one was stored.
    pub(crate) fn get(&self) -> Option<&T> {
        let value = self.value.load(Ordering::Acquire);
        // SAFETY: a non-null pointer is a `Box<T>` stored once (release) and freed only by
        // `take` or `drop`, which `&self` rules out; the acquire load sees the `T` it points
        // to made.
        unsafe { value.as_ref() }
    }

    /// The value, made by `make` if none was stored yet. A thread that loses the race to store
    /// drops what its `make` made and returns the winner's value; none waits for another.
    pub(crate) fn get_or_init(&self, make: impl FnOnce() -> T) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        let made = Box::into_raw(Box::new(make()));
        match self
            .value
            .compare_exchange(null_mut(), made, Ordering::AcqRel, Ordering::Acquire)
        {
            // SAFETY: `made` is now the stored box, freed only by `take` or `drop` (see `get`).
            Ok(_) => unsafe { &*made },
            Err(stored) => {
                // SAFETY: `made` came from `Box::into_raw` above and was never stored, so this
                // thread still owns it.
                drop(unsafe { Box::from_raw(made) });
                // SAFETY: `stored` is the non-null stored box, freed only by `take` or `drop`.
                unsafe { &*stored }
            }
        }
    }

    /// Takes the value out, leaving the cell empty (as `OnceLock::take`).
    pub(crate) fn take(&mut self) -> Option<T> {
        let value = std::mem::replace(self.value.get_mut(), null_mut());
        // SAFETY: a stored pointer is a `Box<T>` the cell owns, now no longer stored, and
        // `&mut self` says no reference from `get` remains.
        (!value.is_null()).then(|| *unsafe { Box::from_raw(value) })
    }
}

impl<T> Drop for NoWaitOnce<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn racing_threads_all_get_the_first_stored_value_and_the_rest_are_dropped() {
        static DROPPED: AtomicUsize = AtomicUsize::new(0);
        struct Counted(usize);
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPPED.fetch_add(1, Ordering::SeqCst);
            }
        }
        let cell = NoWaitOnce::new();
        let made = AtomicUsize::new(0);
        let barrier = std::sync::Barrier::new(4);
        let seen: Vec<usize> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        cell.get_or_init(|| Counted(made.fetch_add(1, Ordering::SeqCst)))
                            .0
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(seen.windows(2).all(|pair| pair[0] == pair[1]), "{seen:?}");
        let stored = cell.get().map(|value| value.0);
        assert_eq!(stored, Some(seen[0]));
        let losers = made.load(Ordering::SeqCst) - 1;
        assert_eq!(
            DROPPED.load(Ordering::SeqCst),
            losers,
            "each loser's value dropped"
        );
        drop(cell);
        assert_eq!(
            DROPPED.load(Ordering::SeqCst),
            losers + 1,
            "the stored one too"
        );
    }

    #[test]
    fn a_value_being_made_by_a_thread_that_never_finishes_keeps_no_one_waiting() {
        // As in a forked child whose parent thread was making the value: that thread's
        // `make` never returns here (it sleeps until released), yet others get a value.
        let cell = NoWaitOnce::new();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, making) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let cell = &cell;
            let slow = scope.spawn(move || {
                *cell.get_or_init(|| {
                    started.send(()).unwrap();
                    released.recv().unwrap();
                    1
                })
            });
            making.recv().unwrap();
            assert_eq!(*cell.get_or_init(|| 2), 2);
            release.send(()).unwrap();
            assert_eq!(
                slow.join().unwrap(),
                2,
                "the slow maker gets the stored value"
            );
        });
    }
}
