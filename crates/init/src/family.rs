//! Which processes are "ours": as PID 1, every other process in the namespace; as a subreaper,
//! our descendants only (never other processes that share the namespace).

use alloc::vec::Vec;

use undertaker_report::Mode;

use crate::procfs;
use crate::sys::{Errno, Pid};

/// The pids of the processes the init answers for, other than itself, sorted.
pub fn members(mode: Mode, own_pid: Pid) -> Result<Vec<Pid>, Errno> {
    match mode {
        Mode::Pid1 => {
            let mut pids = Vec::new();
            procfs::for_each_pid(|pid| {
                if pid != own_pid {
                    pids.push(pid);
                }
            })?;
            pids.sort_unstable();
            Ok(pids)
        }
        Mode::Subreaper => descendants(own_pid),
    }
}

/// Every process below `root`, from the parent links in /proc (the kernel here may lack
/// /proc/<pid>/task/<tid>/children).
pub fn descendants(root: Pid) -> Result<Vec<Pid>, Errno> {
    let mut links: Vec<(Pid, Pid)> = Vec::new();
    procfs::for_each_pid(|pid| {
        if let Some(stat) = procfs::stat(pid) {
            links.push((stat.ppid, pid));
        }
    })?;
    Ok(below(root, links))
}

/// Given (parent, child) links, the children of `root`, their children, and so on, sorted.
fn below(root: Pid, mut links: Vec<(Pid, Pid)>) -> Vec<Pid> {
    links.sort_unstable();
    let children_of = |parent: Pid| {
        let start = links.partition_point(|&(p, _)| p < parent);
        links[start..]
            .iter()
            .take_while(move |&&(p, _)| p == parent)
            .map(|&(_, child)| child)
    };
    let mut found: Vec<Pid> = children_of(root).collect();
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        next += 1;
        // Each pid is read once, so it has one parent and is found at most once; only a torn read
        // (pid reuse while /proc is read) could make `root` a descendant of itself.
        found.extend(children_of(parent).filter(|&child| child != root));
    }
    found.sort_unstable();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_follow_parent_links_and_skip_strangers() {
        // 1 is PID 1 (not us), 10 is us; 11, 12 our children; 13 a grandchild; 20 a stranger
        // whose child 21 is not ours either.
        let links = vec![
            (0, 1),
            (1, 10),
            (10, 11),
            (10, 12),
            (11, 13),
            (1, 20),
            (20, 21),
            (13, 14),
        ];
        assert_eq!(below(10, links.clone()), vec![11, 12, 13, 14]);
        assert_eq!(below(20, links.clone()), vec![21]);
        assert_eq!(below(14, links), Vec::<Pid>::new());
    }

    #[test]
    fn a_loop_in_a_torn_read_does_not_hang() {
        assert_eq!(below(1, vec![(1, 2), (2, 3), (3, 1)]), vec![2, 3]);
    }

    #[test]
    fn a_child_process_is_a_descendant() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let found = descendants(crate::sys::getpid()).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found.contains(&(child.id() as Pid)), "{found:?}");
    }
}
