//! Turning what happened into `/undertaker/*` events with the pod's identity. What a
//! whole-cgroup kill found becomes events here and nowhere else ([`kill_report`]), for the
//! shim serving the container and for the `delete` action after a shim died alike.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use undertaker_events::{
    Identity, KilledBy, LeakReason, Leaked, Process, Reaped, UndertakerEvent, Unkillable,
};

use super::events::Events;

/// At most this many processes are kept from a reap batch; `total` counts all of them.
pub(crate) const MAX_LISTED: usize = undertaker_events::MAX_LISTED_PROCESSES;

/// Publishes the undertaker events of one container process (init or exec).
#[derive(Clone)]
pub(crate) struct Reporter {
    identity: Identity,
    events: Events,
    /// Collects what was leaked at the main process's exit (for the termination message).
    main_exit_tap: Option<Arc<Mutex<Vec<Process>>>>,
}

impl Reporter {
    pub(crate) fn new(
        events: &Events,
        container_id: &str,
        exec_id: &str,
        annotations: &HashMap<String, String>,
    ) -> Self {
        Reporter {
            identity: Identity::from_annotations(
                events.namespace(),
                container_id,
                exec_id,
                annotations,
            ),
            events: events.clone(),
            main_exit_tap: None,
        }
    }

    /// The same container, another exec (whose leftovers are not the main process's), named
    /// by its id and, from its OCI process `spec` (the JSON containerd sent), its command.
    pub(crate) fn for_exec(&self, exec_id: &str, spec: Option<&[u8]>) -> Self {
        Reporter {
            identity: self
                .identity
                .for_exec(exec_id)
                .with_exec_command(&exec_args(spec)),
            events: self.events.clone(),
            main_exit_tap: None,
        }
    }

    /// Also keeps every process leaked at the main process's exit in `tap`.
    pub(crate) fn tapping_main_exit(mut self, tap: Arc<Mutex<Vec<Process>>>) -> Self {
        self.main_exit_tap = Some(tap);
        self
    }

    #[cfg(test)]
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    pub(crate) fn reaped(&self, processes: Vec<Process>, total: u64, dropped: u64) {
        if total == 0 && dropped == 0 {
            return;
        }
        tracing::info!(container = %self.identity.container_id, total, dropped, "reaped zombies");
        let event = Reaped::now(self.identity.clone(), processes, total, dropped);
        self.events.publish(Reaped::TOPIC, Box::new(event));
    }

    pub(crate) fn leaked(&self, processes: Vec<Process>, reason: LeakReason) {
        if processes.is_empty() {
            return;
        }
        if let (Some(tap), LeakReason::LEAK_REASON_MAIN_EXIT) = (&self.main_exit_tap, reason) {
            tap.lock().unwrap().extend(processes.iter().cloned());
        }
        let event = Leaked::now(self.identity.clone(), processes, reason);
        tracing::info!(container = %self.identity.container_id, exec = %self.identity.exec_id, total = event.total, ?reason, "killed leaked processes");
        self.events.publish(Leaked::TOPIC, Box::new(event));
    }

    pub(crate) fn unkillable(&self, processes: Vec<Process>) {
        if processes.is_empty() {
            return;
        }
        let event = Unkillable::now(self.identity.clone(), processes);
        tracing::warn!(container = %self.identity.container_id, total = event.total, "processes survived SIGKILL");
        self.events.publish(Unkillable::TOPIC, Box::new(event));
    }

    /// Publishes what a whole-cgroup kill found: the processes it killed, but those in
    /// `expected` (whose death a stop is meant to cause) and those already dead before it
    /// (zombies, `Z`/`X`: reaped, not leaked), as leaked for `reason`; the survivors as
    /// unkillable. Returns how many survived.
    pub(crate) fn kill_report(
        &self,
        report: &undertaker_cgroups::KillReport,
        reason: LeakReason,
        expected: &[i32],
    ) -> usize {
        let leaked = report
            .killed
            .iter()
            .filter(|p| !expected.contains(&p.pid) && p.state != 'Z' && p.state != 'X')
            .map(|p| from_cgroup(p, KilledBy::KILLED_BY_CGROUP))
            .collect();
        self.leaked(leaked, reason);
        let unkillable: Vec<_> = report
            .unkillable
            .iter()
            .map(|p| from_cgroup(p, KilledBy::KILLED_BY_UNSPECIFIED))
            .collect();
        let survivors = unkillable.len();
        self.unkillable(unkillable);
        survivors
    }
}

