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
    let (Some(current), Some(max)) = (read_control(&current_path)?, read_control(&max_path)?) else {
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
