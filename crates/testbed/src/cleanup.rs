//! Tearing a testbed down: only what is provably ours (named by our socket, inside our
//! directory, below our cgroup parent) is killed, unmounted or removed.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::layout::Layout;
use crate::leftovers::{cgroups_and_processes, shim_pids};
use crate::procfs;

/// How long killed processes get to disappear (they are reaped by our subreaper).
const KILL_WAIT: Duration = Duration::from_secs(10);

/// SIGKILLs our shims and every process in our cgroups, thawing frozen cgroups first so the
/// signal lands, and waits (bounded) until they are gone. Returns the pids that survived.
pub fn kill_our_processes(layout: &Layout, cgroup_parent: &str) -> Vec<i32> {
    thaw_frozen_cgroups(cgroup_parent);
    let deadline = Instant::now() + KILL_WAIT;
    loop {
        let mut pids = shim_pids(&layout.socket);
        pids.extend(cgroups_and_processes(cgroup_parent).1);
        if pids.is_empty() || Instant::now() >= deadline {
            return pids;
        }
        for pid in &pids {
            // Gone already is fine: we only want it dead.
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A frozen (paused) container would hold SIGKILL until thawed.
fn thaw_frozen_cgroups(cgroup_parent: &str) {
    for hierarchy in procfs::cgroup_hierarchies() {
        let parent = procfs::cgroup_dir(&hierarchy, cgroup_parent);
        for dir in std::iter::once(parent.clone()).chain(procfs::cgroup_descendants(&parent)) {
            let v1_state = dir.join("freezer.state");
            if v1_state.exists() {
                let _ = std::fs::write(&v1_state, "THAWED");
            }
            let v2_freeze = dir.join("cgroup.freeze");
            if v2_freeze.exists() {
                let _ = std::fs::write(&v2_freeze, "0");
            }
        }
    }
}

/// Lazily unmounts everything mounted inside `dir`, deepest first. Returns what stayed mounted.
pub fn unmount_under(dir: &Path) -> Vec<std::path::PathBuf> {
    for mount_point in procfs::mounts_under(dir) {
        if let Err(error) = umount2(&mount_point, MntFlags::MNT_DETACH) {
            tracing::warn!(mount = %mount_point.display(), %error, "cannot unmount");
        }
    }
    procfs::mounts_under(dir)
}

/// Removes our cgroup parent and everything below it in every hierarchy, deepest first.
/// Returns the directories that could not be removed.
pub fn remove_cgroups(cgroup_parent: &str) -> Vec<std::path::PathBuf> {
    let mut kept = Vec::new();
    for hierarchy in procfs::cgroup_hierarchies() {
        let parent = procfs::cgroup_dir(&hierarchy, cgroup_parent);
        if !parent.is_dir() {
            continue;
        }
        let mut dirs = procfs::cgroup_descendants(&parent);
        dirs.reverse();
        dirs.push(parent);
        for dir in dirs {
            // cgroup directories are removed with rmdir alone; their files are virtual.
            // Gone already (the runtime removed it meanwhile) is removed.
            match std::fs::remove_dir(&dir) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(cgroup = %dir.display(), %error, "cannot remove cgroup");
                    kept.push(dir);
                }
                _ => {}
            }
        }
    }
    kept
}

/// Removes the testbed directory, but only when nothing is mounted inside it any more:
/// deleting through a live mount could reach files that are not ours.
pub fn remove_directory(layout: &Layout) -> Result<(), String> {
    let mounted = procfs::mounts_under(&layout.dir);
    if !mounted.is_empty() {
        return Err(format!(
            "{} still has mounts inside ({mounted:?}); left in place",
            layout.dir.display()
        ));
    }
    std::fs::remove_dir_all(&layout.dir)
        .map_err(|error| format!("remove {}: {error}", layout.dir.display()))
}
