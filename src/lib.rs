//! Run code inside Linux network namespaces from multithreaded programs, on dedicated threads
//! that enter once and are never stranded.
//!
//! Every Linux thread has its own network namespace, and the sockets it opens belong to it.
//! Switching the calling thread with `setns(2)` and back strands it in the wrong namespace when a
//! panic comes in between, the switch back fails, or a pool reuses the thread. This crate never
//! moves your thread: a body runs on a dedicated thread inside the namespace, and may still
//! borrow from the caller and hand sockets back. This page is a tour; each item's page is its
//! reference. Linux only; the minimum Rust version is 1.85.
//!
//! # Start
//!
//! Open a namespace as a [`NetNs`] handle, run a closure inside with [`NetNs::run`], and use
//! what it returns anywhere: a socket stays in the namespace it was made in.
//!
//! ```
//! # in_netns::rootless::enter()?;
//! use in_netns::NetNs;
//!
//! let ns = NetNs::new()?; // a new, anonymous namespace: gone with its last handle
//! ns.set_loopback_up()?; // `lo` starts down in a new namespace
//! let socket = ns.run(|| std::net::UdpSocket::bind("127.0.0.1:0"))??;
//! assert_eq!(NetNs::of_socket(&socket)?, ns); // the socket is inside
//! assert_ne!(NetNs::current()?, ns); // the calling thread is not
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Creating and entering namespaces needs `CAP_SYS_ADMIN`: root has it, and any process gets it
//! over namespaces of its own with [`rootless::enter`], first thing in `main` (the examples on
//! this page start with it, hidden, so that they run with or without root).
//!
//! # Handles
//!
//! A [`NetNs`] is an open, validated handle (a close-on-exec descriptor): it keeps the namespace
//! alive, compares by identity ([`NetNs::id`]), and is `Send + Sync`.
//!
//! - By origin: [`NetNs::new`] (anonymous), [`NetNs::open`] (any namespace file),
//!   [`NetNs::named`] (as `ip netns` names it), [`NetNs::current`] (the caller's),
//!   [`NetNs::of_socket`], [`NetNs::from_fd`].
//! - By process, through a pidfd, so that a reused pid is never read as another process's
//!   namespace: [`NetNs::of_pid`], [`NetNs::of_pidfd`], [`NetNs::of_child`].
//! - As `ip netns` does, interoperably: [`NetNs::create`], [`NetNs::remove`], [`NetNs::list`],
//!   [`NetNs::attach`], [`NetNs::names`], [`NetNs::pids`], [`NetNs::watch`]; in another
//!   directory than `/run/netns` with a [`Registry`].
//!
//! ```
//! # in_netns::rootless::enter()?;
//! use in_netns::NetNs;
//!
//! let mine = NetNs::of_pid(std::process::id())?;
//! assert_eq!(mine, NetNs::current()?);
//! let name = format!("tour-{}", std::process::id());
//! let made = NetNs::create(&name)?; // as `ip netns add` (without root: a private /run/netns)
//! let found = NetNs::named(&name);
//! NetNs::remove(&name)?; // as `ip netns del`: `made` stays valid
//! assert_eq!(found?, made);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Errors are one type, [`Error`], which names the path, name or process it is about and
//! converts to `std::io::Error` keeping its kind.
//!
//! # Running code
//!
//! - [`NetNs::run`] runs a closure on a warm thread (a hand-off to a thread already started,
//!   shared by every handle, that enters the namespace for the call and leaves it after) or on
//!   a fresh one, and returns its result; the closure may borrow, and a
//!   panic resumes in the caller. Callers never wait for each other.
//! - [`NetNs::spawn`] starts a long-lived thread inside and returns its `JoinHandle` once the
//!   thread is in.
//! - A [`Worker`] ([`NetNs::worker`]) is one long-lived thread inside that serves calls one at a
//!   time, in order, for code that needs exactly that.
//!
//! ```
//! # in_netns::rootless::enter()?;
//! # let ns = in_netns::NetNs::new()?;
//! let mut calls = 0;
//! ns.run(|| calls += 1)?; // borrows `calls`
//! let server = ns.spawn(|| std::net::TcpListener::bind("127.0.0.1:0"))?;
//! let listener = server.join().expect("the thread did not panic")?;
//! let worker = ns.worker()?;
//! for _ in 0..3 {
//!     worker.run(|| calls += 1)?;
//! }
//! assert_eq!(calls, 4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What a body inherits from its caller, and what a reused thread carries from one call to the
//! next (nothing of the namespace, mounts, signal mask, scheduling...), is in
//! [GUARANTEES.md](https://docs.rs/crate/in-netns/latest/source/GUARANTEES.md); what a call
//! costs in [BENCHMARKS.md](https://docs.rs/crate/in-netns/latest/source/BENCHMARKS.md).
//!
//! # The attribute
//!
//! [`#[in_netns(target)]`](macro@in_netns) makes a function's body run inside, as
//! [`NetNs::run`] runs a closure; the target is a handle, a path, `name = "blue"`,
//! `pid = ..` or a [`Worker`]. Failing to open or enter the namespace becomes the function's
//! error (`E: From<in_netns::Error>`), and the compiler refuses arguments and results that
//! cannot cross threads.
//!
//! ```
//! # in_netns::rootless::enter()?;
//! use in_netns::{NetNs, in_netns};
//!
//! #[in_netns(ns)]
//! fn interfaces(ns: &NetNs) -> std::io::Result<String> {
//!     std::fs::read_to_string("/proc/thread-self/net/dev") // this thread's namespace's
//! }
//!
//! let ns = NetNs::new()?;
//! assert_eq!(interfaces(&ns)?.lines().count(), 3); // two header lines, then `lo` only
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Sockets made inside
//!
//! Only `socket()` must run inside: a socket belongs to its namespace for life, and `bind`,
//! `connect` and `accept` work on it from any thread. [`NetNs::socket`] takes one from the
//! handle's stock, made ahead by a thread inside, at about the cost of making a socket; the
//! shorthands [`NetNs::tcp_connect`], [`NetNs::tcp_listen`] and [`NetNs::udp_bind`] build on it
//! and run the rest on the calling thread.
//!
//! ```
//! # in_netns::rootless::enter()?;
//! use in_netns::socket2::{Domain, Type};
//!
//! let ns = in_netns::NetNs::new()?;
//! ns.set_loopback_up()?;
//! let listener = ns.tcp_listen("127.0.0.1:0".parse()?)?;
//! let client = ns.tcp_connect(listener.local_addr()?)?;
//! let raw = ns.socket(Domain::IPV4, Type::DGRAM, None)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Async
//!
#![cfg_attr(
    feature = "tokio",
    doc = r#"
