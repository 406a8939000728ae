//! Building the payloads the shim publishes: topics per type, timestamps, capped lists and
//! `/proc`-shaped process fields.

use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::{MessageField, MessageFull};

use crate::{Identity, KilledBy, LeakReason, Leaked, Process, Reaped, Unkillable};

/// At most this many processes are listed in one event; `total` counts the rest. Keeps an event
/// far below ttrpc's message limit even in a fork storm.
pub const MAX_LISTED_PROCESSES: usize = 256;

/// At most this many bytes of a command line are kept.
pub const MAX_CMDLINE_BYTES: usize = 1024;

/// One of our payload types, with the topic it is published on.
pub trait UndertakerEvent: MessageFull {
    /// The containerd topic for this payload.
    const TOPIC: &'static str;

    /// Which container (and exec process) the event is about.
    fn identity(&self) -> &Identity;
}

impl UndertakerEvent for Reaped {
    const TOPIC: &'static str = crate::REAPED;
    fn identity(&self) -> &Identity {
        &self.identity
    }
}

impl UndertakerEvent for Leaked {
    const TOPIC: &'static str = crate::LEAKED;
    fn identity(&self) -> &Identity {
        &self.identity
    }
}

impl UndertakerEvent for Unkillable {
    const TOPIC: &'static str = crate::UNKILLABLE;
    fn identity(&self) -> &Identity {
        &self.identity
    }
}

/// Keeps the first [`MAX_LISTED_PROCESSES`] and returns how many there were.
fn capped(mut processes: Vec<Process>) -> (Vec<Process>, u64) {
    let total = processes.len() as u64;
    processes.truncate(MAX_LISTED_PROCESSES);
    (processes, total)
}

impl Reaped {
    /// A batch of reaped processes, stamped now. `total` counts every reap in the batch (it is
    /// raised to the list's length if lower); the list is capped at [`MAX_LISTED_PROCESSES`].
    /// `dropped` counts reap records the init could not deliver.
    pub fn now(identity: Identity, processes: Vec<Process>, total: u64, dropped: u64) -> Self {
        let (processes, listed) = capped(processes);
        Reaped {
            identity: MessageField::some(identity),
            timestamp: MessageField::some(Timestamp::now()),
            processes,
            total: total.max(listed),
            dropped,
            ..Default::default()
        }
    }
}

impl Leaked {
    /// Leaked processes found for `reason`, stamped now; the list is capped at
    /// [`MAX_LISTED_PROCESSES`] and `total` counts them all.
    pub fn now(identity: Identity, processes: Vec<Process>, reason: LeakReason) -> Self {
        let (processes, total) = capped(processes);
        Leaked {
            identity: MessageField::some(identity),
            timestamp: MessageField::some(Timestamp::now()),
            processes,
            total,
            reason: reason.into(),
            ..Default::default()
        }
    }
}

impl Unkillable {
    /// Processes that survived SIGKILL, stamped now; the list is capped at
    /// [`MAX_LISTED_PROCESSES`] and `total` counts them all.
    pub fn now(identity: Identity, processes: Vec<Process>) -> Self {
        let (processes, total) = capped(processes);
        Unkillable {
            identity: MessageField::some(identity),
            timestamp: MessageField::some(Timestamp::now()),
            processes,
            total,
            ..Default::default()
        }
    }
}

impl Process {
    /// A process known by its pid in the container's PID namespace and its `comm`.
    pub fn named(pid: u32, comm: &str) -> Self {
        Process {
            pid,
            comm: comm.to_string(),
            ..Default::default()
        }
    }

    /// Records that it was reaped after exiting with `code`.
    pub fn exited(mut self, code: i32) -> Self {
        self.exit_status = Some(code);
        self.signal = 0;
        self
    }

    /// Records that it was reaped after being killed by `signal` (exit status 128+signal).
    pub fn signaled(mut self, signal: i32) -> Self {
        self.exit_status = Some(128 + signal);
        self.signal = signal;
        self
    }

    /// Sets the command line from the raw bytes of `/proc/<pid>/cmdline` (NUL-separated):
    /// arguments joined by spaces, invalid UTF-8 replaced, cut at [`MAX_CMDLINE_BYTES`].
    pub fn set_cmdline_raw(&mut self, raw: &[u8]) {
        let raw = &raw[..raw.len().min(MAX_CMDLINE_BYTES)];
        let text = String::from_utf8_lossy(raw);
        self.cmdline = text
            .split('\0')
            .filter(|arg| !arg.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
    }
}

impl KilledBy {
    /// The short name used in JSON and readable output; `None` when undertaker did not kill it.
    pub fn name(self) -> Option<&'static str> {
        match self {
            KilledBy::KILLED_BY_UNSPECIFIED => None,
            KilledBy::KILLED_BY_TERM => Some("term"),
            KilledBy::KILLED_BY_KILL => Some("kill"),
            KilledBy::KILLED_BY_CGROUP => Some("cgroup"),
        }
    }
}

