//! What the benchmark reads from /proc (through `undertaker_cgroups::procfs`, the workspace's
//! one reader) and the cgroup filesystems: a shim's memory, CPU time, wake-ups and fds, which
//! shim serves which pod, and which processes are still in a container's cgroup.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use undertaker_cgroups::procfs;

fn host_proc() -> &'static Path {
    Path::new(procfs::HOST_PROC)
}

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
        let gone = || format!("shim {pid} is gone");
        let status = procfs::status(host_proc(), pid)?.with_context(gone)?;
        let rollup = procfs::smaps_rollup(host_proc(), pid)?.with_context(gone)?;
        let field = |fields: &procfs::Status, name: &str, file: &str| {
            fields
                .number(name)
                .with_context(|| format!("no {name} in /proc/{pid}/{file}"))
        };
        Ok(ShimMemory {
            vm_rss_kb: field(&status, "VmRSS", "status")?,
            rss_anon_kb: field(&status, "RssAnon", "status")?,
            pss_kb: field(&rollup, "Pss", "smaps_rollup")?,
        })
    }
}

/// CPU time a process has used, from `/proc/<pid>/stat`, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTime {
    /// `utime + stime`: all of the process's threads, the ones that have exited too.
    pub own_ms: f64,
    /// `cutime + cstime`: children it has waited for (the `runc` processes a shim runs).
    pub children_ms: f64,
}

impl CpuTime {
    pub fn read(pid: i32) -> Result<CpuTime> {
        let ticks =
            procfs::cpu_ticks(host_proc(), pid)?.with_context(|| format!("pid {pid} is gone"))?;
        let per_second = clock_ticks_per_second()?;
        let ms = |ticks: u64| ticks as f64 * 1000.0 / per_second;
        Ok(CpuTime {
            own_ms: ms(ticks.own),
            children_ms: ms(ticks.waited_children),
        })
    }
}

/// The unit of the times in `/proc/<pid>/stat` (USER_HZ).
fn clock_ticks_per_second() -> Result<f64> {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .context("sysconf(CLK_TCK)")?
        .context("sysconf(CLK_TCK): no value")?;
    Ok(ticks as f64)
}

/// Context switches of each live thread of a process, by thread id
/// (`voluntary_ctxt_switches` plus `nonvoluntary_ctxt_switches` of each
/// `/proc/<pid>/task/<tid>/status`): how often each was woken up, or descheduled while it ran.
pub fn thread_switches(pid: i32) -> Result<HashMap<i32, u64>> {
    let mut threads = HashMap::new();
    for tid in procfs::threads(host_proc(), pid)? {
        // A thread that exited since the listing is not there any more.
        let Some(status) = procfs::thread_status(host_proc(), pid, tid)? else {
            continue;
        };
        let switches = status
            .context_switches()
            .with_context(|| format!("no context switches in /proc/{pid}/task/{tid}/status"))?;
        threads.insert(tid, switches);
    }
    Ok(threads)
}

/// The wake-ups between two [`thread_switches`] readings of one process: each thread's
/// growth (all of it for a thread born in between), and one for each thread that exited in
/// between (its counts went with it; it woke up at least to exit).
pub fn wakeups_between(before: &HashMap<i32, u64>, after: &HashMap<i32, u64>) -> u64 {
    let grown: u64 = after
        .iter()
        .map(|(tid, now)| now.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    let exited = before.keys().filter(|tid| !after.contains_key(tid)).count();
    grown + exited as u64
}

/// How many file descriptors a process has open (entries of `/proc/<pid>/fd`).
pub fn open_fds(pid: i32) -> Result<usize> {
    Ok(procfs::open_fds(host_proc(), pid)?
        .with_context(|| format!("pid {pid} is gone"))?
        .len())
}

/// The shims serving containerd at `socket`, by the id they were started for (`-id`, the
/// pod sandbox's id: one shim per pod), with the binary they run.
pub fn shims_by_id(socket: &Path) -> HashMap<String, (i32, String)> {
    let socket = socket.to_string_lossy();
    let mut shims = HashMap::new();
    for pid in procfs::pids(host_proc()).unwrap_or_default() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakeups_count_growth_new_threads_and_one_per_exited_thread() {
        let before = HashMap::from([(1, 100), (2, 50), (3, 7)]);
        // 1 grew by 5, 2 exited, 3 did nothing, 4 was born with 2.
        let after = HashMap::from([(1, 105), (3, 7), (4, 2)]);
        assert_eq!(wakeups_between(&before, &after), 5 + 1 + 2);
        assert_eq!(wakeups_between(&before, &before), 0);
    }

    #[test]
    fn this_process_has_cpu_time_switches_memory_and_fds() {
        let me = std::process::id() as i32;
        // Burn CPU until a clock tick has been counted (a tick is 10 ms at USER_HZ 100).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while CpuTime::read(me).expect("cpu").own_ms == 0.0 && std::time::Instant::now() < deadline
        {
            std::hint::black_box((0..10_000u64).sum::<u64>());
        }
        assert!(CpuTime::read(me).expect("cpu").own_ms > 0.0);
        let threads = thread_switches(me).expect("switches");
        assert!(
            threads.get(&me).is_some_and(|&switches| switches > 0),
            "{threads:?}"
        );
        // stdin, stdout, stderr at least.
        assert!(open_fds(me).expect("fds") >= 3);
        let memory = ShimMemory::read(me).expect("memory");
        assert!(
            memory.vm_rss_kb >= memory.rss_anon_kb && memory.pss_kb > 0,
            "{memory:?}"
        );
    }
}