With the `tokio` feature, an async body is polled inside the namespace with a tokio runtime whose
every thread is inside entered, so whatever it hands to tokio (spawned tasks, `spawn_blocking`,
DNS lookups, child processes) stays inside; your runtime is never entered, and each poll is a
hand-off to a warm thread, as a `run` is.

- [`NetNs::run_async`] (and [`run_async_with`](NetNs::run_async_with)) runs one on the handle's
  own runtime inside, and returns a [`RunAsync`] future; an `#[in_netns] async fn` does the same.
- [`NetNs::runtime`] builds a [`NetnsRuntime`] from your own `tokio::runtime::Builder`: every
  thread it ever starts enters the namespace first ([`RuntimeHooks`] for hooks of your own).
- [`NetNs::tokio_tcp_connect`], [`NetNs::tokio_tcp_listen`] and [`NetNs::tokio_udp_bind`] make
  the socket inside and give it to the caller's runtime.

```
# in_netns::rootless::enter()?;
let ns = in_netns::NetNs::new()?;
let caller = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
let listener = caller.block_on(async {
    // Made and driven inside; usable from anywhere while `ns` lives.
    ns.run_async(|| async { tokio::net::TcpListener::bind("127.0.0.1:0").await }).await
})??;

let builder = &mut tokio::runtime::Builder::new_multi_thread();
let inside = ns.runtime(builder.worker_threads(1).enable_all())?;
assert_eq!(inside.block_on(async { in_netns::NetNs::current() })??, ns);
# Ok::<(), Box<dyn std::error::Error>>(())
```
"#
)]
#![cfg_attr(
    not(feature = "tokio"),
    doc = r#"
