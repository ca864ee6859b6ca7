//! What a call into a namespace costs, side by side in one run: the floor (switching the
//! calling thread in and out with `setns`), a bare scoped thread, `NetNs::run` on a warm
//! thread and on a fresh one, `#[in_netns]`, `Worker::run`, the `/sys` and `/etc` options,
//! making and opening handles, a call after an idle spell, concurrent callers, and the scale
//! curve (1 to 1000 namespaces, 1 to 8 calling threads).
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
        let worker = ns.worker().expect("start worker");
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
            "NetNs::run (fresh thread)",
            Box::new(move || {
                let fresh = Options::default().fresh_thread(true);
                f.ns.run_with(&fresh, || black_box(1)).map(drop).unwrap()
            }),
        ),
        (
            "NetNs::run, first call on a new handle",
            Box::new(move || {
                // A handle of its own: its first call is handed to a shared warm thread (only
                // the process's first plain call runs on a fresh one), and dropping it waits
                // until that thread has left the namespace (as the baseline joins its thread).
                let handle = f.ns.try_clone().unwrap();
                handle.run(|| black_box(1)).map(drop).unwrap()
            }),
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
        (
            "NetNs::run_with(sysfs) (fresh thread)",
            Box::new(move || {
                let fresh = Options::default().sysfs(true).fresh_thread(true);
                f.ns.run_with(&fresh, || black_box(1)).map(drop).unwrap()
            }),
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
    let goals: [(&str, &str, Option<f64>, u32); 10] = [
        (
            "floor: setns in + out on the caller",
            "NetNs::run",
            Some(0.5),
            2000,
        ),
        (
            "floor: setns in + out on the caller",
            "#[in_netns(&ns)]",
            Some(0.5),
            2000,
        ),
        (
            "bare scoped spawn + setns + join",
            "NetNs::run, first call on a new handle",
            Some(1.3),
            100,
        ),
        (
            "bare scoped spawn + setns + join",
            "NetNs::run (fresh thread)",
            Some(1.15),
            100,
        ),
        ("NetNs::run", "#[in_netns(path)]", None, 100),
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
        ("NetNs::run", "NetNs::run_with(sysfs)", None, 2000),
        ("NetNs::run", "NetNs::run_with(etc)", None, 2000),
        (
            "bare scoped spawn + setns + join",
            "NetNs::run_with(sysfs) (fresh thread)",
            None,
            50,
        ),
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
    let (warm_after_idle, bare_after_idle) = wake_after_idle(f, Duration::from_millis(5), 101);
    println!(
        "{:<38} {:<38} {:>7.2}us {:>7.2}us {:>7.3} {:>6}  {}",
        "NetNs::run after 5 ms idle",
        "bare wake-up after 5 ms idle",
        warm_after_idle * 1e6,
        bare_after_idle * 1e6,
        warm_after_idle / bare_after_idle,
        "<=2",
        if warm_after_idle <= 2.0 * bare_after_idle {
            "met"
        } else {
            "MISSED"
        }
    );
    let batch = concurrent_batch(f, 21);
    println!(
        "8 concurrent callers, each body sleeping 1 ms: the batch takes {:.2} ms (goal < 2 ms: {})",
        batch * 1e3,
        if batch < 0.002 { "met" } else { "MISSED" }
    );
    view_rebuild(f);
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

/// A call with a view right after the host's mounts changed (a tmpfs mounted and unmounted
/// before each call), so a warm thread builds its view again first, against a fresh thread that
/// builds one for the call after the same change.
fn view_rebuild(f: &Fixture) {
    let dir = std::env::temp_dir().join(format!("netns-bench-mount-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mount point");
    let change = || {
        let flags = nix::mount::MsFlags::empty();
        nix::mount::mount(Some("tmpfs"), &dir, Some("tmpfs"), flags, None::<&str>).expect("mount");
        nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH).expect("umount");
    };
    let warm = Options::default().sysfs(true);
    let fresh = Options::default().sysfs(true).fresh_thread(true);
    let on_warm = || {
        change();
        f.ns.run_with(&warm, || black_box(1)).map(drop).unwrap();
    };
    let on_fresh = || {
        change();
        f.ns.run_with(&fresh, || black_box(1)).map(drop).unwrap();
    };
    let changed_only = time_per_call(&change, 200);
    let (ratio, base, cand) = interleaved_ratio(&on_fresh, &on_warm, 31, 50);
    let _ = std::fs::remove_dir(&dir);
    println!(
        "{:<38} {:<38} {:>7.2}us {:>7.2}us {ratio:>7.3}  (each side includes a host mount \
         and unmount: {:.2}us)",
        "run_with(sysfs), view built again",
        "run_with(sysfs), fresh thread",
        cand * 1e6,
        base * 1e6,
        changed_only * 1e6,
    );
}

/// After `idle` without a call: one call handed to a warm thread, which went to sleep,
/// against the floor of any wake-up after the same idle spell (a thread blocked on a channel,
/// asked and answered). Medians of `rounds` calls each.
fn wake_after_idle(f: &Fixture, idle: Duration, rounds: usize) -> (f64, f64) {
    let (ask, asked) = std::sync::mpsc::channel::<()>();
    let (answer, answered) = std::sync::mpsc::channel::<()>();
    let bare = std::thread::spawn(move || {
        while asked.recv().is_ok() {
            let _ = answer.send(());
        }
    });
    let mut warm = Vec::with_capacity(rounds);
    let mut floor = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        std::thread::sleep(idle);
        let start = Instant::now();
        f.ns.run(|| black_box(1)).unwrap();
        warm.push(start.elapsed().as_secs_f64());
        std::thread::sleep(idle);
        let start = Instant::now();
        ask.send(()).unwrap();
        answered.recv().unwrap();
        floor.push(start.elapsed().as_secs_f64());
    }
    drop(ask);
    let _ = bare.join();
    (median(&mut warm), median(&mut floor))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// 8 callers into one handle at once, each body sleeping 1 ms: the batch's wall time (median
/// of `rounds`), which is 1 ms when no caller waits for another.
fn concurrent_batch(f: &Fixture, rounds: usize) -> f64 {
    let mut batches = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    f.ns.run(|| std::thread::sleep(Duration::from_millis(1)))
                        .unwrap()
                });
            }
        });
        batches.push(start.elapsed().as_secs_f64());
    }
    median(&mut batches)
}

