//! What /proc and the cgroup filesystems say about processes, mounts and cgroups, for the
//! harness. /proc itself is read by `undertaker_cgroups::procfs`, the workspace's one reader.

use std::path::{Path, PathBuf};

use undertaker_cgroups::procfs as proc_files;
pub use undertaker_cgroups::procfs::{parse_mountinfo, Mount as MountEntry};

pub(crate) fn host_proc() -> &'static Path {
    Path::new(proc_files::HOST_PROC)
}

/// The pids of all processes visible in /proc.
pub fn all_pids() -> Vec<i32> {
    proc_files::pids(host_proc()).unwrap_or_default()
}

/// The command line of `pid`, split at NULs (empty for kernel threads and gone processes).
pub fn cmdline(pid: i32) -> Vec<String> {
    let mut args = proc_files::cmdline(host_proc(), pid)
        .ok()
        .flatten()
        .unwrap_or_default();
    args.retain(|arg| !arg.is_empty());
    args
}

/// Whether `pid` still exists and is not a zombie.
pub fn is_running(pid: i32) -> bool {
    proc_files::stat(host_proc(), pid)
        .is_ok_and(|stat| stat.is_some_and(|s| !s.is_zombie_or_dead()))
}

/// This process's mounts.
pub fn mounts() -> Vec<MountEntry> {
    mounts_of("self")
}

/// The mounts process `pid` sees (`self` for this one): a container's, read from the host.
pub fn mounts_of(pid: impl std::fmt::Display) -> Vec<MountEntry> {
    std::fs::read_to_string(host_proc().join(pid.to_string()).join("mountinfo"))
        .map(|text| parse_mountinfo(&text))
        .unwrap_or_default()
}

/// Mount points strictly inside `dir`, deepest first (the order to unmount them in).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mounts()
        .into_iter()
        .map(|entry| entry.mount_point)
        .filter(|point| point != dir && point.starts_with(dir))
        .collect();
    found.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    found.dedup();
    found
}

/// The mount point of every cgroup hierarchy (v1 controllers and named hierarchies, and v2).
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = mounts()
        .into_iter()
        .filter(|entry| entry.fs_type == "cgroup" || entry.fs_type == "cgroup2")
        .map(|entry| entry.mount_point)
        .collect();
    points.sort();
    points.dedup();
    points
}

/// `parent` (a cgroup path like `/undertaker-testbed-1-0`) inside hierarchy `hierarchy`.
pub fn cgroup_dir(hierarchy: &Path, parent: &str) -> PathBuf {
    hierarchy.join(parent.trim_start_matches('/'))
}

/// Every cgroup directory below `dir` (not `dir` itself), children after their parents.
pub fn cgroup_descendants(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                found.push(entry.path());
                pending.push(entry.path());
            }
        }
    }
    found.sort_by_key(|path| path.components().count());
    found
}

/// The pids listed in `dir/cgroup.procs`.
pub fn cgroup_pids(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| {
            text.lines()
                .filter_map(|line| line.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_sees_its_proc_mount() {
        let proc = mounts()
            .into_iter()
            .find(|entry| entry.mount_point == Path::new("/proc"))
            .expect("/proc is mounted");
        assert_eq!(proc.fs_type, "proc");
        assert!(!proc.options.is_empty());
    }

    #[test]
    fn this_process_is_running_and_has_a_cmdline() {
        let me = std::process::id() as i32;
        assert!(is_running(me));
        assert!(!cmdline(me).is_empty());
        assert!(all_pids().contains(&me));
    }

    #[test]
    fn descendants_are_listed_parents_first() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("a/b/c")).expect("dirs");
        std::fs::create_dir_all(dir.path().join("d")).expect("dirs");
        let found = cgroup_descendants(dir.path());
        assert_eq!(found.len(), 4);
        let position = |name: &str| {
            found
                .iter()
                .position(|path| path.ends_with(name))
                .expect(name)
        };
        assert!(position("a") < position("a/b") && position("a/b") < position("a/b/c"));
    }

    #[test]
    fn cgroup_dir_joins_an_absolute_parent() {
        assert_eq!(
            cgroup_dir(
                Path::new("/sys/fs/cgroup/memory"),
                "/undertaker-testbed-1-0"
            ),
            PathBuf::from("/sys/fs/cgroup/memory/undertaker-testbed-1-0")
        );
    }
}
