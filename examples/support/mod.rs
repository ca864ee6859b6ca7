//! What every example needs: a clear exit without privilege, and temporary named namespaces
//! that are removed at the end, on an error and on Ctrl-C.
#![allow(dead_code)] // each example uses its own subset

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once, PoisonError};

use in_netns::NetNs;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

/// Makes the process able to create namespaces (as root it already is; without root,
/// `rootless::enter` gives it a user namespace of its own), exits with one line when it cannot,
/// and routes Ctrl-C and SIGTERM to a thread that cleans up. Call first in `main`, before any
/// thread starts.
pub fn init(example: &str) {
    if let Err(err) = in_netns::rootless::enter() {
        eprintln!(
            "{example}: cannot create network namespaces: {err}\n(run as root, or where unprivileged user namespaces are allowed)"
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

/// The names of the live `TempNamespace`s: what a signal removes before the process exits.
static NAMESPACES: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Set by `catch_interrupt`: then the first signal only sets `INTERRUPTED`.
static CATCHING: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Starts, once, the thread that takes Ctrl-C and SIGTERM. By default a signal removes every
/// live `TempNamespace` and exits with 130; after `catch_interrupt`, a signal only sets a flag
/// for the example to see (`check_interrupt`) and clean up through its drop guards.
fn watch_signals() {
    static WATCH: Once = Once::new();
    WATCH.call_once(|| {
        std::thread::spawn(|| {
            while shutdown_signals().wait().is_ok() {
                if CATCHING.load(Ordering::SeqCst) {
                    // Repeats (`timeout` and `kill` may send one twice) change nothing: the
                    // example's steps are bounded, so its cleanup comes soon.
                    if !INTERRUPTED.swap(true, Ordering::SeqCst) {
                        eprintln!("interrupted: cleaning up");
                    }
                    continue;
                }
                let names = NAMESPACES
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                for name in names {
                    if NetNs::remove(&name).is_ok() {
                        eprintln!("interrupted: removed namespace {name}");
                    }
                }
                std::process::exit(130);
            }
        });
    });
}

/// Makes Ctrl-C (or SIGTERM) set a flag instead of ending the process, for an example
/// that cleans up more than its namespaces: it calls `check_interrupt` between its steps, and
/// its drop guards run as on any error. Call after `init`.
pub fn catch_interrupt() {
    CATCHING.store(true, Ordering::SeqCst);
    watch_signals();
}

/// Whether Ctrl-C or SIGTERM came (after `catch_interrupt`).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The error an example returns, to clean up and stop, once Ctrl-C or SIGTERM came.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// `Err(Interrupted)` once Ctrl-C or SIGTERM came (after `catch_interrupt`).
pub fn check_interrupt() -> Result<(), Interrupted> {
    if interrupted() {
        Err(Interrupted)
    } else {
        Ok(())
    }
}

/// Reports an example's outcome as its exit code (130 after Ctrl-C, as a shell reports it).
pub fn finish(example: &str, outcome: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{example}: {err}");
            if interrupted() {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
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
        // Listed before it exists, so that a signal at any moment removes it.
        watch_signals();
        listed(|names| names.push(name.clone()));
        let ns = match NetNs::create(&name) {
            Ok(ns) => ns,
            Err(err) => {
                listed(|names| names.retain(|n| *n != name));
                return Err(err);
            }
        };
        println!("created namespace {name} ({})", ns.id());
        Ok(TempNamespace { name, ns })
    }
}

fn listed(change: impl FnOnce(&mut Vec<String>)) {
    change(&mut NAMESPACES.lock().unwrap_or_else(PoisonError::into_inner));
}

impl Drop for TempNamespace {
    fn drop(&mut self) {
        match NetNs::remove(&self.name) {
            Ok(()) => println!("removed namespace {}", self.name),
            Err(err) => eprintln!("could not remove namespace {}: {err}", self.name),
        }
        listed(|names| names.retain(|n| *n != self.name));
    }
}

/// Files in `/etc/netns/NAME/`, which `Options::etc` binds over `/etc` for the namespace NAME;
/// removed on drop, with `/etc/netns` when this made it.
pub struct EtcFiles {
    dir: std::path::PathBuf,
    made_etc_netns: bool,
}

impl EtcFiles {
    pub fn create(name: &str, files: &[(&str, &str)]) -> std::io::Result<EtcFiles> {
        let made_etc_netns = std::fs::create_dir(in_netns::ETC_DIR).is_ok();
        let dir = std::path::Path::new(in_netns::ETC_DIR).join(name);
        let etc = EtcFiles {
            dir,
            made_etc_netns,
        };
        std::fs::create_dir_all(&etc.dir)?;
        for (file, content) in files {
            std::fs::write(etc.dir.join(file), content)?;
        }
        Ok(etc)
    }
}

impl Drop for EtcFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if self.made_etc_netns {
            let _ = std::fs::remove_dir(in_netns::ETC_DIR);
        }
    }
}
