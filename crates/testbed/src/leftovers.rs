//! What a testbed's pods can leave behind on the host once they are gone.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::layout::Layout;
use crate::procfs;

/// A process, named for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: i32,
    pub cmdline: String,
}

impl ProcessInfo {
    fn of(pid: i32) -> Self {
        ProcessInfo {
            pid,
            cmdline: procfs::cmdline(pid).join(" "),
        }
    }
}

/// Everything of ours still on the host. Empty after every pod was stopped and removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Shim processes serving our containerd (their command line names our socket).
    pub shims: Vec<ProcessInfo>,
    /// Mount points inside the testbed's directory (rootfs overlays, sandbox /dev/shm).
    pub mounts: Vec<PathBuf>,
    /// Cgroup directories below the testbed's cgroup parent, in any hierarchy.
    pub cgroups: Vec<PathBuf>,
    /// Containers still in a runc state root of ours (`<root>/<namespace>/<id>`).
    pub runc_state: Vec<PathBuf>,
    /// Processes in any cgroup below the testbed's cgroup parent.
    pub processes: Vec<ProcessInfo>,
    /// Interfaces (pods' veths) still on the testbed's CNI bridge.
    pub network_ports: Vec<String>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.shims.is_empty()
            && self.mounts.is_empty()
            && self.cgroups.is_empty()
            && self.runc_state.is_empty()
            && self.processes.is_empty()
            && self.network_ports.is_empty()
    }
}

impl fmt::Display for Leftovers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return write!(f, "nothing left behind");
        }
        for shim in &self.shims {
            writeln!(f, "shim process {} ({})", shim.pid, shim.cmdline)?;
        }
        for process in &self.processes {
            writeln!(
                f,
                "process {} in our cgroups ({})",
                process.pid, process.cmdline
            )?;
        }
        for mount in &self.mounts {
            writeln!(f, "mount {}", mount.display())?;
        }
        for cgroup in &self.cgroups {
            writeln!(f, "cgroup {}", cgroup.display())?;
        }
        for state in &self.runc_state {
            writeln!(f, "runc state {}", state.display())?;
        }
        for port in &self.network_ports {
            writeln!(f, "interface {port} on the testbed's CNI bridge")?;
        }
        Ok(())
    }
}

/// Looks for everything a testbed laid out as `layout` with cgroup parent `cgroup_parent` left.
pub fn scan(layout: &Layout, cgroup_parent: &str) -> Leftovers {
    let (cgroups, processes) = cgroups_and_processes(cgroup_parent);
    Leftovers {
        shims: shim_pids(&layout.socket)
            .into_iter()
            .map(ProcessInfo::of)
            .collect(),
        mounts: procfs::mounts_under(&layout.dir),
        cgroups,
        runc_state: layout
            .runc_roots()
            .iter()
            .flat_map(|root| runc_containers(root))
            .collect(),
        processes: processes.into_iter().map(ProcessInfo::of).collect(),
        network_ports: Vec::new(),
    }
}

/// Live shims whose command line names `socket` as their containerd address.
pub fn shim_pids(socket: &Path) -> Vec<i32> {
    let socket = socket.to_string_lossy();
    procfs::all_pids()
        .into_iter()
        .filter(|pid| {
            let args = procfs::cmdline(*pid);
            let is_shim = args
                .first()
                .and_then(|program| Path::new(program).file_name())
                .is_some_and(|name| name.to_string_lossy().starts_with("containerd-shim"));
            is_shim && args.iter().any(|arg| *arg == socket) && procfs::is_running(*pid)
        })
        .collect()
}

/// The cgroup directories below `cgroup_parent` in every hierarchy, and the pids in them
/// (including the parent itself).
pub fn cgroups_and_processes(cgroup_parent: &str) -> (Vec<PathBuf>, Vec<i32>) {
    let mut cgroups = Vec::new();
    let mut pids = Vec::new();
    for hierarchy in procfs::cgroup_hierarchies() {
        let parent = procfs::cgroup_dir(&hierarchy, cgroup_parent);
        if !parent.is_dir() {
            continue;
        }
        pids.extend(procfs::cgroup_pids(&parent));
        for dir in procfs::cgroup_descendants(&parent) {
            pids.extend(procfs::cgroup_pids(&dir));
            cgroups.push(dir);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids.retain(|pid| procfs::is_running(*pid));
    (cgroups, pids)
}

/// `<root>/<namespace>/<id>` entries: containers runc still keeps state for.
fn runc_containers(root: &Path) -> Vec<PathBuf> {
    let Ok(namespaces) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    namespaces
        .flatten()
        .filter_map(|namespace| std::fs::read_dir(namespace.path()).ok())
        .flat_map(|containers| containers.flatten().map(|entry| entry.path()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unused_layout_has_nothing_left() {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = Layout::new(dir.path());
        let leftovers = scan(&layout, "/undertaker-testbed-no-such-parent");
        assert!(leftovers.is_empty(), "{leftovers}");
        assert_eq!(leftovers.to_string(), "nothing left behind");
    }

    #[test]
    fn runc_state_entries_are_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = Layout::new(dir.path());
        let container = layout.runc_root.join("k8s.io/abc123");
        std::fs::create_dir_all(&container).expect("state dir");
        let leftovers = scan(&layout, "/undertaker-testbed-no-such-parent");
        assert_eq!(leftovers.runc_state, [container]);
        assert!(leftovers.to_string().contains("runc state"));
    }
}
