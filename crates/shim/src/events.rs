//! Publishing on containerd's event bus: the standard task events.

use std::sync::Arc;

use containerd_shim::{publisher::RemotePublisher, Context};
use containerd_shim_protos::{
    events::task::{
        TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM,
        TaskPaused, TaskResumed, TaskStart,
    },
    protobuf::{well_known_types::timestamp::Timestamp, MessageDyn, MessageField},
    topics,
};

use crate::process::{timestamp, Exit, Process};

/// Sends one event to containerd and waits for it to be accepted: for the
/// `delete` action, which exits right after and has no publisher queue to drain.
pub async fn forward_now(
    ttrpc_address: &str,
    namespace: &str,
    topic: &str,
    event: &dyn MessageDyn,
) -> Result<(), String> {
    use containerd_shim_protos::{
        shim::{event::Envelope, events::ForwardRequest},
        shim_async::{Client, EventsClient},
    };
    let address = if ttrpc_address.contains("://") {
        ttrpc_address.to_string()
    } else {
        format!("unix://{ttrpc_address}")
    };
    let client = Client::connect(&address)
        .await
        .map_err(|e| format!("connect to {address}: {e}"))?;
    let mut value = Vec::new();
    event
        .write_to_vec_dyn(&mut value)
        .map_err(|e| format!("encode {topic}: {e}"))?;
    let envelope = Envelope {
        timestamp: MessageField::some(timestamp(time::OffsetDateTime::now_utc())),
        namespace: namespace.to_string(),
        topic: topic.to_string(),
        event: MessageField::some(
            containerd_shim_protos::protobuf::well_known_types::any::Any {
                type_url: event.descriptor_dyn().full_name().to_string(),
                value,
                ..Default::default()
            },
        ),
        ..Default::default()
    };
    let request = ForwardRequest {
        envelope: MessageField::some(envelope),
        ..Default::default()
    };
    EventsClient::new(client)
        .forward(Context::default(), &request)
        .await
        .map(drop)
        .map_err(|e| format!("forward {topic}: {e}"))
}

/// containerd's publisher, bound to the namespace of this shim's containers.
#[derive(Clone)]
pub struct Publisher {
    remote: Option<Arc<RemotePublisher>>,
    namespace: String,
}

impl Publisher {
    pub fn new(remote: RemotePublisher, namespace: &str) -> Self {
        Publisher {
            remote: Some(Arc::new(remote)),
            namespace: namespace.to_string(),
        }
    }

    /// A publisher that drops everything, for tests.
    pub fn disconnected(namespace: &str) -> Self {
        Publisher {
            remote: None,
            namespace: namespace.to_string(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Queues an event; containerd's publisher retries and never blocks the caller long.
    pub async fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        let Some(remote) = &self.remote else { return };
        if let Err(e) = remote
            .publish(Context::default(), topic, &self.namespace, event)
            .await
        {
            tracing::warn!(topic, "publishing event failed: {e}");
        }
    }

    pub async fn task_create(
        &self,
        p: &Process,
        bundle: &str,
        rootfs: Vec<containerd_shim_protos::api::Mount>,
    ) {
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
        self.publish(topics::TASK_CREATE_EVENT_TOPIC, Box::new(event))
            .await;
    }

    pub async fn task_start(&self, p: &Process) {
        let event = TaskStart {
            container_id: p.container_id.clone(),
            pid: p.pid() as u32,
            ..Default::default()
        };
        self.publish(topics::TASK_START_EVENT_TOPIC, Box::new(event))
            .await;
    }

    pub async fn exec_added(&self, p: &Process) {
        let event = TaskExecAdded {
            container_id: p.container_id.clone(),
            exec_id: p.exec_id.clone(),
            ..Default::default()
        };
        self.publish(topics::TASK_EXEC_ADDED_EVENT_TOPIC, Box::new(event))
            .await;
    }

    pub async fn exec_started(&self, p: &Process) {
        let event = TaskExecStarted {
            container_id: p.container_id.clone(),
            exec_id: p.exec_id.clone(),
            pid: p.pid() as u32,
            ..Default::default()
        };
        self.publish(topics::TASK_EXEC_STARTED_EVENT_TOPIC, Box::new(event))
            .await;
    }

    pub async fn task_exit(&self, p: &Process, exit: Exit) {
        let (container_id, id, pid, exit_status, exited_at) = exit_fields(p, exit);
        let event = TaskExit {
            container_id,
            id,
            pid,
            exit_status,
            exited_at,
            ..Default::default()
        };
        self.publish(topics::TASK_EXIT_EVENT_TOPIC, Box::new(event))
            .await;
    }

    pub async fn task_delete(&self, p: &Process, exit: Exit) {
        let (container_id, id, pid, exit_status, exited_at) = exit_fields(p, exit);
        let event = TaskDelete {
            container_id,
            id,
            pid,
            exit_status,
            exited_at,
            ..Default::default()
        };
        self.publish(topics::TASK_DELETE_EVENT_TOPIC, Box::new(event))
            .await;
    }

    pub async fn task_oom(&self, container_id: &str) {
        let event = TaskOOM {
            container_id: container_id.to_string(),
            ..Default::default()
        };
        self.publish(topics::TASK_OOM_EVENT_TOPIC, Box::new(event))
            .await;
    }

    pub async fn task_paused(&self, container_id: &str) {
        let event = TaskPaused {
            container_id: container_id.to_string(),
            ..Default::default()
        };
        self.publish(topics::TASK_PAUSED_EVENT_TOPIC, Box::new(event))
            .await;
    }

    pub async fn task_resumed(&self, container_id: &str) {
        let event = TaskResumed {
            container_id: container_id.to_string(),
            ..Default::default()
        };
        self.publish(topics::TASK_RESUMED_EVENT_TOPIC, Box::new(event))
            .await;
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
