//! The node-problem-detector custom plugin protocol: exit 0 (OK), 1 (problem) or 2 (unknown),
//! and one line on stdout that NPD uses as the condition's or event's message. NPD cuts that
//! line at `max_output_length` bytes (80 by default), so the message is built to fit, worst
//! offenders first, rather than cut in the middle of a name.

use crate::report::{NodeReport, SkipReason};
use crate::thresholds::{counted, Problem};

/// NPD's default `max_output_length`.
pub const NPD_MESSAGE_MAX: usize = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpdStatus {
    Ok,
    Problem,
    Unknown,
}

impl NpdStatus {
    /// The plugin's exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            NpdStatus::Ok => 0,
            NpdStatus::Problem => 1,
            NpdStatus::Unknown => 2,
        }
    }
}

/// What the plugin prints (`message`, at most the limit in bytes, one line) and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpdVerdict {
    pub status: NpdStatus,
    pub message: String,
}

/// The verdict on a scan: a problem if any container is over a limit; else unknown if a
/// running container could not be read (the scan cannot vouch for the node); else OK.
pub fn npd_verdict(report: &NodeReport, problems: &[Problem<'_>], max_len: usize) -> NpdVerdict {
    if !problems.is_empty() {
        let items: Vec<String> = problems.iter().map(Problem::summary).collect();
        return NpdVerdict {
            status: NpdStatus::Problem,
            message: fit_items(&items, max_len),
        };
    }
    let unreadable: Vec<&str> = report
        .skipped
        .iter()
        .filter_map(|skipped| match &skipped.reason {
            SkipReason::Unreadable(reason) => Some(reason.as_str()),
            SkipReason::Exited(_) => None,
        })
        .collect();
    if let Some(first) = unreadable.first() {
        return npd_unknown(
            &format!(
                "{} unreadable: {first}",
                counted(unreadable.len(), "container")
            ),
            max_len,
        );
    }
    let zombies: usize = report.containers.iter().map(|c| c.zombies).sum();
    let blocked: usize = report.containers.iter().map(|c| c.blocked.len()).sum();
    let running = report.containers.iter().filter(|c| !c.exited()).count();
    NpdVerdict {
        status: NpdStatus::Ok,
        message: truncate(
            &format!(
                "ok: {}, {}, {blocked} in D, none over limits",
                counted(running, "container"),
                counted(zombies, "zombie"),
            ),
            max_len,
        ),
    }
}

/// The verdict when the scan could not run (containerd unreachable, `/proc` unreadable).
pub fn npd_unknown(reason: &str, max_len: usize) -> NpdVerdict {
    NpdVerdict {
        status: NpdStatus::Unknown,
        message: truncate(&one_line(&format!("unknown: {reason}")), max_len),
    }
}

/// As many items as fit in `max_len` bytes, joined by `; `, with `(+N more)` for the rest.
/// When not even the first fits, the first is shortened.
fn fit_items(items: &[String], max_len: usize) -> String {
    for shown in (1..=items.len()).rev() {
        let candidate = join_with_rest(&items[..shown], items.len() - shown);
        if candidate.len() <= max_len {
            return candidate;
        }
    }
    let rest = items.len().saturating_sub(1);
    let suffix = if rest > 0 {
        format!(" (+{rest} more)")
    } else {
        String::new()
    };
    let room = max_len.saturating_sub(suffix.len());
    let first = items.first().map(String::as_str).unwrap_or_default();
    truncate(&format!("{}{suffix}", truncate(first, room)), max_len)
}

fn join_with_rest(items: &[String], rest: usize) -> String {
    let joined = items.join("; ");
    if rest == 0 {
        joined
    } else {
        format!("{joined} (+{rest} more)")
    }
}

/// NPD takes the first line only in spirit: it keeps all of stdout, so newlines go.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max_len` bytes, cut on a character boundary, `...` marking the cut when there
/// is room for it.
fn truncate(text: &str, max_len: usize) -> String {
    if text.len() <= max_len {
        return text.to_string();
    }
    let marker = if max_len >= 8 { "..." } else { "" };
    let mut end = max_len - marker.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{container, sample_node};
    use crate::report::Skipped;
    use crate::thresholds::{problems, Thresholds};

    #[test]
    fn no_problem_exits_0_with_a_summary() {
        let report = NodeReport {
            containers: vec![container("a", 3, 0), container("b", 0, 0)],
            skipped: Vec::new(),
        };
        let found = problems(&report, &Thresholds::default());
        let verdict = npd_verdict(&report, &found, NPD_MESSAGE_MAX);
        assert_eq!(verdict.status.exit_code(), 0);
        assert_eq!(
            verdict.message,
            "ok: 2 containers, 3 zombies, 0 in D, none over limits"
        );
    }

    #[test]
    fn problems_exit_1_naming_the_worst_offenders_within_80_bytes() {
        let report = sample_node();
        let thresholds = Thresholds {
            max_zombies: 2,
            max_d_state: 0,
            max_pids_percent: 50,
            ..Thresholds::default()
        };
        let found = problems(&report, &thresholds);
        let verdict = npd_verdict(&report, &found, NPD_MESSAGE_MAX);
        assert_eq!(verdict.status.exit_code(), 1);
        assert_eq!(
            verdict.message,
            "shop/worker-1/queue 40 zombies of python3 (+3 more)"
        );
        assert!(verdict.message.len() <= NPD_MESSAGE_MAX);

        let roomy = npd_verdict(&report, &found, 400);
        assert_eq!(
            roomy.message,
            "shop/worker-1/queue 40 zombies of python3; shop/web-1/app 5 zombies of sleep; \
             shop/worker-1/queue 1 in D at fuse_wait_answer; shop/worker-1/queue pids 80%"
        );
    }

    #[test]
    fn a_long_first_offender_is_shortened_to_fit() {
        let mut long = container(&"x".repeat(120), 50, 0);
        long.identity.pod_name = "p".repeat(100);
        let report = NodeReport {
            containers: vec![long, container("b", 20, 0)],
            skipped: Vec::new(),
        };
        let found = problems(&report, &Thresholds::default());
        for max_len in [NPD_MESSAGE_MAX, 30, 5, 0] {
            let verdict = npd_verdict(&report, &found, max_len);
            assert_eq!(verdict.status, NpdStatus::Problem);
            assert!(verdict.message.len() <= max_len, "{max_len}: {verdict:?}");
        }
        let verdict = npd_verdict(&report, &found, NPD_MESSAGE_MAX);
        assert!(verdict.message.starts_with("default/ppppp"), "{verdict:?}");
        assert!(verdict.message.ends_with("... (+1 more)"), "{verdict:?}");
    }

    #[test]
    fn an_unreadable_container_without_problems_is_unknown() {
        let mut report = NodeReport {
            containers: vec![container("a", 0, 0)],
            skipped: vec![Skipped {
                identity: container("b", 0, 0).identity,
                reason: SkipReason::Unreadable("cannot read /proc/42/cgroup: denied".into()),
            }],
        };
        let verdict = npd_verdict(&report, &[], NPD_MESSAGE_MAX);
        assert_eq!(verdict.status.exit_code(), 2);
        assert_eq!(
            verdict.message,
            "unknown: 1 container unreadable: cannot read /proc/42/cgroup: denied"
        );
        // An exited container is no reason for doubt.
        report.skipped[0].reason = SkipReason::Exited("gone".into());
        assert_eq!(npd_verdict(&report, &[], 80).status, NpdStatus::Ok);
    }

    #[test]
    fn unknown_is_one_line_within_the_limit() {
        let verdict = npd_unknown(
            "cannot connect to the CRI endpoint /run/containerd/containerd.sock:\ntransport error: No such file or directory (os error 2)",
            NPD_MESSAGE_MAX,
        );
        assert_eq!(verdict.status.exit_code(), 2);
        assert!(!verdict.message.contains('\n'));
        assert_eq!(verdict.message.len(), NPD_MESSAGE_MAX);
        assert!(verdict.message.starts_with("unknown: cannot connect"));
        assert!(verdict.message.ends_with("..."));
    }

    #[test]
    fn truncation_never_splits_a_character() {
        let text = "é".repeat(50);
        let cut = truncate(&text, 20);
        assert!(cut.len() <= 20);
        assert!(cut.ends_with("..."));
        assert_eq!(truncate("short", 20), "short");
    }
}
