//! The message of a Kubernetes Event: what happened in which container, and the processes
//! (pid, comm, command line, how they ended), capped so a fork storm stays one short line.

use std::fmt::Write;

use undertaker_events::ProcessRecord;

use crate::report::ReportKind;

/// At most this many processes are named; the rest are counted ("and N more").
pub const MAX_NAMED: usize = 10;
/// The longest message: 1 KiB, the limit events.k8s.io puts on an Event's note (core/v1 has
/// none, but `kubectl describe` output is no place for more).
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// At most this many characters of one command line.
const MAX_CMDLINE_CHARS: usize = 80;

/// What one message is about: the processes seen in the container in the Event's window.
#[derive(Clone, Debug, PartialEq)]
pub struct Subject<'a> {
    pub kind: ReportKind,
    /// The container's name in its pod.
    pub container: &'a str,
    /// It is the pod's sandbox, not one of its containers.
    pub sandbox: bool,
    /// The exec process's id, empty for the container's own.
    pub exec_id: &'a str,
    /// The exec's command (its args joined), when the shim said it.
    pub exec_command: &'a str,
    /// How many processes in all, named or not.
    pub processes: u64,
    /// Those known by name (at least the first [`MAX_NAMED`]), the latest reports' first.
    pub named: &'a [ProcessRecord],
    /// For leaks: `main-exit`, `stop`, `delete` or `exec-exit`.
    pub leak_reason: Option<&'a str>,
}

/// The message for `subject`, at most [`MAX_MESSAGE_BYTES`] long.
pub fn message(subject: &Subject<'_>) -> String {
    let named = subject.named.iter().take(MAX_NAMED);
    listing(
        headline(subject),
        named.map(|process| describe(subject.kind, process)),
        subject.processes,
    )
}

/// `headline: item; item; ...; and N more` with as many of `items` as fit in
/// [`MAX_MESSAGE_BYTES`], `total` being how many there are in all (listed or not).
pub(crate) fn listing(
    headline: String,
    items: impl IntoIterator<Item = String>,
    total: u64,
) -> String {
    let mut text = headline;
    let mut named = 0;
    for item in items {
        let separator = if named == 0 { ": " } else { "; " };
        // Leaves room for the "; and N more" that may follow.
        if text.len() + separator.len() + item.len() + 24 > MAX_MESSAGE_BYTES {
            break;
        }
        text.push_str(separator);
        text.push_str(&item);
        named += 1;
    }
    let unnamed = total.saturating_sub(named);
    if unnamed > 0 && named > 0 {
        let _ = write!(text, "; and {unnamed} more");
    }
    text
}

/// "reaped 3 orphaned processes in container \"app\"", "killed 2 processes left by exec
/// \"sh -c ...\" in container \"app\"", and the like.
fn headline(subject: &Subject<'_>) -> String {
    let n = subject.processes;
    let processes = if n == 1 { "process" } else { "processes" };
    let place = if subject.sandbox {
        "the pod's sandbox".to_string()
    } else {
        format!("container {:?}", subject.container)
    };
    // The command says which exec (a probe, `kubectl exec`) far better than its id.
    let exec = match (subject.exec_command, subject.exec_id) {
        ("", "") => None,
        ("", id) => Some(shortened(id)),
        (command, _) => Some(shortened(command)),
    };
    let when = match subject.leak_reason {
        Some("main-exit") => " after its main process exited",
        Some("stop") => " when it was stopped",
        Some("delete") => " when it was deleted",
        _ => "",
    };
    match (subject.kind, exec) {
        (ReportKind::Reaped, None) => format!("reaped {n} orphaned {processes} in {place}"),
        (ReportKind::Reaped, Some(exec)) => {
            format!("reaped {n} orphaned {processes} of exec {exec:?} in {place}")
        }
        (ReportKind::Leaked, None) => format!("killed {n} {processes} left in {place}{when}"),
        (ReportKind::Leaked, Some(exec)) => {
            format!("killed {n} {processes} left by exec {exec:?} in {place}{when}")
        }
        (ReportKind::Unkillable, exec) => {
            let verb = if n == 1 { "survives" } else { "survive" };
            let of = exec
                .map(|exec| format!(" of exec {exec:?}"))
                .unwrap_or_default();
            format!("{n} {processes}{of} in {place} {verb} SIGKILL")
        }
    }
}

/// `12 sleep (sleep 1000) exit 0`: pid, comm, the command line where it says more, and how the
/// process ended (reaped), who killed it (leaked) or where it is stuck (unkillable).
pub(crate) fn describe(kind: ReportKind, process: &ProcessRecord) -> String {
    let mut item = format!("{} {}", process.pid, process.comm);
    if !process.cmdline.is_empty() && process.cmdline != process.comm {
        let _ = write!(item, " ({})", shortened(&process.cmdline));
    }
    match kind {
        ReportKind::Reaped => match (process.signal, process.exit_status) {
            (Some(signal), _) if signal > 0 => {
                let _ = write!(item, " signal {signal}");
            }
            (_, Some(status)) => {
                let _ = write!(item, " exit {status}");
            }
            _ => {}
        },
        ReportKind::Leaked => match process.killed_by.as_deref() {
            Some("term") => item.push_str(" by SIGTERM"),
            Some("kill") => item.push_str(" by SIGKILL"),
            Some("cgroup") => item.push_str(" by cgroup kill"),
            _ => {}
        },
        ReportKind::Unkillable => {
            if !process.state.is_empty() {
                let _ = write!(item, " state {}", process.state);
            }
            if !process.wchan.is_empty() {
                let _ = write!(item, " in {}", process.wchan);
            }
        }
    }
    item
}

