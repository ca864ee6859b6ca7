//! `#[in_netns::test]`: each test runs in a fresh namespace with `lo` up, with or without root.

mod common;

use std::fs;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::current_id;
use in_netns::NetNs;

/// The port both tests below bind, each in its own namespace.
const SAME_PORT: &str = "127.0.0.1:47123";

/// Names the directory in which the two tests below meet; set only by
/// [`tests_may_bind_the_same_port`] for the run it starts.
const MEETING_DIR: &str = "IN_NETNS_SAME_PORT_MEETING";

/// How long each of the two tests waits for the other to hold the port too.
const MEETING_TIMEOUT: Duration = Duration::from_secs(20);

/// Several tests bind one address and port at the same time: each has its own loopback.
///
/// Two tests prove that only if both hold the port at once, so they must run concurrently,
/// which the run this one is part of may not allow (`--test-threads=1`, a filter, one CPU, or
/// a long test holding the other thread). This test therefore runs the test binary again for
/// just the two, on two threads: as root they run as threads of that process, each in a
/// namespace of its own; without root each runs in a process of its own, as any test then does.
/// It is a plain `#[test]` so that the run inherits this process's privilege (or its lack).
#[test]
fn tests_may_bind_the_same_port() {
    let meeting = Meeting::new();
    let both = [
        "tests_may_bind_the_same_port_a",
        "tests_may_bind_the_same_port_b",
    ];
    let env = [(MEETING_DIR, meeting.dir.as_os_str())];
    if let Err(report) = common::run_ignored_tests(&both, 2, &env) {
        panic!("both tests should pass, each holding {SAME_PORT} while the other does:\n{report}");
    }
}

#[in_netns::test]
#[ignore = "run, with its pair at the same time, by tests_may_bind_the_same_port"]
fn tests_may_bind_the_same_port_a() -> io::Result<()> {
    hold_the_same_port_as("a", "b")
}

#[in_netns::test]
#[ignore = "run, with its pair at the same time, by tests_may_bind_the_same_port"]
fn tests_may_bind_the_same_port_b() -> io::Result<()> {
    hold_the_same_port_as("b", "a")
}

/// Binds [`SAME_PORT`], says so with a file named `me` in the meeting directory, and keeps the
/// port until the file `other` shows that the other test holds it too; then connects to it.
///
/// Whichever test leaves its file second holds the port then, and so does the first, which
/// keeps it until it has seen that file: both hold it at one moment. Files in a directory
/// outside the namespaces meet across threads and processes alike (an abstract Unix socket
/// would not: those are per network namespace).
fn hold_the_same_port_as(me: &str, other: &str) -> io::Result<()> {
    let dir = std::env::var_os(MEETING_DIR)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("{MEETING_DIR} is unset: run tests_may_bind_the_same_port, which runs this test")
        });
    let listener = TcpListener::bind(SAME_PORT)?;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(me))?;
    let deadline = Instant::now() + MEETING_TIMEOUT;
    while !dir.join(other).exists() {
        assert!(
            Instant::now() < deadline,
            "test {me} held {SAME_PORT} for {MEETING_TIMEOUT:?} but test {other} never did"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    TcpStream::connect(listener.local_addr()?)?;
    Ok(())
}

/// A directory of its own for one meeting of the two tests, removed with what they left in
/// it when dropped (also when the test fails).
struct Meeting {
    dir: PathBuf,
}

impl Meeting {
    fn new() -> Meeting {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("in-netns-same-port-{}-{nanos}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Meeting { dir }
    }
}

impl Drop for Meeting {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[in_netns::test]
fn the_body_runs_in_a_fresh_namespace_with_only_lo() {
    let here = NetNs::current().unwrap();
    assert_eq!(here.id(), current_id());
    let dev = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
    let links: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(links, ["lo"]);
}

#[in_netns::test]
#[should_panic(expected = "a panic reaches the harness")]
fn should_panic_passes_through() {
    panic!("a panic reaches the harness");
}

#[in_netns::test]
#[ignore = "shows that #[ignore] passes through"]
fn ignore_passes_through() {
    panic!("an ignored test must not run unless asked");
}

#[cfg(feature = "tokio")]
#[in_netns::test]
async fn async_tests_run_inside_with_tokio_io() -> io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accept = tokio::spawn(async move { listener.accept().await.map(|_| current_id()) });
    tokio::net::TcpStream::connect(addr).await?;
    let accepted_in = accept.await.unwrap()?;
    assert_eq!(accepted_in, current_id());
    Ok(())
}

/// `#[should_panic]` in a process of its own (as every test without root runs): passes only if
/// the child panicked with the expected text.
#[in_netns::test(own_process)]
#[should_panic(expected = "boom in the child")]
fn should_panic_in_a_process_of_its_own_passes_when_the_child_panics_as_expected() {
    panic!("boom in the child");
}

#[in_netns::test(own_process)]
#[should_panic]
#[ignore = "must fail: run by a_test_that_must_fail_fails"]
fn should_panic_but_does_not() {}

#[in_netns::test(own_process)]
#[should_panic(expected = "boom")]
#[ignore = "must fail: run by a_test_that_must_fail_fails"]
fn should_panic_with_another_message() {
    panic!("another message");
}

#[in_netns::test]
#[ignore = "must fail: run by a_test_that_must_fail_fails"]
fn returns_a_boxed_error() -> Result<(), Box<dyn std::error::Error>> {
    Err("a boxed error".into())
}

#[in_netns::test]
fn a_boxed_error_is_a_test_result_too() -> Result<(), Box<dyn std::error::Error>> {
    std::net::UdpSocket::bind("127.0.0.1:0")?;
    Ok(())
}

/// Each test above that must fail, run on its own: it fails, as root and without.
#[in_netns::test(own_process)]
fn a_test_that_must_fail_fails() {
    let exe = std::env::current_exe().unwrap();
    for test in [
        "should_panic_but_does_not",
        "should_panic_with_another_message",
        "returns_a_boxed_error",
    ] {
        let output = std::process::Command::new(&exe)
            .args([test, "--exact", "--ignored", "--test-threads=1"])
            .env_remove("IN_NETNS_TEST_RERUN")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !output.status.success() && stdout.contains("1 failed"),
            "{test} should fail:\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
