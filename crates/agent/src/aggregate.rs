//! Folding reports into Kubernetes Events. One Event per pod, container, reason and exec
//! command per aggregation window (5 minutes by default): its `count` is how many reports it
//! stands for (occurrences, as Kubernetes users read it), its message the processes they
//! concerned in all; it is created at the first report, then patched at most once per
//! [`MIN_WRITE_GAP`] however often reports come (a probe that leaves a child every second is
//! one create and one patch a minute, not sixty).
//!
//! Pure bookkeeping, no I/O and no clock of its own: the writer asks what is
//! [`due`](Aggregator::due) at a time, performs those writes, and says how each went
//! ([`Aggregator::written`]). Metrics are counted elsewhere, from every report.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Event;
use undertaker_events::ProcessRecord;

use crate::message::{message, Subject, MAX_NAMED};
use crate::pod_event::{EventNames, PodEvent};
use crate::report::{Report, ReportKind};

pub use crate::pod_event::COMPONENT;

/// How long one Event gathers reports by default; the next report after it starts a new one.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);
/// The least time between two writes of one Event (what was reported meanwhile waits, none of
/// it lost), unless the agent is shutting down.
pub const MIN_WRITE_GAP: Duration = Duration::from_secs(60);
/// A series with no report for this long, and nothing left to write, is forgotten.
pub const SERIES_TTL: Duration = Duration::from_secs(10 * 60);
/// A write that failed this many times in a row is given up (the series stays, and the next
/// report makes it due again).
pub const MAX_ATTEMPTS: u32 = 3;

/// Which Event a report counts towards.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub pod_namespace: String,
    pub pod: String,
    pub pod_uid: String,
    /// The container's name, or `POD` for the sandbox.
    pub container: String,
    /// The sandbox's reports go on the pod itself, without a container `fieldPath`.
    pub sandbox: bool,
    pub kind: ReportKind,
    /// The exec's command for an exec's report (a probe, say), empty for the container's own.
    pub command: String,
}

/// A write the writer should make: create the Event, or patch the existing one with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Due {
    pub key: SeriesKey,
    pub create: bool,
    pub event: Event,
}

/// How a [`Due`] write went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Written,
    /// The patched Event no longer exists (the API server expires Events after an hour).
    Gone,
    Failed,
}

/// When writes may be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    /// How long one Event gathers reports.
    pub window: Duration,
    /// The least time between two writes of one Event.
    pub min_gap: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            window: DEFAULT_WINDOW,
            min_gap: MIN_WRITE_GAP,
        }
    }
}

#[derive(Debug)]
struct Series {
    /// The Event's name, `<pod>.<hex nanoseconds>` as kubelet names its Events.
    name: String,
    container_id: String,
    /// Reports in the window: the Event's `count`.
    occurrences: u64,
    /// Processes those reports concerned.
    processes: u64,
    first: SystemTime,
    last: SystemTime,
    /// Whether the Event exists in the API server, and when it was last written.
    created: bool,
    written_at: Option<SystemTime>,
    /// What came since the last successful write; `None` when nothing is due.
    pending: Option<Pending>,
    failures: u32,
}

/// What the next message names.
#[derive(Debug, Default)]
struct Pending {
    named: Vec<ProcessRecord>,
    exec_id: String,
    leak_reason: Option<String>,
}

/// Every open series, by key.
#[derive(Debug)]
pub struct Aggregator {
    node: String,
    pacing: Pacing,
    series: HashMap<SeriesKey, Series>,
    names: EventNames,
}

impl Aggregator {
    /// Events will say they come from `node` (`source.host`, `reportingInstance`).
    pub fn new(node: impl Into<String>, pacing: Pacing) -> Self {
        Aggregator {
            node: node.into(),
            pacing,
            series: HashMap::new(),
            names: EventNames::default(),
        }
    }