fn shortened(cmdline: &str) -> String {
    match cmdline.char_indices().nth(MAX_CMDLINE_CHARS) {
        Some((cut, _)) => format!("{}...", &cmdline[..cut]),
        None => cmdline.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, comm: &str, cmdline: &str) -> ProcessRecord {
        ProcessRecord {
            pid,
            comm: comm.into(),
            cmdline: cmdline.into(),
            ..Default::default()
        }
    }

    fn subject<'a>(kind: ReportKind, processes: u64, named: &'a [ProcessRecord]) -> Subject<'a> {
        Subject {
            kind,
            container: "app",
            sandbox: false,
            exec_id: "",
            exec_command: "",
            processes,
            named,
            leak_reason: None,
        }
    }

    #[test]
    fn reaped_names_pid_comm_cmdline_and_exit() {
        let mut killed = process(13, "worker", "worker --once");
        killed.signal = Some(9);
        killed.exit_status = Some(137);
        let mut done = process(12, "sleep", "sleep 0");
        done.exit_status = Some(0);
        let named = [done, killed];

        let text = message(&subject(ReportKind::Reaped, 2, &named));

        assert_eq!(
            text,
            "reaped 2 orphaned processes in container \"app\": 12 sleep (sleep 0) exit 0; \
             13 worker (worker --once) signal 9"
        );
    }

    #[test]
    fn leaked_says_when_and_by_what_and_counts_the_unnamed() {
        let mut shell = process(7, "sh", "sh -c trap \"\" TERM; sleep 1000");
        shell.killed_by = Some("kill".into());
        let named = [shell];
        let mut leaked = subject(ReportKind::Leaked, 3, &named);
        leaked.leak_reason = Some("main-exit");

        assert_eq!(
            message(&leaked),
            "killed 3 processes left in container \"app\" after its main process exited: \
             7 sh (sh -c trap \"\" TERM; sleep 1000) by SIGKILL; and 2 more"
        );
    }

    #[test]
    fn exec_leftovers_are_named_by_the_execs_command_else_its_id() {
        let mut sleeper = process(40, "sleep", "sleep 0");
        sleeper.killed_by = Some("term".into());
        let named = [sleeper];
        let mut leaked = subject(ReportKind::Leaked, 60, &named);
        leaked.leak_reason = Some("exec-exit");
        leaked.exec_id = "probe-17";
        leaked.exec_command = "sh -c (sleep 0 &)";

        assert_eq!(
            message(&leaked),
            "killed 60 processes left by exec \"sh -c (sleep 0 &)\" in container \"app\": \
             40 sleep (sleep 0) by SIGTERM; and 59 more"
        );
        leaked.exec_command = "";
        assert!(
            message(&leaked).starts_with("killed 60 processes left by exec \"probe-17\" in"),
            "{}",
            message(&leaked)
        );
    }

    #[test]
    fn a_sandbox_is_the_pods_not_a_containers() {
        let named = [process(2, "sh", "sh")];
        let mut leaked = subject(ReportKind::Leaked, 1, &named);
        leaked.sandbox = true;
        leaked.container = "POD";
        leaked.leak_reason = Some("stop");

        assert_eq!(
            message(&leaked),
            "killed 1 process left in the pod's sandbox when it was stopped: 2 sh"
        );
    }

    #[test]
    fn unkillable_shows_state_and_wchan_and_skips_a_cmdline_equal_to_comm() {
        let mut stuck = process(9, "reader", "reader");
        stuck.state = "D".into();
        stuck.wchan = "fuse_wait_answer".into();
        let named = [stuck];

        assert_eq!(
            message(&subject(ReportKind::Unkillable, 1, &named)),
            "1 process in container \"app\" survives SIGKILL: 9 reader state D in fuse_wait_answer"
        );
    }

    #[test]
    fn a_storm_names_at_most_ten_and_stays_under_the_limit() {
        let long = "x".repeat(500);
        let named: Vec<ProcessRecord> = (1..=300).map(|pid| process(pid, "sh", &long)).collect();

        let text = message(&subject(ReportKind::Reaped, 5000, &named));

        assert!(text.len() <= MAX_MESSAGE_BYTES, "{} bytes", text.len());
        let shown = text.matches(" sh (").count();
        assert!((1..=MAX_NAMED).contains(&shown), "{text}");
        assert!(
            text.ends_with(&format!("; and {} more", 5000 - shown)),
            "{text}"
        );
        assert!(text.contains(&format!("({}...)", "x".repeat(MAX_CMDLINE_CHARS))));
    }

    #[test]
    fn multibyte_command_lines_are_cut_on_a_character() {
        let cmdline = "é".repeat(MAX_CMDLINE_CHARS + 5);
        assert_eq!(
            shortened(&cmdline),
            format!("{}...", "é".repeat(MAX_CMDLINE_CHARS))
        );
    }
}
