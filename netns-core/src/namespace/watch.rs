//! Following a registry's names as they come and go, as `ip netns monitor` does: inotify on
//! the directory, no polling.

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::libc;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::stat::Mode;

use super::handle::NetNs;
use super::registry::Registry;
use crate::error::{Error, Result};
use crate::sys;

/// The calling thread's mount table: it changes when a name file gets its namespace.
const MOUNTINFO: &str = "/proc/thread-self/mountinfo";

/// What inotify reports of a directory: entries made, removed or renamed, and the directory
/// itself removed or renamed.
pub(crate) const DIRECTORY_CHANGES: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);

/// A change of a registry's names, as `ip netns monitor` prints them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WatchEvent {
    /// The name is there and opens as a network namespace (`add NAME`).
    Added(String),
    /// The name is gone (`delete NAME`).
    Removed(String),
}

impl WatchEvent {
    /// The name the event is about.
    pub fn name(&self) -> &str {
        match self {
            WatchEvent::Added(name) | WatchEvent::Removed(name) => name,
        }
    }
}

/// The names of a registry as they come and go: a blocking [`Iterator`] of
/// [`WatchEvent`]s, from [`NetNs::watch`] (for `/run/netns`) or [`Registry::watch`]; with the
/// `tokio` feature, `Watch::into_async` makes it an `AsyncWatch`.
///
/// - A name is [`WatchEvent::Added`] once it opens as a network namespace, so a
///   [`NetNs::named`] right after it succeeds. (`ip netns add`, [`NetNs::create`] and
///   [`NetNs::attach`] create the file first and bind the namespace on it a moment later;
///   `ip netns monitor` reports the file, this reports the namespace. A file that never gets
///   one is never reported.)
/// - [`WatchEvent::Removed`] follows for a name that was added, or that was there when the
///   watch began; names there already are not reported as added: list them
///   ([`Registry::list`]) after starting the watch (a name made in between may then be in
///   both).
/// - Waiting uses no CPU: inotify on the directory tells of names, and the mount table's
///   change notification of the bind mount that follows. Should the kernel's event queue
///   overflow, the watch compares the directory with what it knows and reports the
///   difference, so no change is lost.
/// - The iteration ends when the directory itself is removed or unmounted. The directory is
///   made when missing, as `ip netns monitor` makes it.
///
/// ```no_run
/// # use netns_core as in_netns;
/// use in_netns::{NetNs, WatchEvent};
/// # fn main() -> in_netns::Result<()> {
/// for event in NetNs::watch()? {
///     if let WatchEvent::Added(name) = event? {
///         let ns = NetNs::named(&name)?; // bound already
///         println!("{name}: {}", ns.id());
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Watch {
    sources: Sources,
    names: Names,
}

/// What wakes a watch, in one epoll set (one descriptor to wait on, blocking or async).
#[derive(Debug)]
struct Sources {
    epoll: Epoll,
    /// The directory's entries.
    inotify: Inotify,
    /// The mount table, whose readiness (`EPOLLPRI`) says it changed. Kept open for the epoll
    /// set; nothing is read from it.
    _mounts: File,
    /// The mount table again, polled by [`Sources::remounted`] alone: the epoll set's copy has
    /// its readiness consumed by whoever polls the set first (tokio's reactor included), so it
    /// cannot tell the watch that a mount was made.
    remounts: File,
}

/// What the watch knows of the names, and the events not yet handed out.
#[derive(Debug)]
struct Names {
    registry: Registry,
    /// Names that are namespaces, as last reported (or found at the start).
    known: BTreeSet<String>,
    /// Names whose file is there but has no namespace bound yet.
    pending: BTreeSet<String>,
    /// The pending names not looked at yet. The others are looked at again only after a mount
    /// (a namespace is bound by one), so that stray files in the directory, which never get a
    /// namespace, are not opened again at every event.
    unlooked: BTreeSet<String>,
    ready: VecDeque<WatchEvent>,
    /// The directory is gone: no more events can come.
    ended: bool,
}

