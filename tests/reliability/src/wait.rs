//! Bounded polls of host state: hitting a bound fails the test, it measures nothing.

use std::time::{Duration, Instant};

/// The default bound of a wait on host state or events.
pub const WAIT: Duration = Duration::from_secs(30);

/// Polls `probe` until it returns `Some`, for at most `timeout`.
pub async fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return Ok(found);
        }
        if started.elapsed() >= timeout {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
