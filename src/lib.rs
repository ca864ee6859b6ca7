#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
// On docs.rs (nightly, `--cfg docsrs`), feature-gated items say which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg(target_os = "linux")]

pub use netns_core::{
    CommandExt, ETC_DIR, Error, NetNs, NetnsCommand, NsId, Options, RUN_DIR, Registry, Result,
    Watch, WatchEvent, Worker, rootless, socket2,
};

/// Networks of namespaces for tests (feature `lab`): hosts, routers and switches joined by
/// links, with addresses, routes, link state and impairments set by the lab.
#[cfg(feature = "lab")]
#[cfg_attr(docsrs, doc(cfg(feature = "lab")))]
pub use netns_core::lab;

#[cfg(feature = "tokio")]
pub use netns_core::{AsyncWatch, RunAsync, Runtime, RuntimeHooks};

/// Runs the function's body inside a network namespace, on a dedicated thread that entered it
/// (one of the handle's warm threads, or a fresh one).
///
/// The calling thread never changes namespace: each call runs the body exactly as
/// [`NetNs::run`] runs a closure (a warm thread of the handle, which entered the namespace once
/// and never leaves it, or a fresh thread). Panics in the body resume in the caller with their
/// payload.
///
/// # Targets
///
/// The first argument says where the body runs. It is evaluated on the calling thread before the
/// body's arguments move, so it may name parameters and `self`, even ones the body moves.
///
/// ```no_run
/// use std::io;
/// use std::path::PathBuf;
/// use in_netns::{NetNs, in_netns};
///
/// #[in_netns("/run/netns/blue")]              // a path literal
/// fn by_literal() -> io::Result<()> { Ok(()) }
///
/// #[in_netns(path)]                           // &str, String, &Path or PathBuf
/// fn by_path(path: PathBuf) -> io::Result<()> { Ok(()) }
///
/// #[in_netns(&ns)]                            // a handle; the body may still move it
/// fn by_handle(ns: NetNs) -> io::Result<NetNs> { Ok(ns) }
///
/// #[in_netns(name = "blue")]                  // /run/netns/blue, as `ip netns` names it
/// fn by_name() -> io::Result<()> { Ok(()) }
///
/// #[in_netns(pid = pid)]                      // the namespace of a process
/// fn by_pid(pid: u32) -> io::Result<()> { Ok(()) }
///
/// #[in_netns(worker)]                         // a long-lived `Worker`: one thread, calls in order
/// fn by_worker(worker: &in_netns::Worker) -> io::Result<()> { Ok(()) }
///
/// struct Pod { ns: NetNs }
/// impl Pod {
///     #[in_netns(&self.ns)]                   // a field of the receiver
///     fn open_socket(&self) -> io::Result<std::net::UdpSocket> {
///         std::net::UdpSocket::bind("127.0.0.1:0")
///     }
/// }
/// ```
///
/// # Options
///
/// - `sysfs`: the body sees a `/sys` of the namespace (`/sys/class/net` lists its links).
/// - `etc`: the files of `/etc/netns/NAME/` are bound over `/etc/` for the body, as
///   `ip netns exec` does; needs a named target, else the call returns [`Error::Unnamed`].
/// - `fresh_thread`: a thread of its own for each call, with fresh thread-locals, instead of one
///   of the handle's warm threads (see [`Options::fresh_thread`]).
/// - `stack_size = BYTES`: the stack of the body's thread (default
///   [`Options::DEFAULT_STACK_SIZE`], 8 MiB), any `usize` expression.
/// - `crate = path`: where the `in_netns` library is, when it is not `::in_netns`: for a renamed
///   dependency or a re-export. The expansion calls helpers under that path.
///
/// ```no_run
/// # use in_netns::in_netns;
/// #[in_netns(name = "blue", sysfs, etc)]
/// fn resolver_config() -> std::io::Result<String> {
///     std::fs::read_to_string("/etc/resolv.conf")
/// }
/// ```
///
/// See [`Options`] for what they do to the thread's mounts (nothing to the host's).
///
/// A project that renames the dependency, or a crate that re-exports this one, says where it is:
///
/// ```toml
/// [dependencies]
/// netns = { package = "in-netns", version = "0.1" }
/// ```
///
/// ```no_run
/// # extern crate in_netns as netns; // what the renamed dependency gives
/// use netns::in_netns;
///
/// #[in_netns(name = "blue", crate = netns)]   // or `crate = my_crate::reexported`
/// fn inside() -> netns::Result<()> { Ok(()) }
/// # fn main() {}
/// ```
///
/// # Async functions (feature `tokio`)
///
/// An `async fn` runs its body as a task on a tokio runtime whose every thread is inside the
/// namespace: the handle's own (see `NetNs::run_async`), or an `in_netns::Runtime`
/// given as the target. Everything the body hands to tokio (spawned tasks, `spawn_blocking`,
/// `tokio::fs`, DNS lookups, child processes) stays inside; the caller's runtime is never entered
/// and awaiting the call only registers a waker. Arguments, the body and the result must be
/// `Send + 'static`: take `NetNs`, `Arc<NetNs>`, `Arc<Worker>`, `Arc<Runtime>` or
/// `self: Arc<Self>` rather than references. Dropping the future aborts the body at its next
/// `.await`.
///
/// ```no_run
/// # #[cfg(feature = "tokio")]
/// # mod demo {
/// use std::{io, net::SocketAddr, sync::Arc};
/// use in_netns::{NetNs, in_netns};
///
/// #[in_netns(ns)]
/// async fn open_socket(ns: Arc<NetNs>, addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
///     std::net::UdpSocket::bind(addr)
/// }
/// # }
/// ```
///
/// # Rules
///
/// - The function returns `Result<_, E>` with `E: From<in_netns::Error>`; failing to open or enter
///   the namespace becomes `Err(E::from(err))` and the body does not run.
/// - Arguments, `self` and the returned value must be `Send` (`&T` needs `T: Sync`); borrowed
///   arguments and returned borrows are fine, because the thread is scoped to the call.
/// - `const fn` is refused, and so is `async fn` without the `tokio` feature, each with an error
///   that says why.
///
/// # Desugars to
///
/// ```text
/// #[in_netns(&self.ns)]
/// fn port(&self, base: u16, mut offset: u16) -> io::Result<u16> {
///     offset += 1;
///     Ok(base + offset)
/// }
/// // becomes, in essence (helper names are private):
/// fn port(&self, base: u16, offset: u16) -> io::Result<u16> {
///     let target = resolve(&self.ns);          // a duplicated handle, borrowing nothing
///     let arg0 = &mut Sendable::new(base);     // `u16: Send`, checked at `base: u16`
///     let arg1 = &mut Sendable::new(offset);   // (a slot: each argument is moved once)
///     let recv = &mut Sendable::new(self);     // `Self: Sync`, checked at `&self`
///     return run(target, Options::DEFAULT, Returns::checked(), move || {
///         let base = arg0.take();
///         let mut offset = arg1.take();
///         let self_ = recv.take();             // `self` in the body is renamed (to a name
///                                              // the function does not use)
///         {
///             offset += 1;
///             Ok(base + offset)
///         }
///     });
/// }
/// ```
pub use netns_macros::in_netns;