impl Watch {
    pub(crate) fn new(registry: &Registry) -> Result<Watch> {
        let dir = registry.dir();
        match nix::unistd::mkdir(dir, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(errno) => return Err(Error::from_errno("mkdir", Some(dir), errno)),
        }
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| Error::from_errno("inotify_init1", None, e))?;
        inotify
            .add_watch(dir, DIRECTORY_CHANGES)
            .map_err(|e| Error::from_errno("inotify_add_watch", Some(dir), e))?;
        let open_mounts = || {
            File::open(MOUNTINFO).map_err(|e| Error::from_io("open", Some(Path::new(MOUNTINFO)), e))
        };
        let (mounts, remounts) = (open_mounts()?, open_mounts()?);
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| Error::from_errno("epoll_create1", None, e))?;
        epoll
            .add(&inotify, EpollEvent::new(EpollFlags::EPOLLIN, 0))
            .and_then(|()| epoll.add(&mounts, EpollEvent::new(EpollFlags::EPOLLPRI, 1)))
            .map_err(|e| Error::from_errno("epoll_ctl", None, e))?;
        let mut names = Names {
            registry: registry.clone(),
            known: BTreeSet::new(),
            pending: BTreeSet::new(),
            unlooked: BTreeSet::new(),
            ready: VecDeque::new(),
            ended: false,
        };
        // After the inotify watch, so that a name made meanwhile is either here or an event.
        names.resync()?;
        names.ready.clear();
        Ok(Watch {
            sources: Sources {
                epoll,
                inotify,
                _mounts: mounts,
                remounts,
            },
            names,
        })
    }

    /// The registry this watch follows.
    pub fn registry(&self) -> &Registry {
        &self.names.registry
    }

    /// This watch as an [`AsyncWatch`], whose [`next`](AsyncWatch::next) waits on tokio's
    /// reactor without blocking a thread. Outside a tokio runtime, or in one without I/O
    /// enabled, it is [`Error::Os`] saying so.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn into_async(self) -> Result<AsyncWatch> {
        const OPERATION: &str =
            "register the watch with tokio (call into_async in a runtime with I/O enabled)";
        let fail = |source| Error::Os {
            operation: OPERATION,
            path: None,
            source,
        };
        // Registering panics where there is no runtime at all; make that an error.
        tokio::runtime::Handle::try_current().map_err(|e| fail(std::io::Error::other(e)))?;
        let interest = tokio::io::Interest::READABLE;
        let sources = self.sources;
        // Registering also panics in a runtime built without I/O (no `enable_io`), which tokio
        // offers no way to ask about first: that panic is this call's error too.
        let registered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            // SAFETY: `Sources` owns the epoll descriptor (`Epoll` holds an `OwnedFd`), which
            // stays open for as long as the `AsyncFd` holds `Sources`, and `as_raw_fd` always
            // returns it.
            unsafe { tokio::io::unix::AsyncFd::register_with_interest(sources, interest) }
        }))
        .map_err(|_| fail(std::io::Error::other("the tokio runtime has I/O disabled")))?;
        let sources = registered.map_err(|err| fail(err.into()))?;
        Ok(AsyncWatch {
            sources,
            names: self.names,
        })
    }
}

impl Iterator for Watch {
    type Item = Result<WatchEvent>;

    /// Blocks until the next change (without using CPU), or returns `None` once the
    /// directory is gone. An error is returned once; the watch may be asked again after it.
    fn next(&mut self) -> Option<Result<WatchEvent>> {
        loop {
            if let Some(event) = self.names.ready.pop_front() {
                return Some(Ok(event));
            }
            if self.names.ended {
                return None;
            }
            let woke = self.sources.wait(EpollTimeout::NONE);
            if let Err(err) = woke.and_then(|_| self.names.update(&self.sources)) {
                return Some(Err(err));
            }
        }
    }
}

/// Once `next` returned `None` (the directory is gone, and every event before that was handed
/// out), nothing refills the events: it returns `None` for good.
impl std::iter::FusedIterator for Watch {}

