//! A workload makes 20,000 orphans as fast as its shell can fork, far more than the report
//! channel (a pipe) holds while the shim reads it. The init reaps every one; each reap
//! record the full pipe made it drop is counted; an orphan still running when the main
//! process exits is terminated and reported leaked. The reaped totals, the dropped counts
//! and the leaked processes of the published events must add up to exactly 20,000, the
//! reaps in batches.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use undertaker_events::{LEAKED, REAPED};
use undertaker_reliability::undertaker_only;
use undertaker_reliability::workloads::orphan_flood_script;
use undertaker_reliability::{wait_until, WAIT};
use undertaker_testbed::{records_about, EventRecord, Testbed};

undertaker_only!(twenty_thousand_orphans_are_all_accounted_for);

const ORPHANS: u64 = 20_000;
/// How long the shell may take to fork 40,000 times (each loop turn is a subshell and its
/// background child) on a busy 2-core machine.
const FLOOD_TIMEOUT: Duration = Duration::from_secs(240);

/// What the events say became of the orphans.
#[derive(Debug)]
struct Accounted {
    reaped: u64,
    dropped: u64,
    leaked: u64,
    /// Reaped events (batches).
    events: usize,
}

impl Accounted {
    fn sum(&self) -> u64 {
        self.reaped + self.dropped + self.leaked
    }
}

async fn twenty_thousand_orphans_are_all_accounted_for(
    testbed: Arc<Testbed>,
) -> anyhow::Result<()> {
    let events = testbed.collect_events().await?;
    let pod = testbed.pod("flood", "undertaker").run().await?;
    let container = pod
        .container("flood")
        .shell(&orphan_flood_script(ORPHANS as usize))
        .run()
        .await?;
    let code = container.wait_exited(FLOOD_TIMEOUT).await?;
    ensure!(code == 0, "the flood exited {code}, expected 0");

    // Each orphan is reaped (and reported, or counted as dropped), or, if it was still
    // running when the main process exited, terminated and reported leaked.
    let accounted = |records: &[EventRecord]| -> Accounted {
        let batches = records_about(records, REAPED, container.id());
        let leaked = records_about(records, LEAKED, container.id());
        Accounted {
            reaped: batches.iter().map(|r| r.total.unwrap_or(0)).sum(),
            dropped: batches.iter().map(|r| r.dropped.unwrap_or(0)).sum(),
            leaked: leaked.iter().map(|r| r.processes.len() as u64).sum(),
            events: batches.len(),
        }
    };
    // Polled by hand: the collector's own timeout message would print 20,000 processes.
    let counts = wait_until(
        &format!("reaped + dropped + leaked to reach {ORPHANS}"),
        WAIT,
        || {
            let counts = accounted(&events.records());
            (counts.sum() >= ORPHANS).then_some(counts)
        },
    )
    .await
    .map_err(|error| error.context(format!("{:?}", accounted(&events.records()))))?;
    eprintln!("{ORPHANS} orphans: {counts:?}");
    ensure!(
        counts.sum() == ORPHANS,
        "{counts:?} do not add up to {ORPHANS}"
    );
    ensure!(
        counts.events < (ORPHANS / 100) as usize,
        "{} reaped events for {ORPHANS} orphans: not batched",
        counts.events
    );
    let zombies = container.zombies();
    ensure!(zombies.is_empty(), "zombies left: {}", zombies.len());

    // The shim kept up: it still serves the pod.
    let next = pod.container("after").shell("exit 4").run().await?;
    ensure!(next.wait_exited(WAIT).await? == 4, "the next container");
    pod.stop_and_remove().await?;
    Ok(())
}
