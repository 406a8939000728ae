//! The cgroup driver of both handlers: cgroupfs (the default: pods below a plain cgroup
//! directory) or systemd (`UNDERTAKER_CGROUP_DRIVER=systemd`, kubeadm's default: runc's
//! `SystemdCgroup = true`, pods below a systemd slice of the testbed's own, each container a
//! `cri-containerd-<id>.scope` unit). containerd's CRI picks the cgroups path's form from the
//! parent's name: a parent ending in `.slice` gives runc's `slice:prefix:name`.

/// Environment variable choosing the cgroup driver: `cgroupfs` (default) or `systemd`.
pub const CGROUP_DRIVER_ENV: &str = "UNDERTAKER_CGROUP_DRIVER";

/// How the OCI runtime places containers in cgroups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CgroupDriver {
    #[default]
    Cgroupfs,
    Systemd,
}

impl CgroupDriver {
    /// From `$UNDERTAKER_CGROUP_DRIVER` (unset or empty: cgroupfs). Anything else panics: a
    /// typo must not quietly test the other driver.
    pub fn from_env() -> Self {
        match std::env::var(CGROUP_DRIVER_ENV)
            .unwrap_or_default()
            .as_str()
        {
            "" | "cgroupfs" => CgroupDriver::Cgroupfs,
            "systemd" => CgroupDriver::Systemd,
            other => panic!("{CGROUP_DRIVER_ENV}={other}: expected cgroupfs or systemd"),
        }
    }

    /// The cgroup parent of one testbed's pods, as CRI takes it: `/undertaker-testbed-<unique>`,
    /// or the top-level slice `undertakertestbed<unique>.slice` (no `-`: in a slice's name it
    /// would mean a parent slice), whose directory is `/sys/fs/cgroup/<that name>`.
    pub fn cgroup_parent(self, unique: &str) -> String {
        match self {
            CgroupDriver::Cgroupfs => format!("/undertaker-testbed-{unique}"),
            CgroupDriver::Systemd => format!("undertakertestbed{}.slice", unique.replace('-', "x")),
        }
    }

    /// The cgroup (relative to a hierarchy's root) of CRI container `id` below `parent`.
    pub fn container_cgroup(self, parent: &str, id: &str) -> String {
        let parent = parent.trim_end_matches('/');
        match self {
            CgroupDriver::Cgroupfs => format!("{parent}/{id}"),
            CgroupDriver::Systemd => format!("/{parent}/cri-containerd-{id}.scope"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CgroupDriver::Cgroupfs => "cgroupfs",
            CgroupDriver::Systemd => "systemd",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_systemd_parent_is_a_top_level_slice_and_containers_are_scopes() {
        let driver = CgroupDriver::Systemd;
        let parent = driver.cgroup_parent("42-0");
        assert_eq!(parent, "undertakertestbed42x0.slice");
        assert_eq!(
            driver.container_cgroup(&parent, "abc"),
            "/undertakertestbed42x0.slice/cri-containerd-abc.scope"
        );
        let cgroupfs = CgroupDriver::Cgroupfs;
        let parent = cgroupfs.cgroup_parent("42-0");
        assert_eq!(
            cgroupfs.container_cgroup(&parent, "abc"),
            "/undertaker-testbed-42-0/abc"
        );
    }
}