impl Sources {
    /// Waits up to `timeout` for a source to be ready; how many are.
    fn wait(&self, timeout: EpollTimeout) -> Result<usize> {
        let mut events = [EpollEvent::empty(); 2];
        loop {
            match self.epoll.wait(&mut events, timeout) {
                Err(Errno::EINTR) => continue,
                result => return result.map_err(|e| Error::from_errno("epoll_wait", None, e)),
            }
        }
    }

    /// Whether a mount was made or removed since the last look (a failed poll counts as one).
    fn remounted(&self) -> bool {
        sys::poll_ready(self.remounts.as_fd(), libc::POLLPRI) != Ok(false)
    }
}

/// The epoll set, for tokio's reactor.
impl AsRawFd for Sources {
    fn as_raw_fd(&self) -> RawFd {
        self.epoll.0.as_raw_fd()
    }
}

impl Names {
    /// Takes in what inotify has queued, then looks at the names waiting for their namespace:
    /// the new ones, and all of them after a mount (whatever woke the watch).
    fn update(&mut self, sources: &Sources) -> Result<()> {
        // Before inotify is read: a mount made later is seen at the next update.
        let remounted = sources.remounted();
        let inotify = &sources.inotify;
        loop {
            let events = match inotify.read_events() {
                Ok(events) => events,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(Error::from_errno("read inotify", None, errno)),
            };
            for event in events {
                let mask = event.mask;
                if mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    self.resync()?;
                    continue;
                }
                let gone = AddWatchFlags::IN_IGNORED
                    | AddWatchFlags::IN_DELETE_SELF
                    | AddWatchFlags::IN_MOVE_SELF
                    | AddWatchFlags::IN_UNMOUNT;
                if mask.intersects(gone) {
                    self.ended = true;
                    continue;
                }
                let name = event.name.and_then(|name| name.into_string().ok());
                let Some(name) = name.filter(|_| !mask.contains(AddWatchFlags::IN_ISDIR)) else {
                    continue;
                };
                if mask.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO) {
                    if !self.known.contains(&name) {
                        self.pending.insert(name.clone());
                        self.unlooked.insert(name);
                    }
                } else {
                    self.pending.remove(&name);
                    self.unlooked.remove(&name);
                    if self.known.remove(&name) {
                        self.ready.push_back(WatchEvent::Removed(name));
                    }
                }
            }
        }
        self.check_pending(remounted);
        Ok(())
    }

    /// Reports the pending names that have their namespace now, looking at `all` of them or
    /// only at those not looked at yet.
    fn check_pending(&mut self, all: bool) {
        let dir = self.registry.dir();
        let unlooked = std::mem::take(&mut self.unlooked);
        let bound: Vec<String> = self
            .pending
            .iter()
            .filter(|name| all || unlooked.contains(*name))
            .filter(|name| NetNs::open_at(&dir.join(name), None).is_ok())
            .cloned()
            .collect();
        for name in bound {
            self.pending.remove(&name);
            self.known.insert(name.clone());
            self.ready.push_back(WatchEvent::Added(name));
        }
    }

    /// Compares the directory with what the watch knows and reports the difference (at the
    /// start, and when the kernel dropped events).
    fn resync(&mut self) -> Result<()> {
        let listed: BTreeSet<String> = self.registry.list()?.into_iter().collect();
        let removed: Vec<String> = self.known.difference(&listed).cloned().collect();
        for name in removed {
            self.known.remove(&name);
            self.ready.push_back(WatchEvent::Removed(name));
        }
        self.pending.retain(|name| listed.contains(name));
        let new = listed.into_iter().filter(|name| !self.known.contains(name));
        self.pending.extend(new);
        self.check_pending(true);
        Ok(())
    }
}

