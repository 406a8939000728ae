//! What we tell about a process, read from `/proc/<pid>`: enough for an operator to know what
//! was killed or what could not be.

use std::path::Path;

use crate::error::CgroupError;
use crate::procfs::{cmdline, pid_file, read_optional, stat};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    /// The kernel's short name (at most 15 bytes), from `/proc/<pid>/stat`.
    pub comm: String,
    /// The arguments joined by spaces; empty for zombies and kernel threads.
    pub cmdline: String,
    /// The state letter of `/proc/<pid>/stat`: `R`, `S`, `D`, `Z`, `T`, ...
    pub state: char,
    /// Where the process sleeps in the kernel (`/proc/<pid>/wchan`); empty when running or
    /// not available.
    pub wchan: String,
}

impl ProcessInfo {
    /// Reads a process's info. `Ok(None)` when the process no longer exists: in a cgroup that
    /// is being killed that is the normal case, not an error.
    pub fn read(proc_root: &Path, pid: i32) -> Result<Option<Self>, CgroupError> {
        let Some(mut info) = Self::read_named(proc_root, pid)? else {
            return Ok(None);
        };
        // wchan is gated by ptrace access; without it the kernel shows "0" or refuses.
        let wchan = match read_optional(pid, &pid_file(proc_root, pid, "wchan")) {
            Ok(Some(w)) => w,
            Ok(None) => return Ok(None),
            Err(_) => String::new(),
        };
        info.wchan = if wchan.trim() == "0" {
            String::new()
        } else {
            wchan.trim().to_owned()
        };
        Ok(Some(info))
    }

    /// What names a process (stat and command line), without `wchan`: what a kill reads of
    /// each process before it signals, where every read delays the kill.
    pub(crate) fn read_named(proc_root: &Path, pid: i32) -> Result<Option<Self>, CgroupError> {
        let Some(stat) = stat(proc_root, pid)? else {
            return Ok(None);
        };
        let Some(args) = cmdline(proc_root, pid)? else {
            return Ok(None);
        };
        Ok(Some(ProcessInfo {
            pid,
            ppid: stat.ppid,
            comm: stat.comm,
            cmdline: args.join(" "),
            state: stat.state,
            wchan: String::new(),
        }))
    }

    /// A process known only by its pid: listed in a cgroup beyond what a report names.
    pub(crate) fn unnamed(pid: i32) -> Self {
        ProcessInfo {
            pid,
            ppid: 0,
            comm: String::new(),
            cmdline: String::new(),
            state: '?',
            wchan: String::new(),
        }
    }
}

/// A zombie that is really dead. A thread-group leader that called `pthread_exit` also shows
/// `Z` while its other threads still run; that process is alive.
pub(crate) fn is_dead_zombie(proc_root: &Path, pid: i32, state: char) -> bool {
    if state != 'Z' {
        return false;
    }
    match std::fs::read_dir(proc_root.join(pid.to_string()).join("task")) {
        Ok(tasks) => tasks.count() <= 1,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_process_and_joins_its_arguments() {
        let proc = tempfile::tempdir().unwrap();
        let dir = proc.path().join("5000001");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("stat"), "5000001 (my prog) D 7 5000001 0 0").unwrap();
        std::fs::write(dir.join("cmdline"), "sleep\0--\x00100\0").unwrap();
        std::fs::write(dir.join("wchan"), "fuse_wait_answer").unwrap();
        let info = ProcessInfo::read(proc.path(), 5000001).unwrap().unwrap();
        assert_eq!(
            info,
            ProcessInfo {
                pid: 5000001,
                ppid: 7,
                comm: "my prog".into(),
                cmdline: "sleep -- 100".into(),
                state: 'D',
                wchan: "fuse_wait_answer".into(),
            }
        );
    }

    #[test]
    fn a_running_process_has_an_empty_wchan() {
        let proc = tempfile::tempdir().unwrap();
        let dir = proc.path().join("5000002");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("stat"), "5000002 (yes) R 1 0").unwrap();
        std::fs::write(dir.join("cmdline"), "yes\0").unwrap();
        std::fs::write(dir.join("wchan"), "0").unwrap();
        let info = ProcessInfo::read(proc.path(), 5000002).unwrap().unwrap();
        assert_eq!(info.wchan, "");
        assert_eq!(info.state, 'R');
    }

    #[test]
    fn a_vanished_process_is_none_not_an_error() {
        let proc = tempfile::tempdir().unwrap();
        assert_eq!(ProcessInfo::read(proc.path(), 5000003).unwrap(), None);
    }

    #[test]
    fn a_leader_zombie_with_live_threads_is_alive() {
        let proc = tempfile::tempdir().unwrap();
        let tasks = proc.path().join("5000004/task");
        std::fs::create_dir_all(tasks.join("5000004")).unwrap();
        assert!(is_dead_zombie(proc.path(), 5000004, 'Z'));
        std::fs::create_dir_all(tasks.join("5000005")).unwrap();
        assert!(!is_dead_zombie(proc.path(), 5000004, 'Z'));
        assert!(!is_dead_zombie(proc.path(), 5000004, 'S'));
    }
}
