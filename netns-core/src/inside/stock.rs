//! The stocks of sockets made ahead behind [`NetNs::socket`](crate::NetNs::socket): one per
//! handle and [`SocketOwner`], made by one thread inside, taken under a short lock.
//!
//! A stock grows with demand (it doubles, up to [`MAX_DEPTH`] of a kind, each time a caller
//! finds it empty), is made again by its thread when it runs low, halves each second it is not
//! used, and is closed with the handle's last clone. All stocks of the process together hold at
//! most a quarter of the soft descriptor limit.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::fresh;
use crate::entry::Setup;
use crate::fork::Born;
use crate::namespace::NetNs;
use crate::once::NoWaitOnce;
use crate::security::SocketOwner;
use crate::sync::{self, Spin, lock};
use crate::sys;

/// The most sockets of one kind a stock keeps.
pub(crate) const MAX_DEPTH: usize = 256;

/// How deep a stock starts, once a caller found it empty.
const FIRST_DEPTH: usize = 16;

/// How long a caller that finds the stock empty waits for its thread to make more before it
/// makes a socket another way (a hand-off to a thread inside, which would need a CPU too).
const WAIT_ON_EMPTY: Duration = Duration::from_millis(5);

/// How many sockets the stock's thread makes before it puts them on the shelf.
const BATCH: usize = 8;

/// How often the stock's thread looks at what was taken, and halves what was not.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The kinds of socket a stock keeps: TCP and UDP, IPv4 and IPv6.
const KINDS: [(Domain, Type); 4] = [
    (Domain::IPV4, Type::STREAM),
    (Domain::IPV6, Type::STREAM),
    (Domain::IPV4, Type::DGRAM),
    (Domain::IPV6, Type::DGRAM),
];

/// Which of [`KINDS`] a socket is, if a stock keeps it (protocol 0 is TCP for a stream and UDP
/// for a datagram socket of these domains, so either way is the same socket).
pub(crate) fn kind_of(domain: Domain, ty: Type, protocol: Option<Protocol>) -> Option<usize> {
    let default = match ty {
        Type::STREAM => Protocol::TCP,
        Type::DGRAM => Protocol::UDP,
        _ => return None,
    };
    if protocol.is_some_and(|protocol| protocol != default) {
        return None;
    }
    KINDS.iter().position(|&kind| kind == (domain, ty))
}

/// Sockets in all stocks of the process, against [`budget`].
static STOCKED: AtomicUsize = AtomicUsize::new(0);

/// How many sockets all stocks may hold together: an eighth of the soft descriptor limit.
fn budget() -> usize {
    static BUDGET: NoWaitOnce<usize> = NoWaitOnce::new();
    *BUDGET.get_or_init(|| sys::descriptor_limit().map_or(128, |limit| limit / 8))
}

/// Whether the stocks may hold more sockets.
fn budget_left() -> bool {
    STOCKED.load(Ordering::Relaxed) < budget()
}

/// How many owners besides the first a handle keeps stocks for; callers of further owners get
/// sockets made another way.
const MAX_OTHER_OWNERS: usize = 3;

/// A handle's stocks of sockets made ahead: one per [`SocketOwner`] (usually one).
pub(crate) struct Stocks {
    /// The stock of the first owner that took a socket, the common case: no lock.
    first: NoWaitOnce<Arc<Stock>>,
    /// Stocks of other owners.
    others: Mutex<Vec<Arc<Stock>>>,
    /// The process the handle's state was made in (`None`: forks cannot be counted): a forked
    /// child takes nothing from a stock, touches no lock here, and joins no thread.
    born: Option<Born>,
}

impl Stocks {
    pub(crate) fn new() -> Stocks {
        Stocks {
            first: NoWaitOnce::new(),
            others: Mutex::new(Vec::new()),
            born: Born::here().ok(),
        }
    }

