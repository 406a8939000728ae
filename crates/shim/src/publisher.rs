//! containerd's event bus as the core's [`EventSink`]: events go into one queue, in the
//! order they are published, and a single task hands them to containerd-shim's
//! publisher (which retries while containerd restarts). Publishing never waits.
//!
//! The `delete` action (run after a shim died) has no queue to drain before it exits: it
//! collects its events ([`Collected`]) and forwards them one by one ([`forward_now`]).

use std::sync::Mutex;

use containerd_shim::{publisher::RemotePublisher, Context};
use containerd_shim_protos::protobuf::{well_known_types::any::Any, MessageDyn, MessageField};
use tokio::sync::mpsc;

use crate::lifecycle::{seams::EventSink, timestamp};

struct Queued {
    topic: String,
    namespace: String,
    event: Box<dyn MessageDyn>,
}

/// Publishes to containerd through containerd-shim's [`RemotePublisher`].
pub(crate) struct ContainerdSink {
    queue: mpsc::UnboundedSender<Queued>,
}

impl ContainerdSink {
    pub(crate) fn new(remote: RemotePublisher) -> Self {
        let (queue, mut rx) = mpsc::unbounded_channel::<Queued>();
        tokio::spawn(async move {
            while let Some(q) = rx.recv().await {
                if let Err(e) = remote
                    .publish(Context::default(), &q.topic, &q.namespace, q.event)
                    .await
                {
                    tracing::warn!(topic = %q.topic, "publishing event failed: {e}");
                }
            }
        });
        ContainerdSink { queue }
    }
}

impl EventSink for ContainerdSink {
    fn publish(&self, topic: &str, namespace: &str, event: Box<dyn MessageDyn>) {
        let queued = Queued {
            topic: topic.to_string(),
            namespace: namespace.to_string(),
            event,
        };
        if self.queue.send(queued).is_err() {
            tracing::warn!(topic, "event dropped: the publisher is gone");
        }
    }
}

/// Keeps what is published, in order: for the `delete` action and for tests.
#[derive(Default)]
pub(crate) struct Collected {
    events: Mutex<Vec<(String, Box<dyn MessageDyn>)>>,
}

impl Collected {
    pub(crate) fn take(&self) -> Vec<(String, Box<dyn MessageDyn>)> {
        std::mem::take(&mut self.events.lock().unwrap())
    }

    /// The topics published so far, in order.
    #[cfg(test)]
    pub(crate) fn topics(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Every event of type `T` published so far, in order.
    #[cfg(test)]
    pub(crate) fn all<T: containerd_shim_protos::protobuf::MessageFull + Clone>(&self) -> Vec<T> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| e.as_ref().downcast_ref::<T>().cloned())
            .collect()
    }
}

impl EventSink for Collected {
    fn publish(&self, topic: &str, _namespace: &str, event: Box<dyn MessageDyn>) {
        self.events.lock().unwrap().push((topic.to_string(), event));
    }
}

/// Sends one event to containerd and waits for it to be accepted.
pub(crate) async fn forward_now(
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
        event: MessageField::some(Any {
            type_url: event.descriptor_dyn().full_name().to_string(),
            value,
            ..Default::default()
        }),
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
