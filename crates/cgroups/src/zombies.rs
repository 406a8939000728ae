//! Zombies that belong to a cgroup. Recent kernels drop a process from `cgroup.procs` when it
//! exits, so its zombie is only found by scanning `/proc` for processes in state `Z` whose
//! `/proc/<pid>/cgroup` still names the cgroup.

use tracing::debug;

use crate::container::ContainerCgroup;
use crate::error::{is_vanished, CgroupError};
use crate::membership::read_proc_cgroup;
use crate::process::{is_dead_zombie, ProcessInfo};
use crate::procfs::stat as read_stat;
use crate::setup::Setup;

/// Every zombie in `cgroup` or one of its sub-cgroups (compared in its primary hierarchy).
pub fn zombies_in(
    setup: &Setup,
    cgroup: &ContainerCgroup,
) -> Result<Vec<ProcessInfo>, CgroupError> {
    let proc_root = setup.proc_root();
    let primary = cgroup.primary();
    let entries = std::fs::read_dir(proc_root).map_err(|source| CgroupError::ScanProc {
        path: proc_root.to_owned(),
        source,
    })?;
    let mut zombies = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CgroupError::ScanProc {
            path: proc_root.to_owned(),
            source,
        })?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Some(stat) = read_stat(proc_root, pid)? else {
            continue;
        };
        if !is_dead_zombie(proc_root, pid, stat.state) {
            continue;
        }
        let memberships = match read_proc_cgroup(proc_root, Some(pid)) {
            Ok(m) => m,
            Err(CgroupError::ReadProcCgroup { source, .. }) if is_vanished(&source) => continue,
            Err(err) => return Err(err),
        };
        let belongs = memberships
            .iter()
            .any(|m| m.hierarchy == primary.hierarchy && m.is_within(&primary.path));
        if belongs {
            if let Some(info) = ProcessInfo::read(proc_root, pid)? {
                debug!(pid, comm = %info.comm, ppid = info.ppid, "zombie in cgroup");
                zombies.push(info);
            }
        }
    }
    zombies.sort_by_key(|z| z.pid);
    Ok(zombies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{FakeHost, HYBRID, PID_BASE};

    #[test]
    fn finds_zombies_of_the_cgroup_and_its_sub_cgroups_only() {
        let host = FakeHost::new(HYBRID);
        host.process(PID_BASE, "init", 'S', "6:freezer:/ctr\n0::/ctr\n");
        host.process(PID_BASE + 1, "child", 'Z', "6:freezer:/ctr\n0::/ctr/sub\n");
        host.process(PID_BASE + 2, "other", 'Z', "6:freezer:/ctr2\n0::/ctr2\n");
        host.process(PID_BASE + 3, "prefix", 'Z', "6:freezer:/ctr-b\n0::/ctr-b\n");
        host.process(PID_BASE + 4, "alive", 'S', "6:freezer:/ctr\n0::/ctr\n");
        // A leader that called pthread_exit: Z, but its other thread runs.
        host.process(PID_BASE + 5, "threads", 'Z', "6:freezer:/ctr\n0::/ctr\n");
        let tasks = host
            .proc_root()
            .join(format!("{}/task/{}", PID_BASE + 5, PID_BASE + 6));
        std::fs::create_dir_all(tasks).unwrap();
        host.cgroup("unified", "/ctr");
        let setup = host.setup();
        let cgroup = ContainerCgroup::of_pid(&setup, PID_BASE).unwrap();
        let zombies = zombies_in(&setup, &cgroup).unwrap();
        let found: Vec<(i32, &str)> = zombies.iter().map(|z| (z.pid, z.comm.as_str())).collect();
        assert_eq!(found, vec![(PID_BASE + 1, "child")]);
        assert_eq!(zombies[0].state, 'Z');
    }
}
