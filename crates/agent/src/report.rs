//! What the agent takes from containerd's event stream: undertaker's three reports, flattened,
//! with the Kubernetes reason, type and metric they map to.

use undertaker_events::{Event, EventRecord};

/// The `container` label of a pod's sandbox, as kubelet's container metrics name it.
pub const SANDBOX_LABEL: &str = "POD";

/// Which of undertaker's reports an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// Orphans the init reaped (`/undertaker/reaped`).
    Reaped,
    /// Processes left when the container (or exec) ended, killed by undertaker
    /// (`/undertaker/leaked`).
    Leaked,
    /// Processes that survived SIGKILL (`/undertaker/unkillable`).
    Unkillable,
}

impl ReportKind {
    /// The Kubernetes Event `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            ReportKind::Reaped => "ZombiesReaped",
            ReportKind::Leaked => "LeakedProcesses",
            ReportKind::Unkillable => "UnkillableProcesses",
        }
    }

    /// The Kubernetes Event `type`: reaping is undertaker doing its job; a leak or a process
    /// that cannot be killed is something the pod's owner should look at.
    pub fn event_type(self) -> &'static str {
        match self {
            ReportKind::Reaped => "Normal",
            ReportKind::Leaked | ReportKind::Unkillable => "Warning",
        }
    }
}

/// One report from a shim: its kind and the flattened event (identity, processes, total).
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub kind: ReportKind,
    pub record: EventRecord,
}

impl Report {
    /// The report in `event`, flattened, if it is one of ours.
    pub fn from_event(event: &Event, record: EventRecord) -> Option<Self> {
        let kind = match event {
            Event::Reaped(_) => ReportKind::Reaped,
            Event::Leaked(_) => ReportKind::Leaked,
            Event::Unkillable(_) => ReportKind::Unkillable,
            Event::Task(_) | Event::Other { .. } => return None,
        };
        Some(Report { kind, record })
    }

    /// How many processes it concerns, listed or not.
    pub fn total(&self) -> u64 {
        self.record
            .total
            .unwrap_or(0)
            .max(self.record.processes.len() as u64)
    }

    /// The container's name in its pod; [`SANDBOX_LABEL`] for the pod's sandbox (it has a pod
    /// but no container name); else (a container not made by CRI) its containerd id.
    pub fn container_label(&self) -> &str {
        if !self.record.container_name.is_empty() {
            &self.record.container_name
        } else if self.is_sandbox() {
            SANDBOX_LABEL
        } else {
            &self.record.container_id
        }
    }

    /// Whether it is about a pod's sandbox (pause) container: CRI names the pod in the
    /// sandbox's spec, but no container.
    pub fn is_sandbox(&self) -> bool {
        self.record.container_name.is_empty() && self.record.has_pod()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use undertaker_events::{Identity, LeakReason, Leaked, Process};

    use super::*;

    #[test]
    fn kinds_map_to_reason_and_type() {
        let kinds = [
            ReportKind::Reaped,
            ReportKind::Leaked,
            ReportKind::Unkillable,
        ];
        assert_eq!(
            kinds.map(|k| (k.reason(), k.event_type())),
            [
                ("ZombiesReaped", "Normal"),
                ("LeakedProcesses", "Warning"),
                ("UnkillableProcesses", "Warning"),
            ]
        );
    }

    #[test]
    fn total_counts_unlisted_processes_and_never_less_than_listed() {
        let identity = Identity::for_container("default", "c1", "");
        let listed: Vec<Process> = (1..=3).map(|pid| Process::named(pid, "sh")).collect();
        let mut leaked = Leaked::now(identity, listed, LeakReason::LEAK_REASON_STOP);
        let event = Event::Leaked(leaked.clone());
        let report = Report::from_event(
            &event,
            EventRecord::new(&event, "default", SystemTime::now()),
        )
        .unwrap();
        assert_eq!(report.total(), 3);
        assert_eq!(report.container_label(), "c1", "no CRI name: the id");

        leaked.total = 900;
        let event = Event::Leaked(leaked);
        let report = Report::from_event(
            &event,
            EventRecord::new(&event, "default", SystemTime::now()),
        )
        .unwrap();
        assert_eq!(report.total(), 900);
    }

    #[test]
    fn a_sandbox_is_labelled_as_kubelet_labels_it() {
        let mut identity = crate::test_support::pod_identity("web-0", "", "0123abcd");
        identity.container_name.clear();
        let event = Event::Leaked(Leaked::now(
            identity,
            vec![Process::named(7, "sh")],
            LeakReason::LEAK_REASON_STOP,
        ));
        let report = Report::from_event(
            &event,
            EventRecord::new(&event, "k8s.io", SystemTime::now()),
        )
        .unwrap();
        assert!(report.is_sandbox());
        assert_eq!(report.container_label(), "POD");
    }
}
