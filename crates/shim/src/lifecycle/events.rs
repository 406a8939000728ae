//! Every event the shim publishes goes through here: containerd's task events and
//! (through [`Reporter`](super::reports::Reporter)) undertaker's own. The order in
//! which a step publishes them is written once, in that step's file; this is only
//! how each one is built.

use std::sync::Arc;

use containerd_shim_protos::{
    api::Mount,
    events::task::{
        TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM,
        TaskPaused, TaskResumed, TaskStart,
    },
    protobuf::{well_known_types::timestamp::Timestamp, MessageDyn, MessageField},
    topics,
};

use super::{
    process::{timestamp, Exit, Process},
    seams::EventSink,
};

/// The event sink, bound to the containerd namespace of this shim's containers.
#[derive(Clone)]
pub(crate) struct Events {
    sink: Arc<dyn EventSink>,
    namespace: String,
}

impl Events {
    pub(crate) fn new(sink: Arc<dyn EventSink>, namespace: &str) -> Self {
        Events {
            sink,
            namespace: namespace.to_string(),
        }
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(crate) fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        self.sink.publish(topic, &self.namespace, event);
    }

    pub(crate) fn task_create(&self, p: &Process, bundle: &str, rootfs: Vec<Mount>) {
        let event = TaskCreate {
            container_id: p.container_id.clone(),
            bundle: bundle.to_string(),
            rootfs,
            io: MessageField::some(TaskIO {
                stdin: p.stdio.stdin.clone(),
                stdout: p.stdio.stdout.clone(),
                stderr: p.stdio.stderr.clone(),
                terminal: p.stdio.terminal,
                ..Default::default()
            }),
            pid: p.pid() as u32,
            ..Default::default()
        };
        self.publish(topics::TASK_CREATE_EVENT_TOPIC, Box::new(event));
    }

    pub(crate) fn task_start(&self, p: &Process) {
        let event = TaskStart {
            container_id: p.container_id.clone(),
            pid: p.pid() as u32,
            ..Default::default()
        };
        self.publish(topics::TASK_START_EVENT_TOPIC, Box::new(event));
    }

    pub(crate) fn exec_added(&self, p: &Process) {
        let event = TaskExecAdded {
            container_id: p.container_id.clone(),
            exec_id: p.exec_id.clone(),
            ..Default::default()
        };
        self.publish(topics::TASK_EXEC_ADDED_EVENT_TOPIC, Box::new(event));
    }

    pub(crate) fn exec_started(&self, p: &Process) {
        let event = TaskExecStarted {
            container_id: p.container_id.clone(),
            exec_id: p.exec_id.clone(),
            pid: p.pid() as u32,
            ..Default::default()
        };
        self.publish(topics::TASK_EXEC_STARTED_EVENT_TOPIC, Box::new(event));
    }

    pub(crate) fn task_exit(&self, p: &Process, exit: Exit) {
        let (container_id, id, pid, exit_status, exited_at) = exit_fields(p, exit);
        let event = TaskExit {
            container_id,
            id,
            pid,
            exit_status,
            exited_at,
            ..Default::default()
        };
        self.publish(topics::TASK_EXIT_EVENT_TOPIC, Box::new(event));
    }

    pub(crate) fn task_delete(&self, p: &Process, exit: Exit) {
        let (container_id, id, pid, exit_status, exited_at) = exit_fields(p, exit);
        let event = TaskDelete {
            container_id,
            id,
            pid,
            exit_status,
            exited_at,
            ..Default::default()
        };
        self.publish(topics::TASK_DELETE_EVENT_TOPIC, Box::new(event));
    }

    pub(crate) fn task_oom(&self, container_id: &str) {
        let event = TaskOOM {
            container_id: container_id.to_string(),
            ..Default::default()
        };
        self.publish(topics::TASK_OOM_EVENT_TOPIC, Box::new(event));
    }

    pub(crate) fn task_paused(&self, container_id: &str) {
        let event = TaskPaused {
            container_id: container_id.to_string(),
            ..Default::default()
        };
        self.publish(topics::TASK_PAUSED_EVENT_TOPIC, Box::new(event));
    }

    pub(crate) fn task_resumed(&self, container_id: &str) {
        let event = TaskResumed {
            container_id: container_id.to_string(),
            ..Default::default()
        };
        self.publish(topics::TASK_RESUMED_EVENT_TOPIC, Box::new(event));
    }
}

/// What `/tasks/exit` and `/tasks/delete` say about a process that ended.
fn exit_fields(p: &Process, exit: Exit) -> (String, String, u32, u32, MessageField<Timestamp>) {
    (
        p.container_id.clone(),
        p.event_id().to_string(),
        p.pid() as u32,
        exit.status,
        MessageField::some(timestamp(exit.at)),
    )
}
