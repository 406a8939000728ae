//! Following containerd's event stream (undertaker-events' [`EventStream`], which subscribes
//! again with backoff whenever containerd restarts): count every report in the metrics, queue
//! it for the Kubernetes writer, keep unkillable processes for the stuck watch, and pass init
//! exits on as a hint to write early.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;
use undertaker_events::stream::{Delivered, EventStream};
use undertaker_events::{Event, EventRecord, TaskEvent};

use crate::metrics::Metrics;
use crate::queue::{Item, QueueSender};
use crate::report::Report;
use crate::stuck::StuckSet;

/// The topics the agent follows.
pub const TOPICS: [&str; 4] = [
    undertaker_events::REAPED,
    undertaker_events::LEAKED,
    undertaker_events::UNKILLABLE,
    "/tasks/exit",
];

/// The intake: containerd's stream in, metrics and queued reports out.
pub struct Intake {
    pub address: PathBuf,
    /// Only events of this containerd namespace (CRI's is `k8s.io`); all when `None`.
    pub namespace: Option<String>,
    pub metrics: Arc<Metrics>,
    /// Where reports go for Kubernetes Events; `None` without Kubernetes.
    pub queue: Option<QueueSender>,
    /// Where unkillable processes are kept until they are gone.
    pub stuck: Arc<Mutex<StuckSet>>,
}

impl Intake {
    /// Follows the stream until `shutdown`. containerd may be down when the agent starts or
    /// restart later: the stream connects again with backoff, and the agent waits for it.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut stream = EventStream::new(&self.address, self.namespace.as_deref(), &TOPICS);
        let mut connected = false;
        let mut ever_connected = false;
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                next = stream.next() => next,
            };
            match next {
                Ok(delivered) => {
                    // containerd answers a subscription with its first event: only now is
                    // the stream known to be in place.
                    if !connected {
                        self.metrics.containerd_subscribed(ever_connected);
                        tracing::info!(
                            address = %self.address.display(),
                            "subscribed to containerd's events"
                        );
                        connected = true;
                        ever_connected = true;
                    }
                    self.handle(delivered);
                }
                Err(error) if error.is_lost() => {
                    connected = false;
                    self.metrics.containerd_lost();
                    tracing::warn!(
                        "{error}; subscribing again in {} (events published meanwhile are missed)",
                        humantime::format_duration(stream.retry_in()),
                    );
                }
                Err(error) => tracing::warn!("skipping an event: {error}"),
            }
        }
    }

    /// Counts a report and queues it; queues an init exit as a hint to write early.
    fn handle(&self, delivered: Delivered) {
        let event = &delivered.event;
        if let Event::Task(TaskEvent::Exit(exit)) = event {
            // `id` is the exec id for an exec process, the container id for its init.
            if exit.id == exit.container_id {
                self.enqueue(Item::Exited {
                    container_id: exit.container_id.clone(),
                });
            }
            return;
        }
        let record = EventRecord::new(event, &delivered.namespace, SystemTime::now());
        let Some(report) = Report::from_event(event, record) else {
            return;
        };
        tracing::debug!(
            topic = %report.record.topic,
            pod = %format!("{}/{}", report.record.pod_namespace, report.record.pod),
            container = report.container_label(),
            processes = report.total(),
            "report"
        );
        self.metrics.count_report(&report);
        self.stuck
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(&report, SystemTime::now());
        self.enqueue(Item::Report(Box::new(report)));
    }

    fn enqueue(&self, item: Item) {
        if let Some(queue) = &self.queue {
            queue.offer(item);
        }
    }
}
