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
