//! A PID 1 that never reaps, after hundreds of orphans: under undertaker the init reaps them
//! all and reports them in batches; under runc every one stays a zombie.

use std::sync::Arc;

use anyhow::ensure;
use undertaker_e2e::{per_handler, Handler};
use undertaker_testbed::{event_lines, records_about, EventRecord, Testbed};

use crate::support::{
    marked_container, marker, wait_for_cmdline, wait_for_marked, wait_until, WAIT,
};

per_handler!(orphans_of_a_pid1_that_never_reaps);

const ORPHANS: usize = 300;

/// Each orphan is a marked `sleep` whose parent exits at once, so it is reparented to the
/// PID namespace's init; then the shell execs a `sleep`, which never reaps. The test kills
/// the orphans from the host once all of them run, so exactly 300 die after the exec.
async fn orphans_of_a_pid1_that_never_reaps(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    let events = testbed.collect_events().await?;
    let marker = marker(&testbed, "orphan");
    let pod = testbed.pod("zombies", handler.name()).run().await?;
    let body = format!("for i in $(seq {ORPHANS}); do ( $M/sleep 7301 & ); done; exec sleep 1000");
    let container = marked_container(&pod, "orphans", &marker, &body)
        .run()
        .await?;

    let orphans = wait_for_marked(|| container.live_processes(), &marker, ORPHANS).await?;
    let main_pid = container.pid().await?;
    // The shell has exec'd the sleep that never reaps.
    wait_for_cmdline(&container, "sleep 1000").await?;
    ensure!(
        container.zombies().is_empty(),
        "zombies before any orphan died: {:#?}",
        container.zombies()
    );
    for orphan in &orphans {
        orphan.kill();
    }
    let is_orphan = |pid: i32| orphans.iter().any(|orphan| orphan.pid == pid);

    match handler {
        Handler::Runc => {
            // Every orphan stays a zombie of the never-reaping PID 1.
            let zombies = wait_until("every orphan to be a zombie", WAIT, || {
                let zombies = container.zombies();
                (zombies.iter().filter(|z| is_orphan(z.pid)).count() == ORPHANS).then_some(zombies)
            })
            .await?;
            ensure!(
                zombies.len() == ORPHANS,
                "{} zombies in the container, expected {ORPHANS}",
                zombies.len()
            );
            ensure!(
                zombies.iter().all(|zombie| zombie.ppid == main_pid),
                "the zombies' parent is not PID 1 ({main_pid}): {zombies:#?}"
            );
            let ours = events
                .records()
                .into_iter()
                .filter(|record| record.topic.starts_with("/undertaker/"))
                .count();
            ensure!(ours == 0, "runc published undertaker events");
        }
        Handler::Undertaker => {
            // The init reaps every orphan: none is left, not even as a zombie.
            wait_until("every orphan to be reaped", WAIT, || {
                container
                    .host_processes()
                    .iter()
                    .all(|process| !is_orphan(process.pid))
                    .then_some(())
            })
            .await?;
            let zombies = container.zombies();
            ensure!(zombies.is_empty(), "zombies: {zombies:#?}");

            // Reported in batches (far fewer events than orphans), with how each one ended.
            let reaped = |records: &[EventRecord]| {
                records_about(records, "/undertaker/reaped", container.id())
            };
            let total = |records: &[EventRecord]| -> u64 {
                reaped(records).iter().map(|r| r.total.unwrap_or(0)).sum()
            };
            let records = events
                .wait_for(&format!("{ORPHANS} reaps reported"), WAIT, |records| {
                    total(records) >= ORPHANS as u64
                })
                .await?;
            let batches = reaped(&records);
            ensure!(
                total(&records) == ORPHANS as u64,
                "reaped totals add up to {}, expected {ORPHANS}:\n{}",
                total(&records),
                event_lines(&batches)
            );
            ensure!(
                batches.len() < ORPHANS / 10,
                "{} reaped events for {ORPHANS} orphans: not batched",
                batches.len()
            );
            for batch in &batches {
                crate::support::ensure_identity(batch, &pod, container.id(), "orphans")?;
                ensure!(
                    batch.exec_id.is_empty(),
                    "an exec id on the init's reaps: {batch:?}"
                );
                for process in &batch.processes {
                    ensure!(
                        process.comm == "sleep"
                            && process.exit_status == Some(137)
                            && process.signal == Some(9),
                        "an orphan killed by SIGKILL reported as {process:?}"
                    );
                }
            }
        }
    }
    Ok(())
}
