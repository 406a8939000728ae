//! Small readers of a container cgroup's accounting, for the shim and `undertaker scan`.

use std::path::Path;

use crate::container::ContainerCgroup;
use crate::error::CgroupError;
use crate::tree::read_control;

/// The pids controller: how many tasks the cgroup holds and may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidsUsage {
    pub current: u64,
    /// `None` for `max` (no limit).
    pub max: Option<u64>,
}

impl ContainerCgroup {
    /// `pids.current` and `pids.max` from the v1 pids controller, else from cgroup v2 where
    /// the pids controller is enabled. `None` when neither has them.
    pub fn pids_usage(&self) -> Result<Option<PidsUsage>, CgroupError> {
        let candidates = [self.v1_dir("pids"), self.unified_dir()];
        for dir in candidates.into_iter().flatten() {
            if let Some(usage) = read_pids_usage(dir)? {
                return Ok(Some(usage));
            }
        }
        Ok(None)
    }
}

fn read_pids_usage(dir: &Path) -> Result<Option<PidsUsage>, CgroupError> {
    let current_path = dir.join("pids.current");
    let max_path = dir.join("pids.max");
    let (Some(current), Some(max)) = (read_control(&current_path)?, read_control(&max_path)?)
    else {
        return Ok(None);
    };
    let current = parse_count(&current_path, &current)?;
    let max = match max.trim() {
        "max" => None,
        limit => Some(parse_count(&max_path, limit)?),
    };
    Ok(Some(PidsUsage { current, max }))
}

fn parse_count(path: &Path, value: &str) -> Result<u64, CgroupError> {
    value.trim().parse().map_err(|_| CgroupError::ParseControl {
        path: path.to_owned(),
        reason: format!("{:?} is not a count", value.trim()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{FakeHost, HYBRID, PID_BASE};

    fn container(host: &FakeHost) -> ContainerCgroup {
        host.process(PID_BASE, "init", 'S', "8:pids:/ctr\n0::/ctr\n");
        host.cgroup("unified", "/ctr");
        host.cgroup("pids", "/ctr");
        ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap()
    }

    #[test]
    fn reads_the_v1_pids_controller_first() {
        let host = FakeHost::new(HYBRID);
        let cgroup = container(&host);
        let pids = host.cgroup("pids", "/ctr");
        std::fs::write(pids.join("pids.current"), "12\n").unwrap();
        std::fs::write(pids.join("pids.max"), "max\n").unwrap();
        std::fs::write(host.cgroup("unified", "/ctr").join("pids.current"), "99\n").unwrap();
        assert_eq!(
            cgroup.pids_usage().unwrap(),
            Some(PidsUsage {
                current: 12,
                max: None
            })
        );
    }

    #[test]
    fn falls_back_to_cgroup_v2_and_reads_a_limit() {
        let host = FakeHost::new(HYBRID);
        let cgroup = container(&host);
        assert_eq!(cgroup.pids_usage().unwrap(), None);
        let unified = host.cgroup("unified", "/ctr");
        std::fs::write(unified.join("pids.current"), "3\n").unwrap();
        std::fs::write(unified.join("pids.max"), "1024\n").unwrap();
        assert_eq!(
            cgroup.pids_usage().unwrap(),
            Some(PidsUsage {
                current: 3,
                max: Some(1024)
            })
        );
        std::fs::write(unified.join("pids.max"), "lots\n").unwrap();
        let err = cgroup.pids_usage().unwrap_err();
        assert!(err.to_string().contains("pids.max"), "{err}");
    }
}
