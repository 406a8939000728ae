//! The node agent behind `undertaker agent`: turns what undertaker's shims publish on
//! containerd's event bus into Kubernetes Events on the pod and Prometheus metrics.
//!
//! ```text
//! containerd events ──► intake ──► metrics (counters, always exact)
//!   /undertaker/*         │
//!   /tasks/exit           └─► bounded queue ──► writer: aggregate per pod, container, reason;
//!                              (drops counted)           create / patch core/v1 Events
//!   /undertaker/unkillable ──► stuck set ──► stuck watch: still alive? (gauge); pod past its
//!                                              grace period? StuckTerminating Event, and
//!                                              with --force-delete-stuck-after, force-delete
//! CRI + /proc ──► periodic scan ──► zombies per container (gauge)
//! metrics registry ──► GET /metrics on --metrics-addr
//! ```
//!
//! The intake never waits for the API server: it only offers reports to the writer's bounded
//! queue. It subscribes again with backoff when containerd restarts. Everything stops when the
//! shutdown future given to [`Agent::run`] completes (the CLI passes SIGTERM/SIGINT), after the
//! writer has written what was pending.
//!
//! ```no_run
//! # async fn run() -> Result<(), undertaker_agent::AgentError> {
//! use undertaker_agent::{Agent, AgentOptions};
//! let agent = Agent::new(AgentOptions::default()).await?;
//! println!("metrics on http://{}/metrics", agent.metrics_addr());
//! agent.run(async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(()) }
//! ```

mod aggregate;
mod intake;
mod kubernetes;
mod message;
mod metrics;
mod node_label;
mod pod_event;
mod queue;
mod report;
mod serve;
mod stuck;
mod stuck_watch;
mod writer;
mod zombie_scan;

#[cfg(test)]
mod test_support;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use aggregate::{
    Aggregator, Due, Outcome, Pacing, SeriesKey, COMPONENT, DEFAULT_WINDOW, MAX_ATTEMPTS,
    MIN_WRITE_GAP, SERIES_TTL,
};
pub use intake::{Intake, TOPICS};
pub use kubernetes::{kube_client, KubeConfigSource};
pub use message::{message, Subject, MAX_MESSAGE_BYTES, MAX_NAMED};
pub use metrics::{ContainerLabels, Metrics, OperationLabels, CONTENT_TYPE};
pub use node_label::{set_node_label, NodeLabelError};
pub use queue::{queue, Item, QueueSender};
pub use report::{Report, ReportKind, SANDBOX_LABEL};
pub use serve::serve_metrics;
pub use stuck::{PodKey, Seen, StuckProcess, StuckSet};
pub use stuck_watch::{
    stuck_message, KubePods, PodApi, PodDeletion, StuckKube, StuckWatch, STUCK_CHECK_EVERY,
    STUCK_TERMINATING,
};
pub use writer::{
    EventApi, KubeEvents, WriteError, Writer, CALL_TIMEOUT, CHECK_EVERY, SHUTDOWN_GRACE,
};
pub use zombie_scan::scan_zombies;

/// containerd's default socket.
pub const DEFAULT_CONTAINERD_ADDRESS: &str = "/run/containerd/containerd.sock";
/// The metrics endpoint's default address: loopback, so nothing is exposed unless asked.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// containerd's socket (events and CRI).
    pub containerd_address: PathBuf,
    /// Only events of this containerd namespace; all when `None`.
    pub containerd_namespace: Option<String>,
    /// Where `/metrics` is served (port 0: any free port, see [`Agent::metrics_addr`]).
    pub metrics_addr: SocketAddr,
    /// Where Kubernetes is; `None`: no Events, metrics only.
    pub kubernetes: Option<KubeConfigSource>,
    /// The node's name, in each Event's source.
    pub node_name: String,
    /// How often zombies are counted in every container; `None`: never.
    pub scan_interval: Option<Duration>,
    /// How many reports may wait for the Kubernetes writer; more are dropped and counted.
    pub queue_size: usize,
    /// How long one Event gathers the reports of one container, reason and exec command.
    pub window: Duration,
    /// The least time between two writes of one Event.
    pub min_write_gap: Duration,
    /// How often the writer looks for due writes besides a container's exit and shutdown
    /// ([`CHECK_EVERY`]).
    pub check_every: Duration,
    /// How often processes reported unkillable are looked at ([`STUCK_CHECK_EVERY`]).
    pub stuck_check_every: Duration,
    /// Force-delete the API object of a pod this long past its deletion grace period while
    /// unkillable processes hold it; `None` (the default): never.
    pub force_delete_stuck_after: Option<Duration>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            containerd_address: DEFAULT_CONTAINERD_ADDRESS.into(),
            containerd_namespace: Some("k8s.io".to_string()),
            metrics_addr: DEFAULT_METRICS_ADDR
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9464))),
            kubernetes: Some(KubeConfigSource::Infer),
            node_name: String::new(),
            scan_interval: Some(Duration::from_secs(30)),
            queue_size: 1024,
            window: aggregate::DEFAULT_WINDOW,
            min_write_gap: aggregate::MIN_WRITE_GAP,
            check_every: writer::CHECK_EVERY,
            stuck_check_every: stuck_watch::STUCK_CHECK_EVERY,
            force_delete_stuck_after: None,
        }
    }
}

