//! A flat, serde-friendly view of any decoded event, for JSON output and readable lines.

use std::fmt;
use std::time::SystemTime;

use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::MessageField;
use serde::{Deserialize, Serialize};

use crate::{Event, Identity, KilledBy, LeakReason, Process, TaskEvent};

/// One event, flattened: who it is about, when, and the processes it names.
///
/// Fields that an event does not have are empty strings (identity), an empty list
/// (processes) or absent from JSON (`total`, `dropped`, `reason`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The containerd topic, e.g. `/undertaker/leaked`, `/tasks/exit`.
    pub topic: String,
    /// containerd namespace.
    pub namespace: String,
    pub container_id: String,
    /// Empty for the container's init process.
    pub exec_id: String,
    /// An exec's command (its args joined by spaces), where the shim named it; absent from
    /// JSON when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exec_command: String,
    /// Pod name.
    pub pod: String,
    pub pod_namespace: String,
    pub pod_uid: String,
    pub container_name: String,
    /// RFC 3339, UTC: when the event happened (the payload's time where it has one, else the
    /// time containerd stamped on it).
    pub timestamp: String,
    pub processes: Vec<ProcessRecord>,
    /// Reaped, leaked, unkillable: how many processes, including those not listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Reaped: records the init could not deliver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
    /// Leaked: `main-exit`, `stop`, `delete` or `exec-exit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One process in an [`EventRecord`]. `null` in JSON means not known or not applicable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// In the container's PID namespace; for task events, the pid containerd reports (host).
    pub pid: u32,
    /// On the node, where known.
    pub host_pid: Option<u32>,
    pub comm: String,
    pub cmdline: String,
    pub state: String,
    pub wchan: String,
    /// Exit code, or 128+N for a signal; only for processes whose end was seen.
    pub exit_status: Option<i32>,
    /// The terminating signal, when there was one.
    pub signal: Option<i32>,
    /// `term`, `kill` or `cgroup`, when undertaker killed it.
    pub killed_by: Option<String>,
}

impl EventRecord {
    /// Flattens `event`, delivered in containerd `namespace` with containerd's `published`
    /// time (the envelope's).
    pub fn new(event: &Event, namespace: &str, published: SystemTime) -> Self {
        let mut record = EventRecord {
            topic: event.topic().to_string(),
            namespace: namespace.to_string(),
            container_id: String::new(),
            exec_id: String::new(),
            exec_command: String::new(),
            pod: String::new(),
            pod_namespace: String::new(),
            pod_uid: String::new(),
            container_name: String::new(),
            timestamp: rfc3339(published),
            processes: Vec::new(),
            total: None,
            dropped: None,
            reason: None,
        };
        match event {
            Event::Reaped(e) => {
                record.ours(&e.identity, &e.timestamp, &e.processes, e.total);
                record.dropped = Some(e.dropped);
            }
            Event::Leaked(e) => {
                record.ours(&e.identity, &e.timestamp, &e.processes, e.total);
                record.reason = e
                    .reason
                    .enum_value()
                    .ok()
                    .and_then(LeakReason::name)
                    .map(str::to_string);
            }
            Event::Unkillable(e) => {
                record.ours(&e.identity, &e.timestamp, &e.processes, e.total);
            }
            Event::Task(task) => record.task(task),
            Event::Other { .. } => {}
        }
        record
    }

    /// Fills the pod fields that are still empty from `identity` (e.g. looked up from the
    /// container's CRI labels, for task events that carry no pod).
    pub fn fill_pod(&mut self, identity: &Identity) {
        fill(&mut self.pod, &identity.pod_name);
        fill(&mut self.pod_namespace, &identity.pod_namespace);
        fill(&mut self.pod_uid, &identity.pod_uid);
        fill(&mut self.container_name, &identity.container_name);
    }

    /// Whether the record names a pod.
    pub fn has_pod(&self) -> bool {
        !self.pod.is_empty() || !self.pod_uid.is_empty()
    }

