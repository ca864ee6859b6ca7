//! `#[in_netns]` at run time: every target form and signature shape, each checking which
//! namespace the body ran in.

mod common;

use std::fmt::Debug;
use std::io;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};

use common::{TempNs, current_id, socket_ns};
use in_netns::{Error, NetNs, NsId, in_netns};

// --- target forms ---------------------------------------------------------------------------

#[in_netns(path)]
fn by_str(path: &str) -> Result<NsId, Error> {
    Ok(current_id())
}

#[in_netns(path)]
fn by_string(path: String) -> Result<NsId, Error> {
    Ok(current_id())
}

#[in_netns(&path)]
fn by_string_ref(path: String) -> Result<(NsId, String), Error> {
    Ok((current_id(), path))
}

#[in_netns(path)]
fn by_path(path: &Path) -> Result<NsId, Error> {
    Ok(current_id())
}

#[in_netns(path)]
fn by_path_buf(path: PathBuf) -> Result<NsId, Error> {
    Ok(current_id())
}

#[in_netns(ns)]
fn by_handle(ns: NetNs) -> Result<NsId, Error> {
    Ok(current_id())
}

#[in_netns(&ns)]
fn by_handle_ref_moving_it(ns: NetNs) -> Result<(NsId, NetNs), Error> {
    // The target named `ns` and the body moves it: the target was resolved first.
    Ok((current_id(), ns))
}

#[in_netns(name = name)]
fn by_name(name: &str) -> Result<NsId, Error> {
    Ok(current_id())
}

#[in_netns(pid = pid)]
fn by_pid(pid: u32) -> Result<NsId, Error> {
    Ok(current_id())
}

#[in_netns("/proc/self/ns/net")]
fn by_literal() -> Result<NsId, Error> {
    Ok(current_id())
}

#[in_netns::test]
fn every_target_form_runs_the_body_inside() {
    let target = TempNs::new("forms");
    let home = current_id();
    let path = target.path();
    let id = target.id();
    assert_eq!(by_str(&path).unwrap(), id);
    assert_eq!(by_string(path.clone()).unwrap(), id);
    assert_eq!(by_string_ref(path.clone()).unwrap(), (id, path.clone()));
    assert_eq!(by_path(Path::new(&path)).unwrap(), id);
    assert_eq!(by_path_buf(PathBuf::from(&path)).unwrap(), id);
    assert_eq!(by_handle(target.ns.try_clone().unwrap()).unwrap(), id);
    let (inside, handle) = by_handle_ref_moving_it(target.ns.try_clone().unwrap()).unwrap();
    assert_eq!((inside, handle.id()), (id, id));
    assert_eq!(by_name(&target.name).unwrap(), id);
    let child = target
        .ns
        .spawn(|| std::process::Command::new("sleep").arg("5").spawn());
    let mut child = child.unwrap().join().unwrap().unwrap();
    let by_child = by_pid(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(by_child.unwrap(), id);
    // The literal names the process's namespace (its main thread's), not this thread's.
    assert_eq!(
        by_literal().unwrap(),
        common::id_of_path("/proc/self/ns/net")
    );
    assert_eq!(current_id(), home);
}

#[in_netns::test]
fn a_target_that_cannot_be_entered_is_the_functions_err_and_the_body_does_not_run() {
    static RAN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    #[in_netns(name = "netns-test-no-such-name")]
    fn never() -> io::Result<()> {
        RAN.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    // Into `io::Error`, the OS error itself: its errno and kind (the message, naming the path,
    // is the `in_netns::Error`'s).
    let err = never().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert_eq!(err.raw_os_error(), Some(nix::libc::ENOENT), "{err}");
    assert!(!RAN.load(std::sync::atomic::Ordering::SeqCst));
}

// --- error types ----------------------------------------------------------------------------

#[derive(Debug)]
enum AppError {
    Netns(Error),
    Parse(std::num::ParseIntError),
}

impl From<Error> for AppError {
    fn from(err: Error) -> Self {
        AppError::Netns(err)
    }
}

impl From<std::num::ParseIntError> for AppError {
    fn from(err: std::num::ParseIntError) -> Self {
        AppError::Parse(err)
    }
}

#[in_netns(path)]
fn question_mark_and_return_keep_their_meaning(path: &str, text: &str) -> Result<u32, AppError> {
    if text.is_empty() {
        return Ok(0);
    }
    let n: u32 = text.parse()?;
    Ok(n + 1)
}

#[in_netns::test]
fn return_and_question_mark_apply_to_the_function() {
    let target = TempNs::new("ret");
    let path = target.path();
    assert_eq!(
        question_mark_and_return_keep_their_meaning(&path, "").unwrap(),
        0
    );
    assert_eq!(
        question_mark_and_return_keep_their_meaning(&path, "41").unwrap(),
        42
    );
    match question_mark_and_return_keep_their_meaning(&path, "x") {
        Err(AppError::Parse(err)) => assert_eq!(err.to_string(), "invalid digit found in string"),
        other => panic!("expected the parse error, got {other:?}"),
    }
    assert!(matches!(
        question_mark_and_return_keep_their_meaning("/nonexistent", "1"),
        Err(AppError::Netns(Error::NotFound { .. }))
    ));
}

// --- signature shapes -----------------------------------------------------------------------

#[in_netns(ns)]
fn borrowed_arguments_and_results<'a>(ns: &NetNs, items: &'a [u32]) -> io::Result<&'a u32> {
    Ok(items.iter().max().unwrap())
}