    /// A socket of `kind` made ahead inside `ns`, for the calling thread; `None` when it must be
    /// made another way (none in stock, another owner, seccomp filters, a forked child).
    pub(crate) fn take(&self, ns: &NetNs, kind: usize) -> Option<OwnedFd> {
        if !self.born?.is_here() {
            return None;
        }
        let owner = SocketOwner::current()?;
        let first = self
            .first
            .get_or_init(|| Arc::new(Stock::new(owner.clone())));
        if first.owner == owner {
            return first.take(ns, kind);
        }
        let stock = {
            let mut others = lock(&self.others);
            match others.iter().find(|stock| stock.owner == owner) {
                Some(stock) => Arc::clone(stock),
                None if others.len() >= MAX_OTHER_OWNERS => return None,
                None => {
                    let stock = Arc::new(Stock::new(owner));
                    others.push(Arc::clone(&stock));
                    stock
                }
            }
        };
        stock.take(ns, kind)
    }
}

impl Drop for Stocks {
    fn drop(&mut self) {
        if self.born.is_some_and(|born| !born.is_here()) {
            // A forked child: the threads are not here, and a lock may be held forever. The
            // child's copies of the descriptors close when it exits or execs (close-on-exec).
            std::mem::forget(self.first.take());
            std::mem::forget(std::mem::take(&mut self.others));
            return;
        }
        if let Some(first) = self.first.get() {
            first.stop();
        }
        for stock in lock(&self.others).drain(..) {
            stock.stop();
        }
    }
}

/// Sockets made ahead by one thread inside, for callers of one [`SocketOwner`].
struct Stock {
    owner: SocketOwner,
    shelves: [Shelf; KINDS.len()],
    /// Bumped by a caller that wants the stock made again (and by `stop`): the thread's futex
    /// word.
    wanted: sync::AtomicU32,
    /// Whether a caller asked for more since the thread last started making them: only the
    /// first caller to find a shelf low wakes the thread.
    asked: AtomicBool,
    sleeping: sync::AtomicBool,
    stopping: AtomicBool,
    /// The thread that makes the sockets, started by a caller that wants one, and its id.
    thread: Mutex<Option<JoinHandle<()>>>,
    tid: Arc<AtomicI32>,
    /// Whether a thread runs (or is starting); it ends after a while with nothing in stock.
    started: AtomicBool,
    /// Whether the thread can make sockets for the stock's owner (it runs, and the process's
    /// credentials are still the owner's): only then does a caller wait for it.
    able: AtomicBool,
}

impl Shelf {
    /// Takes the most recently made socket, and says how many are left.
    fn pop(&self) -> (Option<OwnedFd>, usize) {
        let mut sockets = lock(&self.sockets);
        let socket = sockets.pop();
        if socket.is_some() {
            STOCKED.fetch_sub(1, Ordering::Relaxed);
        }
        (socket, sockets.len())
    }
}

/// Sockets of one kind.
struct Shelf {
    sockets: Mutex<Vec<OwnedFd>>,
    /// How many to keep: 0 until a caller finds none, then doubling each time one does.
    depth: AtomicUsize,
    /// Whether one was taken since the thread last looked.
    taken: AtomicBool,
    /// Callers waiting for the shelf to be filled, on `filled` (with `empty`).
    waiting: AtomicUsize,
    empty: Mutex<()>,
    filled: std::sync::Condvar,
}

impl Stock {
    fn new(owner: SocketOwner) -> Stock {
        Stock {
            owner,
            shelves: std::array::from_fn(|_| Shelf {
                sockets: Mutex::new(Vec::new()),
                depth: AtomicUsize::new(0),
                taken: AtomicBool::new(false),
                waiting: AtomicUsize::new(0),
                empty: Mutex::new(()),
                filled: std::sync::Condvar::new(),
            }),
            wanted: sync::AtomicU32::new(0),
            asked: AtomicBool::new(false),
            sleeping: sync::AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            thread: Mutex::new(None),
            tid: Arc::new(AtomicI32::new(0)),
            started: AtomicBool::new(false),
            able: AtomicBool::new(false),
        }
    }

