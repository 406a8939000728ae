//! Where to look: the proc root and the cgroup mount table. Everything else in this crate
//! takes a `Setup`, so tests run against temp-dir fixtures and nothing hard-codes
//! `/sys/fs/cgroup`.

use std::path::{Path, PathBuf};

use crate::error::CgroupError;
use crate::membership::{is_within, Membership};
use crate::mountinfo::{parse_mountinfo, CgroupMount, Hierarchy};

#[derive(Debug, Clone)]
pub struct Setup {
    proc_root: PathBuf,
    mounts: Vec<CgroupMount>,
}

impl Setup {
    /// The host as the calling process sees it: `/proc` and `/proc/self/mountinfo`.
    pub fn host() -> Result<Self, CgroupError> {
        Self::from_roots("/proc", "/proc/self/mountinfo")
    }

    /// A proc root and a mountinfo file, e.g. `<tmp>/proc` and `<tmp>/mountinfo` in tests.
    pub fn from_roots(
        proc_root: impl Into<PathBuf>,
        mountinfo: impl AsRef<Path>,
    ) -> Result<Self, CgroupError> {
        let mountinfo = mountinfo.as_ref();
        let content =
            std::fs::read_to_string(mountinfo).map_err(|source| CgroupError::ReadMountinfo {
                path: mountinfo.to_owned(),
                source,
            })?;
        Ok(Setup {
            proc_root: proc_root.into(),
            mounts: parse_mountinfo(&content),
        })
    }

    /// The same setup without the cgroup2 (unified) hierarchy, as on a v1-only host. Useful
    /// to exercise the v1 paths on a hybrid host.
    pub fn without_unified(mut self) -> Self {
        self.mounts.retain(|m| m.hierarchy != Hierarchy::Unified);
        self
    }

    /// The same setup without the v1 hierarchy that carries `controller`.
    pub fn without_v1_controller(mut self, controller: &str) -> Self {
        self.mounts
            .retain(|m| !m.hierarchy.has_controller(controller));
        self
    }

    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    pub fn mounts(&self) -> &[CgroupMount] {
        &self.mounts
    }

    /// The directory of a membership's cgroup: the first mount of its hierarchy whose root
    /// contains the cgroup. `None` when no such mount exists here.
    pub(crate) fn resolve(&self, membership: &Membership) -> Option<PathBuf> {
        self.mounts
            .iter()
            .filter(|m| m.serves(&membership.hierarchy))
            .find(|m| is_within(&membership.path, &m.root))
            .map(|m| {
                let below_root = Path::new(&membership.path)
                    .strip_prefix(&m.root)
                    .unwrap_or(Path::new(""));
                m.mount_point.join(below_root)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::parse_proc_cgroup;

    fn setup(mountinfo: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mountinfo");
        std::fs::write(&path, mountinfo).unwrap();
        Setup::from_roots("/nonexistent-proc", &path).unwrap()
    }

    fn resolve(setup: &Setup, line: &str) -> Option<PathBuf> {
        setup.resolve(&parse_proc_cgroup(line)[0])
    }

    #[test]
    fn resolves_below_the_mount_point() {
        let s = setup(
            "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             37 31 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n",
        );
        assert_eq!(
            resolve(&s, "0::/kubepods/pod1/abc"),
            Some(PathBuf::from("/sys/fs/cgroup/unified/kubepods/pod1/abc"))
        );
        assert_eq!(
            resolve(&s, "7:freezer:/kubepods/pod1/abc"),
            Some(PathBuf::from("/sys/fs/cgroup/freezer/kubepods/pod1/abc"))
        );
        assert_eq!(resolve(&s, "8:pids:/kubepods/pod1/abc"), None);
    }

    #[test]
    fn a_mount_rooted_at_a_sub_cgroup_shows_only_what_is_below_it() {
        let s = setup("60 1 0:50 /kubepods /mnt/cg rw - cgroup2 none rw\n");
        assert_eq!(
            resolve(&s, "0::/kubepods/pod1"),
            Some(PathBuf::from("/mnt/cg/pod1"))
        );
        assert_eq!(resolve(&s, "0::/system.slice/x.scope"), None);
    }

    #[test]
    fn hiding_hierarchies_removes_their_mounts() {
        let s = setup(
            "41 31 0:38 / /u rw - cgroup2 cgroup2 rw\n\
             37 31 0:34 / /f rw - cgroup cgroup rw,freezer\n\
             39 31 0:36 / /p rw - cgroup cgroup rw,pids\n",
        )
        .without_unified()
        .without_v1_controller("freezer");
        let left: Vec<&Hierarchy> = s.mounts().iter().map(|m| &m.hierarchy).collect();
        assert_eq!(left, vec![&Hierarchy::v1("pids")]);
    }

    #[test]
    fn a_missing_mountinfo_is_an_error_naming_it() {
        let err = Setup::from_roots("/proc", "/nonexistent/mountinfo").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/mountinfo"), "{err}");
    }
}
