//! A workload makes 20,000 orphans as fast as its shell can fork, far more than the report
//! channel (a pipe) holds while the shim reads it. The init reaps every one; each reap
//! record the full pipe made it drop is counted: the reaped totals and the dropped counts
//! of the published events must add up to exactly 20,000, in batches.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use undertaker_events::REAPED;
use undertaker_reliability::undertaker_only;
use undertaker_reliability::workloads::orphan_flood_script;
use undertaker_reliability::WAIT;
use undertaker_testbed::{event_lines, records_about, EventRecord, Testbed};

undertaker_only!(twenty_thousand_orphans_are_all_accounted_for);

const ORPHANS: u64 = 20_000;
/// How long the shell may take to fork 40,000 times (each loop turn is a subshell and its
/// background child) on a busy 2-core machine.
const FLOOD_TIMEOUT: Duration = Duration::from_secs(240);

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

    let accounted = |records: &[EventRecord]| -> (u64, u64, usize) {
        let batches = records_about(records, REAPED, container.id());
        let total = batches.iter().map(|r| r.total.unwrap_or(0)).sum();
        let dropped = batches.iter().map(|r| r.dropped.unwrap_or(0)).sum();
        (total, dropped, batches.len())
    };
    let records = events
        .wait_for(
            &format!("reaped + dropped to reach {ORPHANS}"),
            WAIT,
            |records| {
                let (total, dropped, _) = accounted(records);
                total + dropped >= ORPHANS
            },
        )
        .await?;
    let (total, dropped, batches) = accounted(&records);
    eprintln!("{ORPHANS} orphans: {total} reported reaped, {dropped} dropped, in {batches} events");
    ensure!(
        total + dropped == ORPHANS,
        "reaped {total} + dropped {dropped} != {ORPHANS}:\n{}",
        event_lines(&records_about(&records, REAPED, container.id()))
    );
    ensure!(
        batches < (ORPHANS / 100) as usize,
        "{batches} reaped events for {ORPHANS} orphans: not batched"
    );
    let zombies = container.zombies();
    ensure!(zombies.is_empty(), "zombies left: {}", zombies.len());

    // The shim kept up: it still serves the pod.
    let next = pod.container("after").shell("exit 4").run().await?;
    ensure!(next.wait_exited(WAIT).await? == 4, "the next container");
    pod.stop_and_remove().await?;
    Ok(())
}
