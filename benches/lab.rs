//! What a lab costs (`in_netns::lab`, feature `lab`): two hosts and a router, two links,
//! addresses and routes, built and dropped, in interleaved rounds (median and p90), against the
//! same topology built with `ip` commands (a process each, as root, when `ip` is there); and 16
//! labs built at once from 16 threads of one process.
//!
//! Goals: build <= 5 ms, drop <= 5 ms (medians), 16 at once <= 150 ms (median wall time).
//!
//! Run it: `cargo bench --features lab --bench lab`.

#[path = "common/mod.rs"]
mod common;

use std::process::Command;
use std::sync::Barrier;
use std::time::Instant;

use common::{Sample, interleave, median, p90};
use in_netns::lab::Lab;

const ROUNDS: usize = 21;
const PARALLEL: usize = 16;

/// Two hosts and a router: `a - r - b`, with addresses and routes.
fn build() -> Lab {
    let lab = Lab::new();
    let a = lab.host("a").expect("host");
    let r = lab.router("r").expect("router");
    let b = lab.host("b").expect("host");
    lab.link(&a, &r).expect("link");
    lab.link(&r, &b).expect("link");
    lab
}

/// The same topology with `ip` (named namespaces, one process per command), and its removal.
struct IpLab {
    names: [String; 3],
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("spawn ip");
    assert!(status.success(), "ip {}", args.join(" "));
}

impl IpLab {
    fn build(round: usize) -> IpLab {
        let pid = std::process::id();
        let names = ["a", "r", "b"].map(|n| format!("lab-bench-{pid}-{round}-{n}"));
        let [a, r, b] = &names;
        for name in &names {
            ip(&["netns", "add", name]);
            ip(&["-n", name, "link", "set", "lo", "up"]);
        }
        ip(&[
            "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", r,
        ]);
        ip(&[
            "-n", r, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", b,
        ]);
        for (ns, dev, v4, v6) in [
            (a, "eth0", "10.0.0.1/24", "fd00::1/64"),
            (r, "eth0", "10.0.0.2/24", "fd00::2/64"),
            (r, "eth1", "10.0.1.1/24", "fd00:0:0:1::1/64"),
            (b, "eth0", "10.0.1.2/24", "fd00:0:0:1::2/64"),
        ] {
            ip(&["-n", ns, "addr", "add", v4, "dev", dev]);
            ip(&["-n", ns, "addr", "add", v6, "dev", dev, "nodad"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        ip(&[
            "netns",
            "exec",
            r,
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv4/conf/all/forwarding && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
        ]);
        ip(&["-n", a, "route", "add", "10.0.1.0/24", "via", "10.0.0.2"]);
        ip(&["-n", a, "route", "add", "fd00:0:0:1::/64", "via", "fd00::2"]);
        ip(&["-n", b, "route", "add", "10.0.0.0/24", "via", "10.0.1.1"]);
        ip(&["-n", b, "route", "add", "fd00::/64", "via", "fd00:0:0:1::1"]);
        IpLab { names }
    }

    fn remove(self) {
        for name in &self.names {
            ip(&["netns", "del", name]);
        }
    }
}

fn main() {
    if let Err(err) = in_netns::rootless::enter() {
        panic!("the benchmark needs namespaces: {err}");
    }
    // Warm up: the first namespaces and threads of the process cost more.
    drop(build());

    let mut dropped = Vec::with_capacity(ROUNDS);
    let mut ip_dropped = Vec::with_capacity(ROUNDS);
    let mut round = 0;
    let mut samples: Vec<Sample<'_>> = vec![(
        "lab: build (3 nodes, 2 links, addresses, routes)",
        Box::new(|| {
            let start = Instant::now();
            let lab = build();
            let built = start.elapsed().as_secs_f64();
            let start = Instant::now();
            drop(lab);
            dropped.push(start.elapsed().as_secs_f64());
            built
        }),
    )];
    let ip_there = Command::new("ip").arg("-V").output().is_ok();
    let root = nix::unistd::geteuid().is_root()
        && std::fs::read_to_string("/proc/self/uid_map")
            .is_ok_and(|map| map.split_whitespace().nth(2) == Some("4294967295"));
    if ip_there && root {
        samples.push((
            "ip commands: build (a process each)",
            Box::new(|| {
                round += 1;
                let start = Instant::now();
                let lab = IpLab::build(round);
                let built = start.elapsed().as_secs_f64();
                let start = Instant::now();
                lab.remove();
                ip_dropped.push(start.elapsed().as_secs_f64());
                built
            }),
        ));
    }
    let values = interleave(&mut samples, ROUNDS);
    let names: Vec<&str> = samples.iter().map(|(name, _)| *name).collect();
    drop(samples);
    dropped.sort_by(f64::total_cmp);
    ip_dropped.sort_by(f64::total_cmp);

    println!("\na lab of 2 hosts and a router, {ROUNDS} interleaved rounds");
    println!("  {:<52} {:>10} {:>10}", "", "median ms", "p90 ms");
    let line = |name: &str, sorted: &[f64]| {
        println!(
            "  {name:<52} {:>10.2} {:>10.2}",
            median(sorted) * 1e3,
            p90(sorted) * 1e3
        );
    };
    for (name, sorted) in names.iter().zip(&values) {
        line(name, sorted);
    }
    line("lab: drop", &dropped);
    if ip_there && root {
        line("ip commands: netns del x3", &ip_dropped);
    } else if !ip_there {
        println!("  (no `ip` command here: the comparison with ip commands is left out)");
    } else {
        println!(
            "  (not root: `ip netns add` needs it, so the comparison with ip commands is left out)"
        );
    }

    // 16 labs at once, from 16 threads, released together.
    let mut walls = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let barrier = Barrier::new(PARALLEL + 1);
        let wall = std::thread::scope(|scope| {
            let builders: Vec<_> = (0..PARALLEL)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        build()
                    })
                })
                .collect();
            barrier.wait();
            let start = Instant::now();
            let labs: Vec<Lab> = builders.into_iter().map(|b| b.join().unwrap()).collect();
            let wall = start.elapsed().as_secs_f64();
            drop(labs);
            wall
        });
        walls.push(wall);
    }
    walls.sort_by(f64::total_cmp);
    line(
        &format!("{PARALLEL} labs built at once (wall time)"),
        &walls,
    );

    let goal = |what: &str, value: f64, limit_ms: f64| {
        let met = value * 1e3 <= limit_ms;
        println!(
            "  goal: {what} median {:.2} ms <= {limit_ms} ms: {}",
            value * 1e3,
            if met { "met" } else { "MISSED" }
        );
    };
    goal("build", median(&values[0]), 5.0);
    goal("drop", median(&dropped), 5.0);
    goal(&format!("{PARALLEL} at once"), median(&walls), 150.0);
    if ip_there && root {
        println!(
            "  lab build / ip commands build (medians): {:.3}",
            median(&values[0]) / median(&values[1])
        );
    }
}
