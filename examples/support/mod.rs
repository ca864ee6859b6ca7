//! What every example needs: a clear exit without privilege, and a temporary named namespace
//! that is removed at the end, on an error and on Ctrl-C.
#![allow(dead_code)] // each example uses its own subset

use std::process::ExitCode;

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