/// A [`Watch`] for async code (feature `tokio`): [`next`](AsyncWatch::next) waits on tokio's
/// reactor rather than blocking a thread. Made by [`Watch::into_async`].
///
/// It is a [`Stream`](futures_core::Stream) (and [`Unpin`]), so the adapters of
/// `futures::StreamExt` apply: `filter`, `select` with other streams, and so on. Its own
/// [`next`](AsyncWatch::next) and [`poll_next`](AsyncWatch::poll_next) work without importing
/// a trait; where `StreamExt` is imported, `watch.next()` still calls the inherent method, which
/// waits for the same event.
///
/// ```no_run
/// # use netns_core as in_netns;
/// # async fn demo() -> in_netns::Result<()> {
/// let mut watch = in_netns::NetNs::watch()?.into_async()?;
/// while let Some(event) = watch.next().await {
///     println!("{event:?}");
/// }
/// # Ok(()) }
/// ```
#[cfg(feature = "tokio")]
#[derive(Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct AsyncWatch {
    sources: tokio::io::unix::AsyncFd<Sources>,
    names: Names,
}

#[cfg(feature = "tokio")]
impl AsyncWatch {
    /// The next change, or `None` once the directory is gone; as [`Watch`]'s `next`, without
    /// blocking. Cancel-safe: dropping the future loses no event.
    pub async fn next(&mut self) -> Option<Result<WatchEvent>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next change: `Ready(None)` once the directory is gone, `Pending` (with
    /// `cx`'s waker registered) while nothing changed. The same as the
    /// [`Stream`](futures_core::Stream) implementation's, without pinning.
    pub fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<WatchEvent>>> {
        use std::task::Poll;
        loop {
            if let Some(event) = self.names.ready.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if self.names.ended {
                return Poll::Ready(None);
            }
            let mut guard = match self.sources.poll_read_ready(cx) {
                Poll::Ready(Ok(guard)) => guard,
                Poll::Ready(Err(source)) => {
                    return Poll::Ready(Some(Err(Error::Os {
                        operation: "wait for the watch on tokio's reactor",
                        path: None,
                        source,
                    })));
                }
                Poll::Pending => return Poll::Pending,
            };
            let sources = guard.get_inner();
            let woke = sources.wait(EpollTimeout::ZERO);
            let updated = woke.and_then(|ready| {
                self.names.update(sources)?;
                Ok(ready)
            });
            match updated {
                // Nothing left ready: wait for tokio to see the epoll set ready again.
                Ok(0) => guard.clear_ready(),
                Ok(_) => {}
                Err(err) => return Poll::Ready(Some(Err(err))),
            }
        }
    }
}

/// The watch's events as a stream: [`AsyncWatch::poll_next`], so ending (`None`) once the
/// directory is gone, and cancel-safe.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl futures_core::Stream for AsyncWatch {
    type Item = Result<WatchEvent>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<WatchEvent>>> {
        // The inherent method (an inherent item comes before a trait's of the same name).
        AsyncWatch::poll_next(self.get_mut(), cx)
    }
}

/// Once the directory is gone the watch keeps answering `None`.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl futures_core::FusedStream for AsyncWatch {
    fn is_terminated(&self) -> bool {
        self.names.ended && self.names.ready.is_empty()
    }
}

impl Registry {
    /// Follows the names here as they come and go, as `ip netns monitor` does; see
    /// [`NetNs::watch`].
    pub fn watch(&self) -> Result<Watch> {
        Watch::new(self)
    }
}

impl NetNs {
    /// Follows the names in `/run/netns` as they come and go, as `ip netns monitor` does:
    /// a [`Watch`] (a blocking iterator, and with the `tokio` feature an async one) of
    /// [`WatchEvent`](crate::WatchEvent)s. [`Registry::watch`] follows another directory.
    ///
    /// ```no_run
    /// # use netns_core as in_netns;
    /// use in_netns::{NetNs, WatchEvent};
    /// # fn main() -> in_netns::Result<()> {
    /// for event in NetNs::watch()? {
    ///     match event? {
    ///         WatchEvent::Added(name) => println!("add {name}"),
    ///         WatchEvent::Removed(name) => println!("delete {name}"),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn watch() -> Result<Watch> {
        Registry::default().watch()
    }
}