/// The process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// Per-call cost with 1, 10, 100 and 1000 live namespaces, called round-robin from 1, 2 and 8
/// threads; the memory of 1000 handles that were called; how long idle warm threads take
/// to end. Prints a table.
fn scale_curve() {
    println!("\nscale curve: per call (us), namespaces called round-robin");
    println!(
        "{:>12} {:>10} {:>10} {:>10}",
        "namespaces", "1 thread", "2 threads", "8 threads"
    );
    let handles: Vec<NetNs> = (0..1000)
        .map(|_| NetNs::new().expect("new namespace"))
        .collect();
    for count in [1, 10, 100, 1000] {
        let live = &handles[..count];
        let mut row = format!("{count:>12}");
        for threads in [1, 2, 8] {
            // Call each namespace first (the process's first plain call runs on a fresh thread,
            // later ones on shared warm threads), then time enough calls to visit each several
            // times.
            for ns in live {
                ns.run(|| ()).unwrap();
                ns.run(|| ()).unwrap();
            }
            let calls = (count * 4).max(20_000) / threads;
            let start = Instant::now();
            std::thread::scope(|scope| {
                for t in 0..threads {
                    scope.spawn(move || {
                        for call in 0..calls {
                            live[(t + call * threads) % count]
                                .run(|| black_box(1))
                                .unwrap();
                        }
                    });
                }
            });
            let per_call = start.elapsed().as_secs_f64() * 1e6 / (calls * threads) as f64;
            row.push_str(&format!(" {per_call:>10.2}"));
        }
        println!("{row}");
    }
    drop(handles);
    // Memory: 1000 handles, each called (plain calls: shared warm threads, none per handle).
    let (rss, threads) = (rss_kib(), thread_count());
    let handles: Vec<NetNs> = (0..1000)
        .map(|_| NetNs::new().expect("new namespace"))
        .collect();
    for ns in &handles {
        ns.run(|| ()).unwrap();
        ns.run(|| ()).unwrap();
    }
    let (rss_warm, threads_warm) = (rss_kib(), thread_count());
    println!(
        "memory: 1000 handles, each called twice (shared warm threads): {} -> {} threads, RSS {rss} -> {rss_warm} KiB ({:.1} KiB per handle)",
        threads,
        threads_warm,
        (rss_warm.saturating_sub(rss)) as f64 / 1000.0
    );
    drop(handles);
    // Idle exit: warm threads with a 100 ms idle timeout, timed until they are all gone.
    let short = Options::default().idle_timeout(Duration::from_millis(100));
    let handles: Vec<NetNs> = (0..100)
        .map(|_| NetNs::new().expect("new namespace"))
        .collect();
    let before = thread_count();
    for ns in &handles {
        ns.run_with(&short, || ()).unwrap();
        ns.run_with(&short, || ()).unwrap();
    }
    let start = Instant::now();
    while thread_count() > before && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "idle exit: 100 warm threads with a 100 ms idle timeout were gone {:.0} ms after their calls",
        start.elapsed().as_secs_f64() * 1e3
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
    scale_curve();
}
