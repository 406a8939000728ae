//! What a process costs, as /proc accounts for it: CPU time, memory, threads and their
//! wake-ups, open descriptors. The benchmarks read these; the shim does not.
//!
//! As everywhere in this module, a process (or thread) that is gone reads as `None` or an
//! empty list.

use std::path::Path;

use super::{pid_file, read_optional, read_parsed, Status};
use crate::error::{is_vanished, CgroupError};

/// The CPU time fields of `/proc/<pid>/stat`, in clock ticks (`USER_HZ`, see
/// `sysconf(_SC_CLK_TCK)`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// `utime + stime`: all of the process's threads, the exited ones too.
    pub own: u64,
    /// `cutime + cstime`: the children it has waited for.
    pub waited_children: u64,
}

/// `/proc/<pid>/stat`'s CPU times.
pub fn cpu_ticks(proc_root: &Path, pid: i32) -> Result<Option<CpuTicks>, CgroupError> {
    let what = "stat line without CPU times";
    read_parsed(proc_root, pid, "stat", parse_cpu_ticks, what)
}

/// Nanoseconds `pid` has run on a CPU (the first field of `/proc/<pid>/schedstat`): finer than
/// the ticks of `stat`.
pub fn cpu_ns(proc_root: &Path, pid: i32) -> Result<Option<u64>, CgroupError> {
    let run_time = |content: &str| content.split_whitespace().next()?.parse().ok();
    read_parsed(proc_root, pid, "schedstat", run_time, "no run time")
}

/// `/proc/<pid>/smaps_rollup`, looked up by field as [`Status`] is (`Pss: 1234 kB`).
pub fn smaps_rollup(proc_root: &Path, pid: i32) -> Result<Option<Status>, CgroupError> {
    Ok(read_optional(pid, &pid_file(proc_root, pid, "smaps_rollup"))?.map(Status))
}

/// The thread ids of `pid` (`/proc/<pid>/task`).
pub fn threads(proc_root: &Path, pid: i32) -> Result<Vec<i32>, CgroupError> {
    Ok(numbered_entries(pid, &pid_file(proc_root, pid, "task"))?.unwrap_or_default())
}

/// `/proc/<pid>/task/<tid>/status`: one thread's own counters (its context switches).
pub fn thread_status(proc_root: &Path, pid: i32, tid: i32) -> Result<Option<Status>, CgroupError> {
    let path = pid_file(proc_root, pid, "task")
        .join(tid.to_string())
        .join("status");
    Ok(read_optional(pid, &path)?.map(Status))
}

/// The descriptors `pid` has open (`/proc/<pid>/fd`).
pub fn open_fds(proc_root: &Path, pid: i32) -> Result<Option<Vec<i32>>, CgroupError> {
    numbered_entries(pid, &pid_file(proc_root, pid, "fd"))
}

impl Status {
    /// Voluntary plus involuntary context switches: how often the process (or, read from
    /// [`thread_status`], the thread) was woken up or descheduled while it ran.
    pub fn context_switches(&self) -> Option<u64> {
        Some(self.number("voluntary_ctxt_switches")? + self.number("nonvoluntary_ctxt_switches")?)
    }
}

/// `pid (comm) state ppid ... utime stime cutime cstime ...`: fields 14 to 17, counted after
/// the comm's last `)` (the comm may hold spaces and parentheses).
pub(crate) fn parse_cpu_ticks(content: &str) -> Option<CpuTicks> {
    let (_, after_comm) = content.rsplit_once(')')?;
    // Field 3 (state) is the first after the comm.
    let mut times = after_comm.split_whitespace().skip(11);
    let mut next = || times.next()?.parse::<u64>().ok();
    let (utime, stime, cutime, cstime) = (next()?, next()?, next()?, next()?);
    Some(CpuTicks {
        own: utime + stime,
        waited_children: cutime + cstime,
    })
}

/// The numeric names in a directory of /proc; `None` when it is gone.
fn numbered_entries(pid: i32, dir: &Path) -> Result<Option<Vec<i32>>, CgroupError> {
    let read_error = |source| CgroupError::ReadProcess {
        pid,
        path: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if is_vanished(&err) => return Ok(None),
        Err(source) => return Err(read_error(source)),
    };
    let mut numbers = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) if is_vanished(&err) => return Ok(None),
            Err(source) => return Err(read_error(source)),
        };
        if let Some(number) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            numbers.push(number);
        }
    }
    Ok(Some(numbers))
}