/// Why the agent cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot serve metrics on {addr}: {source}")]
    BindMetrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Kubernetes(#[from] kubernetes::KubeSetupError),
}

/// An agent ready to run: metrics listener bound, Kubernetes client built.
pub struct Agent {
    options: AgentOptions,
    metrics: Arc<Metrics>,
    listener: TcpListener,
    client: Option<kube::Client>,
}

impl Agent {
    /// Binds the metrics endpoint and builds the Kubernetes client (no API call yet).
    pub async fn new(options: AgentOptions) -> Result<Agent, AgentError> {
        let listener = TcpListener::bind(options.metrics_addr)
            .await
            .map_err(|source| AgentError::BindMetrics {
                addr: options.metrics_addr,
                source,
            })?;
        let client = match &options.kubernetes {
            Some(source) => Some(kube_client(source).await?),
            None => None,
        };
        Ok(Agent {
            options,
            metrics: Arc::new(Metrics::new()),
            listener,
            client,
        })
    }

    /// Where `/metrics` is served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.options.metrics_addr)
    }

    /// The agent's metrics (e.g. to read them without HTTP).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs until `shutdown` completes, then stops intake and scans, writes the pending Events
    /// (bounded) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Agent {
            options,
            metrics,
            listener,
            client,
        } = self;
        let metrics_addr = listener.local_addr().unwrap_or(options.metrics_addr);
        let stop = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(serve_metrics(listener, metrics.clone(), stop.clone()));

        let stuck = Arc::new(Mutex::new(StuckSet::default()));
        let stuck_kube = client.clone().map(|client| StuckKube {
            pods: KubePods {
                client: client.clone(),
            },
            events: KubeEvents::new(client),
            node: options.node_name.clone(),
            min_write_gap: options.min_write_gap,
            force_delete_after: options.force_delete_stuck_after,
        });
        let watch = StuckWatch::new(stuck.clone(), metrics.clone(), stuck_kube);
        tasks.spawn(watch.run(options.stuck_check_every, stop.clone()));

        let queue = client.map(|client| {
            let (sender, receiver) = queue(options.queue_size, metrics.clone());
            let writer = Writer {
                api: KubeEvents::new(client),
                aggregator: Aggregator::new(
                    options.node_name.clone(),
                    Pacing {
                        window: options.window,
                        min_gap: options.min_write_gap,
                    },
                ),
                metrics: metrics.clone(),
                check_every: options.check_every,
            };
            tasks.spawn(writer.run(receiver, stop.clone()));
            sender
        });
        let intake = Intake {
            address: options.containerd_address.clone(),
            namespace: options.containerd_namespace.clone(),
            metrics: metrics.clone(),
            queue,
            stuck,
        };
        tasks.spawn(intake.run(stop.clone()));
        if let Some(interval) = options.scan_interval.filter(|i| !i.is_zero()) {
            let address = options.containerd_address.clone();
            tasks.spawn(scan_zombies(address, interval, metrics, stop.clone()));
        }
        tracing::info!(
            metrics = %format!("http://{metrics_addr}/metrics"),
            node = %options.node_name,
            kubernetes = options.kubernetes.is_some(),
            "agent running"
        );

        shutdown.await;
        tracing::info!("shutting down");
        stop.cancel();
        while let Some(joined) = tasks.join_next().await {
            if let Err(error) = joined {
                tracing::error!("an agent task failed: {error}");
            }
        }
    }
}
