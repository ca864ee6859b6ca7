//! How a call waits, under the conditions a service meets: the machine otherwise idle, one core
//! busy with another process, calls after an idle spell, one caller going round 100
//! namespaces, and the CPU a call costs when calls come 200 µs apart. Each condition sets the
//! crate's calls (warm `NetNs::run`, `#[in_netns(&ns)]`, `Worker::run`) against baselines
//! measured in the same run, interleaved round by round:
//!
//! - spin ping-pong between two threads pinned on two CPUs: the hardware's limit for a hand-off;
//! - the `setns` pair: switching the calling thread in and out (what the crate avoids);
//! - a thread that entered once, fed through std `mpsc` channels: the obvious implementation.
//!
//! Each figure is the median and the 90th percentile over rounds of the time (or CPU) per call;
//! each goal is a ratio of those, printed as met or MISSED. Run as root (`cargo bench --bench
//! waiting`), or without root (a user namespace of its own).

use std::hint::black_box;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use in_netns::{NetNs, Worker, in_netns};

mod common;
use common::{Sample, cpu_time, goal, interleave, per_call, report};
use nix::sched::{CloneFlags, CpuSet, sched_getaffinity, sched_setaffinity, setns};
use nix::unistd::Pid;

/// Rounds per condition (odd, so the median is one round), and calls per round.
const ROUNDS: usize = 31;
const CALLS: u32 = 1000;

#[in_netns(ns)]
fn macro_with_handle(ns: &NetNs) -> in_netns::Result<u32> {
    Ok(black_box(1))
}

/// A job for the channel thread.
type Job = Box<dyn FnOnce() -> u32 + Send>;

/// The obvious implementation: a thread that entered the namespace once, fed jobs through one
/// std channel and answering through another.
struct ChannelThread {
    jobs: Option<mpsc::Sender<Job>>,
    answers: mpsc::Receiver<u32>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ChannelThread {
    fn inside(ns: &NetNs) -> ChannelThread {
        let (jobs, incoming) = mpsc::channel::<Job>();
        let (answer, answers) = mpsc::channel();
        let thread = ns
            .spawn(move || {
                while let Ok(job) = incoming.recv() {
                    let _ = answer.send(job());
                }
            })
            .expect("start the channel thread");
        ChannelThread {
            jobs: Some(jobs),
            answers,
            thread: Some(thread),
        }
    }

    fn call(&self) {
        let jobs = self.jobs.as_ref().expect("running");
        jobs.send(Box::new(|| black_box(1))).expect("send");
        black_box(self.answers.recv().expect("answer"));
    }
}

impl Drop for ChannelThread {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Two threads pinned on two CPUs passing a counter back and forth, spinning: a partner thread
/// that spins only during the rounds it is asked for.
struct PingPong {
    word: Arc<AtomicU32>,
    rounds: mpsc::Sender<u32>,
    done: mpsc::Receiver<()>,
    caller_cpu: usize,
}

impl PingPong {
    /// `None` on a machine with one CPU.
    fn new() -> Option<PingPong> {
        let cpus = allowed_cpus();
        let (&caller_cpu, &partner_cpu) = (cpus.first()?, cpus.get(1)?);
        let word = Arc::new(AtomicU32::new(0));
        let (rounds, asked) = mpsc::channel::<u32>();
        let (finished, done) = mpsc::channel();
        let partner = Arc::clone(&word);
        std::thread::spawn(move || {
            pin_to(partner_cpu);
            while let Ok(calls) = asked.recv() {
                for _ in 0..calls {
                    // Odd: the caller asked; answer with the next even value.
                    let mut value = partner.load(Ordering::Acquire);
                    while value % 2 == 0 {
                        std::hint::spin_loop();
                        value = partner.load(Ordering::Acquire);
                    }
                    partner.store(value + 1, Ordering::Release);
                }
                let _ = finished.send(());
            }
        });
        Some(PingPong {
            word,
            rounds,
            done,
            caller_cpu,
        })
    }

