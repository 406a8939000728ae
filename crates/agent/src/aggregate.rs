//! Folding reports into Kubernetes Events: one Event per pod, container and reason, whose
//! `count` is the number of processes reported and which is patched (count, last timestamp,
//! message) as more come, so a fork storm is one Event, not thousands.
//!
//! Pure bookkeeping, no I/O: the writer asks for the [`due`](Aggregator::due) writes once per
//! window, performs them, and says how each went ([`Aggregator::written`]).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use undertaker_events::ProcessRecord;

use crate::message::{message, Subject, MAX_NAMED};
use crate::report::{Report, ReportKind};

/// A series with no report for this long is forgotten: the next report starts a new Event.
pub const SERIES_TTL: Duration = Duration::from_secs(10 * 60);
/// A write that failed this many times in a row is given up (the series stays, and the next
/// report makes it due again).
pub const MAX_ATTEMPTS: u32 = 3;
/// The component that reports the Events (`source.component`, `reportingComponent`).
pub const COMPONENT: &str = "undertaker";
/// Event names are DNS subdomains: at most 253 characters.
const MAX_NAME: usize = 253;

/// Which Event a report counts towards.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub pod_namespace: String,
    pub pod: String,
    pub pod_uid: String,
    pub container: String,
    pub kind: ReportKind,
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

#[derive(Debug)]
struct Series {
    /// The Event's name, `<pod>.<hex nanoseconds>` as kubelet names its Events.
    name: String,
    container_id: String,
    /// Processes reported since the series began: the Event's `count`.
    count: u64,
    first: SystemTime,
    last: SystemTime,
    /// Whether the Event exists in the API server.
    created: bool,
    /// Processes reported since the last successful write; `None` when nothing is due.
    pending: Option<Pending>,
    failures: u32,
}

/// What the next message is about.
#[derive(Debug, Default)]
struct Pending {
    processes: u64,
    named: Vec<ProcessRecord>,
    exec_id: String,
    leak_reason: Option<String>,
}

/// Every open series, by key.
#[derive(Debug)]
pub struct Aggregator {
    node: String,
    series: HashMap<SeriesKey, Series>,
    /// Keeps Event names unique even when two series start within the same nanosecond.
    last_stamp: u128,
}

impl Aggregator {
    /// Events will say they come from `node` (`source.host`, `reportingInstance`).
    pub fn new(node: impl Into<String>) -> Self {
        Aggregator {
            node: node.into(),
            series: HashMap::new(),
            last_stamp: 0,
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
            kind: report.kind,
        };
        let expired = self
            .series
            .get(&key)
            .is_some_and(|series| is_stale(series, now));
        if expired {
            self.series.remove(&key);
        }
        if !self.series.contains_key(&key) {
            let name = self.event_name(&record.pod, now);
            self.series.insert(
                key.clone(),
                Series {
                    name,
                    container_id: record.container_id.clone(),
                    count: 0,
                    first: now,
                    last: now,
                    created: false,
                    pending: None,
                    failures: 0,
                },
            );
        }
        let Some(series) = self.series.get_mut(&key) else {
            return false;
        };
        let total = report.total();
        series.count = series.count.saturating_add(total);
        series.last = now;
        series.container_id.clone_from(&record.container_id);
        let pending = series.pending.get_or_insert_with(Pending::default);
        pending.processes = pending.processes.saturating_add(total);
        let room = MAX_NAMED.saturating_sub(pending.named.len());
        pending
            .named
            .extend(record.processes.iter().take(room).cloned());
        pending.exec_id.clone_from(&record.exec_id);
        pending.leak_reason.clone_from(&record.reason);
        true
    }

    /// The writes due now: every series with reports not yet written, or, with
    /// `container_id`, only those of that container (it just exited: no need to wait).
    pub fn due(&self, container_id: Option<&str>) -> Vec<Due> {
        let mut due: Vec<Due> = self
            .series
            .iter()
            .filter(|(_, series)| series.pending.is_some())
            .filter(|(_, series)| container_id.is_none_or(|id| series.container_id == id))
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

    /// Records how the write for `key` went.
    pub fn written(&mut self, key: &SeriesKey, outcome: Outcome) {
        let Some(series) = self.series.get_mut(key) else {
            return;
        };
        match outcome {
            Outcome::Written => {
                series.created = true;
                series.pending = None;
                series.failures = 0;
            }
            // Made again under a new name, with the whole count, at the next write.
            Outcome::Gone => {
                let pod = key.pod.clone();
                let now = series.last;
                let name = self.event_name(&pod, now);
                if let Some(series) = self.series.get_mut(key) {
                    series.name = name;
                    series.created = false;
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

    fn event_name(&mut self, pod: &str, now: SystemTime) -> String {
        let nanos = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        self.last_stamp = nanos.max(self.last_stamp + 1);
        let suffix = format!(".{:x}", self.last_stamp);
        let room = MAX_NAME - suffix.len();
        let pod = match pod.char_indices().nth(room) {
            Some((cut, _)) => &pod[..cut],
            None => pod,
        };
        format!("{pod}{suffix}")
    }

    fn event(&self, key: &SeriesKey, series: &Series) -> Event {
        let pending = series.pending.as_ref();
        let subject = Subject {
            kind: key.kind,
            container: &key.container,
            exec_id: pending.map_or("", |p| p.exec_id.as_str()),
            processes: pending.map_or(0, |p| p.processes),
            named: pending.map_or(&[], |p| p.named.as_slice()),
            leak_reason: pending.and_then(|p| p.leak_reason.as_deref()),
        };
        Event {
            metadata: ObjectMeta {
                name: Some(series.name.clone()),
                namespace: Some(key.pod_namespace.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".to_string()),
                kind: Some("Pod".to_string()),
                name: Some(key.pod.clone()),
                namespace: Some(key.pod_namespace.clone()),
                uid: Some(key.pod_uid.clone()).filter(|uid| !uid.is_empty()),
                field_path: Some(format!("spec.containers{{{}}}", key.container)),
                ..Default::default()
            },
            reason: Some(key.kind.reason().to_string()),
            message: Some(message(&subject)),
            type_: Some(key.kind.event_type().to_string()),
            count: Some(i32::try_from(series.count).unwrap_or(i32::MAX)),
            first_timestamp: Some(time(series.first)),
            last_timestamp: Some(time(series.last)),
            source: Some(EventSource {
                component: Some(COMPONENT.to_string()),
                host: Some(self.node.clone()),
            }),
            reporting_component: Some(COMPONENT.to_string()),
            reporting_instance: Some(self.node.clone()),
            ..Default::default()
        }
    }
}

fn is_stale(series: &Series, now: SystemTime) -> bool {
    now.duration_since(series.last).unwrap_or_default() > SERIES_TTL
}

fn time(at: SystemTime) -> Time {
    Time(Timestamp::try_from(at).unwrap_or(Timestamp::UNIX_EPOCH))
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
