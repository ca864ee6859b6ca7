//! The only way values cross to the namespace thread: [`Sendable`], a wrapper that is `Send`
//! whatever it holds, and [`Returns`], the proof that the function's result may cross back.
//!
//! The soundness of the `unsafe impl Send` below rests on this module alone: `Sendable`'s field
//! is private to it, and each of the three ways to make one (`Sendable::new`,
//! `Sendable::new_owned`, `Returns::wrap`) demands `T: Send`, directly or through a `Returns<T>`
//! that only `Returns::checked` makes. Adding any other constructor (a `From` impl, a
//! `Default`, a public field) here breaks it; the compile-fail doctests below pin the refusals.

use netns_core::Error;

/// A value proven `Send` where it was wrapped, so the check's error points there (at the user's
/// argument, receiver or return type) and the closure that carries it is `Send` without a second
/// error.
///
/// A value that is not `Send` cannot be wrapped:
///
/// ```compile_fail,E0277
/// let _ = in_netns::__private::Sendable::new(std::rc::Rc::new(()));
/// ```
///
/// ```compile_fail,E0277
/// let _ = in_netns::__private::Sendable::new_owned(std::rc::Rc::new(()));
/// ```
pub struct Sendable<T>(Option<T>);

// SAFETY: every `Sendable<T>` holds a `T: Send`. The field is private to this module, and this
// module makes a `Sendable<T>` in three places only: `Sendable::new` and `Sendable::new_owned`,
// which require `T: Send`, and `Returns::wrap`, which needs a `Returns<T>`, which only
// `Returns::checked` makes, which requires `T: Send`.
unsafe impl<T> Send for Sendable<T> {}

impl<T: Send> Sendable<T> {
    /// Wraps an argument or receiver; fails to compile, at the caller's span, unless `T: Send`.
    pub fn new(value: T) -> Sendable<T> {
        Sendable(Some(value))
    }
}

impl<T: Send + 'static> Sendable<T> {
    /// Wraps an argument or receiver of an `async fn`: it moves to a thread that may outlive
    /// the caller's future, so it must also own its data.
    pub fn new_owned(value: T) -> Sendable<T> {
        Sendable(Some(value))
    }
}

impl<T> Sendable<T> {
    /// Unwraps the value on the namespace thread.
    pub fn into_inner(mut self) -> T {
        self.take()
    }

    /// Takes the value out of its slot in the caller's frame, on the namespace thread: a sync
    /// body's arguments are moved once, into the slot, rather than with the closure through
    /// every call.
    pub fn take(&mut self) -> T {
        match self.0.take() {
            Some(value) => value,
            // Each slot is taken once, by the one body that owns it.
            None => unreachable!("an `#[in_netns]` argument was taken twice"),
        }
    }
}

/// The return types `#[in_netns]` accepts: a `Result` whose error type can hold a
/// [`in_netns::Error`](Error), so a failure to enter becomes the function's `Err`.
#[diagnostic::on_unimplemented(
    message = "`#[in_netns]` functions must return `Result<_, E>` with `E: From<in_netns::Error>`, not `{Self}`",
    label = "entering the namespace can fail, so this must be a `Result`",
    note = "`in_netns::Error`, `std::io::Error` and `anyhow::Error` all work as `E`"
)]
pub trait NsReturn {
    /// The function's result when the namespace cannot be entered.
    fn from_netns_error(err: Error) -> Self;
}

impl<T, E: From<Error>> NsReturn for Result<T, E> {
    fn from_netns_error(err: Error) -> Self {
        Err(E::from(err))
    }
}

/// Proof that the function's return type `R` may cross threads and can report entry failures.
/// Only [`Returns::checked`] makes one, and only when `R: Send + NsReturn`.
///
/// ```compile_fail,E0277
/// let _ = in_netns::__private::Returns::<Result<std::rc::Rc<()>, in_netns::Error>>::checked();
/// ```
pub struct Returns<R> {
    /// The function's result when the namespace cannot be entered.
    pub(super) from_error: fn(Error) -> R,
    /// Private, so that `super`, which may read `from_error`, still cannot build a `Returns`.
    _only_checked_makes_one: (),
}

impl<R: Send + NsReturn> Returns<R> {
    /// Checks, at the return type, that `R` is `Send` and a suitable `Result`.
    pub fn checked() -> Returns<R> {
        Returns {
            from_error: R::from_netns_error,
            _only_checked_makes_one: (),
        }
    }
}

impl<R: Send + NsReturn + 'static> Returns<R> {
    /// [`Returns::checked`] for an `async fn`, whose result may outlive the caller's borrows.
    pub fn checked_owned() -> Returns<R> {
        Returns::checked()
    }
}

impl<R> Clone for Returns<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Returns<R> {}

impl<R> Returns<R> {
    /// Wraps the body's result for the way back: `R: Send` was proven when `self` was made.
    pub(super) fn wrap(&self, value: R) -> Sendable<R> {
        Sendable(Some(value))
    }
}
