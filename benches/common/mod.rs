//! What the benchmarks share: interleaved rounds, medians and 90th percentiles, goals printed
//! as met or MISSED, and the process's CPU time.
#![allow(dead_code)] // each bench uses its own subset

use std::time::Instant;

/// A named sample: each call measures one round and returns its value (a time or CPU per call).
pub type Sample<'a> = (&'static str, Box<dyn FnMut() -> f64 + 'a>);

/// Runs every sample once per round, rotating which goes first, and returns each one's values.
pub fn interleave(samples: &mut [Sample<'_>], rounds: usize) -> Vec<Vec<f64>> {
    let mut values = vec![Vec::with_capacity(rounds); samples.len()];
    for round in 0..rounds {
        for k in 0..samples.len() {
            let at = (round + k) % samples.len();
            values[at].push((samples[at].1)());
        }
    }
    for list in &mut values {
        list.sort_by(f64::total_cmp);
    }
    values
}

pub fn median(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

pub fn p90(sorted: &[f64]) -> f64 {
    sorted[(sorted.len() * 9 / 10).min(sorted.len() - 1)]
}

/// Time per call of `calls` calls of `call`.
pub fn per_call(call: &dyn Fn(), calls: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..calls {
        call();
    }
    start.elapsed().as_secs_f64() / f64::from(calls)
}

/// A goal: `candidate`'s statistic at most `limit` times `baseline`'s.
pub struct Goal {
    pub candidate: &'static str,
    pub baseline: &'static str,
    pub statistic: fn(&[f64]) -> f64,
    statistic_name: &'static str,
    limit: f64,
}

pub fn goal(
    candidate: &'static str,
    baseline: &'static str,
    statistic_name: &'static str,
    limit: f64,
) -> Goal {
    let statistic = match statistic_name {
        "p90" => p90 as fn(&[f64]) -> f64,
        _ => median,
    };
    Goal {
        candidate,
        baseline,
        statistic,
        statistic_name,
        limit,
    }
}

/// Prints each sample's median and p90, then each goal as met or MISSED; returns how many were
/// missed.
pub fn report(
    title: &str,
    unit: &str,
    names: &[&'static str],
    values: &[Vec<f64>],
    goals: &[Goal],
) -> usize {
    println!("\n{title}");
    println!(
        "  {:<44} {:>12} {:>12}",
        "",
        format!("median {unit}"),
        format!("p90 {unit}")
    );
    let scale = if unit == "ns" { 1e9 } else { 1e6 };
    for (name, sorted) in names.iter().zip(values) {
        println!(
            "  {name:<44} {:>12.0} {:>12.0}",
            median(sorted) * scale,
            p90(sorted) * scale
        );
    }
    let find = |wanted: &str| {
        let at = names
            .iter()
            .position(|name| *name == wanted)
            .expect("sample");
        &values[at]
    };
    let mut missed = 0;
    for goal in goals {
        let ratio = (goal.statistic)(find(goal.candidate)) / (goal.statistic)(find(goal.baseline));
        let met = ratio <= goal.limit;
        missed += usize::from(!met);
        println!(
            "  goal: {} {} / {} {} = {ratio:.2} (<= {}): {}",
            goal.candidate,
            goal.statistic_name,
            goal.baseline,
            goal.statistic_name,
            goal.limit,
            if met { "met" } else { "MISSED" }
        );
    }
    missed
}

/// The process's CPU time so far (user and system, all threads).
pub fn cpu_time() -> f64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage");
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 * 1e-6;
    seconds(usage.user_time()) + seconds(usage.system_time())
}
