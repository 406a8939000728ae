//! Processes as the host sees them: who is in a container's cgroup, which of them are zombies,
//! and what is still running anywhere on the host with a marker in its command line. Read
//! from /proc through `undertaker_cgroups::procfs` (the workspace's one /proc reader), whose
//! parsing has its own fixture tests.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use undertaker_cgroups::procfs as proc_files;

use crate::container::Container;
use crate::procfs;

/// One process on the host, as /proc shows it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostProcess {
    pub pid: i32,
    pub ppid: i32,
    /// The state letter of `/proc/<pid>/stat` (`R`, `S`, `D`, `Z`, `T`, ...).
    pub state: char,
    pub comm: String,
    /// The arguments joined with spaces (empty for zombies).
    pub cmdline: String,
}

impl HostProcess {
    /// Reads `pid` from /proc; `None` if it is gone.
    pub fn read(pid: i32) -> Option<HostProcess> {
        let stat = proc_files::stat(procfs::host_proc(), pid).ok()??;
        Some(HostProcess {
            pid,
            ppid: stat.ppid,
            state: stat.state,
            comm: stat.comm,
            cmdline: procfs::cmdline(pid).join(" "),
        })
    }

    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }

    /// Sends SIGKILL; a process that is gone already is no error.
    pub fn kill(&self) {
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
    }
}

/// Whether `/proc/<pid>/cgroup` places `pid` in cgroup `path` (e.g. `/parent/id`) or below it,
/// in any hierarchy.
fn is_in_cgroup(pid: i32, path: &str) -> bool {
    let Ok(Some(members)) = proc_files::cgroup_paths(procfs::host_proc(), pid) else {
        return false;
    };
    let below = format!("{}/", path.trim_end_matches('/'));
    members
        .iter()
        .any(|member| member == path || member.starts_with(&below))
}

/// Every process whose `/proc/<pid>/cgroup` names cgroup `path` or a cgroup below it:
/// live processes and zombies (recent kernels drop a zombie from `cgroup.procs`, but not
/// from its own `/proc/<pid>/cgroup`).
pub fn processes_in_cgroup(path: &str) -> Vec<HostProcess> {
    let mut found: Vec<HostProcess> = procfs::all_pids()
        .into_iter()
        .filter(|pid| is_in_cgroup(*pid, path))
        .filter_map(HostProcess::read)
        .collect();
    found.sort_by_key(|process| process.pid);
    found
}

/// Live (non-zombie) processes anywhere on the host whose command line contains `marker`.
/// This process and its ancestors are left out: they may carry the marker in their arguments.
pub fn processes_matching(marker: &str) -> Vec<HostProcess> {
    let me = std::process::id() as i32;
    procfs::all_pids()
        .into_iter()
        .filter(|pid| *pid != me)
        .filter_map(HostProcess::read)
        .filter(|process| !process.is_zombie() && process.cmdline.contains(marker))
        .collect()
}

impl Container {
    /// Every process of the container as the host sees it, zombies included.
    pub fn host_processes(&self) -> Vec<HostProcess> {
        processes_in_cgroup(&self.cgroup_path())
    }

    /// The container's live processes.
    pub fn live_processes(&self) -> Vec<HostProcess> {
        let mut live = self.host_processes();
        live.retain(|process| !process.is_zombie());
        live
    }

    /// The zombies in the container's cgroup: exited, but not (yet) reaped by their parent.
    pub fn zombies(&self) -> Vec<HostProcess> {
        let mut zombies = self.host_processes();
        zombies.retain(HostProcess::is_zombie);
        zombies
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_reads_back_with_its_parent() {
        let me = HostProcess::read(std::process::id() as i32).expect("this process");
        assert_eq!(me.ppid, nix::unistd::getppid().as_raw());
        assert!(!me.is_zombie());
        assert!(!me.comm.is_empty());
    }

    #[test]
    fn a_child_shows_up_by_marker_and_turns_zombie_until_reaped() {
        let marker = format!("host-processes-marker-{}", std::process::id());
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read line", &marker])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let pid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while processes_matching(&marker).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let found = processes_matching(&marker);
        assert_eq!(
            found.iter().map(|p| p.pid).collect::<Vec<_>>(),
            [pid],
            "{found:?}"
        );

        drop(child.stdin.take());
        while !HostProcess::read(pid).is_some_and(|p| p.is_zombie())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(HostProcess::read(pid).expect("unreaped").is_zombie());
        assert!(
            processes_matching(&marker).is_empty(),
            "zombies are not live"
        );
        child.wait().expect("reap");
        assert!(HostProcess::read(pid).is_none());
    }

    #[test]
    fn this_process_is_in_its_own_cgroup() {
        let me = std::process::id() as i32;
        let text = std::fs::read_to_string("/proc/self/cgroup").expect("cgroup");
        let path = text.lines().next().and_then(|l| l.splitn(3, ':').nth(2));
        let path = path.expect("a cgroup line");
        assert!(is_in_cgroup(me, path));
        assert!(!is_in_cgroup(me, "/undertaker-testbed-no-such-cgroup"));
    }
}
