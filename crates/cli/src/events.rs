//! `undertaker events`: follow containerd's event stream and print undertaker's events and the
//! task events, decoded, one per line (readable, or JSON with `--json`).

mod pods;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::builder::PossibleValuesParser;
use clap::Args;
use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::SubscribeRequest;
use containerd_client::types::Envelope;
use tokio::signal::unix::{signal, SignalKind};
use tonic::transport::Channel;
use undertaker_events::{decode, Event, EventRecord};
use undertaker_install::layout::DEFAULT_CONTAINERD_ADDRESS;

use pods::PodLookup;

/// The topics `events` prints: undertaker's, then containerd's task events.
const TOPICS: [&str; 12] = [
    undertaker_events::REAPED,
    undertaker_events::LEAKED,
    undertaker_events::UNKILLABLE,
    "/tasks/create",
    "/tasks/start",
    "/tasks/exit",
    "/tasks/delete",
    "/tasks/exec-added",
    "/tasks/exec-started",
    "/tasks/oom",
    "/tasks/paused",
    "/tasks/resumed",
];

/// How long connecting to containerd's socket may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// First and longest wait before reconnecting after the stream broke.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// containerd's socket.
    #[arg(long, value_name = "SOCK", default_value = DEFAULT_CONTAINERD_ADDRESS)]
    address: PathBuf,

    /// Only events of this containerd namespace (CRI's is `k8s.io`) [default: all].
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,

    /// One JSON object per line instead of a readable line.
    #[arg(long)]
    json: bool,

    /// Only events on this topic; repeat for more [default: all of them].
    #[arg(long = "filter", value_name = "TOPIC", value_parser = PossibleValuesParser::new(TOPICS))]
    topics: Vec<String>,
}

