//! Reading one container from the host: its cgroup's live processes, its zombies (found in
//! `/proc`, since `cgroup.procs` no longer lists them), their parents, and its pids use.
//! Synchronous: run it on a blocking thread.

use std::collections::{BTreeSet, HashSet};
use std::io;

use undertaker_cgroups::{zombies_in, CgroupError, ContainerCgroup, PidsUsage, ProcessInfo, Setup};

use crate::report::SkipReason;

/// What was read about one container, before it is summed up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// Live processes of the cgroup and its sub-cgroups.
    pub processes: Vec<ProcessInfo>,
    /// Zombies of the cgroup and its sub-cgroups.
    pub zombies: Vec<ProcessInfo>,
    /// Zombies' parents that are not among `processes` (outside the cgroup), as far as they
    /// could still be read.
    pub parents: Vec<ProcessInfo>,
    pub pids: Option<PidsUsage>,
}

/// Reads the container whose main process is `pid`.
pub(crate) fn observe(setup: &Setup, pid: i32) -> Result<Observation, SkipReason> {
    let cgroup = ContainerCgroup::of_pid(setup, pid).map_err(|error| skip_reason(pid, error))?;
    let processes = cgroup
        .processes()
        .map_err(|error| skip_reason(pid, error))?;
    let zombies = zombies_in(setup, &cgroup).map_err(|error| skip_reason(pid, error))?;
    let pids = cgroup
        .pids_usage()
        .map_err(|error| skip_reason(pid, error))?;
    let live: HashSet<i32> = processes.iter().map(|process| process.pid).collect();
    let outside: BTreeSet<i32> = zombies
        .iter()
        .map(|zombie| zombie.ppid)
        .filter(|ppid| !live.contains(ppid))
        .collect();
    let parents = outside
        .into_iter()
        // A parent that cannot be read is reported without a name; it is not worth a skip.
        .filter_map(|ppid| ProcessInfo::read(setup.proc_root(), ppid).ok().flatten())
        .collect();
    Ok(Observation {
        processes,
        zombies,
        parents,
        pids,
    })
}

/// What an exited container's cgroup still holds, found by the cgroup's path; `Ok(None)` when
/// the cgroup is gone or holds nothing (no live process, no zombie).
pub(crate) fn observe_exited(setup: &Setup, path: &str) -> Result<Option<Observation>, SkipReason> {
    let Some(cgroup) = ContainerCgroup::at_path(setup, path) else {
        return Ok(None);
    };
    let unreadable = |error: CgroupError| SkipReason::Unreadable(format!("{path}: {error}"));
    let processes = cgroup.processes().map_err(unreadable)?;
    let zombies = zombies_in(setup, &cgroup).map_err(unreadable)?;
    if processes.is_empty() && zombies.is_empty() {
        return Ok(None);
    }
    let pids = cgroup.pids_usage().map_err(unreadable)?;
    Ok(Some(Observation {
        processes,
        zombies,
        parents: Vec::new(),
        pids,
    }))
}

/// A process to look at again after the recheck interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub pid: i32,
    pub comm: String,
    /// Whether it only counts while in `D` (a running container's); else while alive (what
    /// an exited container left).
    pub in_d: bool,
}

/// Of the processes `seen` before, those still there, with the same name (a pid reused
/// meanwhile is another process), and in `D` where that is what counts.
pub(crate) fn still_there(setup: &Setup, seen: &[Seen]) -> BTreeSet<i32> {
    seen.iter()
        .filter(|seen| {
            matches!(
                ProcessInfo::read(setup.proc_root(), seen.pid),
                Ok(Some(now)) if now.comm == seen.comm && !matches!(now.state, 'Z' | 'X')
                    && (!seen.in_d || now.state == 'D')
            )
        })
        .map(|seen| seen.pid)
        .collect()
}

/// A container whose main process is gone (ENOENT; ESRCH when it died while its file was
/// open) has exited; anything else means we could not read a running container.
fn skip_reason(pid: i32, error: CgroupError) -> SkipReason {
    let vanished = match &error {
        CgroupError::ReadProcCgroup { source, .. } | CgroupError::ReadProcess { source, .. } => {
            source.kind() == io::ErrorKind::NotFound
                || source.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32)
        }
        _ => false,
    };
    if vanished {
        SkipReason::Exited(format!("its main process {pid} is gone (exited)"))
    } else {
        SkipReason::Unreadable(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake host with a cgroup2 mount and an empty `/proc` (pids far above any pid_max).
    fn fake_host() -> (tempfile::TempDir, Setup) {
        let proc_root = tempfile::tempdir().unwrap();
        let mountinfo = proc_root.path().join("mountinfo");
        let line = "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        std::fs::write(&mountinfo, line).unwrap();
        let setup = Setup::from_roots(proc_root.path(), &mountinfo).unwrap();
        (proc_root, setup)
    }

    #[test]
    fn a_container_whose_process_is_gone_is_skipped_as_exited() {
        let (_proc_root, setup) = fake_host();
        let reason = observe(&setup, 4_999_999).unwrap_err();
        assert!(matches!(reason, SkipReason::Exited(_)), "{reason:?}");
        assert!(reason.text().contains("4999999"), "{}", reason.text());
    }

    #[test]
    fn a_container_outside_any_cgroup_is_unreadable() {
        let (proc_root, setup) = fake_host();
        let dir = proc_root.path().join("4999998");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("cgroup"), "0::/\n").unwrap();
        let reason = observe(&setup, 4_999_998).unwrap_err();
        assert!(matches!(reason, SkipReason::Unreadable(_)), "{reason:?}");
    }
}
