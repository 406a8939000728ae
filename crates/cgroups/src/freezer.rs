//! The two cgroup freezers behind one small trait, as youki's libcgroups splits v1 and v2.
//! Freezing first is what makes a SIGKILL pass race-free: a frozen process can neither fork
//! nor exit, so the pids we list are the pids we signal.

use std::path::PathBuf;
use std::time::Instant;

use crate::backoff::poll_until;
use crate::error::CgroupError;
use crate::tree::{flat_keyed_value, read_control, write_control};

pub(crate) trait Freezer {
    /// Asks the kernel to freeze; `Ok(false)` when the cgroup is gone.
    fn freeze(&self) -> Result<bool, CgroupError>;
    fn thaw(&self) -> Result<bool, CgroupError>;
    /// Whether freezing has completed (a gone cgroup counts as frozen: nothing runs in it).
    fn is_frozen(&self) -> Result<bool, CgroupError>;

    /// Waits until frozen, at most until `deadline`. `Ok(false)` if it did not complete,
    /// e.g. a v1 freezer stuck in FREEZING on a task in uninterruptible sleep.
    fn wait_frozen(&self, deadline: Instant) -> Result<bool, CgroupError> {
        poll_until(deadline, || self.is_frozen())
    }
}

/// v1: `freezer.state` takes `FROZEN`/`THAWED` and reads `FREEZING` while in progress.
/// A v1-frozen task keeps a SIGKILL pending until thawed, and a sub-cgroup frozen on its own
/// (`freezer.self_freezing` 1) stays frozen when its parent thaws.
pub(crate) struct V1Freezer {
    pub dir: PathBuf,
}

impl V1Freezer {
    fn state_file(&self) -> PathBuf {
        self.dir.join("freezer.state")
    }

    /// Whether the cgroup is frozen or freezing, e.g. a paused container.
    pub fn is_paused(&self) -> Result<bool, CgroupError> {
        Ok(read_control(&self.state_file())?.is_some_and(|s| s.trim() != "THAWED"))
    }
}

impl Freezer for V1Freezer {
    fn freeze(&self) -> Result<bool, CgroupError> {
        write_control(&self.state_file(), "FROZEN")
    }

    fn thaw(&self) -> Result<bool, CgroupError> {
        write_control(&self.state_file(), "THAWED")
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        Ok(read_control(&self.state_file())?.is_none_or(|s| s.trim() == "FROZEN"))
    }
}

/// v2 (kernel 5.2+): `cgroup.freeze` takes 1/0, `cgroup.events` reads `frozen 1` once done.
/// Unlike v1, a fatal signal still kills a v2-frozen task.
pub(crate) struct V2Freezer {
    pub dir: PathBuf,
}

impl Freezer for V2Freezer {
    fn freeze(&self) -> Result<bool, CgroupError> {
        write_control(&self.dir.join("cgroup.freeze"), "1")
    }

    fn thaw(&self) -> Result<bool, CgroupError> {
        write_control(&self.dir.join("cgroup.freeze"), "0")
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        let events = read_control(&self.dir.join("cgroup.events"))?;
        Ok(events.is_none_or(|e| flat_keyed_value(&e, "frozen") == Some("1")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn v1_freeze_and_thaw_write_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("freezer.state"), "THAWED\n").unwrap();
        let freezer = V1Freezer {
            dir: dir.path().to_owned(),
        };
        assert!(!freezer.is_paused().unwrap());
        assert!(freezer.freeze().unwrap());
        assert!(freezer.is_frozen().unwrap());
        assert!(freezer.is_paused().unwrap());
        assert!(freezer.thaw().unwrap());
        assert!(!freezer.is_frozen().unwrap());
    }

    #[test]
    fn v1_freezing_is_not_frozen_and_the_wait_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("freezer.state"), "FREEZING\n").unwrap();
        let freezer = V1Freezer {
            dir: dir.path().to_owned(),
        };
        assert!(freezer.is_paused().unwrap());
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(!freezer.wait_frozen(deadline).unwrap());
    }

    #[test]
    fn v2_reads_frozen_from_cgroup_events() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.freeze"), "0\n").unwrap();
        std::fs::write(dir.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let freezer = V2Freezer {
            dir: dir.path().to_owned(),
        };
        assert!(!freezer.is_frozen().unwrap());
        assert!(freezer.freeze().unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cgroup.freeze")).unwrap(),
            "1"
        );
        std::fs::write(dir.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        assert!(freezer.is_frozen().unwrap());
    }

    #[test]
    fn a_gone_cgroup_counts_as_frozen() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        assert!(V1Freezer { dir: gone.clone() }.is_frozen().unwrap());
        assert!(V2Freezer { dir: gone.clone() }.is_frozen().unwrap());
        assert!(!V1Freezer { dir: gone }.freeze().unwrap());
    }
}
