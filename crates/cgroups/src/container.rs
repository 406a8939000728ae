//! A container's cgroup: where it sits in each hierarchy, found from its init's
//! `/proc/<pid>/cgroup`, and who is in it.
//!
//! Resolve it while the init is alive (at start) and keep the value: once the init is reaped
//! its `/proc/<pid>` is gone, while the cgroup stays until the runtime removes it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tracing::{debug, warn};

use crate::error::CgroupError;
use crate::membership::{is_container_path, read_proc_cgroup, Membership};
use crate::mountinfo::Hierarchy;
use crate::process::{is_dead_zombie, ProcessInfo};
use crate::procfs::stat as read_stat;
use crate::setup::Setup;
use crate::tree::pids_recursive;

/// The container's cgroup in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub hierarchy: Hierarchy,
    /// The path within the hierarchy, as `/proc/<pid>/cgroup` shows it.
    pub path: String,
    /// Where that cgroup's directory is mounted here.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    proc_root: PathBuf,
    placements: Vec<Placement>,
}

impl ContainerCgroup {
    /// The cgroup of `pid` (a container's init) in every hierarchy mounted here.
    ///
    /// Skipped, so that nothing outside the container is ever killed: hierarchies where the
    /// pid sits in the root cgroup (a cgroup namespace shows `/`, or the runtime did not
    /// place it there), paths outside our cgroup namespace, hierarchies not mounted here,
    /// and hierarchies where the caller's own cgroup is the container's or below it (the
    /// runtime left the container in its parent's cgroup).
    pub fn of_pid(setup: &Setup, pid: i32) -> Result<Self, CgroupError> {
        let memberships = read_proc_cgroup(setup.proc_root(), Some(pid))?;
        // Unknown when the proc root has no `self` (a fixture): nothing to compare with.
        let callers = read_proc_cgroup(setup.proc_root(), None).unwrap_or_default();
        let placements: Vec<Placement> = memberships
            .into_iter()
            .filter_map(|m| {
                place(setup, &callers, m)
                    .map_err(|why| debug!(pid, "{why}"))
                    .ok()
            })
            .collect();
        if placements.is_empty() {
            return Err(CgroupError::NoHierarchy { pid });
        }
        Ok(ContainerCgroup {
            proc_root: setup.proc_root().to_owned(),
            placements,
        })
    }

    /// The cgroup at `path` (absolute, as the runtime made it from the spec: see
    /// [`crate::cgroup_of_spec_path`]) in every hierarchy mounted here where its directory
    /// still exists, e.g. for a container whose main process is gone. `None` when it exists
    /// in none (removed). The same hierarchies are skipped as by [`ContainerCgroup::of_pid`].
    pub fn at_path(setup: &Setup, path: &str) -> Option<Self> {
        let callers = read_proc_cgroup(setup.proc_root(), None).unwrap_or_default();
        let mut hierarchies: Vec<&Hierarchy> =
            setup.mounts().iter().map(|m| &m.hierarchy).collect();
        hierarchies.sort();
        hierarchies.dedup();
        let placements: Vec<Placement> = hierarchies
            .into_iter()
            .filter_map(|hierarchy| {
                let membership = Membership {
                    hierarchy: hierarchy.clone(),
                    path: path.to_owned(),
                };
                place(setup, &callers, membership)
                    .map_err(|why| debug!(path, "{why}"))
                    .ok()
            })
            .filter(|placement| placement.dir.is_dir())
            .collect();
        (!placements.is_empty()).then(|| ContainerCgroup {
            proc_root: setup.proc_root().to_owned(),
            placements,
        })
    }

    pub fn placements(&self) -> &[Placement] {
        &self.placements
    }

    /// The cgroup2 directory (on a hybrid host, under the unified mount).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.placement(&Hierarchy::Unified).map(|p| p.dir.as_path())
    }

    /// The directory in the v1 hierarchy carrying `controller` (`freezer`, `pids`,
    /// `memory`, `name=systemd`, ...).
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.placements
            .iter()
            .find(|p| p.hierarchy.has_controller(controller))
            .map(|p| p.dir.as_path())
    }

    /// The directory whose process list we trust for "who is in the container": the unified
    /// one when present (it lists every process), else the v1 freezer, pids, or any other.
    pub fn primary(&self) -> &Placement {
        self.placement(&Hierarchy::Unified)
            .or_else(|| self.v1_placement("freezer"))
            .or_else(|| self.v1_placement("pids"))
            .unwrap_or(&self.placements[0])
    }

    /// Every live process of the cgroup and its sub-cgroups, by pid.
    pub fn processes(&self) -> Result<Vec<ProcessInfo>, CgroupError> {
        let mut found = Vec::new();
        for pid in pids_recursive(&self.primary().dir)? {
            match ProcessInfo::read(&self.proc_root, pid)? {
                Some(info) if !is_dead_zombie(&self.proc_root, pid, info.state) => found.push(info),
                _ => {}
            }
        }
        Ok(found)
    }

    /// Whether no live process is left in the cgroup or any sub-cgroup.
    pub fn is_empty(&self) -> Result<bool, CgroupError> {
        Ok(live_pids(&self.proc_root, &self.primary().dir)?.is_empty())
    }

    pub(crate) fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    pub(crate) fn v1_placement(&self, controller: &str) -> Option<&Placement> {
        self.placements
            .iter()
            .find(|p| p.hierarchy.has_controller(controller))
    }

    fn placement(&self, hierarchy: &Hierarchy) -> Option<&Placement> {
        self.placements.iter().find(|p| &p.hierarchy == hierarchy)
    }
}

