//! What a scan found, per container, and how raw observations are summed up into it: zombies
//! grouped by the parent that fails to reap them, processes stuck in `D`.

use std::collections::{BTreeMap, BTreeSet};

use undertaker_cgroups::{PidsUsage, ProcessInfo};

use crate::identity::ContainerIdentity;
use crate::observe::Observation;

/// Every container of one scan, sorted by namespace, pod, container; and those left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeReport {
    pub containers: Vec<ContainerReport>,
    pub skipped: Vec<Skipped>,
}

/// One running container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerReport {
    pub identity: ContainerIdentity,
    /// The host pid of the container's main process.
    pub pid: i32,
    /// Live processes in the container's cgroup (zombies not included).
    pub processes: usize,
    /// Zombies whose cgroup is the container's.
    pub zombies: usize,
    /// The zombies' parents, most zombies first.
    pub zombie_parents: Vec<ZombieParent>,
    /// Live processes in state `D`, by pid.
    pub blocked: Vec<BlockedProcess>,
    /// `pids.current` and `pids.max`; `None` without a pids controller.
    pub pids: Option<PidsUsage>,
}

/// A process with zombie children it has not waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZombieParent {
    pub pid: i32,
    /// `None` when the parent could not be read (it exited meanwhile).
    pub comm: Option<String>,
    pub zombies: usize,
    /// How many of its zombies have each name (a fork storm is one line, not thousands).
    pub zombie_comms: BTreeMap<String, usize>,
}

/// A process in uninterruptible sleep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedProcess {
    pub pid: i32,
    pub comm: String,
    pub cmdline: String,
    /// The kernel function it sleeps in (empty when the kernel does not say).
    pub wchan: String,
    /// Still in `D` when looked at again after the recheck interval (always true when the
    /// scan does not recheck). Only persisting processes count against the threshold: a
    /// process passing through `D` for a disk read is normal.
    pub persisting: bool,
}

/// A container that was not scanned, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub identity: ContainerIdentity,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// It exited (or was removed) between CRI's list and our look at `/proc`: normal.
    Exited(String),
    /// It runs but could not be read (permissions, an unexpected cgroup layout): the scan
    /// cannot vouch for it.
    Unreadable(String),
}

impl SkipReason {
    pub fn text(&self) -> &str {
        match self {
            SkipReason::Exited(text) | SkipReason::Unreadable(text) => text,
        }
    }
}

impl ContainerReport {
    /// Sums up what was read from a container's cgroup. `still_blocked` holds the pids found
    /// in `D` again at the recheck.
    pub fn new(
        identity: ContainerIdentity,
        pid: i32,
        observation: &Observation,
        still_blocked: &BTreeSet<i32>,
    ) -> Self {
        let blocked = observation
            .processes
            .iter()
            .filter(|process| process.state == 'D')
            .map(|process| BlockedProcess {
                pid: process.pid,
                comm: process.comm.clone(),
                cmdline: process.cmdline.clone(),
                wchan: process.wchan.clone(),
                persisting: still_blocked.contains(&process.pid),
            })
            .collect();
        ContainerReport {
            identity,
            pid,
            processes: observation.processes.len(),
            zombies: observation.zombies.len(),
            zombie_parents: zombie_parents(observation),
            blocked,
            pids: observation.pids,
        }
    }

    /// The parent with the most zombies.
    pub fn worst_parent(&self) -> Option<&ZombieParent> {
        self.zombie_parents.first()
    }

    /// How many processes are in `D` and still were at the recheck.
    pub fn persisting_blocked(&self) -> usize {
        self.blocked.iter().filter(|p| p.persisting).count()
    }
}

/// Groups the zombies by their parent pid, naming each parent from the live processes or
/// the parents read outside the container (a shared PID namespace, a subreaper).
fn zombie_parents(observation: &Observation) -> Vec<ZombieParent> {
    let mut by_parent: BTreeMap<i32, ZombieParent> = BTreeMap::new();
    for zombie in &observation.zombies {
        let parent = by_parent
            .entry(zombie.ppid)
            .or_insert_with(|| ZombieParent {
                pid: zombie.ppid,
                comm: observation.process(zombie.ppid).map(|p| p.comm.clone()),
                zombies: 0,
                zombie_comms: BTreeMap::new(),
            });
        parent.zombies += 1;
        *parent.zombie_comms.entry(zombie.comm.clone()).or_default() += 1;
    }
    let mut parents: Vec<ZombieParent> = by_parent.into_values().collect();
    // Most zombies first; the pid breaks ties so the order never depends on the scan.
    parents.sort_by(|a, b| b.zombies.cmp(&a.zombies).then(a.pid.cmp(&b.pid)));
    parents
}

impl Observation {
    /// A process by pid, live in the container or read as a zombie's parent.
    fn process(&self, pid: i32) -> Option<&ProcessInfo> {
        self.processes
            .iter()
            .chain(&self.parents)
            .find(|process| process.pid == pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{identity, process};

    #[test]
    fn zombies_are_counted_by_the_parent_that_does_not_reap_them() {
        let observation = Observation {
            processes: vec![
                process(100, 90, "sleep", 'S'),
                process(101, 100, "worker", 'S'),
            ],
            zombies: vec![
                process(102, 100, "sh", 'Z'),
                process(103, 100, "sh", 'Z'),
                process(104, 101, "curl", 'Z'),
                process(105, 100, "date", 'Z'),
                process(106, 77, "orphan", 'Z'),
            ],
            parents: vec![process(77, 1, "shared-init", 'S')],
            pids: Some(PidsUsage {
                current: 7,
                max: Some(100),
            }),
        };
        let report = ContainerReport::new(identity("a"), 100, &observation, &BTreeSet::new());
        assert_eq!(report.processes, 2);
        assert_eq!(report.zombies, 5);
        let summary: Vec<(i32, Option<&str>, usize)> = report
            .zombie_parents
            .iter()
            .map(|p| (p.pid, p.comm.as_deref(), p.zombies))
            .collect();
        assert_eq!(
            summary,
            vec![
                (100, Some("sleep"), 3),
                (77, Some("shared-init"), 1),
                (101, Some("worker"), 1)
            ]
        );
        let worst = report.worst_parent().unwrap();
        assert_eq!(worst.zombie_comms.get("sh"), Some(&2));
        assert_eq!(worst.zombie_comms.get("date"), Some(&1));
    }

    #[test]
    fn a_parent_that_vanished_has_no_name() {
        let observation = Observation {
            zombies: vec![process(102, 55, "sh", 'Z')],
            ..Observation::default()
        };
        let report = ContainerReport::new(identity("a"), 100, &observation, &BTreeSet::new());
        assert_eq!(report.worst_parent().unwrap().comm, None);
    }

    #[test]
    fn only_processes_still_in_d_at_the_recheck_persist() {
        let mut stuck = process(201, 200, "cat", 'D');
        stuck.wchan = "fuse_wait_answer".into();
        let observation = Observation {
            processes: vec![
                process(200, 1, "sh", 'S'),
                stuck,
                process(202, 200, "dd", 'D'),
            ],
            ..Observation::default()
        };
        let report = ContainerReport::new(identity("a"), 200, &observation, &BTreeSet::from([201]));
        assert_eq!(report.blocked.len(), 2);
        assert_eq!(report.persisting_blocked(), 1);
        assert_eq!(report.blocked[0].wchan, "fuse_wait_answer");
        assert!(report.blocked[0].persisting);
        assert!(!report.blocked[1].persisting);
    }
}
