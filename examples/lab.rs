//! A network for a test (`in_netns::lab`): a client and a server across a router, the link to
//! the server limited to 10 Mbit/s and losing 1% of what the router sends it. The example
//! measures the throughput of an upload and the round trips of small requests, then takes the
//! link down and shows the error the client gets. Everything is anonymous namespaces: nothing
//! is named on the host, and nothing is left however the process ends.
//!
//! Run it (as root or not): `cargo run --features lab --example lab`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use in_netns::lab::{Conditions, Lab};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const UPLOAD: usize = 2_000_000;
const ROUND_TRIPS: usize = 50;
const PATIENCE: Duration = Duration::from_secs(10);

fn run() -> Result<(), BoxError> {
    let lab = Lab::new();
    let client = lab.host("client")?;
    let router = lab.router("router")?;
    let server = lab.host("server")?;
    let near = lab.link(&client, &router)?;
    let far = lab.link(&router, &server)?;
    let conditions = Conditions::new().rate(10_000_000).loss(0.01);
    far.set_conditions(&router, conditions)?;
    println!(
        "client {} ({}) - router - server {} ({}); router to server: {:?}",
        near.a().ipv4().unwrap(),
        near.a().ifname(),
        far.b().ipv4().unwrap(),
        far.b().ifname(),
        conditions
    );

    // The server, inside its node: uploads are read to the end and acknowledged with a byte;
    // a request of 8 bytes is echoed.
    let at = SocketAddr::new(IpAddr::V4(server.ipv4().unwrap()), 7000);
    let listener = server.ns().tcp_listen(at)?;
    let serving = thread::spawn(move || -> std::io::Result<()> {
        for _ in 0..2 {
            let (mut stream, _) = listener.accept()?;
            stream.set_read_timeout(Some(PATIENCE))?;
            let mut kind = [0];
            stream.read_exact(&mut kind)?;
            if kind[0] == b'u' {
                std::io::copy(&mut stream, &mut std::io::sink())?;
                stream.write_all(&[1])?;
            } else {
                let mut request = [0; 8];
                while stream.read_exact(&mut request).is_ok() {
                    stream.write_all(&request)?;
                }
            }
        }
        Ok(())
    });
    let connect = || -> std::io::Result<TcpStream> {
        let stream = client.ns().tcp_connect(at)?;
        stream.set_read_timeout(Some(PATIENCE))?;
        stream.set_nodelay(true)?;
        Ok(stream)
    };

    let mut upload = connect()?;
    let start = Instant::now();
    upload.write_all(b"u")?;
    upload.write_all(&vec![0; UPLOAD])?;
    upload.shutdown(std::net::Shutdown::Write)?;
    upload.read_exact(&mut [0])?;
    let elapsed = start.elapsed();
    println!(
        "upload of {UPLOAD} bytes: {elapsed:.2?}, {:.2} Mbit/s (the link allows 10)",
        UPLOAD as f64 * 8.0 / elapsed.as_secs_f64() / 1e6
    );

    let mut echo = connect()?;
    echo.write_all(b"e")?;
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..ROUND_TRIPS as u64 {
        let start = Instant::now();
        echo.write_all(&i.to_be_bytes())?;
        let mut reply = [0; 8];
        echo.read_exact(&mut reply)?;
        times.push(start.elapsed());
    }
    drop(echo);
    times.sort();
    println!(
        "{ROUND_TRIPS} round trips: median {:.0?}, p90 {:.0?}, max {:.0?} (a lost segment costs a retransmission)",
        times[ROUND_TRIPS / 2],
        times[ROUND_TRIPS * 9 / 10],
        times[ROUND_TRIPS - 1]
    );
    serving.join().expect("server thread")?;

    far.down()?;
    println!("router - server link down");
    let start = Instant::now();
    match client.ns().tcp_connect(at) {
        Ok(_) => return Err("the client still reached the server with the link down".into()),
        Err(err) => println!(
            "client connecting to {at}: {err} (after {:.1?})",
            start.elapsed()
        ),
    }
    far.up()?;
    // Nothing listens any more: the server's host answers with a reset, so the path is back.
    let closed = SocketAddr::new(at.ip(), at.port());
    match client.ns().tcp_connect(closed) {
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
            println!("link up again: {closed} answers ({err}); dropping the lab removes it all")
        }
        other => return Err(format!("after the link came up: {other:?}").into()),
    }
    Ok(())
}

fn main() -> ExitCode {
    // First thing, before any thread starts: without root, a user namespace of the process's
    // own lets it create network namespaces. As root it does nothing.
    if !in_netns::rootless::privileged() {
        if let Err(err) = in_netns::rootless::enter() {
            eprintln!("lab: cannot create network namespaces: {err}");
            return ExitCode::FAILURE;
        }
        println!("running without root: rootless::enter() gave this process a user namespace");
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lab: {err}");
            ExitCode::FAILURE
        }
    }
}
