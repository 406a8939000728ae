//! A core/v1 Event about a pod, as every Event the agent posts is made: named like kubelet
//! names its Events, reported by `undertaker` from this node.

use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

/// The component that reports the Events (`source.component`, `reportingComponent`).
pub const COMPONENT: &str = "undertaker";
/// Event names are DNS subdomains: at most 253 characters.
const MAX_NAME: usize = 253;

/// What one Event says.
#[derive(Clone, Debug)]
pub struct PodEvent<'a> {
    /// The node, in `source.host` and `reportingInstance`.
    pub node: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub pod: &'a str,
    /// Empty when not known.
    pub uid: &'a str,
    /// `spec.containers{<name>}`, or `None` for the pod itself.
    pub field_path: Option<String>,
    pub reason: &'a str,
    /// `Normal` or `Warning`.
    pub type_: &'a str,
    pub message: String,
    /// How many occurrences it stands for.
    pub count: u64,
    pub first: SystemTime,
    pub last: SystemTime,
}

impl PodEvent<'_> {
    pub fn build(self) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some(self.name.to_string()),
                namespace: Some(self.namespace.to_string()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".to_string()),
                kind: Some("Pod".to_string()),
                name: Some(self.pod.to_string()),
                namespace: Some(self.namespace.to_string()),
                uid: Some(self.uid.to_string()).filter(|uid| !uid.is_empty()),
                field_path: self.field_path,
                ..Default::default()
            },
            reason: Some(self.reason.to_string()),
            message: Some(self.message),
            type_: Some(self.type_.to_string()),
            count: Some(i32::try_from(self.count).unwrap_or(i32::MAX)),
            first_timestamp: Some(time(self.first)),
            last_timestamp: Some(time(self.last)),
            source: Some(EventSource {
                component: Some(COMPONENT.to_string()),
                host: Some(self.node.to_string()),
            }),
            reporting_component: Some(COMPONENT.to_string()),
            reporting_instance: Some(self.node.to_string()),
            ..Default::default()
        }
    }
}

/// Hands out Event names, `<pod>.<hex nanoseconds>` as kubelet names its Events, unique even
/// when two are asked for within the same nanosecond.
#[derive(Debug, Default)]
pub struct EventNames {
    last_stamp: u128,
}

impl EventNames {
    pub fn next(&mut self, pod: &str, now: SystemTime) -> String {
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
}

pub fn time(at: SystemTime) -> Time {
    Time(Timestamp::try_from(at).unwrap_or(Timestamp::UNIX_EPOCH))
}
