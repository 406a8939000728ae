//! The agent's Prometheus metrics (prometheus-client, OpenMetrics text): processes undertaker
//! reaped, leaked or could not kill, by pod and container; zombies per container from the
//! periodic scan; and the agent's own health (queue drops, API errors, containerd reconnects).

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use undertaker_scan::NodeReport;

use crate::report::{Report, ReportKind};

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which container a series is about. `namespace` and `pod` are the pod's (empty for a
/// container not made by CRI); `container` is its name in the pod, else its containerd id.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContainerLabels {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// Which Kubernetes API call a series is about: `create` or `patch`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

/// Every metric the agent serves, registered in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reaped: Family<ContainerLabels, Counter>,
    leaked: Family<ContainerLabels, Counter>,
    unkillable: Family<ContainerLabels, Counter>,
    zombies: Family<ContainerLabels, Gauge>,
    /// The containers the last scan set a zombie gauge for (to remove those gone since).
    scanned: Mutex<HashSet<ContainerLabels>>,
    unkillable_alive: Family<ContainerLabels, Gauge>,
    /// The containers the last stuck check set a gauge for.
    stuck: Mutex<HashSet<ContainerLabels>>,
    force_deletions: Counter,
    scan_errors: Counter,
    dropped: Counter,
    api_writes: Family<OperationLabels, Counter>,
    api_errors: Family<OperationLabels, Counter>,
    reconnects: Counter,
    connected: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Metrics {
            registry: Registry::default(),
            reaped: Family::default(),
            leaked: Family::default(),
            unkillable: Family::default(),
            zombies: Family::default(),
            scanned: Mutex::default(),
            unkillable_alive: Family::default(),
            stuck: Mutex::default(),
            force_deletions: Counter::default(),
            scan_errors: Counter::default(),
            dropped: Counter::default(),
            api_writes: Family::default(),
            api_errors: Family::default(),
            reconnects: Counter::default(),
            connected: Gauge::default(),
        };
        let registry = &mut metrics.registry;
        let undertaker = registry.sub_registry_with_prefix("undertaker");
        undertaker.register(
            "reaped_processes",
            "Orphaned processes undertaker-init reaped (zombies that never piled up)",
            metrics.reaped.clone(),
        );
        undertaker.register(
            "leaked_processes",
            "Processes left behind when a container or exec process ended, killed by undertaker",
            metrics.leaked.clone(),
        );
        undertaker.register(
            "unkillable_processes",
            "Processes that survived SIGKILL (stuck in uninterruptible sleep)",
            metrics.unkillable.clone(),
        );
        undertaker.register(
            "unkillable_processes_alive",
            "Processes reported unkillable that are still on the node (a pod holding some cannot finish terminating)",
            metrics.unkillable_alive.clone(),
        );
        undertaker.register(
            "container_zombies",
            "Zombie processes in the container's cgroup at the last scan (any runtime)",
            metrics.zombies.clone(),
        );
        let agent = undertaker.sub_registry_with_prefix("agent");
        agent.register(
            "scan_errors",
            "Periodic zombie scans that failed",
            metrics.scan_errors.clone(),
        );
        agent.register(
            "events_dropped",
            "Reports not turned into Kubernetes Events because the queue to the API writer was full",
            metrics.dropped.clone(),
        );
        agent.register(
            "kubernetes_writes",
            "Kubernetes Events written, by API call",
            metrics.api_writes.clone(),
        );
        agent.register(
            "kubernetes_api_errors",
            "Kubernetes API calls that failed, by API call",
            metrics.api_errors.clone(),
        );
        agent.register(
            "stuck_pods_force_deleted",
            "Pods stuck terminating whose API object the agent force-deleted (--force-delete-stuck-after)",
            metrics.force_deletions.clone(),
        );
        agent.register(
            "containerd_reconnects",
            "Times the agent subscribed again after losing containerd's event stream",
            metrics.reconnects.clone(),
        );
        agent.register(
            "containerd_connected",
            "1 while subscribed to containerd's events, else 0",
            metrics.connected.clone(),
        );
        metrics
    }

    /// Counts the processes of one report.
    pub fn count_report(&self, report: &Report) {
        let family = match report.kind {
            ReportKind::Reaped => &self.reaped,
            ReportKind::Leaked => &self.leaked,
            ReportKind::Unkillable => &self.unkillable,
        };
        let labels = ContainerLabels {
            namespace: report.record.pod_namespace.clone(),
            pod: report.record.pod.clone(),
            container: report.container_label().to_string(),
        };
        family.get_or_create(&labels).inc_by(report.total());
    }

    /// Sets the zombie gauge of every running container in `report`, and removes the gauges
    /// of containers no longer there (set before removed, so a scrape never sees a gap).
    /// Exited containers the scan reports for what they left are not counted: a restarted
    /// container's exited instance has the same labels as the running one.
    pub fn set_zombies(&self, report: &NodeReport) {
        let running = report
            .containers
            .iter()
            .filter(|container| !container.exited());
        let samples = running.map(|container| {
            let labels = ContainerLabels {
                namespace: container.identity.pod_namespace.clone(),
                pod: container.identity.pod_name.clone(),
                container: container.identity.container.clone(),
            };
            (labels, i64::try_from(container.zombies).unwrap_or(i64::MAX))
        });
        replace_gauges(&self.zombies, &self.scanned, samples);
    }

    /// Sets the gauge of processes reported unkillable and still alive, per container, and
    /// removes it for containers that hold none any more.
    pub fn set_unkillable_alive(&self, samples: Vec<(ContainerLabels, i64)>) {
        replace_gauges(&self.unkillable_alive, &self.stuck, samples);
    }

    /// A pod stuck terminating was force-deleted.
    pub fn force_deleted(&self) {
        self.force_deletions.inc();
    }

    pub fn scan_failed(&self) {
        self.scan_errors.inc();
    }

    /// One report was dropped because the queue was full.
    pub fn dropped(&self) {
        self.dropped.inc();
    }

    /// One Kubernetes API call (`create` or `patch`) succeeded.
    pub fn api_written(&self, operation: &str) {
        self.api_writes
            .get_or_create(&operation_labels(operation))
            .inc();
    }

    /// One Kubernetes API call (`create` or `patch`) failed.
    pub fn api_failed(&self, operation: &str) {
        self.api_errors
            .get_or_create(&operation_labels(operation))
            .inc();
    }

    /// Subscribed to containerd's events; `again` after having lost the stream.
    pub fn containerd_subscribed(&self, again: bool) {
        if again {
            self.reconnects.inc();
        }
        self.connected.set(1);
    }

    /// containerd's event stream broke or could not be had.
    pub fn containerd_lost(&self) {
        self.connected.set(0);
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; the encoder's errors are the writer's.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Sets `family` to `samples` and removes the series set last time but not now (set before
/// removed, so a scrape never sees a gap); `last` remembers which were set.
fn replace_gauges(
    family: &Family<ContainerLabels, Gauge>,
    last: &Mutex<HashSet<ContainerLabels>>,
    samples: impl IntoIterator<Item = (ContainerLabels, i64)>,
) {
    let now: HashSet<ContainerLabels> = samples
        .into_iter()
        .map(|(labels, value)| {
            family.get_or_create(&labels).set(value);
            labels
        })
        .collect();
    let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
    for gone in last.difference(&now) {
        family.remove(gone);
    }
    *last = now;
}

fn operation_labels(operation: &str) -> OperationLabels {
    OperationLabels {
        operation: operation.to_string(),
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
