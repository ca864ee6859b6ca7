//! Everything that runs inside a namespace. Within the layer, modules import only downward:
//!
//! - `own` (whose thread is this?), `span` (the caller's `tracing` span and subscriber, carried into bodies), `handoff` (the one hand-off between a caller and a thread
//!   inside, with its parker), `home` (what a reused thread entered with, and putting it back);
//! - `served`: the one kind of reused namespace thread, born outside, entering on its own;
//! - `fresh`: a thread that enters, runs one call and ends, and `spawn`'s threads;
//! - `warm` (a handle's pools of served threads) and `worker` (one served thread, calls in
//!   order);
//! - `run_async` (the future of an async body) < `runtime` (tokio runtimes whose threads are
//!   all inside, and a handle's runtimes for async bodies);
//! - `stock` (sockets made ahead, per handle) < `state`: a handle's warm threads, body
//!   runtimes and socket stocks, in its slot;
//! - `run` and `async_bodies`: the `NetNs` and `Worker` methods that run code inside;
//! - `sockets`: the `NetNs` methods that take sockets made ahead.

#[cfg(feature = "tokio")]
mod async_bodies;
mod fresh;
mod handoff;
mod home;
mod own;
mod run;
#[cfg(feature = "tokio")]
mod run_async;
#[cfg(feature = "tokio")]
mod runtime;
mod served;
mod sockets;
mod span;
mod state;
mod stock;
mod warm;
mod worker;

#[cfg(feature = "tokio")]
pub use run_async::RunAsync;
#[cfg(feature = "tokio")]
pub use runtime::{NetnsRuntime, RuntimeHooks};
pub use worker::Worker;
