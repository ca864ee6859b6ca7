//! `#[in_netns::test]`: each test runs in a fresh namespace with `lo` up, with or without root.

mod common;

use std::io;
use std::net::{TcpListener, TcpStream};

use common::current_id;
use in_netns::NetNs;

/// Several tests bind one address and port: each has its own loopback.
#[in_netns::test]
fn tests_may_bind_the_same_port_a() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:47123")?;
    TcpStream::connect(listener.local_addr()?)?;
    Ok(())
}

#[in_netns::test]
fn tests_may_bind_the_same_port_b() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:47123")?;
    TcpStream::connect(listener.local_addr()?)?;
    Ok(())
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
