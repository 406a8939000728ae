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
    /// `None` for the kernel-reaped limit, which is no init binary.
    pub binary_bytes: Option<u64>,
    pub idle: Option<IdleResult>,
    pub reap: Option<ReapResult>,
    /// The reaping run's median wall time over the kernel-reaped limit's (same producer,
    /// nothing to reap): how close to the physical limit the init reaps.
    pub reap_vs_kernel_reaped: Option<f64>,
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
            value: |r| r.binary_bytes.map(|bytes| bytes.to_string()),
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
            label: format!("reap {orphans} orphans: wall ÷ kernel-reaped wall"),
            value: |r| r.reap_vs_kernel_reaped.map(|ratio| format!("{ratio:.2}")),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reaped(wall_ms: f64) -> ReapResult {
        ReapResult {
            orphans: 20_000,
            wall_ms,
            init_cpu_ms: 1.0,
            max_zombies: 0,
            exited_ms: wall_ms,
            init_wakeups: 1,
            worst_init_cpu_ms: 1.0,
        }
    }

    #[test]
    fn the_limit_is_a_column_with_only_its_reaping_rows() {
        let results = [
            InitResult {
                name: "undertaker-init".into(),
                binary_bytes: Some(70_856),
                idle: None,
                reap: Some(reaped(1100.0)),
                reap_vs_kernel_reaped: Some(1.1),
                term_latency: None,
                trickle: None,
            },
            InitResult {
                name: "kernel-reaped".into(),
                binary_bytes: None,
                idle: None,
                reap: Some(reaped(1000.0)),
                reap_vs_kernel_reaped: Some(1.0),
                term_latency: None,
                trickle: None,
            },
        ];
        let table = table(&results);
        assert!(
            table.starts_with("| | undertaker-init | kernel-reaped |"),
            "{table}"
        );
        assert!(
            table.contains("| binary size (bytes) | 70856 | - |"),
            "{table}"
        );
        assert!(
            table.contains("| reap 20000 orphans: wall ÷ kernel-reaped wall | 1.10 | 1.00 |"),
            "{table}"
        );
        assert!(
            table.contains("| reap 20000 orphans: wall (ms) | 1100 | 1000 |"),
            "{table}"
        );
    }
}
