//! The benchmark's output: one column per init, one row per measurement, and the same as JSON.

use std::fmt::Write;

use serde::Serialize;

use crate::measure::idle::IdleResult;
use crate::measure::latency::LatencyResult;
use crate::measure::reap::ReapResult;
use crate::measure::trickle::TrickleResult;

/// Everything measured for one init.
#[derive(Debug, Clone, Serialize)]
pub struct InitResult {
    pub name: String,
    pub binary_bytes: u64,
    pub idle: Option<IdleResult>,
    pub reap: Option<ReapResult>,
    pub term_latency: Option<LatencyResult>,
    pub trickle: Option<TrickleResult>,
}

/// One table row: a label and how to show the value for one init.
struct Row {
    label: String,
    value: fn(&InitResult) -> Option<String>,
}

fn rows(results: &[InitResult]) -> Vec<Row> {
    let orphans = results
        .iter()
        .find_map(|r| r.reap.as_ref())
        .map_or(0, |reap| reap.orphans);
    let seconds = results
        .iter()
        .find_map(|r| r.idle.as_ref())
        .map_or(0, |idle| idle.seconds);
    vec![
        Row {
            label: "binary size (bytes)".into(),
            value: |r| Some(r.binary_bytes.to_string()),
        },
        Row {
            label: "idle VmRSS (kB)".into(),
            value: |r| r.idle.as_ref().map(|idle| idle.rss_kb.to_string()),
        },
        Row {
            label: format!("idle wake-ups in {seconds} s"),
            value: |r| r.idle.as_ref().map(|idle| idle.wakeups.to_string()),
        },
        Row {
            label: format!("reap {orphans} orphans: wall (ms)"),
            value: |r| r.reap.as_ref().map(|reap| format!("{:.0}", reap.wall_ms)),
        },
        Row {
            label: format!("reap {orphans} orphans: init CPU (ms)"),
            value: |r| {
                r.reap
                    .as_ref()
                    .map(|reap| format!("{:.1}", reap.init_cpu_ms))
            },
        },
        Row {
            label: format!("reap {orphans} orphans: init CPU, worst run (ms)"),
            value: |r| {
                r.reap
                    .as_ref()
                    .map(|reap| format!("{:.1}", reap.worst_init_cpu_ms))
            },
        },
        Row {
            label: format!("reap {orphans} orphans: init wake-ups"),
            value: |r| r.reap.as_ref().map(|reap| reap.init_wakeups.to_string()),
        },
        Row {
            label: format!("reap {orphans} orphans: all exited at (ms)"),
            value: |r| r.reap.as_ref().map(|reap| format!("{:.0}", reap.exited_ms)),
        },
        Row {
            label: "most zombies outstanding (sampled)".into(),
            value: |r| r.reap.as_ref().map(|reap| reap.max_zombies.to_string()),
        },
        Row {
            label: trickle_label(results),
            value: |r| r.trickle.as_ref().map(|t| format!("{:.1}", t.init_cpu_ms)),
        },
        Row {
            label: "SIGTERM to workload, median (µs)".into(),
            value: |r| {
                r.term_latency
                    .as_ref()
                    .map(|l| format!("{:.1}", l.median_us))
            },
        },
        Row {
            label: "SIGTERM to workload, p99 (µs)".into(),
            value: |r| r.term_latency.as_ref().map(|l| format!("{:.1}", l.p99_us)),
        },
    ]
}

fn trickle_label(results: &[InitResult]) -> String {
    match results.iter().find_map(|r| r.trickle.as_ref()) {
        Some(t) => format!(
            "{} exits {} ms apart among {} live children: init CPU (ms)",
            t.exits,
            t.gap_us / 1000,
            t.live
        ),
        None => "exits among live children: init CPU (ms)".into(),
    }
}

/// A Markdown table (readable as it is in a terminal).
pub fn table(results: &[InitResult]) -> String {
    let mut out = String::new();
    let _ = write!(out, "| |");
    for result in results {
        let _ = write!(out, " {} |", result.name);
    }
    let _ = write!(out, "\n|---|");
    for _ in results {
        let _ = write!(out, "---:|");
    }
    out.push('\n');
    for row in rows(results) {
        let _ = write!(out, "| {} |", row.label);
        for result in results {
            let _ = write!(
                out,
                " {} |",
                (row.value)(result).unwrap_or_else(|| "-".into())
            );
        }
        out.push('\n');
    }
    out
}
