//! What a scan found, per container, and how raw observations are summed up into it: zombies
//! grouped by the parent that fails to reap them, processes stuck in `D`, processes an exited
//! container left behind.

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

/// One running container, or an exited one whose cgroup still holds processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerReport {
    pub identity: ContainerIdentity,
    /// The host pid of the container's main process; `None` once the container has exited.
    pub pid: Option<i32>,
    /// Live processes in the container's cgroup (zombies not included).
    pub processes: usize,
    /// Zombies whose cgroup is the container's.
    pub zombies: usize,
    /// The zombies' parents, most zombies first.
    pub zombie_parents: Vec<ZombieParent>,
    /// Live processes in state `D`, by pid (of a running container: an exited one's are
    /// all in `left`).
    pub blocked: Vec<BlockedProcess>,
    /// Live processes of an exited container, by pid: what survived its exit (leaked by a
    /// runtime that does not kill them, or unkillable, e.g. in `D`). They keep a pod in
    /// Terminating.
    pub left: Vec<LeftProcess>,
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

/// A process still alive in an exited container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftProcess {
    pub pid: i32,
    pub comm: String,
    pub cmdline: String,
    /// Its state letter (`D`, `S`, ...).
    pub state: char,
    /// The kernel function it sleeps in (empty when the kernel does not say).
    pub wchan: String,
    /// Still alive (the same process) when looked at again after the recheck interval
    /// (always true when the scan does not recheck); a process the runtime is killing at
    /// the moment of the first look is gone by then.
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
    /// Sums up what was read from a container's cgroup (`pid` `None`: an exited
    /// container's). `persisting` holds the pids found again at the recheck: in `D` still
    /// for a running container, alive still for an exited one.
    pub fn new(
        identity: ContainerIdentity,
        pid: Option<i32>,
        observation: &Observation,
        persisting: &BTreeSet<i32>,
    ) -> Self {
        let processes = observation.processes.iter();
        let (blocked, left) = if pid.is_some() {
            let blocked = processes
                .filter(|process| process.state == 'D')
                .map(|process| BlockedProcess {
                    pid: process.pid,
                    comm: process.comm.clone(),
                    cmdline: process.cmdline.clone(),
                    wchan: process.wchan.clone(),
                    persisting: persisting.contains(&process.pid),
                })
                .collect();
            (blocked, Vec::new())
        } else {
            let left = processes
                .map(|process| LeftProcess {
                    pid: process.pid,
                    comm: process.comm.clone(),
                    cmdline: process.cmdline.clone(),
                    state: process.state,
                    wchan: process.wchan.clone(),
                    persisting: persisting.contains(&process.pid),
                })
                .collect();
            (Vec::new(), left)
        };
        ContainerReport {
            identity,
            pid,
            processes: observation.processes.len(),
            zombies: observation.zombies.len(),
            zombie_parents: zombie_parents(observation),
            blocked,
            left,
            pids: observation.pids,
        }
    }

    /// Whether the container has exited (it is reported for what it left behind).
    pub fn exited(&self) -> bool {
        self.pid.is_none()
    }

    /// How many processes the exited container left that were still there at the recheck.
    pub fn persisting_left(&self) -> usize {
        self.left.iter().filter(|p| p.persisting).count()
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
        let report = ContainerReport::new(identity("a"), Some(100), &observation, &BTreeSet::new());
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
        let report = ContainerReport::new(identity("a"), Some(100), &observation, &BTreeSet::new());
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
        let report = ContainerReport::new(
            identity("a"),
            Some(200),
            &observation,
            &BTreeSet::from([201]),
        );
        assert_eq!(report.blocked.len(), 2);
        assert_eq!(report.persisting_blocked(), 1);
        assert_eq!(report.blocked[0].wchan, "fuse_wait_answer");
        assert!(report.blocked[0].persisting);
        assert!(!report.blocked[1].persisting);
    }

    #[test]
    fn an_exited_container_reports_what_it_left_not_what_is_blocked() {
        let mut stuck = process(301, 1, "sleep", 'D');
        stuck.wchan = "do_freezer_trap".into();
        let observation = Observation {
            processes: vec![stuck, process(302, 1, "worker", 'S')],
            ..Observation::default()
        };
        let report =
            ContainerReport::new(identity("a"), None, &observation, &BTreeSet::from([301]));
        assert!(report.exited());
        assert!(report.blocked.is_empty());
        let left: Vec<(i32, char, &str, bool)> = report
            .left
            .iter()
            .map(|p| (p.pid, p.state, p.wchan.as_str(), p.persisting))
            .collect();
        assert_eq!(
            left,
            vec![(301, 'D', "do_freezer_trap", true), (302, 'S', "", false)]
        );
        assert_eq!(report.persisting_left(), 1);
    }
}
