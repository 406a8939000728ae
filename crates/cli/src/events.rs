//! `undertaker events`: follow containerd's event stream and print undertaker's events and the
//! task events, decoded, one per line (readable, or JSON with `--json`).

mod pods;

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::builder::PossibleValuesParser;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};
use undertaker_events::stream::{Delivered, EventStream};
use undertaker_events::{Event, EventRecord, TaskEvent};
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

/// Prints events until SIGINT or SIGTERM (exit 0) or until stdout closes, reconnecting with
/// backoff whenever the stream breaks (containerd restarted). Fails only if containerd cannot
/// be reached at first.
pub async fn events(args: EventsArgs) -> anyhow::Result<()> {
    let topics: Vec<&str> = if args.topics.is_empty() {
        TOPICS.to_vec()
    } else {
        args.topics.iter().map(String::as_str).collect()
    };
    let mut stream = EventStream::new(&args.address, args.namespace.as_deref(), &topics);
    let mut pods = PodLookup::default();
    let mut interrupt = signal(SignalKind::interrupt()).context("listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
    loop {
        let next = tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            next = stream.next() => next,
        };
        let delivered = match next {
            Ok(delivered) => delivered,
            Err(error) if !error.is_lost() => {
                tracing::warn!("skipping an event: {error}");
                continue;
            }
            Err(error) if stream.connections() == 0 => {
                return Err(error).with_context(|| {
                    format!("follow containerd's events at {}", args.address.display())
                });
            }
            Err(error) => {
                tracing::warn!(
                    "{error}; reconnecting in {} (events published meanwhile are missed)",
                    humantime::format_duration(stream.retry_in()),
                );
                continue;
            }
        };
        let record = record(&stream, &mut pods, delivered).await;
        match print(&record, args.json) {
            Ok(()) => {}
            // Whoever read our output is gone (`| head`): done.
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(error) => return Err(error).context("write to stdout"),
        }
    }
}

/// The flattened event, with the pod filled in from the container's spec where the payload
/// has none (task events).
async fn record(stream: &EventStream, pods: &mut PodLookup, delivered: Delivered) -> EventRecord {
    let mut record = EventRecord::new(&delivered.event, &delivered.namespace, delivered.published);
    if let Some(channel) = stream.channel() {
        if !record.has_pod() && !record.container_id.is_empty() {
            let identity = pods
                .identity(channel, &record.namespace, &record.container_id)
                .await;
            record.fill_pod(&identity);
        }
    }
    // The container goes away after its init task is deleted; so does what we know of it.
    if let Event::Task(TaskEvent::Delete(_)) = delivered.event {
        if record.exec_id.is_empty() {
            pods.forget(&record.namespace, &record.container_id);
        }
    }
    record
}

fn print(record: &EventRecord, json: bool) -> io::Result<()> {
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, record)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{record}")?;
    }
    out.flush()
}
