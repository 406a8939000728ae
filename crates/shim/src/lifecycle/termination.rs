//! The opt-in leak summary in the container's termination message
//! (`undertaker.io/termination-message`): when the main process exits and leftovers were
//! killed, one line is appended to the host file kubelet mounted at the message's path, so
//! `kubectl describe pod` shows it under Last State without any agent.
//!
//! Never more than kubelet reads (4,096 bytes, the whole file), never over what the app
//! wrote (appended, after a newline), never into a file that is not mounted (never created).

use std::{io::Write, path::Path};

use undertaker_events::{KilledBy, Process};

/// kubelet reads at most this many bytes of a termination message file.
pub(crate) const KUBELET_LIMIT: usize = 4096;

/// The line for `killed`, fitted into `room` bytes (its newline included); `None` when
/// nothing was killed or not even the count fits.
pub(crate) fn summary(killed: &[Process], room: usize) -> Option<String> {
    if killed.is_empty() {
        return None;
    }
    let head = format!(
        "undertaker: killed {} process{} left behind: ",
        killed.len(),
        if killed.len() == 1 { "" } else { "es" }
    );
    let mut line = head.clone();
    for (n, p) in killed.iter().enumerate() {
        let pid = if p.pid != 0 { p.pid } else { p.host_pid };
        let by = match p.killed_by.enum_value_or_default() {
            KilledBy::KILLED_BY_TERM => "SIGTERM",
            _ => "SIGKILL",
        };
        let item = if p.cmdline.is_empty() {
            format!("{pid} {} by {by}", p.comm)
        } else {
            format!("{pid} {} ({}) by {by}", p.comm, p.cmdline)
        };
        let sep = if n == 0 { "" } else { "; " };
        let more = format!("; and {} more", killed.len() - n);
        // Room for this item and, should a later one not fit, for "; and N more".
        if line.len() + sep.len() + item.len() + more.len() + 1 > room {
            let tail = if n == 0 {
                format!("{} not listed", killed.len())
            } else {
                more.trim_start_matches("; ").to_string()
            };
            let sep = if n == 0 { "" } else { "; " };
            line.push_str(sep);
            line.push_str(&tail);
            break;
        }
        line.push_str(sep);
        line.push_str(&item);
    }
    line.push('\n');
    (line.len() <= room).then_some(line)
}

/// Appends the summary to `file` (which must exist), within kubelet's limit.
pub(crate) fn append(file: &Path, killed: &[Process]) -> std::io::Result<bool> {
    let existing = std::fs::read(file)?;
    let newline = !existing.is_empty() && !existing.ends_with(b"\n");
    let room = KUBELET_LIMIT.saturating_sub(existing.len() + usize::from(newline));
    let Some(line) = summary(killed, room) else {
        return Ok(false);
    };
    let mut out = std::fs::OpenOptions::new().append(true).open(file)?;
    if newline {
        out.write_all(b"\n")?;
    }
    out.write_all(line.as_bytes())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn killed(pid: u32, comm: &str, cmdline: &str, by: KilledBy) -> Process {
        Process {
            pid,
            comm: comm.into(),
            cmdline: cmdline.into(),
            killed_by: by.into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_each_process_and_how_it_ended() {
        let line = summary(
            &[
                killed(7, "sleep", "sleep 100", KilledBy::KILLED_BY_TERM),
                killed(9, "worker", "", KilledBy::KILLED_BY_CGROUP),
            ],
            KUBELET_LIMIT,
        )
        .unwrap();
        assert_eq!(
            line,
            "undertaker: killed 2 processes left behind: 7 sleep (sleep 100) by SIGTERM; 9 worker by SIGKILL\n"
        );
        assert_eq!(summary(&[], KUBELET_LIMIT), None);
    }

    #[test]
    fn a_long_list_is_cut_to_the_room_and_says_how_many_more() {
        let many: Vec<_> = (1..=500)
            .map(|n| killed(n, "sleep", "sleep 3600", KilledBy::KILLED_BY_KILL))
            .collect();
        let line = summary(&many, 300).unwrap();
        assert!(line.len() <= 300, "{}", line.len());
        assert!(line.starts_with("undertaker: killed 500 processes left behind: 1 sleep"));
        assert!(line.trim_end().ends_with(" more"), "{line}");
        let tiny = summary(&many, 70).unwrap();
        assert!(tiny.contains("500 not listed"), "{tiny}");
        assert_eq!(summary(&many, 20), None, "not even the count fits");
    }

    #[test]
    fn appends_after_what_the_app_wrote_and_never_past_kubelets_limit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("termination-log");
        let one = [killed(3, "sleep", "sleep 9", KilledBy::KILLED_BY_KILL)];
        assert!(
            append(&file, &one).is_err(),
            "a file that is not there is never created"
        );
        assert!(!file.exists());
        std::fs::write(&file, "app: bye").unwrap();
        assert!(append(&file, &one).unwrap());
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "app: bye\nundertaker: killed 1 process left behind: 3 sleep (sleep 9) by SIGKILL\n"
        );
        std::fs::write(&file, "x".repeat(KUBELET_LIMIT - 10)).unwrap();
        assert!(!append(&file, &one).unwrap(), "no room: nothing written");
        assert_eq!(std::fs::read(&file).unwrap().len(), KUBELET_LIMIT - 10);
    }
}
