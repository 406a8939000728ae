//! The periodic scan behind `undertaker_container_zombies`: every container on the node, of
//! any runtime, through CRI and `/proc` (undertaker-scan).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use undertaker_scan::{scan_node, ScanOptions};

use crate::metrics::Metrics;

/// How long one scan's CRI calls may take.
const SCAN_TIMEOUT: Duration = Duration::from_secs(10);

/// Scans at once, then every `interval`, until `shutdown`.
pub async fn scan_zombies(
    address: PathBuf,
    interval: Duration,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let options = ScanOptions {
        address,
        namespace: None,
        timeout: SCAN_TIMEOUT,
        // Zombies only: no second look at processes in D.
        d_state_recheck: Duration::ZERO,
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let scanned = tokio::select! {
            () = shutdown.cancelled() => return,
            scanned = scan_node(&options) => scanned,
        };
        match scanned {
            Ok(report) => {
                tracing::debug!(containers = report.containers.len(), "zombie scan");
                metrics.set_zombies(&report);
            }
            Err(error) => {
                metrics.scan_failed();
                tracing::warn!("zombie scan failed: {error}");
            }
        }
    }
}
