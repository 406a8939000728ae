//! The workloads measured, one module each. Every function starts its pods on the shared
//! testbed, takes samples for both handlers in alternating turns, and removes its pods again.
//! Nothing here asserts a speed: the numbers go to the table.

pub mod fork_tree;
pub mod idle_pods;
pub mod orphan_storm;

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures::stream::{self, StreamExt};
use undertaker_testbed::Pod;

/// How often state is polled while waiting for a workload to get ready.
const POLL: Duration = Duration::from_millis(20);

/// Pod removals in flight at once.
const REMOVALS_AT_ONCE: usize = 4;

/// Milliseconds, the unit of every latency row.
pub fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

/// Polls `ready` until it holds; an error names `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut ready: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let started = Instant::now();
    while !ready().await? {
        if started.elapsed() >= timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// Stops and removes `pods`, a few at a time; the first error is returned after all were
/// tried.
pub async fn remove_pods(pods: Vec<Pod>) -> Result<()> {
    let results: Vec<_> = stream::iter(pods)
        .map(|pod| async move { pod.stop_and_remove().await })
        .buffer_unordered(REMOVALS_AT_ONCE)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(())
}

/// Runs `measure` on `pod` and removes the pod afterwards, also when `measure` failed.
pub async fn with_pod<T>(pod: &Pod, measure: impl Future<Output = Result<T>>) -> Result<T> {
    let result = measure.await;
    let removed = pod.stop_and_remove().await;
    let value = result?;
    removed?;
    Ok(value)
}
