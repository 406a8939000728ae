//! A process's cgroup membership, as `/proc/<pid>/cgroup` lists it: one line per hierarchy,
//! `id:controllers:path`, the v2 line being `0::path`.
//!
//! The paths are relative to the reader's cgroup namespace: the cgroupfs and systemd drivers
//! both end up here as plain paths (`/kubepods/besteffort/pod<uid>/<id>`,
//! `/system.slice/kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope`), so nothing
//! driver-specific is needed.

use std::path::{Path, PathBuf};

use crate::error::CgroupError;
use crate::mountinfo::Hierarchy;

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    pub hierarchy: Hierarchy,
    /// Absolute within the hierarchy, e.g. `/kubepods/pod1/abc`.
    pub path: String,
}

impl Membership {
    /// Whether `path` is this membership's cgroup or one of its descendants.
    pub fn is_within(&self, ancestor: &str) -> bool {
        is_within(&self.path, ancestor)
    }
}

/// Whether cgroup `path` is `ancestor` or below it, comparing whole components.
pub(crate) fn is_within(path: &str, ancestor: &str) -> bool {
    Path::new(path).starts_with(Path::new(ancestor))
}

pub(crate) fn parse_proc_cgroup(content: &str) -> Vec<Membership> {
    content
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let hierarchy = if id == "0" && controllers.is_empty() {
                Hierarchy::Unified
            } else {
                Hierarchy::v1(controllers)
            };
            Some(Membership {
                hierarchy,
                path: path.to_owned(),
            })
        })
        .collect()
}

/// Reads `<proc_root>/<pid>/cgroup`; `pid` may also be `self` (pass `None`).
pub(crate) fn read_proc_cgroup(
    proc_root: &Path,
    pid: Option<i32>,
) -> Result<Vec<Membership>, CgroupError> {
    let path = proc_cgroup_path(proc_root, pid);
    let content = std::fs::read_to_string(&path).map_err(|source| CgroupError::ReadProcCgroup {
        pid: pid.unwrap_or(0),
        path: path.clone(),
        source,
    })?;
    Ok(parse_proc_cgroup(&content))
}

fn proc_cgroup_path(proc_root: &Path, pid: Option<i32>) -> PathBuf {
    match pid {
        Some(pid) => proc_root.join(pid.to_string()).join("cgroup"),
        None => proc_root.join("self").join("cgroup"),
    }
}

/// A path we can act on: absolute, not the hierarchy's root, and not reaching outside our
/// cgroup namespace (`/../..`), which no mount here can show.
pub(crate) fn is_container_path(path: &str) -> bool {
    path.starts_with('/') && path != "/" && !path.split('/').any(|c| c == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hybrid_membership_with_systemd_paths() {
        let content = "\
12:pids:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1_2.slice/cri-containerd-abc.scope
6:cpu,cpuacct:/kubepods/besteffort/pod1/abc
1:name=systemd:/system.slice/containerd.service
0::/kubepods/besteffort/pod1/abc
";
        let parsed = parse_proc_cgroup(content);
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[0].hierarchy, Hierarchy::v1("pids"));
        assert!(parsed[0].path.ends_with("cri-containerd-abc.scope"));
        assert_eq!(parsed[1].hierarchy, Hierarchy::v1("cpuacct,cpu"));
        assert_eq!(parsed[2].hierarchy, Hierarchy::v1("name=systemd"));
        assert_eq!(parsed[3].hierarchy, Hierarchy::Unified);
        assert_eq!(parsed[3].path, "/kubepods/besteffort/pod1/abc");
    }

    #[test]
    fn a_path_with_colons_is_kept_whole() {
        let parsed = parse_proc_cgroup("0::/weird:name\n");
        assert_eq!(parsed[0].path, "/weird:name");
    }

    #[test]
    fn roots_and_paths_outside_the_namespace_are_not_container_paths() {
        assert!(!is_container_path("/"));
        assert!(!is_container_path("/../../kubepods/pod1"));
        assert!(!is_container_path(""));
        assert!(is_container_path("/kubepods/pod1/abc"));
    }

    #[test]
    fn within_compares_whole_components() {
        assert!(is_within("/a/b/c", "/a/b"));
        assert!(is_within("/a/b", "/a/b"));
        assert!(!is_within("/a/bc", "/a/b"));
        assert!(is_within("/anything", "/"));
    }
}