/// Pids listed under `dir` that are alive: gone processes and dead zombies (still listed in
/// `cgroup.procs` on older kernels) left out.
pub(crate) fn live_pids(proc_root: &Path, dir: &Path) -> Result<BTreeSet<i32>, CgroupError> {
    let mut live = BTreeSet::new();
    for pid in pids_recursive(dir)? {
        if let Some(stat) = read_stat(proc_root, pid)? {
            if !is_dead_zombie(proc_root, pid, stat.state) {
                live.insert(pid);
            }
        }
    }
    Ok(live)
}

/// Where membership `m` is mounted here, or why it is skipped.
fn place(setup: &Setup, callers: &[Membership], m: Membership) -> Result<Placement, String> {
    if !is_container_path(&m.path) {
        return Err(format!(
            "{:?} {}: not a container cgroup, skipped",
            m.hierarchy, m.path
        ));
    }
    let holds_caller = callers
        .iter()
        .any(|c| c.hierarchy == m.hierarchy && c.is_within(&m.path));
    if holds_caller {
        let why = format!(
            "{:?} {}: cgroup also holds the caller, skipped",
            m.hierarchy, m.path
        );
        warn!("{why}");
        return Err(why);
    }
    let Some(dir) = setup.resolve(&m) else {
        return Err(format!(
            "{:?}: hierarchy not mounted here, skipped",
            m.hierarchy
        ));
    };
    Ok(Placement {
        hierarchy: m.hierarchy,
        path: m.path,
        dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{FakeHost, HYBRID, PID_BASE};

    const SYSTEMD_SCOPE: &str = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1_2.slice/cri-containerd-abc.scope";

    fn hybrid_membership(path: &str) -> String {
        format!("9:name=systemd:{path}\n8:pids:{path}\n6:freezer:{path}\n2:cpu,cpuacct:{path}\n0::{path}\n")
    }

    #[test]
    fn finds_every_hierarchy_of_a_hybrid_host_with_systemd_paths() {
        let host = FakeHost::new(HYBRID);
        host.process(PID_BASE, "init", 'S', &hybrid_membership(SYSTEMD_SCOPE));
        let cgroup = ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap();
        let unified = host.cgroup("unified", SYSTEMD_SCOPE);
        assert_eq!(cgroup.unified_dir(), Some(unified.as_path()));
        assert_eq!(
            cgroup.v1_dir("freezer"),
            Some(host.cgroup("freezer", SYSTEMD_SCOPE).as_path())
        );
        assert_eq!(
            cgroup.v1_dir("cpuacct"),
            Some(host.cgroup("cpu,cpuacct", SYSTEMD_SCOPE).as_path())
        );
        assert_eq!(
            cgroup.v1_dir("name=systemd"),
            Some(host.cgroup("systemd", SYSTEMD_SCOPE).as_path())
        );
        assert_eq!(cgroup.v1_dir("memory"), None);
        assert_eq!(cgroup.placements().len(), 5);
        assert_eq!(cgroup.primary().dir, unified);
        assert_eq!(cgroup.primary().path, SYSTEMD_SCOPE);
    }

    #[test]
    fn a_v1_only_host_ignores_the_root_unified_line() {
        let host = FakeHost::new(&HYBRID[..4]);
        host.process(PID_BASE, "init", 'S', "6:freezer:/ctr\n8:pids:/ctr\n0::/\n");
        let cgroup = ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap();
        assert_eq!(cgroup.unified_dir(), None);
        assert_eq!(cgroup.primary().dir, host.cgroup("freezer", "/ctr"));
    }

    #[test]
    fn a_v2_only_host() {
        let host = FakeHost::new(&[("cgroup2", "rw", "")]);
        host.process(PID_BASE, "init", 'S', "0::/kubepods/besteffort/pod1/abc\n");
        let cgroup = ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap();
        assert_eq!(
            cgroup.unified_dir(),
            Some(host.cgroup("", "/kubepods/besteffort/pod1/abc").as_path())
        );
        assert_eq!(cgroup.placements().len(), 1);
    }

    #[test]
    fn root_paths_as_seen_in_a_cgroup_namespace_are_no_container_cgroup() {
        let host = FakeHost::new(HYBRID);
        host.process(PID_BASE, "init", 'S', &hybrid_membership("/"));
        let err = ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap_err();
        assert!(
            matches!(err, CgroupError::NoHierarchy { pid } if pid == PID_BASE),
            "{err}"
        );
    }

    #[test]
    fn hierarchies_not_mounted_here_are_skipped() {
        let host = FakeHost::new(&HYBRID[..1]);
        host.process(PID_BASE, "init", 'S', &hybrid_membership("/ctr"));
        let cgroup = ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap();
        assert_eq!(cgroup.placements().len(), 1);
        assert_eq!(cgroup.primary().hierarchy, Hierarchy::v1("freezer"));
    }

    #[test]
    fn a_cgroup_that_holds_the_caller_is_never_used() {
        let host = FakeHost::new(HYBRID);
        // The runtime left the container in the caller's unified cgroup.
        host.process(
            PID_BASE,
            "init",
            'S',
            "6:freezer:/ctr\n0::/system.slice/containerd.service\n",
        );
        host.caller_in("6:freezer:/\n0::/system.slice/containerd.service/shim\n");
        let cgroup = ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap();
        assert_eq!(cgroup.unified_dir(), None);
        assert_eq!(
            cgroup.v1_dir("freezer"),
            Some(host.cgroup("freezer", "/ctr").as_path())
        );
    }

    #[test]
    fn a_missing_proc_entry_is_an_error_naming_the_pid() {
        let host = FakeHost::new(HYBRID);
        let err = ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap_err();
        assert!(
            matches!(err, CgroupError::ReadProcCgroup { pid, .. } if pid == PID_BASE),
            "{err}"
        );
    }

    #[test]
    fn lists_live_processes_of_nested_sub_cgroups() {
        let host = FakeHost::new(HYBRID);
        let membership = hybrid_membership("/ctr");
        host.process(PID_BASE, "init", 'S', &membership);
        host.process(PID_BASE + 1, "worker one", 'R', &membership);
        host.process(PID_BASE + 2, "zombie", 'Z', &membership);
        let top = host.cgroup("unified", "/ctr");
        let nested = host.cgroup("unified", "/ctr/a/b");
        host.enter(&top, PID_BASE);
        host.enter(&nested, PID_BASE + 1);
        host.enter(&nested, PID_BASE + 2);
        // Listed but already gone from /proc: exited while we looked.
        host.enter(&nested, PID_BASE + 3);
        let cgroup = ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap();
        let found: Vec<(i32, String)> = cgroup
            .processes()
            .unwrap()
            .into_iter()
            .map(|p| (p.pid, p.comm))
            .collect();
        assert_eq!(
            found,
            vec![
                (PID_BASE, "init".into()),
                (PID_BASE + 1, "worker one".into())
            ]
        );
        assert!(!cgroup.is_empty().unwrap());
        host.exit(PID_BASE);
        host.exit(PID_BASE + 1);
        assert!(
            cgroup.is_empty().unwrap(),
            "only a dead zombie and a gone pid are left"
        );
    }

    #[test]
    fn a_cgroup_found_by_its_path_after_its_processes_are_gone() {
        let host = FakeHost::new(HYBRID);
        assert_eq!(ContainerCgroup::at_path(&host.setup(), "/ctr"), None);
        let unified = host.cgroup("unified", "/ctr");
        let freezer = host.cgroup("freezer", "/ctr");
        host.process(PID_BASE + 1, "left", 'D', &hybrid_membership("/ctr"));
        host.enter(&host.cgroup("unified", "/ctr/sub"), PID_BASE + 1);
        let cgroup = ContainerCgroup::at_path(&host.setup(), "/ctr").unwrap();
        assert_eq!(cgroup.placements().len(), 2, "{:?}", cgroup.placements());
        assert_eq!(cgroup.unified_dir(), Some(unified.as_path()));
        assert_eq!(cgroup.v1_dir("freezer"), Some(freezer.as_path()));
        let left: Vec<i32> = cgroup.processes().unwrap().iter().map(|p| p.pid).collect();
        assert_eq!(left, vec![PID_BASE + 1]);
        assert_eq!(ContainerCgroup::at_path(&host.setup(), "/"), None);
        assert_eq!(ContainerCgroup::at_path(&host.setup(), "/ctr/../x"), None);
    }
}
