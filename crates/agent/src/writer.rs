//! The Kubernetes writer: takes reports off the queue, folds them into Events
//! ([`Aggregator`]) and creates or patches those Events through the API as the aggregator's
//! pacing allows. It is the only task that waits on the API server, and the queue in front of
//! it is bounded.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::mpsc::Receiver;
use tokio::time::{timeout, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::aggregate::{Aggregator, Due, Outcome};
use crate::metrics::Metrics;
use crate::queue::Item;

/// How long one API call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the writer looks for due writes (a look is in memory; the pacing is the
/// aggregator's).
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long the last writes at shutdown may take in all.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why an Event could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The Event to patch does not exist (any more).
    #[error("event {namespace}/{name} not found")]
    NotFound { namespace: String, name: String },
    #[error("{operation} event {namespace}/{name}: {source}")]
    Api {
        operation: &'static str,
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error("{operation} event {namespace}/{name}: no answer within {timeout:?}")]
    Timeout {
        operation: &'static str,
        namespace: String,
        name: String,
        timeout: Duration,
    },
}

/// Where Events go: the API server, or a stand-in in tests.
pub trait EventApi: Send + Sync {
    /// Creates `event` in its namespace.
    fn create(&self, event: &Event) -> impl Future<Output = Result<(), WriteError>> + Send;
    /// Replaces the fields of the existing Event named like `event` with `event`'s.
    fn patch(&self, event: &Event) -> impl Future<Output = Result<(), WriteError>> + Send;
}

/// core/v1 Events through a kube client.
#[derive(Clone)]
pub struct KubeEvents {
    client: kube::Client,
}

impl KubeEvents {
    pub fn new(client: kube::Client) -> Self {
        KubeEvents { client }
    }

    fn api(&self, event: &Event) -> (Api<Event>, String, String) {
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let name = event.metadata.name.clone().unwrap_or_default();
        (
            Api::namespaced(self.client.clone(), &namespace),
            namespace,
            name,
        )
    }
}

impl EventApi for KubeEvents {
    async fn create(&self, event: &Event) -> Result<(), WriteError> {
        let (api, namespace, name) = self.api(event);
        api.create(&PostParams::default(), event)
            .await
            .map(drop)
            .map_err(|source| WriteError::Api {
                operation: "create",
                namespace,
                name,
                source,
            })
    }

    async fn patch(&self, event: &Event) -> Result<(), WriteError> {
        let (api, namespace, name) = self.api(event);
        // A merge patch with the whole Event: count, lastTimestamp and message change, the
        // rest is what is there already.
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(event))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                Err(WriteError::NotFound { namespace, name })
            }
            Err(source) => Err(WriteError::Api {
                operation: "patch",
                namespace,
                name,
                source,
            }),
        }
    }
}

/// The writer task's state.
pub struct Writer<A> {
    pub api: A,
    pub aggregator: Aggregator,
    pub metrics: Arc<Metrics>,
    /// How often due writes are looked for ([`CHECK_EVERY`]).
    pub check_every: Duration,
}

impl<A: EventApi> Writer<A> {
    /// Runs until `shutdown` (or until intake is gone), then writes what is pending, for at
    /// most [`SHUTDOWN_GRACE`].
    pub async fn run(mut self, mut queue: Receiver<Item>, shutdown: CancellationToken) {
        let mut tick =
            tokio::time::interval_at(Instant::now() + self.check_every, self.check_every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                item = queue.recv() => match item {
                    Some(item) => {
                        if let Some(exited) = self.take(item) {
                            self.flush(Some(&exited), false).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => self.flush(None, false).await,
            }
        }
        // What intake queued before it stopped is still owed an Event.
        while let Ok(item) = queue.try_recv() {
            self.take(item);
        }
        if timeout(SHUTDOWN_GRACE, self.flush(None, true))
            .await
            .is_err()
        {
            tracing::warn!("shutting down with Events not written");
        }
    }

    /// Counts a report; returns the container id of an exit notice.
    fn take(&mut self, item: Item) -> Option<String> {
        match item {
            Item::Report(report) => {
                if !self.aggregator.add(&report, SystemTime::now()) {
                    tracing::debug!(
                        container = %report.record.container_id,
                        "no pod for the report: no Event"
                    );
                }
                None
            }
            Item::Exited { container_id } => Some(container_id),
        }
    }

    /// Writes the due Events (of one container, or all); at shutdown (`last_call`) every
    /// pending one, however recently it was written.
    pub async fn flush(&mut self, container_id: Option<&str>, last_call: bool) {
        let now = SystemTime::now();
        self.aggregator.expire(now);
        for due in self.aggregator.due(now, container_id, last_call) {
            let outcome = self.write(&due).await;
            self.aggregator
                .written(&due.key, outcome, SystemTime::now());
        }
    }

    async fn write(&self, due: &Due) -> Outcome {
        let operation = if due.create { "create" } else { "patch" };
        let call = async {
            if due.create {
                self.api.create(&due.event).await
            } else {
                self.api.patch(&due.event).await
            }
        };
        let result = match timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result,
            Err(_) => Err(WriteError::Timeout {
                operation,
                namespace: due.key.pod_namespace.clone(),
                name: due.event.metadata.name.clone().unwrap_or_default(),
                timeout: CALL_TIMEOUT,
            }),
        };
        match result {
            Ok(()) => {
                self.metrics.api_written(operation);
                tracing::debug!(
                    operation,
                    event = due.event.metadata.name.as_deref().unwrap_or_default(),
                    count = due.event.count,
                    "wrote a Kubernetes Event"
                );
                Outcome::Written
            }
            Err(WriteError::NotFound { namespace, name }) => {
                tracing::info!("event {namespace}/{name} is gone; making a new one");
                Outcome::Gone
            }
            Err(error) => {
                self.metrics.api_failed(operation);
                tracing::warn!("{error}");
                Outcome::Failed
            }
        }
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