    /// Counts `report` (received at `now`) towards its series. `false` when it names no pod
    /// (a container not made by CRI): there is nothing to post an Event on.
    pub fn add(&mut self, report: &Report, now: SystemTime) -> bool {
        let record = &report.record;
        if record.pod.is_empty() || record.pod_namespace.is_empty() {
            return false;
        }
        let key = SeriesKey {
            pod_namespace: record.pod_namespace.clone(),
            pod: record.pod.clone(),
            pod_uid: record.pod_uid.clone(),
            container: report.container_label().to_string(),
            sandbox: report.is_sandbox(),
            kind: report.kind,
            command: record.exec_command.clone(),
        };
        // A window that is over starts a new Event, once the old one has all it was told.
        let over = self.series.get(&key).is_some_and(|series| {
            series.pending.is_none()
                && (is_stale(series, now) || since(series.first, now) >= self.pacing.window)
        });
        if over {
            self.series.remove(&key);
        }
        if !self.series.contains_key(&key) {
            let name = self.names.next(&record.pod, now);
            self.series.insert(
                key.clone(),
                Series {
                    name,
                    container_id: record.container_id.clone(),
                    occurrences: 0,
                    processes: 0,
                    first: now,
                    last: now,
                    created: false,
                    written_at: None,
                    pending: None,
                    failures: 0,
                },
            );
        }
        let Some(series) = self.series.get_mut(&key) else {
            return false;
        };
        series.occurrences = series.occurrences.saturating_add(1);
        series.processes = series.processes.saturating_add(report.total());
        series.last = now;
        series.container_id.clone_from(&record.container_id);
        let pending = series.pending.get_or_insert_with(Pending::default);
        let room = MAX_NAMED.saturating_sub(pending.named.len());
        pending
            .named
            .extend(record.processes.iter().take(room).cloned());
        pending.exec_id.clone_from(&record.exec_id);
        pending.leak_reason.clone_from(&record.reason);
        true
    }

    /// The writes due at `now`: every series with reports not yet written whose Event was not
    /// written within the last [`Pacing::min_gap`] (or, when `last_call`, at shutdown, all of
    /// them), only those of `container_id` if given.
    pub fn due(&self, now: SystemTime, container_id: Option<&str>, last_call: bool) -> Vec<Due> {
        let mut due: Vec<Due> = self
            .series
            .iter()
            .filter(|(_, series)| series.pending.is_some())
            .filter(|(_, series)| container_id.is_none_or(|id| series.container_id == id))
            .filter(|(_, series)| {
                last_call
                    || series
                        .written_at
                        .is_none_or(|at| since(at, now) >= self.pacing.min_gap)
            })
            .map(|(key, series)| Due {
                key: key.clone(),
                create: !series.created,
                event: self.event(key, series),
            })
            .collect();
        // Oldest first, so a backlog is written in the order it happened.
        due.sort_by_key(|due| due.event.first_timestamp.clone().map(|t| t.0));
        due
    }

    /// Records how the write for `key`, made at `now`, went.
    pub fn written(&mut self, key: &SeriesKey, outcome: Outcome, now: SystemTime) {
        let Some(series) = self.series.get_mut(key) else {
            return;
        };
        match outcome {
            Outcome::Written => {
                series.created = true;
                series.written_at = Some(now);
                series.pending = None;
                series.failures = 0;
            }
            // Made again under a new name, with the whole count, at the next write.
            Outcome::Gone => {
                let pod = key.pod.clone();
                let name = self.names.next(&pod, now);
                if let Some(series) = self.series.get_mut(key) {
                    series.name = name;
                    series.created = false;
                    series.written_at = None;
                }
            }
            Outcome::Failed => {
                series.failures += 1;
                if series.failures >= MAX_ATTEMPTS {
                    tracing::warn!(
                        pod = %format!("{}/{}", key.pod_namespace, key.pod),
                        reason = key.kind.reason(),
                        "giving up on an Event after {MAX_ATTEMPTS} failed writes"
                    );
                    series.pending = None;
                    series.failures = 0;
                }
            }
        }
    }

    /// Forgets series with no report since [`SERIES_TTL`] and nothing left to write.
    pub fn expire(&mut self, now: SystemTime) {
        self.series
            .retain(|_, series| series.pending.is_some() || !is_stale(series, now));
    }

    /// How many series are open.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no series is open.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    fn event(&self, key: &SeriesKey, series: &Series) -> Event {
        let pending = series.pending.as_ref();
        let subject = Subject {
            kind: key.kind,
            container: &key.container,
            sandbox: key.sandbox,
            exec_id: pending.map_or("", |p| p.exec_id.as_str()),
            exec_command: &key.command,
            processes: series.processes,
            named: pending.map_or(&[], |p| p.named.as_slice()),
            leak_reason: pending.and_then(|p| p.leak_reason.as_deref()),
        };
        PodEvent {
            node: &self.node,
            name: &series.name,
            namespace: &key.pod_namespace,
            pod: &key.pod,
            uid: &key.pod_uid,
            field_path: (!key.sandbox).then(|| format!("spec.containers{{{}}}", key.container)),
            reason: key.kind.reason(),
            type_: key.kind.event_type(),
            message: message(&subject),
            count: series.occurrences,
            first: series.first,
            last: series.last,
        }
        .build()
    }
}

fn since(then: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or_default()
}

fn is_stale(series: &Series, now: SystemTime) -> bool {
    since(series.last, now) > SERIES_TTL
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
