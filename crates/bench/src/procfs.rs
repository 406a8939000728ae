//! What the benchmark reads from /proc and the cgroup filesystems: a shim's memory, which
//! shim serves which pod, and which processes are still in a container's cgroup.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A shim's memory, in kB as /proc reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShimMemory {
    /// Resident set (`VmRSS` of /proc/<pid>/status): anonymous and file-backed pages.
    pub vm_rss_kb: u64,
    /// Anonymous resident pages (`RssAnon`): the part no other process shares.
    pub rss_anon_kb: u64,
    /// Proportional set (`Pss` of /proc/<pid>/smaps_rollup): shared pages divided among the
    /// processes mapping them (e.g. the shims of one binary share its text).
    pub pss_kb: u64,
}

impl ShimMemory {
    pub fn read(pid: i32) -> Result<ShimMemory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("read /proc/{pid}/status"))?;
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
            .with_context(|| format!("read /proc/{pid}/smaps_rollup"))?;
        let field = |text: &str, name: &str, file: &str| {
            kb_field(text, name).with_context(|| format!("no {name} in /proc/{pid}/{file}"))
        };
        Ok(ShimMemory {
            vm_rss_kb: field(&status, "VmRSS", "status")?,
            rss_anon_kb: field(&status, "RssAnon", "status")?,
            pss_kb: field(&rollup, "Pss", "smaps_rollup")?,
        })
    }
}

/// The value of a `Name:   1234 kB` line.
fn kb_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The shims serving containerd at `socket`, by the id they were started for (`-id`, the
/// pod sandbox's id: one shim per pod), with the binary they run.
pub fn shims_by_id(socket: &Path) -> HashMap<String, (i32, String)> {
    let socket = socket.to_string_lossy();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    let mut shims = HashMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.parse::<i32>().ok()) else {
            continue;
        };
        let args = undertaker_testbed::cmdline(pid);
        let Some(binary) = args
            .first()
            .and_then(|program| Path::new(program).file_name())
            .map(|name| name.to_string_lossy().into_owned())
        else {
            continue;
        };
        // `... start` is the short-lived process that launches the serving shim.
        if !binary.starts_with("containerd-shim")
            || !args.iter().any(|arg| *arg == socket)
            || args.last().is_some_and(|arg| arg == "start")
        {
            continue;
        }
        let id = args
            .iter()
            .position(|arg| arg == "-id")
            .and_then(|index| args.get(index + 1));
        if let Some(id) = id {
            shims.insert(id.clone(), (pid, binary));
        }
    }
    shims
}

/// A container's cgroup in one hierarchy, to count its processes fast while it is killed.
#[derive(Clone, Debug)]
pub struct CgroupWatch {
    dir: PathBuf,
}

impl CgroupWatch {
    /// The container cgroup `path` (e.g. `/parent/id`) in the cgroup v2 hierarchy when it
    /// is there (hybrid hosts mount it at /sys/fs/cgroup/unified), else in the first v1
    /// hierarchy that has it. Every hierarchy lists the same members.
    pub fn find(path: &str) -> Result<CgroupWatch> {
        let relative = path.trim_start_matches('/');
        let mut hierarchies = undertaker_testbed::cgroup_hierarchies();
        // The v2 hierarchy first: it is one mount, named "unified" on hybrid hosts, or
        // /sys/fs/cgroup itself on v2-only hosts.
        hierarchies.sort_by_key(|dir| !dir.join("cgroup.controllers").is_file());
        hierarchies
            .iter()
            .map(|hierarchy| hierarchy.join(relative))
            .find(|dir| dir.is_dir())
            .map(|dir| CgroupWatch { dir })
            .with_context(|| format!("cgroup {path} in no hierarchy"))
    }

    /// The number of pids in `cgroup.procs` of the cgroup and every cgroup below it (0 once
    /// the cgroup is gone).
    pub fn process_count(&self) -> usize {
        let mut count = 0;
        let mut pending = vec![self.dir.clone()];
        while let Some(dir) = pending.pop() {
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                count += procs.lines().filter(|line| !line.trim().is_empty()).count();
            }
            if let Ok(entries) = std::fs::read_dir(&dir) {
                pending.extend(
                    entries
                        .flatten()
                        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
                        .map(|entry| entry.path()),
                );
            }
        }
        count
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