impl LeakReason {
    /// The short name used in JSON and readable output; `None` when unspecified.
    pub fn name(self) -> Option<&'static str> {
        match self {
            LeakReason::LEAK_REASON_UNSPECIFIED => None,
            LeakReason::LEAK_REASON_MAIN_EXIT => Some("main-exit"),
            LeakReason::LEAK_REASON_STOP => Some("stop"),
            LeakReason::LEAK_REASON_DELETE => Some("delete"),
            LeakReason::LEAK_REASON_EXEC_EXIT => Some("exec-exit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use protobuf::Message;

    use super::*;

    fn processes(n: u32) -> Vec<Process> {
        (1..=n)
            .map(|pid| Process::named(pid, "sh").exited(0))
            .collect()
    }

    #[test]
    fn reaped_round_trips_through_the_wire_format() {
        let mut identity = Identity::for_container("k8s.io", "c1", "");
        identity.pod_name = "web-0".into();
        let mut sleeper = Process::named(7, "sleep").signaled(9);
        sleeper.host_pid = 4242;
        sleeper.set_cmdline_raw(b"sleep\x00100\x00");
        sleeper.killed_by = KilledBy::KILLED_BY_CGROUP.into();
        let event = Reaped::now(
            identity,
            vec![sleeper, Process::named(8, "true").exited(0)],
            10,
            3,
        );

        let bytes = event.write_to_bytes().expect("encode");
        let decoded = Reaped::parse_from_bytes(&bytes).expect("decode");

        assert_eq!(decoded, event);
        assert_eq!(decoded.identity.pod_name, "web-0");
        assert_eq!(decoded.processes[0].cmdline, "sleep 100");
        assert_eq!(decoded.processes[0].exit_status, Some(137));
        assert_eq!(decoded.processes[0].signal, 9);
        assert_eq!(decoded.processes[1].exit_status, Some(0));
        assert_eq!((decoded.total, decoded.dropped), (10, 3));
        assert!(decoded.timestamp.seconds > 0);
    }

    #[test]
    fn exit_status_absent_is_distinct_from_zero() {
        let unknown = Process::named(5, "sh");
        let bytes = unknown.write_to_bytes().expect("encode");
        assert_eq!(Process::parse_from_bytes(&bytes).unwrap().exit_status, None);

        let zero = Process::named(5, "sh").exited(0);
        let bytes = zero.write_to_bytes().expect("encode");
        assert_eq!(
            Process::parse_from_bytes(&bytes).unwrap().exit_status,
            Some(0)
        );
    }

    #[test]
    fn leaked_and_unkillable_round_trip() {
        let identity = Identity::for_container("k8s.io", "c2", "e1");
        let leaked = Leaked::now(
            identity.clone(),
            processes(2),
            LeakReason::LEAK_REASON_EXEC_EXIT,
        );
        let mut stuck = Process::named(9, "fuse-reader");
        stuck.state = "D".into();
        stuck.wchan = "fuse_wait_answer".into();
        let unkillable = Unkillable::now(identity, vec![stuck]);

        let leaked_back = Leaked::parse_from_bytes(&leaked.write_to_bytes().unwrap()).unwrap();
        let unkillable_back =
            Unkillable::parse_from_bytes(&unkillable.write_to_bytes().unwrap()).unwrap();

        assert_eq!(leaked_back, leaked);
        assert_eq!(
            leaked_back.reason.enum_value(),
            Ok(LeakReason::LEAK_REASON_EXEC_EXIT)
        );
        assert_eq!(leaked_back.total, 2);
        assert_eq!(unkillable_back, unkillable);
        assert_eq!(unkillable_back.processes[0].wchan, "fuse_wait_answer");
    }

    #[test]
    fn long_lists_are_capped_but_counted() {
        let identity = Identity::for_container("k8s.io", "c3", "");
        let many = MAX_LISTED_PROCESSES as u32 + 50;

        let leaked = Leaked::now(
            identity.clone(),
            processes(many),
            LeakReason::LEAK_REASON_STOP,
        );
        let reaped = Reaped::now(identity, processes(many), 0, 0);

        assert_eq!(leaked.processes.len(), MAX_LISTED_PROCESSES);
        assert_eq!(leaked.total, u64::from(many));
        assert_eq!(reaped.processes.len(), MAX_LISTED_PROCESSES);
        assert_eq!(
            reaped.total,
            u64::from(many),
            "total is at least what was listed"
        );
    }

    #[test]
    fn cmdline_is_cut_at_the_limit_and_survives_bad_utf8() {
        let mut process = Process::named(1, "x");
        let long = vec![b'a'; MAX_CMDLINE_BYTES * 2];
        process.set_cmdline_raw(&long);
        assert_eq!(process.cmdline.len(), MAX_CMDLINE_BYTES);

        process.set_cmdline_raw(b"cat\x00\xff\xfe\x00");
        assert_eq!(process.cmdline, "cat \u{fffd}\u{fffd}");
    }

    #[test]
    fn topics_follow_the_payload_type() {
        assert_eq!(Reaped::TOPIC, "/undertaker/reaped");
        assert_eq!(Leaked::TOPIC, "/undertaker/leaked");
        assert_eq!(Unkillable::TOPIC, "/undertaker/unkillable");
    }
}