With the `tokio` feature: async bodies (`NetNs::run_async`, `#[in_netns] async fn`) run as
tasks on a tokio runtime whose every thread is inside the namespace, `NetNs::runtime` builds
such a runtime (`NetnsRuntime`) from your own builder, and `NetNs::tokio_tcp_connect`,
`tokio_tcp_listen` and `tokio_udp_bind` give sockets made inside to the caller's runtime.
"#
)]
//!
//! # Processes
//!
//! [`NetnsCommandExt::netns`] makes a `std::process::Command` (or, with `tokio`, a
//! `tokio::process::Command`) start its child inside: the child enters between `fork` and
//! `exec`, and no thread of the parent moves. [`NetnsCommand::uid`] and its siblings run the
//! child as another user, switched to once it is inside.
//!
//! ```
//! # in_netns::rootless::enter()?;
//! use in_netns::NetnsCommandExt;
//!
//! let ns = in_netns::NetNs::new()?;
//! let output = std::process::Command::new("cat")
//!     .arg("/proc/self/net/dev")
//!     .netns(&ns)
//!     .output()?;
//! assert_eq!(String::from_utf8(output.stdout)?.lines().count(), 3); // `lo` only
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Options
//!
//! A `Setup` says how a thread or child inside is set up: `sysfs` (a `/sys`, `/proc/net` and
//! `/proc/self/net` that describe the namespace), `etc` (the files of `/etc/netns/NAME` bound
//! over `/etc`, as `ip netns exec` does) and `stack_size`; [`NetNs::worker_with`],
//! `NetNs::runtime_with` (feature `tokio`) and `NetnsCommandExt::netns_with` take one.
//! [`Options`] are a `Setup` plus how a call finds its thread (`fresh_thread`,
//! `idle_timeout`), for [`NetNs::run_with`], [`NetNs::spawn_with`] and the attribute
//! (`#[in_netns(&ns, sysfs, fresh_thread)]`). The host's mounts are never touched.
//!
//! ```
//! # in_netns::rootless::enter()?;
//! use in_netns::{Options, Setup};
//!
//! let ns = in_netns::NetNs::new()?;
//! let links = || -> std::io::Result<Vec<String>> {
//!     let dir = std::fs::read_dir("/sys/class/net")?;
//!     dir.map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned())).collect()
//! };
//! let worker = ns.worker_with(&Setup::default().sysfs(true))?;
//! assert!(worker.run(links)??.contains(&"lo".to_owned()));
//! let options = Options::default().sysfs(true).fresh_thread(true);
//! assert_eq!(ns.run_with(&options, links)??, worker.run(links)??);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Without root
//!
//! [`rootless::enter`], called while the process is still single-threaded, moves it into a user
//! namespace of its own where it is root, with private `/run/netns` and `/etc/netns`: then
//! everything above works for the namespaces the process makes. As root it does nothing, so a
//! program may always call it. Where the system forbids unprivileged user namespaces it returns
//! [`Error::Rootless`], naming the setting and the command that allows them. Child processes
//! share it: `ip netns list`, `exec` and `del` work in them (`ip netns add` makes the namespace,
//! then fails to switch back to the host's). What stays impossible without root: entering
//! namespaces that the real root or another user made (the host's own included, once a thread
//! left it), moving links to the host's namespace, and anything that needs a capability in the
//! initial user namespace ([`Error::PermissionDenied`], naming the operation).
//!
//! ```
//! fn main() -> in_netns::Result<()> {
//!     in_netns::rootless::enter()?; // first thing: before any thread starts
//!     let ns = in_netns::NetNs::new()?; // no root needed from here on
//!     Ok(())
//! }
//! ```
//!
//! # Tests
//!
//! [`#[in_netns::test]`](macro@test) runs a test's body in a fresh namespace with `lo` up, so
//! tests run in parallel may all bind the same address and port. Without root, the test runs
//! again in a child process of its own made rootless; no namespace or process outlives it.
//!
//! ```
//! #[in_netns::test]
//! fn every_test_has_its_own_loopback() -> std::io::Result<()> {
//!     let listener = std::net::TcpListener::bind("127.0.0.1:8080")?;
//!     std::net::TcpStream::connect(listener.local_addr()?)?;
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! # The lab
//!
#![cfg_attr(
    feature = "lab",
    doc = "The [`lab`] module (feature `lab`) builds networks of namespaces: nodes, veth links