/// Prints events until SIGINT or SIGTERM (exit 0), reconnecting with backoff whenever the
/// stream breaks (containerd restarted). Fails only if containerd cannot be reached at first.
pub async fn events(args: EventsArgs) -> anyhow::Result<()> {
    let topics: Vec<String> = if args.topics.is_empty() {
        TOPICS.iter().map(|t| t.to_string()).collect()
    } else {
        args.topics.clone()
    };
    let mut follower = Follower {
        request: subscribe_request(args.namespace.as_deref(), &topics),
        namespace: args.namespace.clone(),
        topics,
        json: args.json,
        pods: PodLookup::default(),
    };
    let mut interrupt = signal(SignalKind::interrupt()).context("listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
    let mut backoff = BACKOFF_FIRST;
    let mut ever_connected = false;
    loop {
        let ended = tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            ended = follower.follow(&args.address) => ended,
        };
        match ended {
            Ended::OutputClosed => return Ok(()),
            Ended::Broken {
                connected,
                delivered,
                error,
            } => {
                if !ever_connected && !connected {
                    return Err(error).with_context(|| {
                        format!("follow containerd's events at {}", args.address.display())
                    });
                }
                ever_connected |= connected;
                // Back off further only while reconnecting does not get events flowing again.
                if delivered {
                    backoff = BACKOFF_FIRST;
                }
                tracing::warn!(
                    "lost containerd's event stream at {} ({error:#}); reconnecting in {} \
                     (events published meanwhile are missed)",
                    args.address.display(),
                    humantime::format_duration(backoff),
                );
            }
        }
        tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// containerd filters: one per topic (a list of filters is OR'ed; commas inside one are AND'ed),
/// each also naming the namespace when one was asked for.
fn subscribe_request(namespace: Option<&str>, topics: &[String]) -> SubscribeRequest {
    let filters = topics
        .iter()
        .map(|topic| match namespace {
            Some(ns) => format!("namespace=={ns:?},topic=={topic:?}"),
            None => format!("topic=={topic:?}"),
        })
        .collect();
    SubscribeRequest { filters }
}

/// Why following the stream stopped.
enum Ended {
    /// stdout is gone (e.g. `| head`): nothing more to do.
    OutputClosed,
    /// The connection or the stream failed. `connected`: containerd's socket answered;
    /// `delivered`: at least one event arrived before the failure.
    Broken {
        connected: bool,
        delivered: bool,
        error: anyhow::Error,
    },
}

struct Follower {
    request: SubscribeRequest,
    namespace: Option<String>,
    topics: Vec<String>,
    json: bool,
    pods: PodLookup,
}

impl Follower {
    /// Connects, subscribes and prints events until the stream or stdout ends.
    async fn follow(&mut self, address: &Path) -> Ended {
        let channel = match connect(address).await {
            Ok(channel) => channel,
            Err(error) => {
                return Ended::Broken {
                    connected: false,
                    delivered: false,
                    error,
                }
            }
        };
        let mut delivered = false;
        let broken = |delivered, error| Ended::Broken {
            connected: true,
            delivered,
            error,
        };
        tracing::debug!(address = %address.display(), "connected to containerd; subscribing");
        // containerd sends the response headers with the first event, so this returns only
        // once an event arrives.
        let subscribed = EventsClient::new(channel.clone())
            .subscribe(self.request.clone())
            .await;
        let mut stream = match subscribed {
            Ok(response) => response.into_inner(),
            Err(status) => return broken(false, status_error("Subscribe", &status)),
        };
        loop {
            let envelope = match stream.message().await {
                Ok(Some(envelope)) => envelope,
                Ok(None) => {
                    return broken(delivered, anyhow::anyhow!("containerd closed the stream"))
                }
                Err(status) => return broken(delivered, status_error("event stream", &status)),
            };
            delivered = true;
            let Some(record) = self.record(&channel, envelope).await else {
                continue;
            };
            if let Err(error) = self.print(&record) {
                if error.kind() == io::ErrorKind::BrokenPipe {
                    return Ended::OutputClosed;
                }
                return broken(
                    delivered,
                    anyhow::Error::new(error).context("write to stdout"),
                );
            }
        }
    }

    /// The decoded, flattened event, with the pod filled in from the container's spec where
    /// the payload has none (task events); `None` for events not to print.
    async fn record(&mut self, channel: &Channel, envelope: Envelope) -> Option<EventRecord> {
        // containerd filtered already; checked again so a filter it ignores shows nothing extra.
        if !self.topics.contains(&envelope.topic)
            || self
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != envelope.namespace)
        {
            return None;
        }
        let any = envelope.event?;
        let event = match decode(&envelope.topic, &any.type_url, &any.value) {
            Ok(Event::Other { .. }) => return None,
            Ok(event) => event,
            Err(error) => {
                tracing::warn!("skipping an event: {error}");
                return None;
            }
        };
        let published = envelope
            .timestamp
            .and_then(|t| SystemTime::try_from(t).ok())
            .unwrap_or_else(SystemTime::now);
        let mut record = EventRecord::new(&event, &envelope.namespace, published);
        if !record.has_pod() && !record.container_id.is_empty() {
            let identity = self
                .pods
                .identity(channel, &record.namespace, &record.container_id)
                .await;
            record.fill_pod(&identity);
        }
        // The container goes away after its init task is deleted; so does what we know of it.
        if let Event::Task(undertaker_events::TaskEvent::Delete(_)) = event {
            if record.exec_id.is_empty() {
                self.pods.forget(&record.namespace, &record.container_id);
            }
        }
        Some(record)
    }

    fn print(&self, record: &EventRecord) -> io::Result<()> {
        let mut out = io::stdout().lock();
        if self.json {
            serde_json::to_writer(&mut out, record)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{record}")?;
        }
        out.flush()
    }
}

/// A gRPC failure in a few words (a `Status`'s own Display carries its whole source chain).
fn status_error(call: &str, status: &tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{call}: {:?}: {}", status.code(), status.message())
}

async fn connect(address: &Path) -> anyhow::Result<Channel> {
    tokio::time::timeout(CONNECT_TIMEOUT, containerd_client::connect(address))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no answer from {} within {}",
                address.display(),
                humantime::format_duration(CONNECT_TIMEOUT)
            )
        })?
        .with_context(|| format!("connect to {}", address.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_name_each_topic_and_the_namespace() {
        let topics = vec!["/tasks/exit".to_string(), "/undertaker/leaked".to_string()];

        let all = subscribe_request(None, &topics);
        let k8s = subscribe_request(Some("k8s.io"), &topics);

        assert_eq!(
            all.filters,
            ["topic==\"/tasks/exit\"", "topic==\"/undertaker/leaked\""]
        );
        assert_eq!(
            k8s.filters,
            [
                "namespace==\"k8s.io\",topic==\"/tasks/exit\"",
                "namespace==\"k8s.io\",topic==\"/undertaker/leaked\""
            ]
        );
    }
}