    /// One round of `calls` round trips, with the caller pinned to the other CPU meanwhile.
    fn round(&self, calls: u32) -> f64 {
        let before = sched_getaffinity(Pid::from_raw(0)).expect("affinity");
        pin_to(self.caller_cpu);
        self.rounds.send(calls).expect("partner");
        let start = Instant::now();
        for _ in 0..calls {
            let asked = self.word.fetch_add(1, Ordering::AcqRel) + 1;
            while self.word.load(Ordering::Acquire) == asked {
                std::hint::spin_loop();
            }
        }
        let elapsed = start.elapsed().as_secs_f64() / f64::from(calls);
        self.done.recv().expect("partner");
        sched_setaffinity(Pid::from_raw(0), &before).expect("affinity back");
        elapsed
    }
}

fn allowed_cpus() -> Vec<usize> {
    let set = sched_getaffinity(Pid::from_raw(0)).expect("affinity");
    (0..CpuSet::count())
        .filter(|cpu| set.is_set(*cpu).unwrap_or(false))
        .collect()
}

fn pin_to(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu).expect("cpu");
    sched_setaffinity(Pid::from_raw(0), &set).expect("pin");
}

/// A child process that keeps one core busy until dropped.
struct BusyCore(std::process::Child);

impl BusyCore {
    fn start() -> BusyCore {
        let child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("start a busy loop");
        // Let the scheduler see it running before the rounds start.
        std::thread::sleep(Duration::from_millis(50));
        BusyCore(child)
    }
}

impl Drop for BusyCore {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A measured quantity per round: time per call, or CPU per call.
/// The three candidates and the baselines that need no set-up of their own, per call, over
/// `ROUNDS` interleaved rounds.
fn hot_calls(
    ns: &NetNs,
    home: &NetNs,
    worker: &Worker,
    channel: &ChannelThread,
    ping: Option<&PingPong>,
) -> (Vec<&'static str>, Vec<Vec<f64>>) {
    let mut samples: Vec<Sample<'_>> = vec![
        (
            "NetNs::run (warm)",
            Box::new(|| {
                per_call(
                    &|| {
                        ns.run(|| black_box(1)).unwrap();
                    },
                    CALLS,
                )
            }),
        ),
        (
            "#[in_netns(&ns)]",
            Box::new(|| {
                per_call(
                    &|| {
                        macro_with_handle(ns).unwrap();
                    },
                    CALLS,
                )
            }),
        ),
        (
            "Worker::run",
            Box::new(|| {
                per_call(
                    &|| {
                        worker.run(|| black_box(1)).unwrap();
                    },
                    CALLS,
                )
            }),
        ),
        (
            "channel thread",
            Box::new(|| per_call(&|| channel.call(), CALLS)),
        ),
        (
            "setns pair",
            Box::new(|| {
                per_call(
                    &|| {
                        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns in");
                        setns(home.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns back");
                    },
                    CALLS,
                )
            }),
        ),
    ];
    if let Some(ping) = ping {
        samples.push((
            "spin ping-pong, two pinned CPUs",
            Box::new(|| ping.round(CALLS)),
        ));
    }
    let names = samples.iter().map(|(name, _)| *name).collect();
    (names, interleave(&mut samples, ROUNDS))
}

fn main() {
    if let Err(err) = in_netns::rootless::enter() {
        panic!("the benchmarks need namespaces: {err}");
    }
    let ns = NetNs::new().expect("a namespace");
    let home = NetNs::current().expect("home");
    let worker = ns.worker().expect("worker");
    let channel = ChannelThread::inside(&ns);
    let ping = PingPong::new();
    // The pool's first call runs on a fresh thread; warm up the warm ones.
    for _ in 0..1000 {
        ns.run(|| ()).unwrap();
        worker.run(|| ()).unwrap();
        channel.call();
    }
    println!(
        "waiting: {} CPUs, {ROUNDS} interleaved rounds of {CALLS} calls (after-idle: {ROUNDS} \
         single calls)",
        allowed_cpus().len()
    );
    let mut missed = 0;

    // Machine otherwise idle.
    let (names, values) = hot_calls(&ns, &home, &worker, &channel, ping.as_ref());
    let mut idle_goals = vec![goal("NetNs::run (warm)", "setns pair", "median", 0.3)];
    if ping.is_some() {
        for candidate in ["NetNs::run (warm)", "#[in_netns(&ns)]", "Worker::run"] {
            idle_goals.push(goal(
                candidate,
                "spin ping-pong, two pinned CPUs",
                "median",
                2.5,
            ));
            idle_goals.push(goal(
                candidate,
                "spin ping-pong, two pinned CPUs",
                "p90",
                5.0,
            ));
        }
    }
    missed += report(
        "machine otherwise idle: time per call",
        "ns",
        &names,
        &values,
        &idle_goals,
    );

    // One core busy with another process.
    {
        let _busy = BusyCore::start();
        let (names, values) = hot_calls(&ns, &home, &worker, &channel, None);
        let mut goals = Vec::new();
        for candidate in ["NetNs::run (warm)", "#[in_netns(&ns)]", "Worker::run"] {
            goals.push(goal(candidate, "channel thread", "median", 1.0));
            goals.push(goal(candidate, "channel thread", "p90", 1.0));
        }
        missed += report(
            "one core busy with a busy loop in a child process: time per call",
            "ns",
            &names,
            &values,
            &goals,
        );
    }

    // After idle: one call after a pause.
    {
        let single = |idle: Duration, call: &dyn Fn()| {
            std::thread::sleep(idle);
            let start = Instant::now();
            call();
            start.elapsed().as_secs_f64()
        };
        let five_ms = Duration::from_millis(5);
        let short = Duration::from_micros(300);
        let mut samples: Vec<Sample<'_>> = vec![
            (
                "NetNs::run, 5 ms after its last call",
                Box::new(|| {
                    single(five_ms, &|| {
                        ns.run(|| black_box(1)).unwrap();
                    })
                }),
            ),
            (
                "channel thread, 5 ms after its last call",
                Box::new(|| single(five_ms, &|| channel.call())),
            ),
            (
                "Worker::run, 300 us after its last call",
                Box::new(|| {
                    single(short, &|| {
                        worker.run(|| black_box(1)).unwrap();
                    })
                }),
            ),
            (
                "channel thread, 300 us after its last call",
                Box::new(|| single(short, &|| channel.call())),
            ),
        ];
        let names: Vec<_> = samples.iter().map(|(name, _)| *name).collect();
        let values = interleave(&mut samples, 101);
        let goals = [
            goal(
                "NetNs::run, 5 ms after its last call",
                "channel thread, 5 ms after its last call",
                "median",
                1.5,
            ),
            goal(
                "Worker::run, 300 us after its last call",
                "channel thread, 300 us after its last call",
                "median",
                1.5,
            ),
        ];
        missed += report(
            "after idle: one call after a pause (101 rounds)",
            "us",
            &names,
            &values,
            &goals,
        );
    }

