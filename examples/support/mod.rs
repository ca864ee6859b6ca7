//! What every example needs: a clear exit without privilege, and a temporary named namespace
//! that is removed at the end, on an error and on Ctrl-C.
#![allow(dead_code)] // each example uses its own subset

use std::process::ExitCode;

#[path = "../../tests/common/privilege.rs"]
mod privilege;

use in_netns::NetNs;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

/// Exits with one line when the process cannot create namespaces, and routes Ctrl-C and
/// SIGTERM to a thread that cleans up. Call first in `main`, before any thread starts.
pub fn init(example: &str) {
    if !privilege::has_cap_sys_admin() {
        eprintln!(
            "{example}: needs root or CAP_SYS_ADMIN to create network namespaces (try: sudo cargo run --example {example})"
        );
        std::process::exit(1);
    }
    // Blocked here, these signals stay blocked in every thread started later; the cleanup
    // thread takes them with sigwait.
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&shutdown_signals()), None);
}

fn shutdown_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set
}

/// Reports an example's outcome as its exit code.
pub fn finish(example: &str, outcome: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{example}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A named namespace (`ip netns list` shows it while the example runs), removed on drop and on
/// Ctrl-C.
pub struct TempNamespace {
    pub name: String,
    pub ns: NetNs,
}

impl TempNamespace {
    pub fn create(prefix: &str) -> in_netns::Result<TempNamespace> {
        let name = format!("{prefix}-{}", std::process::id());
        let ns = NetNs::create(&name)?;
        let on_signal = name.clone();
        std::thread::spawn(move || {
            if shutdown_signals().wait().is_ok() {
                let _ = NetNs::remove(&on_signal);
                eprintln!("interrupted: removed namespace {on_signal}");
                std::process::exit(130);
            }
        });
        println!("created namespace {name} ({})", ns.id());
        Ok(TempNamespace { name, ns })
    }
}

impl Drop for TempNamespace {
    fn drop(&mut self) {
        match NetNs::remove(&self.name) {
            Ok(()) => println!("removed namespace {}", self.name),
            Err(err) => eprintln!("could not remove namespace {}: {err}", self.name),
        }
    }
}
