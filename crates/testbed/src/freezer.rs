//! A really unkillable process, made on purpose: one process of a container moved into a
//! frozen cgroup-v1 freezer sub-cgroup of the container's own. A v1-frozen task takes no
//! signal, SIGKILL included, until it is thawed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::container::Container;
use crate::error::{Result, TestbedError};
use crate::procfs;

/// How long the kernel may take to freeze or thaw.
const SETTLE: Duration = Duration::from_secs(10);
/// How long a thawed process gets to leave the sub-cgroup before we stop trying to remove it.
const EMPTY_WAIT: Duration = Duration::from_secs(5);

/// A container process held in a frozen freezer sub-cgroup. Dropping it thaws the sub-cgroup
/// (a SIGKILL sent meanwhile then lands) and removes it once empty.
#[derive(Debug)]
pub struct FrozenProcess {
    dir: PathBuf,
    pid: i32,
}

impl FrozenProcess {
    /// Moves host pid `pid` (a process of `container`) into `<container's freezer cgroup>/frozen`
    /// and freezes that sub-cgroup.
    pub fn freeze(container: &Container, pid: i32) -> Result<FrozenProcess> {
        let container_dir = freezer_dir(&container.cgroup_path())?;
        let dir = container_dir.join("frozen");
        std::fs::create_dir_all(&dir).map_err(TestbedError::io("create", &dir))?;
        let frozen = FrozenProcess { dir, pid };
        let procs = frozen.dir.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).map_err(TestbedError::io("write", &procs))?;
        frozen.set_state("FROZEN")?;
        Ok(frozen)
    }

    /// The host pid of the frozen process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The sub-cgroup's directory in the freezer hierarchy.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Thaws the sub-cgroup: signals sent while it was frozen are delivered now.
    ///
    /// The thawed process may die of a pending SIGKILL at once, and whoever waits for that
    /// (the shim's release of a held container runs `runc delete`) may remove the emptied
    /// cgroup before we read its state back: a cgroup gone after the write is thawed.
    pub fn thaw(&self) -> Result<()> {
        self.set_state("THAWED")
    }

    /// Writes `state` to `freezer.state` and waits until the kernel reports it.
    fn set_state(&self, state: &str) -> Result<()> {
        let file = self.dir.join("freezer.state");
        std::fs::write(&file, state).map_err(TestbedError::io("write", &file))?;
        let started = Instant::now();
        loop {
            let now = match std::fs::read_to_string(&file) {
                Err(error) if error.kind() == std::io::ErrorKind::NotFound && state == "THAWED" => {
                    return Ok(());
                }
                read => read.map_err(TestbedError::io("read", &file))?,
            };
            if now.trim() == state {
                return Ok(());
            }
            if started.elapsed() >= SETTLE {
                return Err(TestbedError::Timeout {
                    what: format!(
                        "{} to read {state} (it reads {})",
                        file.display(),
                        now.trim()
                    ),
                    timeout: SETTLE,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FrozenProcess {
    fn drop(&mut self) {
        if let Err(error) = self.thaw() {
            eprintln!("thawing {}: {error}", self.dir.display());
        }
        let started = Instant::now();
        while started.elapsed() < EMPTY_WAIT {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The testbed's teardown removes what is left of its cgroups.
        eprintln!(
            "{} is not empty yet; left to the teardown",
            self.dir.display()
        );
    }
}

/// The directories of cgroup `path` (e.g. a container's) that exist, in every hierarchy.
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    procfs::cgroup_hierarchies()
        .into_iter()
        .map(|hierarchy| procfs::cgroup_dir(&hierarchy, path))
        .filter(|dir| dir.is_dir())
        .collect()
}

/// Removes cgroup `path` and everything below it in every hierarchy, deepest first (for
/// cgroups a runtime could not remove while a frozen process held them); returns what
/// could not be removed.
pub fn remove_cgroup_tree(path: &str) -> Vec<PathBuf> {
    crate::cleanup::remove_cgroups(path)
}

/// The directory of cgroup `path` in the v1 freezer hierarchy.
fn freezer_dir(path: &str) -> Result<PathBuf> {
    procfs::cgroup_hierarchies()
        .into_iter()
        .map(|hierarchy| procfs::cgroup_dir(&hierarchy, path))
        .find(|dir| dir.join("freezer.state").is_file())
        .ok_or_else(|| TestbedError::Io {
            action: "find the v1 freezer directory of cgroup",
            path: PathBuf::from(path),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
}