    // One caller going round 100 namespaces.
    {
        let many: Vec<NetNs> = (0..100)
            .map(|_| NetNs::new().expect("a namespace"))
            .collect();
        for ns in &many {
            // The first call is a fresh thread's; the second starts the warm one.
            ns.run(|| ()).unwrap();
            ns.run(|| ()).unwrap();
        }
        let channels: Vec<ChannelThread> = many.iter().map(ChannelThread::inside).collect();
        let mut samples: Vec<Sample<'_>> = vec![
            (
                "NetNs::run over 100 namespaces in turn",
                Box::new(|| {
                    let start = Instant::now();
                    for _ in 0..10 {
                        for ns in &many {
                            ns.run(|| black_box(1)).unwrap();
                        }
                    }
                    start.elapsed().as_secs_f64() / 1000.0
                }),
            ),
            (
                "100 channel threads in turn",
                Box::new(|| {
                    let start = Instant::now();
                    for _ in 0..10 {
                        for channel in &channels {
                            channel.call();
                        }
                    }
                    start.elapsed().as_secs_f64() / 1000.0
                }),
            ),
        ];
        let names: Vec<_> = samples.iter().map(|(name, _)| *name).collect();
        let values = interleave(&mut samples, ROUNDS);
        let goals = [goal(
            "NetNs::run over 100 namespaces in turn",
            "100 channel threads in turn",
            "median",
            1.5,
        )];
        missed += report(
            "round-robin from one caller over 100 namespaces: time per call",
            "us",
            &names,
            &values,
            &goals,
        );
    }

    // CPU per call when calls come 200 us apart.
    {
        let gap = Duration::from_micros(200);
        let cpu_per_call = |call: &dyn Fn()| {
            let before = cpu_time();
            for _ in 0..200 {
                std::thread::sleep(gap);
                call();
            }
            (cpu_time() - before) / 200.0
        };
        let mut samples: Vec<Sample<'_>> = vec![
            (
                "NetNs::run, calls 200 us apart",
                Box::new(|| {
                    cpu_per_call(&|| {
                        ns.run(|| black_box(1)).unwrap();
                    })
                }),
            ),
            (
                "Worker::run, calls 200 us apart",
                Box::new(|| {
                    cpu_per_call(&|| {
                        worker.run(|| black_box(1)).unwrap();
                    })
                }),
            ),
            (
                "channel thread, calls 200 us apart",
                Box::new(|| cpu_per_call(&|| channel.call())),
            ),
        ];
        let names: Vec<_> = samples.iter().map(|(name, _)| *name).collect();
        let values = interleave(&mut samples, 15);
        let goals = [
            goal(
                "NetNs::run, calls 200 us apart",
                "channel thread, calls 200 us apart",
                "median",
                1.5,
            ),
            goal(
                "Worker::run, calls 200 us apart",
                "channel thread, calls 200 us apart",
                "median",
                1.5,
            ),
        ];
        missed += report(
            "CPU per call (process user + system) when calls come 200 us apart (15 rounds of 200)",
            "us",
            &names,
            &values,
            &goals,
        );
    }

    // An idle handle costs no CPU: the process's CPU over a second in which nothing calls, with
    // the warm threads, a Worker and the channel thread idle.
    {
        ns.run(|| ()).unwrap();
        worker.run(|| ()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let before = cpu_time();
        std::thread::sleep(Duration::from_secs(1));
        let idle_cpu = cpu_time() - before;
        let met = idle_cpu < 0.001;
        missed += usize::from(!met);
        println!(
            "\nidle: the process used {:.0} us of CPU in 1 s without calls (a warm thread, a \
             Worker and a channel thread idle; goal < 1 ms: {})",
            idle_cpu * 1e6,
            if met { "met" } else { "MISSED" }
        );
    }

    println!("\nwaiting: {missed} goal(s) MISSED (figures are reported, not asserted)");
}
