//! A fake host in a temp dir for unit tests: a proc root, a mountinfo file and cgroup mounts
//! whose directories hold `cgroup.procs` and other control files as plain files.
//!
//! Pids here are above the kernel's largest `pid_max` (4194304), so they can never name a real
//! process.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::setup::Setup;

pub(crate) const PID_BASE: i32 = 5_000_000;

/// The mounts of this machine's hybrid layout: `(fstype, super options, dir under root)`.
pub(crate) const HYBRID: &[(&str, &str, &str)] = &[
    ("cgroup", "rw,freezer", "freezer"),
    ("cgroup", "rw,pids", "pids"),
    ("cgroup", "rw,cpu,cpuacct", "cpu,cpuacct"),
    ("cgroup", "rw,xattr,name=systemd", "systemd"),
    ("cgroup2", "rw,nsdelegate", "unified"),
];

pub(crate) struct FakeHost {
    dir: TempDir,
}

impl FakeHost {
    pub fn new(mounts: &[(&str, &str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut mountinfo = String::new();
        for (i, (fstype, options, under)) in mounts.iter().enumerate() {
            let point = dir.path().join("cgroup").join(under);
            std::fs::create_dir_all(&point).unwrap();
            mountinfo += &format!(
                "{} 1 0:{} / {} rw,relatime - {fstype} {fstype} {options}\n",
                30 + i,
                40 + i,
                point.display()
            );
        }
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(dir.path().join("mountinfo"), mountinfo).unwrap();
        FakeHost { dir }
    }

    pub fn setup(&self) -> Setup {
        Setup::from_roots(self.proc_root(), self.dir.path().join("mountinfo")).unwrap()
    }

    pub fn proc_root(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    /// The directory of cgroup `path` under the mount `under` (e.g. `unified`).
    pub fn cgroup(&self, under: &str, path: &str) -> PathBuf {
        let dir = self
            .dir
            .path()
            .join("cgroup")
            .join(under)
            .join(path.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        let procs = dir.join("cgroup.procs");
        if !procs.exists() {
            std::fs::write(procs, "").unwrap();
        }
        dir
    }

    /// A process with its `/proc/<pid>` files; `cgroup` is the content of `/proc/<pid>/cgroup`.
    pub fn process(&self, pid: i32, comm: &str, state: char, cgroup: &str) {
        let dir = self.proc_root().join(pid.to_string());
        std::fs::create_dir_all(dir.join("task").join(pid.to_string())).unwrap();
        std::fs::write(
            dir.join("stat"),
            format!("{pid} ({comm}) {state} 1 {pid} 0"),
        )
        .unwrap();
        std::fs::write(dir.join("cmdline"), format!("{comm}\0--flag\0")).unwrap();
        std::fs::write(dir.join("wchan"), "0").unwrap();
        std::fs::write(dir.join("cgroup"), cgroup).unwrap();
    }

    /// The caller's own membership (`/proc/self/cgroup`).
    pub fn caller_in(&self, cgroup: &str) {
        let dir = self.proc_root().join("self");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup"), cgroup).unwrap();
    }

    /// Adds `pid` to the `cgroup.procs` of `dir`.
    pub fn enter(&self, dir: &Path, pid: i32) {
        let procs = dir.join("cgroup.procs");
        let mut content = std::fs::read_to_string(&procs).unwrap_or_default();
        content += &format!("{pid}\n");
        std::fs::write(procs, content).unwrap();
    }

    /// What the kernel does when a process dies: it leaves every cgroup and `/proc`.
    pub fn exit(&self, pid: i32) {
        let _ = std::fs::remove_dir_all(self.proc_root().join(pid.to_string()));
        for cgroup in crate::tree::cgroup_dirs(&self.dir.path().join("cgroup")).unwrap() {
            let procs = cgroup.join("cgroup.procs");
            if let Ok(content) = std::fs::read_to_string(&procs) {
                let kept: String = content
                    .lines()
                    .filter(|l| l.trim() != pid.to_string())
                    .map(|l| format!("{l}\n"))
                    .collect();
                std::fs::write(procs, kept).unwrap();
            }
        }
    }
}