    fn ours(
        &mut self,
        identity: &MessageField<Identity>,
        timestamp: &MessageField<Timestamp>,
        processes: &[Process],
        total: u64,
    ) {
        if let Some(identity) = identity.as_ref() {
            fill(&mut self.namespace, &identity.namespace);
            self.container_id = identity.container_id.clone();
            self.exec_id = identity.exec_id.clone();
            self.exec_command = identity.exec_command.clone();
            self.fill_pod(identity);
        }
        if let Some(time) = timestamp
            .as_ref()
            .filter(|t| t.seconds != 0 || t.nanos != 0)
        {
            self.timestamp = rfc3339(time.clone().into());
        }
        self.processes = processes.iter().map(ProcessRecord::from).collect();
        self.total = Some(total);
    }

    fn task(&mut self, task: &TaskEvent) {
        self.container_id = task.container_id().to_string();
        let (exec_id, pid, exit) = match task {
            TaskEvent::Create(e) => ("", Some(e.pid), None),
            TaskEvent::Start(e) => ("", Some(e.pid), None),
            TaskEvent::Exit(e) => (
                e.id.as_str(),
                Some(e.pid),
                Some((e.exit_status, &e.exited_at)),
            ),
            TaskEvent::Delete(e) => (
                e.id.as_str(),
                Some(e.pid),
                Some((e.exit_status, &e.exited_at)),
            ),
            TaskEvent::ExecAdded(e) => (e.exec_id.as_str(), None, None),
            TaskEvent::ExecStarted(e) => (e.exec_id.as_str(), Some(e.pid), None),
            TaskEvent::Oom(_) | TaskEvent::Paused(_) | TaskEvent::Resumed(_) => ("", None, None),
        };
        // containerd names the init process by the container id in exit and delete events.
        if exec_id != self.container_id {
            self.exec_id = exec_id.to_string();
        }
        let Some(pid) = pid else { return };
        let mut process = ProcessRecord {
            pid,
            ..Default::default()
        };
        if let Some((status, exited_at)) = exit {
            process.exit_status = i32::try_from(status).ok();
            if let Some(time) = exited_at.as_ref().filter(|t| t.seconds > 0) {
                self.timestamp = rfc3339(time.clone().into());
            }
        }
        self.processes.push(process);
    }
}

impl From<&Process> for ProcessRecord {
    fn from(process: &Process) -> Self {
        ProcessRecord {
            pid: process.pid,
            host_pid: (process.host_pid != 0).then_some(process.host_pid),
            comm: process.comm.clone(),
            cmdline: process.cmdline.clone(),
            state: process.state.clone(),
            wchan: process.wchan.clone(),
            exit_status: process.exit_status,
            signal: (process.signal != 0).then_some(process.signal),
            killed_by: process
                .killed_by
                .enum_value()
                .ok()
                .and_then(KilledBy::name)
                .map(str::to_string),
        }
    }
}

fn fill(field: &mut String, value: &str) {
    if field.is_empty() {
        *field = value.to_string();
    }
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_nanos(time).to_string()
}

/// How many characters of a container id a readable line shows (as `crictl ps` does).
const SHORT_ID: usize = 13;

/// One readable line:
/// `<time> <topic> <ns>/<pod_namespace>/<pod>/<container> id=<container id> [exec=<id>]
/// [exec_command="…"] [total=N dropped=N reason=R] [pid=… comm=… …] …` (a `-` stands for an unknown name).
impl fmt::Display for EventRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_dash = |s: &str| {
            if s.is_empty() {
                "-".to_string()
            } else {
                s.to_string()
            }
        };
        write!(
            f,
            "{} {} {}/{}/{}/{}",
            self.timestamp,
            self.topic,
            or_dash(&self.namespace),
            or_dash(&self.pod_namespace),
            or_dash(&self.pod),
            or_dash(&self.container_name),
        )?;
        if !self.container_id.is_empty() {
            let short: String = self.container_id.chars().take(SHORT_ID).collect();
            write!(f, " id={short}")?;
        }
        if !self.exec_id.is_empty() {
            write!(f, " exec={}", self.exec_id)?;
        }
        if !self.exec_command.is_empty() {
            write!(f, " exec_command={:?}", self.exec_command)?;
        }
        if let Some(total) = self.total {
            write!(f, " total={total}")?;
        }
        if let Some(dropped) = self.dropped.filter(|&n| n > 0) {
            write!(f, " dropped={dropped}")?;
        }
        if let Some(reason) = &self.reason {
            write!(f, " reason={reason}")?;
        }
        for process in &self.processes {
            write!(f, " [{process}]")?;
        }
        Ok(())
    }
}

