//! Where each cgroup hierarchy is mounted, read from a `mountinfo` file rather than assumed
//! to be under `/sys/fs/cgroup`.

use std::path::PathBuf;

use crate::procfs::Mount;

/// A cgroup hierarchy: the v2 unified one, or a v1 one named by its controllers (a named
/// hierarchy such as `name=systemd` counts as a controller here, as in `/proc/<pid>/cgroup`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hierarchy {
    Unified,
    V1 { controllers: Vec<String> },
}

impl Hierarchy {
    /// A v1 hierarchy from its comma-separated controller list, in a canonical (sorted) order.
    pub(crate) fn v1(list: &str) -> Self {
        let mut controllers: Vec<String> = list
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        controllers.sort();
        Hierarchy::V1 { controllers }
    }

    /// Whether this v1 hierarchy carries `controller` (e.g. `freezer`, `pids`, `name=systemd`).
    pub fn has_controller(&self, controller: &str) -> bool {
        match self {
            Hierarchy::Unified => false,
            Hierarchy::V1 { controllers } => controllers.iter().any(|c| c == controller),
        }
    }
}

/// One cgroup filesystem mount: which hierarchy, which cgroup of it is the mount's root, and
/// where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub hierarchy: Hierarchy,
    /// The cgroup shown at `mount_point` (`/` unless a sub-cgroup was bind-mounted or the
    /// mount was made inside a cgroup namespace).
    pub root: String,
    pub mount_point: PathBuf,
}

impl CgroupMount {
    /// Whether this mount shows the hierarchy that `/proc/<pid>/cgroup` names `hierarchy`.
    pub(crate) fn serves(&self, hierarchy: &Hierarchy) -> bool {
        match (hierarchy, &self.hierarchy) {
            (Hierarchy::Unified, Hierarchy::Unified) => true,
            (Hierarchy::V1 { controllers }, mounted @ Hierarchy::V1 { .. }) => {
                !controllers.is_empty() && controllers.iter().all(|c| mounted.has_controller(c))
            }
            _ => false,
        }
    }
}

/// Every cgroup and cgroup2 mount in a mountinfo file, in file order. Lines that are not
/// cgroup mounts, or that do not parse, are skipped.
pub(crate) fn parse_mountinfo(content: &str) -> Vec<CgroupMount> {
    crate::procfs::parse_mountinfo(content)
        .into_iter()
        .filter_map(cgroup_mount)
        .collect()
}

fn cgroup_mount(mount: Mount) -> Option<CgroupMount> {
    let hierarchy = match mount.fs_type.as_str() {
        "cgroup2" => Hierarchy::Unified,
        "cgroup" => Hierarchy::v1(
            &mount
                .super_options
                .split(',')
                .filter(|o| is_v1_controller_option(o))
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => return None,
    };
    Some(CgroupMount {
        hierarchy,
        root: mount.root,
        mount_point: mount.mount_point,
    })
}

/// v1 super options are the controllers plus a few flags; this keeps the controllers (and
/// `name=...`) so that `Hierarchy` prints like the middle field of `/proc/<pid>/cgroup`.
fn is_v1_controller_option(option: &str) -> bool {
    const FLAGS: &[&str] = &[
        "rw",
        "ro",
        "noprefix",
        "clone_children",
        "xattr",
        "cpuset_v2_mode",
        "none",
        "all",
        "favordynmods",
        "nofavordynmods",
    ];
    !option.is_empty()
        && !FLAGS.contains(&option)
        && (!option.contains('=') || option.starts_with("name="))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd,release_agent=/x
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:10 master:2 - cgroup2 cgroup2 rw,nsdelegate
50 23 0:40 / /proc rw - proc proc rw
";

    #[test]
    fn keeps_only_cgroup_mounts_with_their_hierarchies() {
        let mounts = parse_mountinfo(HYBRID);
        let found: Vec<(Hierarchy, &str)> = mounts
            .iter()
            .map(|m| (m.hierarchy.clone(), m.mount_point.to_str().unwrap()))
            .collect();
        assert_eq!(
            found,
            vec![
                (Hierarchy::v1("cpuacct,cpu"), "/sys/fs/cgroup/cpu,cpuacct"),
                (Hierarchy::v1("freezer"), "/sys/fs/cgroup/freezer"),
                (Hierarchy::v1("name=systemd"), "/sys/fs/cgroup/systemd"),
                (Hierarchy::Unified, "/sys/fs/cgroup/unified"),
            ]
        );
    }

    #[test]
    fn a_combined_v1_mount_serves_each_of_its_controller_sets() {
        let mounts = parse_mountinfo(HYBRID);
        let cpu = &mounts[0];
        assert!(cpu.serves(&Hierarchy::v1("cpu,cpuacct")));
        assert!(!cpu.serves(&Hierarchy::v1("freezer")));
        assert!(!cpu.serves(&Hierarchy::Unified));
        assert!(mounts[3].serves(&Hierarchy::Unified));
        assert!(mounts[2].serves(&Hierarchy::v1("name=systemd")));
    }

    #[test]
    fn skips_garbage_lines() {
        assert!(parse_mountinfo("not a mountinfo line\n\n1 2 3\n").is_empty());
    }
}
