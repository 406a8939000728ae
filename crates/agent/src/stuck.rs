//! The processes the shims reported unkillable (`/undertaker/unkillable`), kept per pod until
//! they are gone from the node: what the `undertaker_unkillable_processes_alive` gauge counts
//! and what makes a pod that cannot finish terminating "stuck" ([`crate::stuck_watch`]).
//!
//! Pure bookkeeping: whether a process is still there is asked of the caller
//! ([`StuckSet::refresh`]), so the rules are tested without a host.

use std::collections::BTreeMap;
use std::time::SystemTime;

use undertaker_events::ProcessRecord;

use crate::metrics::ContainerLabels;
use crate::report::{Report, ReportKind};

/// Which pod (empty names: a container not made by CRI).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodKey {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
}

/// One process that survived SIGKILL, as last seen.
#[derive(Clone, Debug, PartialEq)]
pub struct StuckProcess {
    /// Its container's name in the pod (`POD` for the sandbox), else the containerd id.
    pub container: String,
    /// pid, comm, state and wchan; `host_pid` is always set (the others cannot be followed).
    pub process: ProcessRecord,
    /// When it was first reported.
    pub since: SystemTime,
}

/// What the host says of a reported process now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Still there (same pid, same comm): its state and wchan now.
    Alive { state: String, wchan: String },
    /// Exited, reaped or its pid reused by another program.
    Gone,
}

/// Every stuck process still on the node, by pod.
#[derive(Debug, Default)]
pub struct StuckSet {
    pods: BTreeMap<PodKey, Vec<StuckProcess>>,
}

impl StuckSet {
    /// Takes in an unkillable report (other kinds are ignored). A process reported again
    /// (a later stop of the same container) is updated, not counted twice. Processes without
    /// a host pid cannot be looked at later and are left out.
    pub fn add(&mut self, report: &Report, now: SystemTime) {
        if report.kind != ReportKind::Unkillable {
            return;
        }
        let record = &report.record;
        let mut followable = record
            .processes
            .iter()
            .filter(|p| p.host_pid.is_some())
            .peekable();
        if followable.peek().is_none() {
            return;
        }
        let key = PodKey {
            namespace: record.pod_namespace.clone(),
            pod: record.pod.clone(),
            uid: record.pod_uid.clone(),
        };
        let container = report.container_label().to_string();
        let known = self.pods.entry(key).or_default();
        for process in followable {
            match known
                .iter_mut()
                .find(|k| k.process.host_pid == process.host_pid)
            {
                Some(old) => {
                    old.process = process.clone();
                    old.container.clone_from(&container);
                }
                None => known.push(StuckProcess {
                    container: container.clone(),
                    process: process.clone(),
                    since: now,
                }),
            }
        }
    }

    /// Asks `look` about every process: those gone are forgotten, the others get their state
    /// and wchan now. Returns how many were forgotten.
    pub fn refresh(&mut self, mut look: impl FnMut(&ProcessRecord) -> Seen) -> usize {
        let mut forgotten = 0;
        for processes in self.pods.values_mut() {
            processes.retain_mut(|stuck| match look(&stuck.process) {
                Seen::Alive { state, wchan } => {
                    stuck.process.state = state;
                    stuck.process.wchan = wchan;
                    true
                }
                Seen::Gone => {
                    forgotten += 1;
                    false
                }
            });
        }
        self.pods.retain(|_, processes| !processes.is_empty());
        forgotten
    }

    /// The pods holding stuck processes, and those processes.
    pub fn pods(&self) -> impl Iterator<Item = (&PodKey, &[StuckProcess])> {
        self.pods.iter().map(|(key, list)| (key, list.as_slice()))
    }

    /// How many stuck processes each container holds: the gauge's samples, by container.
    pub fn gauge_samples(&self) -> Vec<(ContainerLabels, i64)> {
        let mut counts: BTreeMap<(&str, &str, &str), i64> = BTreeMap::new();
        for (key, processes) in &self.pods {
            for stuck in processes {
                *counts
                    .entry((&key.namespace, &key.pod, &stuck.container))
                    .or_insert(0) += 1;
            }
        }
        counts
            .into_iter()
            .map(|((namespace, pod, container), n)| {
                let labels = ContainerLabels {
                    namespace: namespace.to_string(),
                    pod: pod.to_string(),
                    container: container.to_string(),
                };
                (labels, n)
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }
}

#[cfg(test)]
#[path = "stuck_tests.rs"]
mod tests;