/// The `args` of an exec's OCI process spec; none when the spec is missing or unreadable
/// (the event then names the exec by its id only).
fn exec_args(spec: Option<&[u8]>) -> Vec<String> {
    let Some(value) = spec.and_then(|raw| serde_json::from_slice::<serde_json::Value>(raw).ok())
    else {
        return Vec::new();
    };
    value["args"]
        .as_array()
        .map(|args| {
            args.iter()
                .filter_map(|arg| arg.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A process the shim saw in the container's cgroup (host pid).
pub(crate) fn from_cgroup(p: &undertaker_cgroups::ProcessInfo, killed_by: KilledBy) -> Process {
    Process {
        host_pid: p.pid as u32,
        comm: p.comm.clone(),
        cmdline: p.cmdline.clone(),
        state: p.state.to_string(),
        wchan: p.wchan.clone(),
        killed_by: killed_by.into(),
        ..Default::default()
    }
}

/// A process the init reported (pids of the container's PID namespace).
pub(crate) fn from_report(record: &undertaker_report::OwnedRecord) -> Option<Process> {
    use undertaker_report::{EndedBy, Record, Status};
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match record {
        Record::Reaped(r) => {
            let (exit_status, signal) = match r.status {
                Status::Exited(code) => (code, 0),
                Status::Signaled(sig) => (128 + sig, sig),
            };
            Some(Process {
                pid: r.pid as u32,
                comm: text(&r.comm),
                state: "Z".into(),
                exit_status: Some(exit_status),
                signal,
                ..Default::default()
            })
        }
        Record::Leaked(l) => {
            let mut process = Process {
                pid: l.pid as u32,
                comm: text(&l.comm),
                killed_by: match l.ended_by {
                    EndedBy::Term => KilledBy::KILLED_BY_TERM,
                    EndedBy::Kill => KilledBy::KILLED_BY_KILL,
                }
                .into(),
                ..Default::default()
            };
            process.set_cmdline_raw(&l.cmdline);
            Some(process)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use undertaker_report::{
        EndedBy, Leaked as LeakedRecord, Reaped as ReapedRecord, Record, Status,
    };

    use super::*;
    use crate::publisher::Collected;

    fn events(namespace: &str) -> Events {
        Events::new(std::sync::Arc::new(Collected::default()), namespace)
    }

    #[test]
    fn identity_comes_from_the_cri_annotations() {
        let annotations: HashMap<String, String> = [
            ("io.kubernetes.cri.sandbox-name", "web-0"),
            ("io.kubernetes.cri.sandbox-namespace", "shop"),
            ("io.kubernetes.cri.sandbox-uid", "u-1"),
            ("io.kubernetes.cri.container-name", "app"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let r = Reporter::new(&events("k8s.io"), "c1", "", &annotations);
        let id = r.identity();
        assert_eq!(
            (
                id.namespace.as_str(),
                id.container_id.as_str(),
                id.pod_name.as_str()
            ),
            ("k8s.io", "c1", "web-0")
        );
        assert_eq!(
            (
                id.pod_namespace.as_str(),
                id.pod_uid.as_str(),
                id.container_name.as_str()
            ),
            ("shop", "u-1", "app")
        );
        let exec = r.for_exec("e1", None);
        assert_eq!(exec.identity().exec_id, "e1");
        assert_eq!(exec.identity().exec_command, "", "no spec, no command");
        assert_eq!(exec.identity().pod_name, "web-0");
        let bare = Reporter::new(&events("default"), "c2", "", &HashMap::new());
        assert!(bare.identity().pod_name.is_empty());
    }

    #[test]
    fn an_exec_is_named_by_the_command_in_its_process_spec() {
        let r = Reporter::new(&events("k8s.io"), "c1", "", &HashMap::new());
        let spec = br#"{"args":["sh","-c","(sleep 0 &)"],"cwd":"/","env":["PATH=/bin"]}"#;

        let probe = r.for_exec("e1", Some(spec));

        assert_eq!(probe.identity().exec_command, "sh -c (sleep 0 &)");
        assert_eq!(probe.identity().exec_id, "e1");
        assert_eq!(
            r.identity().exec_command,
            "",
            "the init's reporter is untouched"
        );
        let garbled = r.for_exec("e2", Some(b"{not json"));
        assert_eq!(garbled.identity().exec_command, "");
        assert_eq!(garbled.identity().exec_id, "e2");
    }

    #[test]
    fn init_records_become_processes() {
        let reaped: undertaker_report::OwnedRecord = Record::Reaped(ReapedRecord {
            pid: 42,
            status: Status::Signaled(9),
            comm: b"sleep".to_vec(),
        });
        let p = from_report(&reaped).unwrap();
        assert_eq!(
            (p.pid, p.comm.as_str(), p.exit_status, p.signal),
            (42, "sleep", Some(137), 9)
        );
        let leaked: undertaker_report::OwnedRecord = Record::Leaked(LeakedRecord {
            pid: 7,
            ended_by: EndedBy::Kill,
            comm: b"sh".to_vec(),
            cmdline: b"sh\0-c\0trap '' TERM; sleep 99\0".to_vec(),
            truncated: false,
        });
        let p = from_report(&leaked).unwrap();
        assert_eq!(p.cmdline, "sh -c trap '' TERM; sleep 99");
        assert_eq!(
            p.killed_by.enum_value_or_default(),
            KilledBy::KILLED_BY_KILL
        );
        assert!(from_report(&Record::MainStarted { pid: 1 }).is_none());
    }
}