/// A test whose body runs in a fresh network namespace with `lo` up, with or without root.
///
/// ```no_run
/// #[in_netns::test]
/// fn two_tests_may_bind_the_same_port() -> std::io::Result<()> {
///     let listener = std::net::TcpListener::bind("127.0.0.1:8080")?; // this test's own loopback
///     std::net::TcpStream::connect(listener.local_addr()?)?;
///     Ok(())
/// }
/// ```
///
/// - Each test gets its own anonymous namespace, so tests run in parallel may all use the same
///   addresses and ports, and nothing they configure reaches the host or each other. The body
///   runs on a dedicated thread inside (the harness's thread never moves); the namespace goes
///   away with the test.
/// - As root (or with `CAP_SYS_ADMIN`) the body runs in the test process. Without, the test
///   runs again in a child process of its own (`--exact NAME`), made rootless between `fork`
///   and `exec` as [`rootless::enter`] makes a process, and the test passes only if the child
///   ran it and it passed. No namespace or process outlives the test.
/// - A test that cannot get a namespace fails with the reason (a missing privilege, a system
///   that forbids user namespaces, naming the setting); it never passes silently.
/// - Works under `cargo test`'s parallel harness and under nextest. `fn` returning `()` or
///   `Result<(), E>`, and `async fn` with the `tokio` feature (on a current-thread runtime whose
///   every thread is inside); `#[should_panic]` and `#[ignore]` pass through.
/// - `crate = path` names the library when it is not `::in_netns`.
pub use netns_macros::test;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
