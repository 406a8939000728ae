//! A process and its descendants, found through `/proc/<pid>/task/*/children`:
//! what an exec started, for a SIGKILL of the exec to take along. `/proc` is read by
//! `undertaker_cgroups::procfs`.

use std::path::Path;

use nix::{sys::signal::Signal, unistd::Pid};
use undertaker_cgroups::{procfs, ProcessInfo};

/// Passes over the tree, to catch children forked while it is being killed.
const PASSES: usize = 3;

fn host_proc() -> &'static Path {
    Path::new(procfs::HOST_PROC)
}

/// `root`'s live descendants (root first), as `/proc` shows them now.
pub fn descendants(root: i32) -> Vec<ProcessInfo> {
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        if found.iter().any(|p: &ProcessInfo| p.pid == pid) {
            continue;
        }
        let Ok(Some(info)) = ProcessInfo::read(host_proc(), pid) else {
            continue;
        };
        found.push(info);
        queue.extend(children(pid));
    }
    found
}

/// `pid`'s children, from every one of its threads' `children` lists; none when unreadable.
pub fn children(pid: i32) -> Vec<i32> {
    procfs::children(host_proc(), pid).unwrap_or_else(|e| {
        tracing::debug!(pid, "cannot list children: {e}");
        Vec::new()
    })
}

/// Whether `pid` is in the middle of exiting (PF_EXITING in `/proc/<pid>/stat`'s
/// flags): an init that is PID 1 of its namespace stays so until every other
/// process of the namespace is gone.
pub fn is_exiting(pid: i32) -> bool {
    procfs::stat(host_proc(), pid).is_ok_and(|stat| stat.is_some_and(|s| s.is_exiting()))
}

/// SIGKILLs `root` and all its descendants; returns every process it signalled.
pub fn kill_tree(root: i32) -> Vec<ProcessInfo> {
    let mut killed: Vec<ProcessInfo> = Vec::new();
    for _ in 0..PASSES {
        let tree = descendants(root);
        let new: Vec<_> = tree
            .into_iter()
            .filter(|p| !killed.iter().any(|k| k.pid == p.pid))
            .collect();
        if new.is_empty() {
            break;
        }
        // Children first: once the root dies its children move to another reaper
        // and would no longer be found under it.
        for p in new.iter().rev() {
            let _ = nix::sys::signal::kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        }
        killed.extend(new);
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_process_is_not_exiting() {
        assert!(!is_exiting(std::process::id() as i32));
        assert!(!is_exiting(i32::MAX));
    }

    #[test]
    fn a_shell_and_its_background_children_are_found_and_killed() {
        let mut sh = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 100 & sleep 100 & wait"])
            .spawn()
            .unwrap();
        let root = sh.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while descendants(root).len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let tree = descendants(root);
        assert_eq!(tree.len(), 3, "{tree:?}");
        assert_eq!(tree[0].pid, root);
        let killed = kill_tree(root);
        assert_eq!(killed.len(), 3);
        sh.wait().unwrap();
        // The sleeps were children of sh; once it is reaped they are re-parented
        // and reaped by whoever reaps here; make sure they are dead.
        for p in killed.iter().filter(|p| p.pid != root) {
            let proc_root = Path::new(procfs::HOST_PROC);
            let dead = || {
                procfs::stat(proc_root, p.pid)
                    .unwrap()
                    .is_none_or(|stat| stat.is_zombie_or_dead())
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !dead() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert!(
                dead(),
                "{} still alive: {:?}",
                p.pid,
                procfs::stat(proc_root, p.pid)
            );
        }
    }
}