#[in_netns(ns)]
fn patterns_and_mut(ns: &NetNs, (a, b): (u32, u32), mut total: u32) -> io::Result<u32> {
    total += a * b;
    Ok(total)
}

#[in_netns(ns)]
fn impl_trait_in_and_out(ns: &NetNs, item: impl Debug + Send) -> io::Result<impl Debug> {
    Ok(format!("{item:?} in {}", current_id()))
}

#[in_netns(ns)]
fn generic_with_where<T>(ns: &NetNs, value: T) -> io::Result<(T, NsId)>
where
    T: Clone + Send,
{
    Ok((value.clone(), current_id()))
}

#[in_netns(ns)]
fn mutable_reference(ns: &NetNs, out: &mut Vec<NsId>) -> io::Result<()> {
    out.push(current_id());
    Ok(())
}

#[in_netns(ns)]
fn socket_inside(ns: &NetNs) -> io::Result<UdpSocket> {
    UdpSocket::bind("127.0.0.1:0")
}

/// Doc comments and other attributes stay on the function.
#[in_netns(ns)]
#[inline(never)]
pub(crate) unsafe fn unsafe_fn(ns: &NetNs, addr: usize) -> io::Result<u8> {
    // SAFETY: the caller passes the address of a live byte.
    Ok(unsafe { *(addr as *const u8) })
}

#[in_netns::test]
fn signatures_are_preserved_and_the_body_runs_inside() {
    let target = TempNs::new("shapes");
    let ns = &target.ns;
    let items = vec![3, 9, 4];
    assert_eq!(borrowed_arguments_and_results(ns, &items).unwrap(), &9);
    assert_eq!(patterns_and_mut(ns, (3, 4), 1).unwrap(), 13);
    let text = format!("{:?}", impl_trait_in_and_out(ns, 7).unwrap());
    assert!(text.contains(&target.id().to_string()), "{text}");
    assert_eq!(generic_with_where(ns, "x").unwrap(), ("x", target.id()));
    let mut seen = Vec::new();
    mutable_reference(ns, &mut seen).unwrap();
    assert_eq!(seen, [target.id()]);
    assert_eq!(socket_ns(&socket_inside(ns).unwrap()), target.id());
    let byte = 7_u8;
    // SAFETY: `byte` is alive for the call.
    let read = unsafe { unsafe_fn(ns, &byte as *const u8 as usize) };
    assert_eq!(read.unwrap(), 7);
}

// --- methods --------------------------------------------------------------------------------

struct Agent {
    ns: NetNs,
    calls: u32,
}

impl Agent {
    #[in_netns(&self.ns)]
    fn where_am_i(&self) -> io::Result<NsId> {
        let _ = self.calls;
        Ok(current_id())
    }

    #[in_netns(&self.ns)]
    fn count(&mut self) -> io::Result<u32> {
        self.calls += 1;
        println!("call {} from {}", self.calls, current_id());
        Ok(self.calls)
    }

    #[in_netns(&self.ns)]
    fn into_parts(mut self) -> io::Result<(Self, NsId)> {
        self.calls = 100;
        Ok((self, current_id()))
    }

    #[in_netns(ns)]
    fn make(ns: NetNs) -> io::Result<Self> {
        Ok(Self {
            ns: NetNs::current()?,
            calls: 0,
        })
    }
}

trait Probe: Sync {
    fn target(&self) -> &NetNs;

    #[in_netns(self.target())]
    fn probe(&self) -> Result<NsId, Error> {
        Ok(current_id())
    }
}

impl Probe for Agent {
    fn target(&self) -> &NetNs {
        &self.ns
    }
}

trait Measure {
    fn measure(&self, extra: u32) -> io::Result<(u32, NsId)>;
}

impl Measure for Agent {
    #[in_netns(&self.ns)]
    fn measure(&self, extra: u32) -> io::Result<(u32, NsId)> {
        Ok((self.calls + extra, current_id()))
    }
}

#[in_netns::test]
fn methods_run_inside_with_every_receiver() {
    let target = TempNs::new("methods");
    let mut agent = Agent {
        ns: target.ns.try_clone().unwrap(),
        calls: 0,
    };
    assert_eq!(agent.where_am_i().unwrap(), target.id());
    assert_eq!(agent.count().unwrap(), 1);
    assert_eq!(agent.count().unwrap(), 2);
    assert_eq!(agent.probe().unwrap(), target.id());
    assert_eq!(
        agent.measure(5).unwrap(),
        (7, target.id()),
        "a method of a trait impl"
    );
    let (agent, inside) = agent.into_parts().unwrap();
    assert_eq!((agent.calls, inside), (100, target.id()));
    let made = Agent::make(target.ns.try_clone().unwrap()).unwrap();
    assert_eq!(
        made.ns.id(),
        target.id(),
        "`Self` and `NetNs::current` inside"
    );
}

#[in_netns::test]
fn a_panic_in_an_annotated_body_reaches_the_caller() {
    #[in_netns(ns)]
    fn boom(ns: &NetNs) -> io::Result<()> {
        panic!("boom inside");
    }
    let ns = NetNs::new().unwrap();
    let home = current_id();
    let payload = std::panic::catch_unwind(|| boom(&ns)).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom inside"));
    assert_eq!(current_id(), home);
}