    /// Takes a socket of `kind`, asking for more when the shelf runs low (below three quarters
    /// of its depth, so the thread has a quarter's worth of calls to get a CPU); `None` when it
    /// stays empty (it is then made deeper).
    fn take(self: &Arc<Stock>, ns: &NetNs, kind: usize) -> Option<OwnedFd> {
        let shelf = &self.shelves[kind];
        let (socket, left) = shelf.pop();
        if !shelf.taken.load(Ordering::Relaxed) {
            shelf.taken.store(true, Ordering::Relaxed);
        }
        let depth = shelf.depth.load(Ordering::Relaxed);
        if socket.is_some() {
            if left < depth - depth / 4 {
                self.want_more(ns);
            }
            return socket;
        }
        let deeper = (depth * 2).clamp(FIRST_DEPTH, MAX_DEPTH);
        shelf.depth.fetch_max(deeper, Ordering::Relaxed);
        self.want_more(ns);
        // The thread is making more (unless it cannot, or the budget is spent): wait for
        // them, since a hand-off to another thread inside would wait for a CPU too.
        if !self.able.load(Ordering::Acquire) || !budget_left() {
            return None;
        }
        shelf.waiting.fetch_add(1, Ordering::AcqRel);
        let deadline = std::time::Instant::now() + WAIT_ON_EMPTY;
        let mut empty = lock(&shelf.empty);
        let socket = loop {
            if let (Some(socket), _) = shelf.pop() {
                break Some(socket);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || self.stopping.load(Ordering::Acquire) {
                break None;
            }
            empty = match shelf.filled.wait_timeout(empty, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        };
        drop(empty);
        shelf.waiting.fetch_sub(1, Ordering::AcqRel);
        socket
    }

    /// Wakes the stock's thread, starting it first if none runs; nothing when a caller asked
    /// already and the thread has not started on it.
    fn want_more(self: &Arc<Stock>, ns: &NetNs) {
        if self.asked.load(Ordering::Relaxed) || self.asked.swap(true, Ordering::AcqRel) {
            return;
        }
        self.wanted.fetch_add(1, Ordering::SeqCst);
        if !self.started.load(Ordering::Acquire) && !self.started.swap(true, Ordering::AcqRel) {
            let stock = Arc::clone(self);
            let tid = Arc::clone(&self.tid);
            // Born from this caller (whose owner the stock's is) through a thread that entered.
            let started = fresh::spawn(ns, &Setup::DEFAULT, move || {
                tid.store(sys::gettid(), Ordering::Release);
                stock.make();
            });
            match started {
                // A handle of an earlier thread (ended) is dropped: nothing to wait for.
                Ok(thread) => *lock(&self.thread) = Some(thread),
                Err(err) => {
                    crate::report::debug!("no thread to make sockets ahead: {err:?}");
                    // A later caller (one that can enter, maybe) tries again.
                    self.started.store(false, Ordering::Release);
                    self.asked.store(false, Ordering::Release);
                }
            }
            return;
        }
        sync::wake(&self.wanted, &self.sleeping);
    }

    /// The stock's thread: makes each shelf as deep as wanted, whenever asked, and halves
    /// what was not used each [`LOOK_EVERY`]; ends when stopped, or once nothing is kept (a
    /// later caller starts another). While the process's credentials are not the stock's owner's
    /// (a `setegid` for a while), it makes none, and keeps none: they would not be its callers'.
    fn make(&self) {
        self.able.store(true, Ordering::Release);
        let mut seen = u32::MAX;
        loop {
            let now = self.wanted.load(Ordering::Acquire);
            if now == seen {
                let ready = |wanted| wanted != seen || self.stopping.load(Ordering::Acquire);
                let asked = sync::wait_until_or_timeout(
                    &self.wanted,
                    &self.sleeping,
                    ready,
                    LOOK_EVERY,
                    Spin::NONE,
                );
                if asked.is_none() && self.shrink_unused() {
                    // Nothing kept: end, unless a caller asked meanwhile (it saw `started`).
                    self.able.store(false, Ordering::Release);
                    self.started.store(false, Ordering::Release);
                    self.asked.store(false, Ordering::Release);
                    let asked_since = self.wanted.load(Ordering::Acquire) != seen;
                    if !asked_since || self.started.swap(true, Ordering::AcqRel) {
                        return;
                    }
                    self.able.store(true, Ordering::Release);
                }
            }
            if self.stopping.load(Ordering::Acquire) {
                self.able.store(false, Ordering::Release);
                return;
            }
            seen = self.wanted.load(Ordering::Acquire);
            // Later callers that find a shelf low ask again.
            self.asked.store(false, Ordering::Release);
            let owners = SocketOwner::current().as_ref() == Some(&self.owner);
            self.able.store(owners, Ordering::Release);
            if !owners {
                crate::report::debug!("sockets made ahead: not now, the owner changed");
                self.close_all();
                continue;
            }
            self.fill();
        }
    }

    /// Makes every shelf as deep as wanted, within the process's budget.
    fn fill(&self) {
        for (shelf, &(domain, ty)) in self.shelves.iter().zip(&KINDS) {
            let have = lock(&shelf.sockets).len();
            let want = shelf.depth.load(Ordering::Relaxed).saturating_sub(have);
            let room = budget().saturating_sub(STOCKED.load(Ordering::Relaxed));
            let mut left = want.min(room);
            // Put on the shelf a few at a time, so that a caller waiting on an empty shelf gets
            // one soon.
            while left > 0 {
                let made: Vec<OwnedFd> = (0..left.min(BATCH))
                    .map_while(|_| Socket::new(domain, ty, None).ok().map(OwnedFd::from))
                    .collect();
                let failed = made.len() < left.min(BATCH);
                left -= made.len();
                STOCKED.fetch_add(made.len(), Ordering::Relaxed);
                lock(&shelf.sockets).extend(made);
                if shelf.waiting.load(Ordering::Acquire) > 0 {
                    let _held = lock(&shelf.empty);
                    shelf.filled.notify_all();
                }
                if failed {
                    break;
                }
            }
        }
    }

    /// Halves what each shelf that no caller took from since the last look holds (and wants),
    /// closing the rest; says whether every shelf is now empty and wants none.
    fn shrink_unused(&self) -> bool {
        let mut all_empty = true;
        for shelf in &self.shelves {
            if shelf.taken.swap(false, Ordering::Relaxed) {
                all_empty = false;
                continue;
            }
            let closed: Vec<OwnedFd> = {
                let mut sockets = lock(&shelf.sockets);
                let depth = shelf.depth.load(Ordering::Relaxed).min(sockets.len()) / 2;
                shelf.depth.store(depth, Ordering::Relaxed);
                all_empty &= depth == 0;
                sockets.drain(depth..).collect()
            };
            STOCKED.fetch_sub(closed.len(), Ordering::Relaxed);
        }
        all_empty
    }

    fn close_all(&self) {
        for shelf in &self.shelves {
            shelf.depth.store(0, Ordering::Relaxed);
            let closed = std::mem::take(&mut *lock(&shelf.sockets));
            STOCKED.fetch_sub(closed.len(), Ordering::Relaxed);
        }
    }

    /// Ends the thread and closes the stock (the handle's last clone is dropping).
    fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wanted.fetch_add(1, Ordering::SeqCst);
        sync::wake(&self.wanted, &self.sleeping);
        if let Some(thread) = lock(&self.thread).take() {
            // A thread a process-wide seccomp filter killed never returns: not joined.
            if !crate::thread::ended_without_returning(&thread, self.tid.load(Ordering::Acquire)) {
                let _ = thread.join();
            }
        }
        self.close_all();
    }
}
