//! StopContainer on a PID 1 without a TERM handler.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use undertaker_e2e::{per_handler, Handler};
use undertaker_testbed::Testbed;

use crate::support::wait_for_cmdline;

per_handler!(stop_a_workload_without_a_term_handler);

const GRACE: Duration = Duration::from_secs(10);

/// `sleep` as the container's command has no TERM handler. As PID 1 (runc) the kernel drops
/// TERM, so the stop waits out the grace period and ends in SIGKILL (137). Under undertaker
/// the init is PID 1 and forwards TERM to the workload, whose default action ends it (143).
/// Only the order of magnitude of the durations is checked: a behaviour, not a benchmark.
async fn stop_a_workload_without_a_term_handler(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    let pod = testbed.pod("stop", handler.name()).run().await?;
    let container = pod
        .container("sleeper")
        .command(["sleep", "1000"])
        .run()
        .await?;
    wait_for_cmdline(&container, "sleep 1000").await?;

    let started = Instant::now();
    container.stop(GRACE).await?;
    let took = started.elapsed();
    let status = container.status().await?;
    eprintln!(
        "StopContainer under {} took {took:?}, exit code {}",
        handler.name(),
        status.exit_code
    );
    match handler {
        Handler::Undertaker => {
            ensure!(
                status.exit_code == 143,
                "exit code {}, expected 143 (TERM)",
                status.exit_code
            );
            ensure!(
                took < Duration::from_secs(5),
                "the stop took {took:?} of a {GRACE:?} grace period"
            );
        }
        Handler::Runc => {
            ensure!(
                status.exit_code == 137,
                "exit code {}, expected 137 (KILL)",
                status.exit_code
            );
            ensure!(
                took >= GRACE - Duration::from_secs(1),
                "the stop took only {took:?}"
            );
        }
    }
    ensure!(
        container.live_processes().is_empty(),
        "left: {:#?}",
        container.live_processes()
    );
    Ok(())
}
