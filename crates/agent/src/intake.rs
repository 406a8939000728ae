//! Following containerd's event stream: subscribe to undertaker's topics and `/tasks/exit`,
//! count every report in the metrics, queue it for the Kubernetes writer, and subscribe again
//! with backoff whenever the stream breaks (containerd restarted) until shutdown.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::SubscribeRequest;
use containerd_client::types::Envelope;
use tokio_util::sync::CancellationToken;
use undertaker_events::{decode, Event, EventRecord, TaskEvent};

use crate::metrics::Metrics;
use crate::queue::{Item, QueueSender};
use crate::report::Report;

/// The topics the agent follows.
pub const TOPICS: [&str; 4] = [
    undertaker_events::REAPED,
    undertaker_events::LEAKED,
    undertaker_events::UNKILLABLE,
    "/tasks/exit",
];

/// How long connecting to containerd's socket may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// First and longest wait before subscribing again after the stream broke.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(200);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Why the subscription to containerd's events ended.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    #[error("no answer from {address} within {timeout:?}")]
    ConnectTimeout { address: PathBuf, timeout: Duration },
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: PathBuf,
        source: tonic::transport::Error,
    },
    #[error("containerd at {address} refused the subscription: {source}")]
    Subscribe {
        address: PathBuf,
        source: tonic::Status,
    },
    #[error("containerd's event stream at {address} broke: {source}")]
    Stream {
        address: PathBuf,
        source: tonic::Status,
    },
    #[error("containerd at {address} closed the event stream")]
    Closed { address: PathBuf },
}

/// containerd filters: one per topic (a list of filters is OR'ed; commas inside one are
/// AND'ed), each naming the namespace too when one is given.
pub fn subscribe_request(namespace: Option<&str>, topics: &[&str]) -> SubscribeRequest {
    let filters = topics
        .iter()
        .map(|topic| match namespace {
            Some(ns) => format!("namespace=={ns:?},topic=={topic:?}"),
            None => format!("topic=={topic:?}"),
        })
        .collect();
    SubscribeRequest { filters }
}

/// Connects to containerd's socket at `address`, within [`CONNECT_TIMEOUT`].
pub async fn connect(address: &Path) -> Result<tonic::transport::Channel, ContainerdError> {
    tokio::time::timeout(CONNECT_TIMEOUT, containerd_client::connect(address))
        .await
        .map_err(|_| ContainerdError::ConnectTimeout {
            address: address.to_path_buf(),
            timeout: CONNECT_TIMEOUT,
        })?
        .map_err(|source| ContainerdError::Connect {
            address: address.to_path_buf(),
            source,
        })
}

/// The intake: containerd's stream in, metrics and queued reports out.
pub struct Intake {
    pub address: PathBuf,
    /// Only events of this containerd namespace (CRI's is `k8s.io`); all when `None`.
    pub namespace: Option<String>,
    pub metrics: Arc<Metrics>,
    /// Where reports go for Kubernetes Events; `None` without Kubernetes.
    pub queue: Option<QueueSender>,
}

impl Intake {
    /// Follows the stream until `shutdown`, subscribing again with backoff each time it breaks
    /// or cannot be had (containerd may be down when the agent starts, or restart later).
    pub async fn run(self, shutdown: CancellationToken) {
        let request = subscribe_request(self.namespace.as_deref(), &TOPICS);
        let mut backoff = BACKOFF_FIRST;
        let mut subscriptions = 0u64;
        loop {
            let ended = tokio::select! {
                () = shutdown.cancelled() => return,
                ended = self.follow(&request, &mut subscriptions) => ended,
            };
            self.metrics.containerd_lost();
            if ended.subscribed {
                backoff = BACKOFF_FIRST;
            }
            tracing::warn!(
                "{}; subscribing again in {} (events published meanwhile are missed)",
                ended.error,
                humantime::format_duration(backoff),
            );
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Connects, subscribes and handles events until the stream fails.
    async fn follow(&self, request: &SubscribeRequest, subscriptions: &mut u64) -> Ended {
        let broken = |subscribed, error| Ended { subscribed, error };
        let channel = match connect(&self.address).await {
            Ok(channel) => channel,
            Err(error) => return broken(false, error),
        };
        let mut stream = match EventsClient::new(channel).subscribe(request.clone()).await {
            Ok(response) => response.into_inner(),
            Err(source) => {
                let address = self.address.clone();
                return broken(false, ContainerdError::Subscribe { address, source });
            }
        };
        self.metrics.containerd_subscribed(*subscriptions > 0);
        *subscriptions += 1;
        tracing::info!(address = %self.address.display(), "subscribed to containerd's events");
        loop {
            let address = self.address.clone();
            match stream.message().await {
                Ok(Some(envelope)) => self.handle(envelope),
                Ok(None) => return broken(true, ContainerdError::Closed { address }),
                Err(source) => return broken(true, ContainerdError::Stream { address, source }),
            }
        }
    }

    /// Counts a report and queues it; queues an init exit as a hint to write early.
    fn handle(&self, envelope: Envelope) {
        // containerd filtered already; checked again so a filter it ignores lets nothing in.
        if !TOPICS.contains(&envelope.topic.as_str())
            || self
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != envelope.namespace)
        {
            return;
        }
        let Some(any) = envelope.event else {
            return;
        };
        let event = match decode(&envelope.topic, &any.type_url, &any.value) {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!("skipping an event: {error}");
                return;
            }
        };
        if let Event::Task(TaskEvent::Exit(exit)) = &event {
            // `id` is the exec id for an exec process, the container id for its init.
            if exit.id == exit.container_id {
                self.enqueue(Item::Exited {
                    container_id: exit.container_id.clone(),
                });
            }
            return;
        }
        let record = EventRecord::new(&event, &envelope.namespace, SystemTime::now());
        let Some(report) = Report::from_event(&event, record) else {
            return;
        };
        tracing::debug!(
            topic = %envelope.topic,
            pod = %format!("{}/{}", report.record.pod_namespace, report.record.pod),
            container = report.container_label(),
            processes = report.total(),
            "report"
        );
        self.metrics.count_report(&report);
        self.enqueue(Item::Report(Box::new(report)));
    }

    fn enqueue(&self, item: Item) {
        if let Some(queue) = &self.queue {
            queue.offer(item);
        }
    }
}

/// How one subscription ended.
struct Ended {
    /// Whether the subscription had been established.
    subscribed: bool,
    error: ContainerdError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_name_each_topic_and_the_namespace() {
        let all = subscribe_request(None, &["/tasks/exit", "/undertaker/leaked"]);
        let k8s = subscribe_request(Some("k8s.io"), &["/tasks/exit"]);

        assert_eq!(
            all.filters,
            ["topic==\"/tasks/exit\"", "topic==\"/undertaker/leaked\""]
        );
        assert_eq!(
            k8s.filters,
            ["namespace==\"k8s.io\",topic==\"/tasks/exit\""]
        );
    }
}