with addresses, routers and impaired links, with or without root."
)]
#![cfg_attr(
    not(feature = "lab"),
    doc = "The `lab` module (feature `lab`) builds networks of namespaces: nodes, veth links
with addresses, routers and impaired links, with or without root."
)]
//!
//! # Feature flags
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `tokio` | async bodies (`NetNs::run_async`, `#[in_netns] async fn`), `NetnsRuntime`, tokio sockets, tokio commands, `AsyncWatch` (a `Stream` of a registry's names) |
//! | `tracing` | the caller's `tracing` span (and subscriber) is current inside every body; the crate's records (target `in_netns`: namespaces made, named and removed, going rootless, threads retired, views partly set up) are `tracing` events, which reach `log` while no subscriber is set; without the feature they are `log` records |
//! | `lab` | the `lab` module: networks of namespaces |
//!
//! On docs.rs, each item that needs a feature says so.
//!
//! # Security
//!
//! A body runs with its caller's security context: its credentials (user and group ids,
//! filesystem ids, supplementary groups), capabilities, `no_new_privs` and seccomp filters,
//! never looser and never tighter. A fresh thread has them by birth; a warm thread serves only
//! callers whose context is that of the caller that started it (compared at each call); a
//! [`Worker`] runs every body with its maker's context, whoever calls; a `NetnsRuntime`'s tasks
//! run with its maker's. What the kernel does not show cannot be compared: *which* seccomp
//! filters apply, and the Landlock domain. A caller that sandboxes its own thread that way,
//! rather than the whole process before it starts threads, should use
//! [`Options::fresh_thread`] or a [`Worker`] it makes itself. A child process is forked from
//! the calling thread, with its sandbox, and nothing is raised on the caller's thread. The
//! details, and what a reused thread carries between calls, are in
//! [GUARANTEES.md](https://docs.rs/crate/in-netns/latest/source/GUARANTEES.md).
//!
//! # Further reading
//!
//! [GUARANTEES.md](https://docs.rs/crate/in-netns/latest/source/GUARANTEES.md) (what can never
//! happen and the test that proves it, the pitfalls that remain, how this compares with netns-rs,
//! Go's `ns.Do` and `ip netns exec`),
//! [BENCHMARKS.md](https://docs.rs/crate/in-netns/latest/source/BENCHMARKS.md) (what a call
//! costs), [CONTRIBUTING.md](https://docs.rs/crate/in-netns/latest/source/CONTRIBUTING.md) and
//! the [CHANGELOG](https://docs.rs/crate/in-netns/latest/source/CHANGELOG.md).
#![deny(missing_docs)]
// On docs.rs (nightly, `--cfg docsrs`), feature-gated items say which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg(target_os = "linux")]

pub use netns_core::{
    ETC_DIR, Error, NetNs, NetnsCommand, NetnsCommandExt, NsId, Options, RUN_DIR, Registry, Result,
    Setup, Watch, WatchEvent, Worker, rootless, socket2,
};

/// Networks of namespaces for tests (feature `lab`): hosts, routers and switches joined by
/// links, with addresses, routes, link state and impairments set by the lab.
#[cfg(feature = "lab")]
#[cfg_attr(docsrs, doc(cfg(feature = "lab")))]
pub use netns_core::lab;

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use netns_core::{AsyncWatch, NetnsRuntime, RunAsync, RuntimeHooks};

/// Runs the function's body inside a network namespace, on a dedicated thread that entered it
/// (a warm thread, or a fresh one).
///
/// The calling thread never changes namespace: each call runs the body exactly as
/// [`NetNs::run`] runs a closure (a warm thread, inside the namespace for the call, or a fresh
/// thread). Panics in the body resume in the caller with their
/// payload.
///
/// # Targets
///
/// The first argument says where the body runs. It is evaluated on the calling thread before the
/// body's arguments move, so it may name parameters and `self`, even ones the body moves.
///
/// ```
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
/// - `fresh_thread`: a thread of its own for each call, with fresh thread-locals, instead of a
///   warm thread (see [`Options::fresh_thread`]).
/// - `stack_size = BYTES`: the stack of the body's thread (default
///   [`Setup::DEFAULT_STACK_SIZE`], 8 MiB), any `usize` expression.
/// - `crate = path`: where the `in_netns` library is, when it is not `::in_netns`: for a renamed
///   dependency or a re-export. The expansion calls helpers under that path.
///
/// ```
/// # use in_netns::in_netns;
/// #[in_netns(name = "blue", sysfs, etc)]
/// fn resolver_config() -> std::io::Result<String> {
///     std::fs::read_to_string("/etc/resolv.conf")
/// }
/// ```
///
/// See [`Setup`] for what they do to the thread's mounts (nothing to the host's), and
/// [`Options`] for the rest.
///
/// A project that renames the dependency, or a crate that re-exports this one, says where it is:
///
/// ```toml
/// [dependencies]
/// netns = { package = "in-netns", version = "0.1" }
/// ```
///
/// ```
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
/// An `async fn`'s body is polled inside the namespace: on warm threads with the handle's own
/// runtime entered (see `NetNs::run_async`), or as a task of an `in_netns::NetnsRuntime` given
/// as the target; every thread of either runtime is inside. Everything the body hands to tokio
/// (spawned tasks, `spawn_blocking`, `tokio::fs`, DNS lookups, child processes) stays inside;
/// the caller's runtime is never entered. Arguments, the body and the result must be
/// `Send + 'static`: take `NetNs`, `Arc<NetNs>`, `Arc<Worker>`, `Arc<NetnsRuntime>` or
/// `self: Arc<Self>` rather than references. Dropping the future aborts the body at the
/// `.await` it waits at.
///
/// ```
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
///   the namespace becomes `Err(E::from(err))` and the body does not run. With `io::Error`,
///   that is the OS error (its errno and kind, see [`Error`]); `in_netns::Error`,
///   `Box<dyn Error>` or an error type of yours that wraps it keep the message too.
/// - Arguments, `self` and the returned value must be `Send` (`&T` needs `T: Sync`); borrowed
///   arguments and returned borrows are fine, because the thread is scoped to the call.
/// - Signatures are kept: visibility, generics, `where`, lifetimes, `self`/`&self`/`&mut self`,
///   patterns (`(a, b): (u32, u32)`, `mut x`), `#[cfg]` on parameters, `impl Trait`, `unsafe`,
///   attributes and docs; methods in inherent and trait impls; `Self` and `self` in the body.
///   `return` and `?` keep their meaning.
/// - No warnings or clippy findings come from the expansion, while rustc's own warnings about
///   your code (an unused parameter, a `mut` that is not needed) still reach you at your tokens;
///   a parameter that only the target reads is not "unused". The expansion allows
///   `unused_variables` and clippy's `shadow_unrelated` on the bindings it makes, so a
///   `#![forbid]` of either is refused (E0453). A syntax error in the body is reported once, at
///   its line.
/// - Refused, each with an error that says why and what to do: `const fn`, items that are not
///   functions, unknown or duplicated options, a missing target, a target of the wrong type,
///   per-call options on a `Worker`, `async fn` without the `tokio` feature, and a method that
///   `#[async_trait]` has already rewritten (call an `#[in_netns]` async fn from it instead).
/// - A non-`Send` argument is one error, at the argument:
///
/// ```text
/// error[E0277]: `Rc<Vec<u32>>` cannot be sent between threads safely
///  --> src/lib.rs:4:10
///   |
/// 4 | fn count(items: Rc<Vec<u32>>) -> in_netns::Result<usize> {
///   |          ^^^^^ `Rc<Vec<u32>>` cannot be sent between threads safely
/// ```
///
/// A path target opens the namespace at every call (and so gets a fresh thread): hold a
/// [`NetNs`] on hot paths.
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
/// ```
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
///   `Result<(), E>` with `E: Debug` (a boxed error too), and `async fn` with the `tokio`
///   feature (on a current-thread runtime whose every thread is inside); `#[should_panic]` and
///   `#[ignore]` pass through (without root, the child's verdict, expected text and all, is the
///   test's). It takes the place of `#[test]`: both on one function is an error.
/// - `own_process` (`#[in_netns::test(own_process)]`) gives the test a process of its own also
///   as root, for tests that count the process's threads or descriptors.
/// - `crate = path` names the library when it is not `::in_netns`.
/// - The expansion allows `unused_variables` and clippy's `shadow_unrelated` on the bindings it
///   makes, so a `#![forbid]` of either is refused (E0453).
pub use netns_macros::test;

/// The README's example, run as a doctest so that it keeps compiling and working.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
