//! SIGTERM to the init until the workload has it: the workload blocks SIGTERM, takes it with
//! sigwait and says the CLOCK_MONOTONIC time; we note the time just before kill().

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::time::{clock_gettime, ClockId};
use serde::Serialize;

use super::Init;

#[derive(Debug, Clone, Serialize)]
pub struct LatencyResult {
    pub runs: usize,
    pub median_us: f64,
    pub p99_us: f64,
}

fn now_ns() -> Result<i128> {
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC)?;
    Ok(now.tv_sec() as i128 * 1_000_000_000 + now.tv_nsec() as i128)
}

/// Latencies in µs of `runs` SIGTERMs, in the order sent.
pub fn samples(init: &Init, runs: usize) -> Result<Vec<f64>> {
    let (mut sandbox, init_pid) = init.start(&["term-latency"], None)?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let sent = now_ns()?;
        kill(init_pid, Signal::SIGTERM)?;
        let line = sandbox.expect_line(|line| line.starts_with("term "), "term")?;
        let received: i128 = line[5..].parse().context("term time")?;
        samples.push((received - sent) as f64 / 1000.0);
    }
    Ok(samples)
}

/// Median and 99th percentile.
pub fn summarize(mut samples: Vec<f64>) -> LatencyResult {
    samples.sort_by(f64::total_cmp);
    let at = |fraction: f64| samples[((samples.len() - 1) as f64 * fraction).round() as usize];
    LatencyResult {
        runs: samples.len(),
        median_us: at(0.5),
        p99_us: at(0.99),
    }
}
