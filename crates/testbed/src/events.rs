//! containerd's event stream, collected: every `/undertaker/*` and `/tasks/exit` event a testbed's
//! containerd delivers, decoded with `undertaker-events` and flattened into the
//! [`EventRecord`]s `undertaker events --json` prints.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::ForwardRequest;
use containerd_client::types::Envelope;
use undertaker_events::stream::EventStream;
use undertaker_events::{to_any, EventRecord, Identity, Reaped, UndertakerEvent};

use crate::error::{Result, TestbedError};
use crate::testbed::{Testbed, CRI_NAMESPACE};

/// What the collector follows: undertaker's topics, and the task exits they precede.
pub const TOPICS: [&str; 4] = [
    undertaker_events::REAPED,
    undertaker_events::LEAKED,
    undertaker_events::UNKILLABLE,
    "/tasks/exit",
];
/// The container id prefix of the probe events that show a subscription is in place: empty
/// `/undertaker/reaped` events about a container that does not exist.
pub const PROBE_PREFIX: &str = "undertaker-testbed-probe-";
/// How often a probe is published while waiting for a subscription.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// How long a subscription may take to be in place.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(20);
/// How often collected events are checked while waiting for one.
const POLL: Duration = Duration::from_millis(50);

/// Counts probes, so each subscription waits for its own.
static PROBES: AtomicU64 = AtomicU64::new(0);

/// What the background subscriber shares with its [`EventCollector`].
#[derive(Default)]
struct Collected {
    records: Mutex<Vec<EventRecord>>,
    /// Probe payloads seen (their serial numbers).
    probes: Mutex<Vec<u64>>,
    /// The last time the stream was lost, why.
    lost: Mutex<Option<String>>,
}

/// Every undertaker and task exit event since it was created, in arrival order. Made by
/// [`Testbed::collect_events`]; stops listening when dropped.
pub struct EventCollector {
    collected: Arc<Collected>,
    task: tokio::task::JoinHandle<()>,
}

impl Testbed {
    /// Subscribes to the [`TOPICS`] of this testbed's containerd and returns once the
    /// subscription is in place (a probe event came through it).
    pub async fn collect_events(&self) -> Result<EventCollector> {
        self.collect_events_on(&TOPICS).await
    }

    /// Like [`Testbed::collect_events`], for other topics (e.g. `/tasks/oom`). The probes
    /// are `/undertaker/reaped` events, so that topic is always followed (and its probes
    /// never collected).
    pub async fn collect_events_on(&self, topics: &[&str]) -> Result<EventCollector> {
        let mut topics: Vec<String> = topics.iter().map(|topic| topic.to_string()).collect();
        if !topics
            .iter()
            .any(|topic| topic == undertaker_events::REAPED)
        {
            topics.push(undertaker_events::REAPED.to_string());
        }
        let collected = Arc::new(Collected::default());
        let task = tokio::spawn(follow(
            self.socket().to_path_buf(),
            topics,
            collected.clone(),
        ));
        let collector = EventCollector { collected, task };
        let seen = |serial: u64| {
            collector
                .collected
                .probes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&serial)
        };
        self.probe_until(seen).await?;
        Ok(collector)
    }

    /// Publishes probe events (empty `/undertaker/reaped` events about container
    /// [`PROBE_PREFIX`]`<serial>`) until `seen(serial)` says one came through a subscriber:
    /// containerd gives a subscriber no other sign that its subscription is in place.
    pub async fn probe_until(&self, mut seen: impl FnMut(u64) -> bool) -> Result<()> {
        let started = Instant::now();
        let mut published = Vec::new();
        loop {
            let serial = PROBES.fetch_add(1, Ordering::Relaxed);
            let identity =
                Identity::for_container(CRI_NAMESPACE, &format!("{PROBE_PREFIX}{serial}"), "");
            self.publish_undertaker_event(CRI_NAMESPACE, &Reaped::now(identity, vec![], 0, 0))
                .await?;
            published.push(serial);
            tokio::time::sleep(PROBE_EVERY).await;
            if published.iter().any(|serial| seen(*serial)) {
                return Ok(());
            }
            if started.elapsed() >= SUBSCRIBE_TIMEOUT {
                return Err(TestbedError::Timeout {
                    what: "a probe event to come through containerd's event stream".to_string(),
                    timeout: SUBSCRIBE_TIMEOUT,
                });
            }
        }
    }

    /// Publishes an event into containerd through the events service's `Forward` (what
    /// `containerd publish` does).
    pub async fn publish(
        &self,
        namespace: &str,
        topic: &str,
        event: prost_types::Any,
    ) -> Result<()> {
        let channel = undertaker_events::stream::connect(self.socket())
            .await
            .map_err(|error| TestbedError::Events {
                what: "connect",
                reason: error.to_string(),
            })?;
        let envelope = Envelope {
            timestamp: Some(SystemTime::now().into()),
            namespace: namespace.to_string(),
            topic: topic.to_string(),
            event: Some(event),
        };
        EventsClient::new(channel)
            .forward(ForwardRequest {
                envelope: Some(envelope),
            })
            .await
            .map_err(|status| TestbedError::Events {
                what: "forward",
                reason: status.to_string(),
            })?;
        Ok(())
    }

    /// Publishes one of undertaker's own events into containerd, as the shim would.
    pub async fn publish_undertaker_event<E: UndertakerEvent>(
        &self,
        namespace: &str,
        event: &E,
    ) -> Result<()> {
        let any = to_any(event).map_err(|error| TestbedError::Events {
            what: "encode",
            reason: error.to_string(),
        })?;
        let any = prost_types::Any {
            type_url: any.type_url,
            value: any.value,
        };
        self.publish(namespace, E::TOPIC, any).await
    }
}

