//! Decoding what containerd's event stream delivers (a topic and a `google.protobuf.Any`) into
//! typed events: ours and containerd's standard task events.

use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::topics;
use protobuf::well_known_types::any::Any;
use protobuf::MessageFull;

use crate::{Leaked, Reaped, Unkillable};

/// One event from containerd's stream, decoded by its topic.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// `/undertaker/reaped`
    Reaped(Reaped),
    /// `/undertaker/leaked`
    Leaked(Leaked),
    /// `/undertaker/unkillable`
    Unkillable(Unkillable),
    /// One of containerd's standard `/tasks/*` events.
    Task(TaskEvent),
    /// A topic this crate does not decode (images, containers, snapshots, ...).
    Other {
        /// The event's topic.
        topic: String,
        /// The payload's type URL, as delivered.
        type_url: String,
    },
}

/// containerd's standard task events (`containerd.events.Task*`).
#[derive(Clone, Debug, PartialEq)]
pub enum TaskEvent {
    /// `/tasks/create`
    Create(TaskCreate),
    /// `/tasks/start`
    Start(TaskStart),
    /// `/tasks/exit`
    Exit(TaskExit),
    /// `/tasks/delete`
    Delete(TaskDelete),
    /// `/tasks/exec-added`
    ExecAdded(TaskExecAdded),
    /// `/tasks/exec-started`
    ExecStarted(TaskExecStarted),
    /// `/tasks/oom`
    Oom(TaskOOM),
    /// `/tasks/paused`
    Paused(TaskPaused),
    /// `/tasks/resumed`
    Resumed(TaskResumed),
}

/// Why an event on a known topic could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The payload's type is not the one the topic carries.
    #[error("event on {topic}: payload type {type_url:?} is not {expected}")]
    WrongType {
        /// The event's topic.
        topic: String,
        /// The full name the topic's payload has.
        expected: String,
        /// The type URL that came with the payload.
        type_url: String,
    },
    /// The payload bytes are not a valid message of the topic's type.
    #[error("event on {topic}: malformed {expected} payload: {source}")]
    Malformed {
        /// The event's topic.
        topic: String,
        /// The full name the topic's payload has.
        expected: String,
        /// What the protobuf parser said.
        source: protobuf::Error,
    },
}

/// Decodes the payload of an event on `topic` whose `Any` has `type_url` and `value`.
///
/// The type URL may be a bare full name (`undertaker.events.v1.Reaped`, what containerd and its
/// shims put on events) or carry a prefix (`type.googleapis.com/undertaker.events.v1.Reaped`).
/// Topics this crate does not know decode to [`Event::Other`], not an error.
pub fn decode(topic: &str, type_url: &str, value: &[u8]) -> Result<Event, DecodeError> {
    let payload = Payload {
        topic,
        type_url,
        value,
    };
    Ok(match topic {
        crate::REAPED => Event::Reaped(payload.parse()?),
        crate::LEAKED => Event::Leaked(payload.parse()?),
        crate::UNKILLABLE => Event::Unkillable(payload.parse()?),
        topics::TASK_CREATE_EVENT_TOPIC => Event::Task(TaskEvent::Create(payload.parse()?)),
        topics::TASK_START_EVENT_TOPIC => Event::Task(TaskEvent::Start(payload.parse()?)),
        topics::TASK_EXIT_EVENT_TOPIC => Event::Task(TaskEvent::Exit(payload.parse()?)),
        topics::TASK_DELETE_EVENT_TOPIC => Event::Task(TaskEvent::Delete(payload.parse()?)),
        topics::TASK_EXEC_ADDED_EVENT_TOPIC => Event::Task(TaskEvent::ExecAdded(payload.parse()?)),
        topics::TASK_EXEC_STARTED_EVENT_TOPIC => {
            Event::Task(TaskEvent::ExecStarted(payload.parse()?))
        }
        topics::TASK_OOM_EVENT_TOPIC => Event::Task(TaskEvent::Oom(payload.parse()?)),
        topics::TASK_PAUSED_EVENT_TOPIC => Event::Task(TaskEvent::Paused(payload.parse()?)),
        topics::TASK_RESUMED_EVENT_TOPIC => Event::Task(TaskEvent::Resumed(payload.parse()?)),
        _ => Event::Other {
            topic: topic.to_string(),
            type_url: type_url.to_string(),
        },
    })
}

/// Wraps `message` in an `Any` the way containerd's shims publish it: the type URL is the
/// message's bare full name.
pub fn to_any<M: MessageFull>(message: &M) -> Result<Any, protobuf::Error> {
    Ok(Any {
        type_url: M::descriptor().full_name().to_string(),
        value: message.write_to_bytes()?,
        ..Default::default()
    })
}

struct Payload<'a> {
    topic: &'a str,
    type_url: &'a str,
    value: &'a [u8],
}

impl Payload<'_> {
    fn parse<M: MessageFull>(&self) -> Result<M, DecodeError> {
        let descriptor = M::descriptor();
        let expected = descriptor.full_name();
        // An Any's type name is what follows the last '/', prefix or not.
        let name = self.type_url.rsplit('/').next().unwrap_or_default();
        if name != expected {
            return Err(DecodeError::WrongType {
                topic: self.topic.to_string(),
                expected: expected.to_string(),
                type_url: self.type_url.to_string(),
            });
        }
        M::parse_from_bytes(self.value).map_err(|source| DecodeError::Malformed {
            topic: self.topic.to_string(),
            expected: expected.to_string(),
            source,
        })
    }
}

