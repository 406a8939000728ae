//! The one reader of `/proc` in this workspace (the `no_std` init keeps its own): process
//! lists, `stat`, `status`, `cmdline`, children, cgroup membership and mounts, each under a proc root
//! passed in so tests run on temp-dir fixtures.
//!
//! A process that is gone (ENOENT, ESRCH) reads as `None` or an empty list, never as an error:
//! processes exit while we look at them, and that is the normal case.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{is_vanished, CgroupError};
use crate::membership::parse_proc_cgroup;

mod accounting;
mod mountinfo;

pub use accounting::{cpu_ns, cpu_ticks, open_fds, smaps_rollup, thread_status, threads, CpuTicks};
pub use mountinfo::{parse_mountinfo, Mount};

/// The host's proc root.
pub const HOST_PROC: &str = "/proc";

/// `PF_EXITING` in the flags of `/proc/<pid>/stat`.
const PF_EXITING: u64 = 0x4;

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The kernel's short name (at most 15 bytes).
    pub comm: String,
    /// `R`, `S`, `D`, `Z`, `T`, `X`, ...
    pub state: char,
    pub ppid: i32,
    /// The kernel's `PF_*` flags.
    pub flags: u64,
}

impl Stat {
    /// In the middle of exiting: an init that is PID 1 of its namespace stays so until every
    /// other process of the namespace is gone.
    pub fn is_exiting(&self) -> bool {
        self.flags & PF_EXITING != 0
    }

    /// Exited (a zombie, or dead and about to vanish).
    pub fn is_zombie_or_dead(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

/// `/proc/<pid>/status`, looked up by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status(String);

impl Status {
    /// The value of `Name:` (e.g. `VmRSS` gives `1234 kB`), trimmed.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.0
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    }

    /// The first number of a field (`VmRSS: 1234 kB` gives 1234).
    pub fn number(&self, name: &str) -> Option<u64> {
        self.field(name)?.split_whitespace().next()?.parse().ok()
    }

    /// `NSpid`: the pid in each PID namespace the process is in, outermost first.
    pub fn ns_pids(&self) -> Vec<i32> {
        self.field("NSpid")
            .map(|pids| {
                pids.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The pids of every process in the proc root.
pub fn pids(proc_root: &Path) -> Result<Vec<i32>, CgroupError> {
    let scan_error = |source| CgroupError::ScanProc {
        path: proc_root.to_owned(),
        source,
    };
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(proc_root).map_err(scan_error)? {
        if let Some(pid) = entry
            .map_err(scan_error)?
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        {
            pids.push(pid);
        }
    }
    Ok(pids)
}

pub fn stat(proc_root: &Path, pid: i32) -> Result<Option<Stat>, CgroupError> {
    read_parsed(proc_root, pid, "stat", parse_stat, "malformed stat line")
}

pub fn status(proc_root: &Path, pid: i32) -> Result<Option<Status>, CgroupError> {
    Ok(read_optional(pid, &pid_file(proc_root, pid, "status"))?.map(Status))
}

/// The arguments, split at NULs; empty for zombies and kernel threads.
pub fn cmdline(proc_root: &Path, pid: i32) -> Result<Option<Vec<String>>, CgroupError> {
    let Some(raw) = read_optional(pid, &pid_file(proc_root, pid, "cmdline"))? else {
        return Ok(None);
    };
    let raw = raw.trim_end_matches('\0');
    Ok(Some(if raw.is_empty() {
        Vec::new()
    } else {
        raw.split('\0').map(str::to_owned).collect()
    }))
}

/// `pid`'s children, from every one of its threads' `task/<tid>/children` lists.
pub fn children(proc_root: &Path, pid: i32) -> Result<Vec<i32>, CgroupError> {
    let tasks = pid_file(proc_root, pid, "task");
    let mut found = Vec::new();
    for tid in threads(proc_root, pid)? {
        let list = tasks.join(tid.to_string()).join("children");
        let Some(list) = read_optional(pid, &list)? else {
            continue;
        };
        found.extend(
            list.split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok()),
        );
    }
    Ok(found)
}

/// The child of `parent` whose pid in its innermost PID namespace is `ns_pid`: the host pid of
/// a process a container's init reported by its own pid.
pub fn child_with_ns_pid(
    proc_root: &Path,
    parent: i32,
    ns_pid: i32,
) -> Result<Option<i32>, CgroupError> {
    if parent <= 0 || ns_pid <= 0 {
        return Ok(None);
    }
    for child in children(proc_root, parent)? {
        let innermost = status(proc_root, child)?.and_then(|s| s.ns_pids().last().copied());
        if innermost == Some(ns_pid) {
            return Ok(Some(child));
        }
    }
    Ok(None)
}

/// The cgroup paths of `/proc/<pid>/cgroup`, one per hierarchy.
pub fn cgroup_paths(proc_root: &Path, pid: i32) -> Result<Option<Vec<String>>, CgroupError> {
    let Some(content) = read_optional(pid, &pid_file(proc_root, pid, "cgroup"))? else {
        return Ok(None);
    };
    Ok(Some(
        parse_proc_cgroup(&content)
            .into_iter()
            .map(|m| m.path)
            .collect(),
    ))
}

/// The mounts process `pid` sees (`/proc/<pid>/mountinfo`).
pub fn mounts(proc_root: &Path, pid: i32) -> Result<Option<Vec<Mount>>, CgroupError> {
    let content = read_optional(pid, &pid_file(proc_root, pid, "mountinfo"))?;
    Ok(content.map(|text| parse_mountinfo(&text)))
}

/// `pid (comm) state ppid pgrp session tty_nr tpgid flags ...`. The comm may hold spaces and
/// parentheses (a process can name itself `a) S 1 (b`), so it runs from the first `(` to the
/// *last* `)`.
pub(crate) fn parse_stat(content: &str) -> Option<Stat> {
    let open = content.find('(')?;
    let close = content.rfind(')')?;
    let comm = content.get(open + 1..close)?.to_owned();
    let mut rest = content.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    // pgrp, session, tty_nr, tpgid; a fixture may stop before the flags.
    let flags = rest.nth(4).and_then(|f| f.parse().ok()).unwrap_or(0);
    Some(Stat {
        comm,
        state,
        ppid,
        flags,
    })
}

pub(crate) fn pid_file(proc_root: &Path, pid: i32, name: &str) -> PathBuf {
    proc_root.join(pid.to_string()).join(name)
}

/// `/proc/<pid>/<name>` parsed, `None` when the process is gone; what `parse` rejects is an
/// error naming the file and saying `what` was wrong.
pub(crate) fn read_parsed<T>(
    proc_root: &Path,
    pid: i32,
    name: &str,
    parse: impl FnOnce(&str) -> Option<T>,
    what: &str,
) -> Result<Option<T>, CgroupError> {
    let path = pid_file(proc_root, pid, name);
    let Some(content) = read_optional(pid, &path)? else {
        return Ok(None);
    };
    parse(&content)
        .map(Some)
        .ok_or_else(|| CgroupError::ReadProcess {
            pid,
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, what.to_owned()),
        })
}

/// A `/proc/<pid>/...` file, `None` when the process is gone.
pub(crate) fn read_optional(pid: i32, path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(err) if is_vanished(&err) => Ok(None),
        Err(source) => Err(CgroupError::ReadProcess {
            pid,
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests;