/// `pid=… host_pid=… comm=… state=… wchan=… exit_status=… signal=… killed_by=… cmdline="…"`,
/// each only when known.
impl fmt::Display for ProcessRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid={}", self.pid)?;
        if let Some(host_pid) = self.host_pid {
            write!(f, " host_pid={host_pid}")?;
        }
        for (key, value) in [
            ("comm", &self.comm),
            ("state", &self.state),
            ("wchan", &self.wchan),
        ] {
            if !value.is_empty() {
                write!(f, " {key}={value}")?;
            }
        }
        if let Some(status) = self.exit_status {
            write!(f, " exit_status={status}")?;
        }
        if let Some(signal) = self.signal {
            write!(f, " signal={signal}")?;
        }
        if let Some(killed_by) = &self.killed_by {
            write!(f, " killed_by={killed_by}")?;
        }
        if !self.cmdline.is_empty() {
            write!(f, " cmdline={:?}", self.cmdline)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use containerd_shim_protos::events::task::{TaskExit, TaskStart};
    use serde_json::{json, Value};

    use super::*;
    use crate::{Leaked, Reaped, Unkillable};

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn pod_identity() -> Identity {
        Identity {
            pod_name: "web-0".into(),
            pod_namespace: "shop".into(),
            pod_uid: "uid-1".into(),
            container_name: "nginx".into(),
            ..Identity::for_container("k8s.io", "0123456789abcdef", "")
        }
    }

    #[test]
    fn leaked_json_has_the_documented_shape() {
        let mut sleeper = Process::named(12, "sleep");
        sleeper.host_pid = 4012;
        sleeper.cmdline = "sleep 1000".into();
        sleeper.state = "S".into();
        sleeper.killed_by = KilledBy::KILLED_BY_CGROUP.into();
        let mut leaked = Leaked::now(pod_identity(), vec![sleeper], LeakReason::LEAK_REASON_STOP);
        leaked.timestamp = MessageField::some(at(1_700_000_000).into());

        let record = EventRecord::new(&Event::Leaked(leaked), "k8s.io", at(1));
        let json: Value = serde_json::to_value(&record).unwrap();

        assert_eq!(
            json,
            json!({
                "topic": "/undertaker/leaked",
                "namespace": "k8s.io",
                "container_id": "0123456789abcdef",
                "exec_id": "",
                "pod": "web-0",
                "pod_namespace": "shop",
                "pod_uid": "uid-1",
                "container_name": "nginx",
                "timestamp": "2023-11-14T22:13:20.000000000Z",
                "processes": [{
                    "pid": 12, "host_pid": 4012, "comm": "sleep", "cmdline": "sleep 1000",
                    "state": "S", "wchan": "", "exit_status": null, "signal": null,
                    "killed_by": "cgroup"
                }],
                "total": 1,
                "reason": "stop"
            })
        );
        let back: EventRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn reaped_carries_total_dropped_and_statuses() {
        let processes = vec![
            Process::named(7, "sh").signaled(15),
            Process::named(8, "true").exited(0),
        ];
        let reaped = Reaped::now(pod_identity().for_exec("e1"), processes, 9, 2);

        let record = EventRecord::new(&Event::Reaped(reaped), "k8s.io", at(1));

        assert_eq!(record.exec_id, "e1");
        assert_eq!(
            (record.total, record.dropped, record.reason.as_deref()),
            (Some(9), Some(2), None)
        );
        assert_eq!(record.processes[0].exit_status, Some(143));
        assert_eq!(record.processes[0].signal, Some(15));
        assert_eq!(record.processes[1].exit_status, Some(0));
        assert_eq!(record.processes[1].signal, None);
        assert_ne!(
            record.timestamp,
            rfc3339(at(1)),
            "the payload's own time wins"
        );
    }

    #[test]
    fn an_exec_command_is_in_the_record_the_json_and_the_line() {
        let identity =
            pod_identity()
                .for_exec("e1")
                .with_exec_command(&["sh", "-c", "(sleep 0 &)"]);
        let mut leaked = Leaked::now(
            identity,
            vec![Process::named(9, "sleep")],
            LeakReason::LEAK_REASON_EXEC_EXIT,
        );
        leaked.timestamp = MessageField::some(at(1_700_000_000).into());

        let record = EventRecord::new(&Event::Leaked(leaked), "k8s.io", at(1));

        assert_eq!(record.exec_command, "sh -c (sleep 0 &)");
        let json: Value = serde_json::to_value(&record).unwrap();
        assert_eq!(json["exec_command"], "sh -c (sleep 0 &)");
        assert_eq!(
            record.to_string(),
            "2023-11-14T22:13:20.000000000Z /undertaker/leaked k8s.io/shop/web-0/nginx \
             id=0123456789abc exec=e1 exec_command=\"sh -c (sleep 0 &)\" total=1 \
             reason=exec-exit [pid=9 comm=sleep]"
        );
    }

    #[test]
    fn task_exit_names_the_process_and_its_status() {
        let exit = TaskExit {
            container_id: "c1".into(),
            id: "c1".into(),
            pid: 4242,
            exit_status: 143,
            exited_at: MessageField::some(at(1_700_000_001).into()),
            ..Default::default()
        };

        let record = EventRecord::new(&Event::Task(TaskEvent::Exit(exit)), "k8s.io", at(1));
        let json: Value = serde_json::to_value(&record).unwrap();

        assert_eq!(json["topic"], "/tasks/exit");
        assert_eq!(json["container_id"], "c1");
        assert_eq!(json["exec_id"], "", "the init process has no exec id");
        assert_eq!(json["processes"][0]["pid"], 4242);
        assert_eq!(json["processes"][0]["exit_status"], 143);
        assert_eq!(json["timestamp"], "2023-11-14T22:13:21.000000000Z");
        assert!(
            json.get("total").is_none(),
            "task events have no total: {json}"
        );
        assert!(
            json.get("reason").is_none(),
            "task events have no reason: {json}"
        );
    }

    #[test]
    fn task_exit_of_an_exec_keeps_the_exec_id() {
        let exit = TaskExit {
            container_id: "c1".into(),
            id: "exec-7".into(),
            pid: 99,
            ..Default::default()
        };
        let record = EventRecord::new(&Event::Task(TaskEvent::Exit(exit)), "k8s.io", at(5));
        assert_eq!(record.exec_id, "exec-7");
        assert_eq!(
            record.timestamp,
            rfc3339(at(5)),
            "no exited_at: containerd's time"
        );
    }

    #[test]
    fn readable_line_names_pod_and_processes() {
        let mut stuck = Process::named(31, "reader");
        stuck.state = "D".into();
        stuck.wchan = "fuse_wait_answer".into();
        let mut event = Unkillable::now(pod_identity(), vec![stuck]);
        event.timestamp = MessageField::some(at(1_700_000_000).into());

        let line = EventRecord::new(&Event::Unkillable(event), "k8s.io", at(1)).to_string();

        assert_eq!(
            line,
            "2023-11-14T22:13:20.000000000Z /undertaker/unkillable k8s.io/shop/web-0/nginx \
             id=0123456789abc total=1 [pid=31 comm=reader state=D wchan=fuse_wait_answer]"
        );
    }

    #[test]
    fn readable_line_of_a_task_event_without_pod_uses_dashes() {
        let start = TaskStart {
            container_id: "c1".into(),
            pid: 55,
            ..Default::default()
        };
        let mut record = EventRecord::new(&Event::Task(TaskEvent::Start(start)), "default", at(0));
        assert!(!record.has_pod());

        assert_eq!(
            record.to_string(),
            "1970-01-01T00:00:00.000000000Z /tasks/start default/-/-/- id=c1 [pid=55]"
        );

        record.fill_pod(&pod_identity());
        assert!(record.has_pod());
        assert!(
            record.to_string().contains(" default/shop/web-0/nginx "),
            "{record}"
        );
    }

    #[test]
    fn identity_namespace_falls_back_to_the_envelope() {
        let mut identity = pod_identity();
        identity.namespace.clear();
        let event = Event::Unkillable(Unkillable::now(identity, vec![]));

        let record = EventRecord::new(&event, "k8s.io", at(0));

        assert_eq!(record.namespace, "k8s.io");
    }
}
