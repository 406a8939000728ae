//! Zombies that belong to a cgroup. Recent kernels drop a process from `cgroup.procs` when it
//! exits, so its zombie is only found by scanning `/proc` for processes in state `Z` whose
//! `/proc/<pid>/cgroup` still names the cgroup.

use tracing::debug;

use crate::container::ContainerCgroup;
use crate::error::{is_vanished, CgroupError};
use crate::membership::read_proc_cgroup;
use crate::process::{is_dead_zombie, read_stat, ProcessInfo};
use crate::setup::Setup;

/// Every zombie in `cgroup` or one of its sub-cgroups (compared in its primary hierarchy).
pub fn zombies_in(setup: &Setup, cgroup: &ContainerCgroup) -> Result<Vec<ProcessInfo>, CgroupError> {
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
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
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
