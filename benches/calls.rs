//! What a call into a namespace costs, side by side in one run: the floor (switching the
//! calling thread in and out with `setns`), a bare scoped thread, `NetNs::run`, `#[in_netns]`,
//! `Worker::run`, the `/sys` and `/etc` options, and making and opening handles.
//!
//! Run as root: `cargo bench`. Criterion prints each benchmark; the table at the end gives the
//! goals as ratios, each measured by alternating the two sides in rounds (this machine is
//! shared and noisy, so absolute times drift; ratios of interleaved rounds do not).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use in_netns::{NetNs, Options, Worker, in_netns};
use nix::sched::{CloneFlags, setns};

/// The namespace every benchmark enters, named so `etc` can be measured; removed on drop.
struct Fixture {
    name: String,
    ns: NetNs,
    home: NetNs,
    worker: Worker,
}

impl Fixture {
    fn new() -> Fixture {
        let name = format!("netns-bench-{}", std::process::id());
        let ns = NetNs::create(&name).unwrap_or_else(|e| {
            eprintln!("benches: {e}\nbenches: run them as root (`sudo cargo bench`)");
            std::process::exit(1)
        });
        let worker = Worker::new(&ns).expect("start worker");
        Fixture {
            name,
            ns,
            home: NetNs::current().expect("open home namespace"),
            worker,
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = NetNs::remove(&self.name);
    }
}

#[in_netns(ns)]
fn macro_with_handle(ns: &NetNs) -> in_netns::Result<u32> {
    Ok(black_box(1))
}

#[in_netns(path)]
fn macro_with_path(path: &str) -> in_netns::Result<u32> {
    Ok(black_box(1))
}

#[in_netns(worker)]
fn macro_with_worker(worker: &Worker) -> in_netns::Result<u32> {
    Ok(black_box(1))
}

/// The floor: what switching the calling thread in and out costs (and what it risks).
fn setns_pair(f: &Fixture) {
    setns(&f.ns, CloneFlags::CLONE_NEWNET).expect("setns in");
    setns(&f.home, CloneFlags::CLONE_NEWNET).expect("setns back");
}

/// The baseline for `NetNs::run`: a scoped thread that enters and ends, with nothing else.
fn bare_scoped_thread(f: &Fixture) {
    std::thread::scope(|scope| {
        scope
            .spawn(|| setns(&f.ns, CloneFlags::CLONE_NEWNET).expect("setns"))
            .join()
            .expect("join")
    });
}

/// A named per-call benchmark.
type Call<'a> = (&'static str, Box<dyn Fn() + 'a>);

/// Every per-call benchmark, by name.
fn calls(f: &Fixture) -> Vec<Call<'_>> {
    let path = format!("/run/netns/{}", f.name);
    let sysfs = Options::default().sysfs(true);
    let etc = Options::default().etc(true);
    vec![
        (
            "floor: setns in + out on the caller",
            Box::new(move || setns_pair(f)),
        ),
        (
            "bare scoped spawn + setns + join",
            Box::new(move || bare_scoped_thread(f)),
        ),
        (
            "NetNs::run",
            Box::new(move || f.ns.run(|| black_box(1)).map(drop).unwrap()),
        ),
        (
            "#[in_netns(&ns)]",
            Box::new(move || macro_with_handle(&f.ns).map(drop).unwrap()),
        ),
        (
            "#[in_netns(path)]",
            Box::new(move || macro_with_path(&path).map(drop).unwrap()),
        ),
        (
            "Worker::run (warm)",
            Box::new(move || f.worker.run(|| black_box(1)).map(drop).unwrap()),
        ),
        (
            "#[in_netns(&worker)]",
            Box::new(move || macro_with_worker(&f.worker).map(drop).unwrap()),
        ),
        (
            "NetNs::run_with(sysfs)",
            Box::new(move || f.ns.run_with(&sysfs, || black_box(1)).map(drop).unwrap()),
        ),
        (
            "NetNs::run_with(etc)",
            Box::new(move || f.ns.run_with(&etc, || black_box(1)).map(drop).unwrap()),
        ),
    ]
}

/// Calls after the worker has gone idle and parked: the price of a wake-up.
fn worker_cold(f: &Fixture, iterations: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iterations {
        std::thread::sleep(Duration::from_micros(300));
        let start = Instant::now();
        f.worker.run(|| black_box(1)).unwrap();
        total += start.elapsed();
    }
    total
}

