//! The workloads measured, one module each. Every function starts its pods on the shared
//! testbed, takes samples for both handlers in alternating turns, and removes its pods again.
//! Nothing here asserts a speed: the numbers go to the table.

pub mod burst;
pub mod churn;
pub mod exec;
pub mod exec_probe;
pub mod fork_tree;
pub mod idle_cost;
pub mod idle_pods;
pub mod orphan_storm;
pub mod throughput;

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::stream::{self, StreamExt};
use undertaker_testbed::{Container, Pod, Testbed};

use crate::handler::Handler;
use crate::procfs::shims_by_id;

/// How often state is polled while waiting for a workload to get ready.
const POLL: Duration = Duration::from_millis(20);

/// Pod removals in flight at once.
const REMOVALS_AT_ONCE: usize = 4;

/// Milliseconds, the unit of every latency row.
pub fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

/// Polls `ready` until it holds; an error names `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, ready: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    wait_until_every(what, timeout, POLL, ready).await
}

/// [`wait_until`], polling every `poll`.
pub async fn wait_until_every<F, Fut>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut ready: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let started = Instant::now();
    while !ready().await? {
        if started.elapsed() >= timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(poll).await;
    }
    Ok(())
}

/// Waits until a live process of `container` runs `command` (its arguments joined by spaces).
pub async fn wait_for_command(container: &Container, command: &[&str]) -> Result<()> {
    let cmdline = command.join(" ");
    wait_until(
        &format!("`{cmdline}` in container {}", container.name()),
        Duration::from_secs(30),
        || {
            let running = container
                .live_processes()
                .iter()
                .any(|process| process.cmdline == cmdline);
            async move { Ok(running) }
        },
    )
    .await
}

/// The pid of the shim serving `pod` (from [`shims_by_id`]), checked to run `handler`'s
/// binary.
pub fn pod_shim(
    shims: &HashMap<String, (i32, String)>,
    pod: &Pod,
    handler: Handler,
) -> Result<i32> {
    let (pid, binary) = shims
        .get(pod.id())
        .with_context(|| format!("no shim serves pod {}", pod.id()))?;
    if binary != handler.shim_binary() {
        bail!(
            "pod {} of handler {} is served by {binary}",
            pod.id(),
            handler.name()
        );
    }
    Ok(*pid)
}

/// The pid of the shim serving `pod` now.
pub fn find_pod_shim(testbed: &Testbed, pod: &Pod, handler: Handler) -> Result<i32> {
    pod_shim(&shims_by_id(testbed.socket()), pod, handler)
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