impl Event {
    /// The topic this event was published on.
    pub fn topic(&self) -> &str {
        match self {
            Event::Reaped(_) => crate::REAPED,
            Event::Leaked(_) => crate::LEAKED,
            Event::Unkillable(_) => crate::UNKILLABLE,
            Event::Task(task) => task.topic(),
            Event::Other { topic, .. } => topic,
        }
    }
}

impl TaskEvent {
    /// The topic this task event is published on.
    pub fn topic(&self) -> &'static str {
        match self {
            TaskEvent::Create(_) => topics::TASK_CREATE_EVENT_TOPIC,
            TaskEvent::Start(_) => topics::TASK_START_EVENT_TOPIC,
            TaskEvent::Exit(_) => topics::TASK_EXIT_EVENT_TOPIC,
            TaskEvent::Delete(_) => topics::TASK_DELETE_EVENT_TOPIC,
            TaskEvent::ExecAdded(_) => topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            TaskEvent::ExecStarted(_) => topics::TASK_EXEC_STARTED_EVENT_TOPIC,
            TaskEvent::Oom(_) => topics::TASK_OOM_EVENT_TOPIC,
            TaskEvent::Paused(_) => topics::TASK_PAUSED_EVENT_TOPIC,
            TaskEvent::Resumed(_) => topics::TASK_RESUMED_EVENT_TOPIC,
        }
    }

    /// The container the task event is about.
    pub fn container_id(&self) -> &str {
        match self {
            TaskEvent::Create(e) => &e.container_id,
            TaskEvent::Start(e) => &e.container_id,
            TaskEvent::Exit(e) => &e.container_id,
            TaskEvent::Delete(e) => &e.container_id,
            TaskEvent::ExecAdded(e) => &e.container_id,
            TaskEvent::ExecStarted(e) => &e.container_id,
            TaskEvent::Oom(e) => &e.container_id,
            TaskEvent::Paused(e) => &e.container_id,
            TaskEvent::Resumed(e) => &e.container_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, LeakReason, Process};

    fn leaked() -> Leaked {
        let mut identity = Identity::for_container("k8s.io", "c1", "");
        identity.pod_name = "web-0".into();
        Leaked::now(
            identity,
            vec![Process::named(3, "sleep")],
            LeakReason::LEAK_REASON_MAIN_EXIT,
        )
    }

    #[test]
    fn decodes_our_events_with_a_bare_type_name() {
        let original = leaked();
        let any = to_any(&original).unwrap();
        assert_eq!(any.type_url, "undertaker.events.v1.Leaked");

        let event = decode(crate::LEAKED, &any.type_url, &any.value).unwrap();

        assert_eq!(event, Event::Leaked(original));
        assert_eq!(event.topic(), "/undertaker/leaked");
    }

    #[test]
    fn decodes_our_events_with_a_type_googleapis_url() {
        let reaped = Reaped::now(Identity::for_container("k8s.io", "c1", ""), vec![], 4, 1);
        let any = to_any(&reaped).unwrap();
        let url = format!("type.googleapis.com/{}", any.type_url);

        let event = decode(crate::REAPED, &url, &any.value).unwrap();

        assert_eq!(event, Event::Reaped(reaped));
    }

    #[test]
    fn decodes_task_events() {
        let exit = TaskExit {
            container_id: "c1".into(),
            id: "c1".into(),
            pid: 42,
            exit_status: 143,
            ..Default::default()
        };
        let any = to_any(&exit).unwrap();
        assert_eq!(any.type_url, "containerd.events.TaskExit");

        let event = decode("/tasks/exit", &any.type_url, &any.value).unwrap();

        assert_eq!(event, Event::Task(TaskEvent::Exit(exit)));
        assert_eq!(event.topic(), "/tasks/exit");
    }

    #[test]
    fn unknown_topics_are_passed_through_not_errors() {
        let event = decode(
            "/images/create",
            "containerd.events.ImageCreate",
            b"\x0a\x01x",
        )
        .unwrap();

        assert_eq!(
            event,
            Event::Other {
                topic: "/images/create".into(),
                type_url: "containerd.events.ImageCreate".into()
            }
        );
        assert_eq!(event.topic(), "/images/create");
    }

    #[test]
    fn a_payload_of_the_wrong_type_is_an_error_naming_both() {
        let any = to_any(&leaked()).unwrap();

        let error = decode(crate::REAPED, &any.type_url, &any.value).unwrap_err();

        assert!(matches!(error, DecodeError::WrongType { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("undertaker.events.v1.Reaped"), "{message}");
        assert!(message.contains("undertaker.events.v1.Leaked"), "{message}");
    }

    #[test]
    fn a_prefix_alone_does_not_make_a_type_match() {
        let any = to_any(&leaked()).unwrap();
        let error = decode(crate::LEAKED, "type.googleapis.com/v1.Leaked", &any.value).unwrap_err();
        assert!(matches!(error, DecodeError::WrongType { .. }), "{error:?}");
    }

    #[test]
    fn malformed_bytes_are_an_error() {
        // Field 4 (total) as a varint whose continuation bit promises bytes that never come.
        let error = decode(crate::LEAKED, "undertaker.events.v1.Leaked", b"\x20\xff").unwrap_err();
        assert!(matches!(error, DecodeError::Malformed { .. }), "{error:?}");
    }
}