fn criterion_benches(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("per call");
    for (name, call) in calls(f) {
        group.bench_function(name, |b| b.iter(&call));
    }
    group.bench_function("Worker::run (cold, after it parked)", |b| {
        b.iter_custom(|iterations| worker_cold(f, iterations))
    });
    group.finish();

    let mut group = c.benchmark_group("handles");
    let path = format!("/run/netns/{}", f.name);
    group.bench_function("NetNs::open", |b| b.iter(|| NetNs::open(&path).unwrap()));
    group.bench_function("NetNs::new", |b| b.iter(|| NetNs::new().unwrap()));
    let scratch = format!("{}-scratch", f.name);
    group.bench_function("NetNs::create + remove", |b| {
        b.iter(|| {
            drop(NetNs::create(&scratch).unwrap());
            NetNs::remove(&scratch).unwrap();
        })
    });
    group.finish();
}

/// Time per call of `call`, over `iterations` calls.
fn time_per_call(call: &dyn Fn(), iterations: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..iterations {
        call();
    }
    start.elapsed().as_secs_f64() / f64::from(iterations)
}

/// The median over rounds of `candidate / baseline`, the two measured back to back each round.
fn interleaved_ratio(
    baseline: &dyn Fn(),
    candidate: &dyn Fn(),
    rounds: usize,
    iterations: u32,
) -> (f64, f64, f64) {
    let mut ratios = Vec::with_capacity(rounds);
    let (mut base_total, mut cand_total) = (0.0, 0.0);
    for round in 0..rounds {
        // Alternate which goes first, so neither side always gets the warmer cache.
        let (b, c) = if round % 2 == 0 {
            let b = time_per_call(baseline, iterations);
            (b, time_per_call(candidate, iterations))
        } else {
            let c = time_per_call(candidate, iterations);
            (time_per_call(baseline, iterations), c)
        };
        base_total += b;
        cand_total += c;
        ratios.push(c / b);
    }
    ratios.sort_by(f64::total_cmp);
    let rounds = rounds as f64;
    (
        ratios[ratios.len() / 2],
        base_total / rounds,
        cand_total / rounds,
    )
}

fn print_ratios(f: &Fixture) {
    let calls = calls(f);
    let by_name = |wanted: &str| -> &dyn Fn() {
        calls
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, call)| call.as_ref())
            .unwrap()
    };
    let goals: [(&str, &str, Option<f64>, u32); 7] = [
        (
            "bare scoped spawn + setns + join",
            "NetNs::run",
            Some(1.15),
            200,
        ),
        ("NetNs::run", "#[in_netns(&ns)]", Some(1.05), 200),
        ("NetNs::run", "#[in_netns(path)]", None, 200),
        (
            "floor: setns in + out on the caller",
            "Worker::run (warm)",
            Some(0.5),
            2000,
        ),
        (
            "floor: setns in + out on the caller",
            "#[in_netns(&worker)]",
            None,
            2000,
        ),
        ("NetNs::run", "NetNs::run_with(sysfs)", None, 50),
        ("NetNs::run", "NetNs::run_with(etc)", None, 50),
    ];
    // Many short rounds: a round's two sides see the same machine state, and the median drops
    // the rounds that a neighbour on this shared host disturbed.
    const ROUNDS: usize = 101;
    println!("\nratios (median of {ROUNDS} interleaved rounds; goal where one is set)");
    println!(
        "{:<38} {:<38} {:>9} {:>9} {:>7} {:>6}",
        "candidate", "baseline", "cand/call", "base/call", "ratio", "goal"
    );
    for (baseline, candidate, goal, iterations) in goals {
        let (ratio, base, cand) =
            interleaved_ratio(by_name(baseline), by_name(candidate), ROUNDS, iterations);
        let (goal_text, verdict) = match goal {
            Some(goal) if ratio <= goal => (format!("<={goal}"), "met"),
            Some(goal) => (format!("<={goal}"), "MISSED"),
            None => (String::from("-"), ""),
        };
        println!(
            "{candidate:<38} {baseline:<38} {:>7.2}us {:>7.2}us {ratio:>7.3} {goal_text:>6}  {verdict}",
            cand * 1e6,
            base * 1e6
        );
    }
    let cold = worker_cold(f, 300).as_secs_f64() / 300.0;
    let floor = time_per_call(by_name("floor: setns in + out on the caller"), 2000);
    println!(
        "{:<38} {:<38} {:>7.2}us {:>7.2}us {:>7.3}",
        "Worker::run (cold, after it parked)",
        "floor: setns in + out on the caller",
        cold * 1e6,
        floor * 1e6,
        cold / floor
    );
}

fn main() {
    // Without root, a user namespace of the bench's own (as root this does nothing).
    if let Err(err) = in_netns::rootless::enter() {
        panic!("the benchmarks need namespaces: {err}");
    }
    let fixture = Fixture::new();
    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    criterion_benches(&mut criterion, &fixture);
    criterion.final_summary();
    print_ratios(&fixture);
}
