//! `undertaker agent`: the node agent the DaemonSet runs. Follows containerd's events, posts
//! Kubernetes Events on the pods undertaker reaped, leaked or could not kill processes in, and
//! serves Prometheus metrics, until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};
use undertaker_agent::{
    Agent, AgentOptions, KubeConfigSource, DEFAULT_CONTAINERD_ADDRESS, DEFAULT_METRICS_ADDR,
};

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// containerd's socket (its events, and CRI for the zombie scan).
    #[arg(long, value_name = "SOCK", default_value = DEFAULT_CONTAINERD_ADDRESS)]
    address: PathBuf,

    /// The containerd namespace whose events to follow (CRI's is `k8s.io`).
    #[arg(long, short = 'n', value_name = "NS", default_value = "k8s.io")]
    namespace: String,

    /// Where to serve Prometheus metrics (`/metrics`, and `/healthz`).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_METRICS_ADDR)]
    metrics_addr: SocketAddr,

    /// The kubeconfig to use [default: $KUBECONFIG or ~/.kube/config if present, else the
    /// pod's service account].
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,

    /// This node's name, in each Event's source [default: the host name].
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    node_name: Option<String>,

    /// How often to count the zombies in every container (any runtime); 0 never.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    scan_interval: Duration,

    /// How many reports may wait for the Kubernetes API server; more are dropped (and counted
    /// in undertaker_agent_events_dropped_total) rather than slowing anything down.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    queue_size: u32,

    /// How long one Kubernetes Event gathers the reports of one container, reason and exec
    /// command: its count is the reports in it, its message the processes in all. The next
    /// report after it starts a new Event.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    window: Duration,

    /// The least time between two writes (create, patch) of one Event; reports meanwhile are
    /// aggregated into the next write (metrics count every one at once).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = humantime::parse_duration)]
    min_write_interval: Duration,

    /// Force-delete the API object of a pod this long past its deletion grace period while
    /// processes that survive SIGKILL hold it (off unless given). Those processes stay on the
    /// node: see docs/agent.md before turning it on.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, conflicts_with = "no_kube")]
    force_delete_stuck_after: Option<Duration>,

    /// Post no Kubernetes Events: metrics only (no API server needed).
    #[arg(long, conflicts_with = "kubeconfig")]
    no_kube: bool,
}

/// Runs the agent until SIGTERM or SIGINT (exit 0).
pub async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let kubernetes = match (args.no_kube, args.kubeconfig) {
        (true, _) => None,
        (false, Some(path)) => Some(KubeConfigSource::File(path)),
        (false, None) => Some(KubeConfigSource::Infer),
    };
    let node_name = match args.node_name.filter(|name| !name.is_empty()) {
        Some(name) => name,
        None => host_name()?,
    };
    let options = AgentOptions {
        containerd_address: args.address,
        containerd_namespace: Some(args.namespace).filter(|ns| !ns.is_empty()),
        metrics_addr: args.metrics_addr,
        kubernetes,
        node_name,
        scan_interval: Some(args.scan_interval).filter(|interval| !interval.is_zero()),
        queue_size: args.queue_size as usize,
        window: args.window,
        min_write_gap: args.min_write_interval,
        force_delete_stuck_after: args.force_delete_stuck_after,
        ..AgentOptions::default()
    };
    let mut interrupt = signal(SignalKind::interrupt()).context("listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
    let agent = Agent::new(options).await?;
    agent
        .run(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
        .await;
    Ok(())
}

fn host_name() -> anyhow::Result<String> {
    let path = "/proc/sys/kernel/hostname";
    let name = std::fs::read_to_string(path).with_context(|| format!("read {path}"))?;
    Ok(name.trim().to_string())
}