impl EventCollector {
    /// Everything collected so far.
    pub fn records(&self) -> Vec<EventRecord> {
        self.collected
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The events on `topic` about container `container_id` (any of its processes).
    pub fn about(&self, topic: &str, container_id: &str) -> Vec<EventRecord> {
        about(&self.records(), topic, container_id)
    }

    /// Why the stream was last lost (containerd restarted, say), if it was.
    pub fn lost(&self) -> Option<String> {
        self.collected
            .lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until `done` holds for the events collected so far, and returns them.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[EventRecord]) -> bool,
    ) -> Result<Vec<EventRecord>> {
        let started = Instant::now();
        loop {
            let records = self.records();
            if done(&records) {
                return Ok(records);
            }
            if started.elapsed() >= timeout {
                let lost = self
                    .lost()
                    .map(|reason| format!(" (the stream was lost: {reason})"))
                    .unwrap_or_default();
                return Err(TestbedError::Timeout {
                    what: format!("{what}{lost}; events so far:\n{}", lines(&records)),
                    timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for EventCollector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The records on `topic` about container `container_id` (any of its processes).
pub fn about(records: &[EventRecord], topic: &str, container_id: &str) -> Vec<EventRecord> {
    records
        .iter()
        .filter(|record| record.topic == topic && record.container_id == container_id)
        .cloned()
        .collect()
}

/// One readable line per record (for failure messages).
pub fn lines(records: &[EventRecord]) -> String {
    records
        .iter()
        .map(|record| format!("  {record}\n"))
        .collect()
}

/// Receives events for as long as the collector lives, keeping every record but the probes.
/// A lost stream (containerd restarted) is connected again; what was published meanwhile is
/// missed, and the loss is kept for failure messages.
async fn follow(socket: PathBuf, topics: Vec<String>, collected: Arc<Collected>) {
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let mut stream = EventStream::new(socket, None, &topics);
    loop {
        let delivered = match stream.next().await {
            Ok(delivered) => delivered,
            Err(error) => {
                tracing::warn!("containerd's event stream: {error}");
                *collected.lost.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
                continue;
            }
        };
        let record = EventRecord::new(&delivered.event, &delivered.namespace, delivered.published);
        if let Some(serial) = record.container_id.strip_prefix(PROBE_PREFIX) {
            if let Ok(serial) = serial.parse() {
                collected
                    .probes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(serial);
            }
            continue;
        }
        collected
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }
}
