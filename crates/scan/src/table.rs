//! The human view: one row per container, kubectl-style aligned columns, then the details a
//! row cannot hold (each process stuck in `D` or left by an exited container, what is over a
//! limit, what was skipped).

use std::fmt::Write as _;

use crate::report::{ContainerReport, NodeReport};
use crate::thresholds::Problem;

const HEADER: [&str; 9] = [
    "NAMESPACE",
    "POD",
    "CONTAINER",
    "HANDLER",
    "PROCS",
    "ZOMBIES",
    "D",
    "PIDS",
    "WORST PARENT",
];

/// The report as a table, followed by the processes in `D`, the `problems` (from
/// [`crate::problems`]) and the skipped containers, each section only when not empty.
pub fn render_table(report: &NodeReport, problems: &[Problem<'_>]) -> String {
    let mut out = String::new();
    if report.containers.is_empty() {
        out.push_str("no running containers\n");
    } else {
        let rows: Vec<[String; 9]> = report.containers.iter().map(row).collect();
        write_aligned(&mut out, &rows);
    }
    let blocked = each_process(
        report,
        |container| &container.blocked,
        |process| {
            let wchan = if process.wchan.is_empty() {
                "?"
            } else {
                &process.wchan
            };
            (
                process.pid,
                process.comm.clone(),
                wchan.to_string(),
                process.persisting,
            )
        },
    );
    section(&mut out, "in D state (uninterruptible):", &blocked);
    let left = each_process(
        report,
        |container| &container.left,
        |process| {
            let at = if process.wchan.is_empty() {
                String::new()
            } else {
                format!(" at {}", process.wchan)
            };
            let state = format!("{}{at}", process.state);
            (process.pid, process.comm.clone(), state, process.persisting)
        },
    );
    section(&mut out, "left behind by exited containers:", &left);
    let over: Vec<String> = problems
        .iter()
        .map(|problem| format!("  {} (limit {})", problem.summary(), problem.limit()))
        .collect();
    section(&mut out, "over limits:", &over);
    let skipped: Vec<String> = report
        .skipped
        .iter()
        .map(|skipped| {
            format!(
                "  {} ({}): {}",
                skipped.identity.path(),
                skipped.identity.short_id(),
                skipped.reason.text()
            )
        })
        .collect();
    section(&mut out, "skipped:", &skipped);
    out
}

fn row(container: &ContainerReport) -> [String; 9] {
    let identity = &container.identity;
    let handler = match identity.runtime_handler.as_deref() {
        None => "-".to_string(),
        Some("") => "(default)".to_string(),
        Some(handler) => handler.to_string(),
    };
    let pids = match container.pids {
        None => "-".to_string(),
        Some(usage) => match usage.max {
            None => format!("{}/max", usage.current),
            Some(max) => format!("{}/{max}", usage.current),
        },
    };
    let worst = match container.worst_parent() {
        None => "-".to_string(),
        Some(parent) => format!(
            "{}[{}]: {}",
            parent.comm.as_deref().unwrap_or("?"),
            parent.pid,
            parent.zombies
        ),
    };
    [
        identity.pod_namespace.clone(),
        identity.pod_name.clone(),
        if container.exited() {
            format!("{} (exited)", identity.container)
        } else {
            identity.container.clone()
        },
        handler,
        container.processes.to_string(),
        container.zombies.to_string(),
        container.blocked.len().to_string(),
        pids,
        worst,
    ]
}

/// Columns as wide as their widest cell, two spaces apart; no trailing spaces.
fn write_aligned(out: &mut String, rows: &[[String; 9]]) {
    let mut widths = HEADER.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = HEADER.map(String::from);
    for cells in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (cell, width) in cells.iter().zip(widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// One line per process of `of(container)`, every container: its path, pid, comm, how
/// `show` describes where it is, and whether it was still there at the recheck.
fn each_process<'a, P: 'a>(
    report: &'a NodeReport,
    of: impl Fn(&'a ContainerReport) -> &'a [P],
    show: impl Fn(&P) -> (i32, String, String, bool),
) -> Vec<String> {
    let mut lines = Vec::new();
    for container in &report.containers {
        for process in of(container) {
            let (pid, comm, at, persisting) = show(process);
            let recheck = if persisting {
                ", still there at the recheck"
            } else {
                ""
            };
            lines.push(format!(
                "  {} pid {pid} ({comm}) in {at}{recheck}",
                container.identity.path()
            ));
        }
    }
    lines
}

fn section(out: &mut String, title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    out.push('\n');
    out.push_str(title);
    out.push('\n');
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::sample_node;
    use crate::thresholds::{problems, Thresholds};

    #[test]
    fn one_aligned_row_per_container_then_the_details() {
        let report = sample_node();
        let found = problems(&report, &Thresholds::default());
        let expected = "\
NAMESPACE    POD       CONTAINER  HANDLER     PROCS  ZOMBIES  D  PIDS    WORST PARENT
kube-system  dns-1     coredns    -           1      0        0  -       -
shop         web-1     app        runc        3      5        0  8/max   sleep[4100]: 5
shop         worker-1  queue      undertaker  10     40       2  80/100  python3[5201]: 38

in D state (uninterruptible):
  shop/worker-1/queue pid 5205 (cat) in fuse_wait_answer, still there at the recheck
  shop/worker-1/queue pid 5206 (dd) in io_schedule

over limits:
  shop/worker-1/queue 40 zombies of python3 (limit 10)
  shop/worker-1/queue 1 in D at fuse_wait_answer (limit 0)

skipped:
  batch/job-1/run (ddddddddddddd): its main process 7400 is gone (exited)
";
        assert_eq!(render_table(&report, &found), expected);
    }

    #[test]
    fn an_exited_container_is_marked_and_what_it_left_listed() {
        let report = NodeReport {
            containers: vec![crate::fixture::exited_container("stuck")],
            skipped: Vec::new(),
        };
        let found = problems(&report, &Thresholds::default());
        let expected = "\
NAMESPACE  POD        CONTAINER       HANDLER  PROCS  ZOMBIES  D  PIDS  WORST PARENT
default    pod-stuck  stuck (exited)  runc     2      0        0  -     -

left behind by exited containers:
  default/pod-stuck/stuck pid 7001 (sleep) in D at do_freezer_trap, still there at the recheck
  default/pod-stuck/stuck pid 7002 (worker) in S

over limits:
  default/pod-stuck/stuck exited, 1 process left: sleep in D at do_freezer_trap (limit 0)
";
        assert_eq!(render_table(&report, &found), expected);
    }

    #[test]
    fn an_empty_node_says_so() {
        let report = NodeReport::default();
        assert_eq!(render_table(&report, &[]), "no running containers\n");
    }
}
