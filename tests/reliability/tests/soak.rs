//! Soak: 300 container create/start/stop/remove cycles, alternating the leak and the zombie
//! workloads, inside one pod that runs throughout, so one shim serves them all. Afterwards
//! nothing of the 300 is left (processes, mounts, cgroups, runc state, task bundles), the
//! shim's open file count has not grown, and every leak and every orphan was reported.
//! Then whole pods: 60 pod cycles, each its own shim, which must exit and take its socket
//! along.
//!
//! `cargo test -p undertaker-reliability --test soak` (root; see docs/reliability.md).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use futures::stream::{self, StreamExt, TryStreamExt};
use undertaker_e2e::{ensure_nothing_left, run_scenario, Handler, IDLE_SCRIPT};
use undertaker_events::{LEAKED, REAPED};
use undertaker_reliability::host::{fd_count, live, only_shim, shim_socket, task_bundles};
use undertaker_reliability::workloads::{
    zombie_script, DRAIN_ANNOTATION, LEAK_LEFTOVER, LEAK_SCRIPT,
};
use undertaker_reliability::WAIT;
use undertaker_testbed::{
    event_lines, processes_in_cgroup, records_about, Container, EventCollector, EventRecord, Pod,
    Testbed, CRI_NAMESPACE,
};

/// Container cycles in the soak.
const CYCLES: usize = 300;
/// Cycles in flight at once: enough to keep both cores of the machine busy.
const CONCURRENCY: usize = 6;
/// Orphans each zombie-workload container leaves to its init.
const ORPHANS: u64 = 10;
/// The grace period of each stop: undertaker's init stops `sleep` at once with the TERM.
const GRACE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_cycles_in_one_long_lived_pod() {
    run_scenario(
        "soak::container_cycles_in_one_long_lived_pod",
        Handler::Undertaker,
        |testbed, _| soak(testbed),
    )
    .await;
}

/// Whole pod cycles (each a shim started and gone).
const POD_CYCLES: usize = 60;
/// Pod cycles in flight at once.
const POD_CONCURRENCY: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_cycles_leave_no_shim_or_socket() {
    run_scenario(
        "soak::pod_cycles_leave_no_shim_or_socket",
        Handler::Undertaker,
        |testbed, _| pod_soak(testbed),
    )
    .await;
}

/// Which workload a cycle runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    /// Exits 0 leaving a TERM-ignoring `sleep` for the init to KILL.
    Leak,
    /// Leaves orphans to the init, then a PID 1 that never reaps is stopped.
    Zombie,
}

async fn soak(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    let events = testbed.collect_events().await?;
    let pod = testbed
        .pod("soak", "undertaker")
        .annotation(DRAIN_ANNOTATION, "100ms")
        .run()
        .await?;
    let keeper = pod.container("keeper").shell(IDLE_SCRIPT).run().await?;
    let shim = only_shim(&testbed)?;
    let fds_at_start = fd_count(shim)?;

    let started = Instant::now();
    let cycles: Vec<(Workload, String)> = stream::iter(0..CYCLES)
        .map(|index| cycle(&pod, &events, index))
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let fds_at_end = fd_count(shim)?;
    eprintln!(
        "soak: {CYCLES} container cycles in {:.1?}; shim {shim} open files {fds_at_start} at \
         start, {fds_at_end} at the end",
        started.elapsed()
    );

    ensure!(
        only_shim(&testbed)? == shim,
        "the pod's shim was replaced during the soak"
    );
    ensure!(
        fds_at_end <= fds_at_start,
        "the shim's open files grew from {fds_at_start} to {fds_at_end} over {CYCLES} cycles"
    );
    ensure_only_pod_and_keeper_left(&testbed, &pod, &keeper)?;
    ensure_every_cycle_reported(&events, &cycles).await?;

    keeper.stop(GRACE).await?;
    keeper.remove().await?;
    pod.stop_and_remove().await?;
    // The scenario runner checks shims, mounts, cgroups, runc state and processes.
    let bundles = task_bundles(&testbed, CRI_NAMESPACE);
    ensure!(bundles.is_empty(), "task bundles left: {bundles:?}");
    Ok(())
}

async fn pod_soak(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    let events = testbed.collect_events().await?;
    let started = Instant::now();
    let cycles: Vec<(Workload, String, PathBuf)> = stream::iter(0..POD_CYCLES)
        .map(|index| pod_cycle(&testbed, &events, index))
        .buffer_unordered(POD_CONCURRENCY)
        .try_collect()
        .await?;
    eprintln!("soak: {POD_CYCLES} pod cycles in {:.1?}", started.elapsed());
    ensure_nothing_left(&testbed, "the pod cycles").await?;
    let sockets: Vec<&PathBuf> = cycles
        .iter()
        .map(|(_, _, socket)| socket)
        .filter(|socket| socket.exists())
        .collect();
    ensure!(sockets.is_empty(), "shim sockets left: {sockets:#?}");
    let bundles = task_bundles(&testbed, CRI_NAMESPACE);
    ensure!(bundles.is_empty(), "task bundles left: {bundles:?}");
    let containers: Vec<(Workload, String)> = cycles
        .into_iter()
        .map(|(workload, id, _)| (workload, id))
        .collect();
    ensure_every_cycle_reported(&events, &containers).await
}

/// A pod with one container cycle in it, stopped and removed; returns the workload, the
/// container id and the pod shim's socket.
async fn pod_cycle(
    testbed: &Testbed,
    events: &EventCollector,
    index: usize,
) -> anyhow::Result<(Workload, String, PathBuf)> {
    let pod = testbed
        .pod(&format!("cycle-{index}"), "undertaker")
        .annotation(DRAIN_ANNOTATION, "100ms")
        .run()
        .await?;
    let socket = shim_socket(testbed, pod.id())?;
    let (workload, id) = cycle(&pod, events, index).await?;
    pod.stop_and_remove().await?;
    Ok((workload, id, socket))
}

/// One create/start/stop/remove cycle; returns the workload and the container id.
async fn cycle(
    pod: &Pod,
    events: &EventCollector,
    index: usize,
) -> anyhow::Result<(Workload, String)> {
    let workload = if index.is_multiple_of(2) {
        Workload::Leak
    } else {
        Workload::Zombie
    };
    let container = match workload {
        Workload::Leak => {
            let container = pod
                .container(&format!("leak-{index}"))
                .shell(LEAK_SCRIPT)
                .run()
                .await?;
            let code = container.wait_exited(WAIT).await?;
            ensure!(
                code == 0,
                "leak container {index} exited {code}, expected 0"
            );
            container.stop(GRACE).await?;
            container
        }
        Workload::Zombie => {
            let container = pod
                .container(&format!("zombie-{index}"))
                .shell(&zombie_script(ORPHANS as usize))
                .run()
                .await?;
            events
                .wait_for(
                    &format!("{ORPHANS} orphans of zombie container {index} reaped"),
                    WAIT,
                    |records| reaped_total(records, container.id()) >= ORPHANS,
                )
                .await?;
            let zombies = container.zombies();
            ensure!(
                zombies.is_empty(),
                "zombies in container {index}: {zombies:#?}"
            );
            container.stop(GRACE).await?;
            let code = container.status().await?.exit_code;
            ensure!(
                code == 143,
                "zombie container {index} stopped with {code}, expected 143 (TERM)"
            );
            container
        }
    };
    container.remove().await?;
    Ok((workload, container.id().to_string()))
}

fn reaped_total(records: &[EventRecord], container_id: &str) -> u64 {
    records_about(records, REAPED, container_id)
        .iter()
        .map(|record| record.total.unwrap_or(0))
        .sum()
}

/// Mid-soak, with 300 containers gone: everything on the host that belongs to the testbed
/// belongs to the pod sandbox or to the keeper.
fn ensure_only_pod_and_keeper_left(
    testbed: &Testbed,
    pod: &Pod,
    keeper: &Container,
) -> anyhow::Result<()> {
    let ours = [pod.id(), keeper.id()];
    let is_ours = |text: &str| ours.iter().any(|id| text.contains(id));
    let leftovers = testbed.leftovers();
    for (what, paths) in [
        ("cgroups", &leftovers.cgroups),
        ("mounts", &leftovers.mounts),
        ("runc state", &leftovers.runc_state),
    ] {
        let foreign: Vec<_> = paths
            .iter()
            .filter(|path| !is_ours(&path.to_string_lossy()))
            .collect();
        ensure!(foreign.is_empty(), "{what} left: {foreign:#?}");
    }
    let expected: BTreeSet<String> = ours.iter().map(|id| id.to_string()).collect();
    let bundles = task_bundles(testbed, CRI_NAMESPACE);
    ensure!(bundles == expected, "task bundles: {bundles:?}");
    let parent = pod.cgroup_parent().trim_end_matches('/');
    let allowed: BTreeSet<i32> = ours
        .iter()
        .flat_map(|id| processes_in_cgroup(&format!("{parent}/{id}")))
        .map(|process| process.pid)
        .collect();
    let strays: Vec<_> = live(processes_in_cgroup(parent))
        .into_iter()
        .filter(|process| !allowed.contains(&process.pid))
        .collect();
    ensure!(strays.is_empty(), "processes left: {strays:#?}");
    Ok(())
}

/// Every leak container's leftover was reported leaked (KILLed after the drain timeout, as
/// its main process exited) and every zombie container's orphans add up to exactly
/// [`ORPHANS`] reaped.
async fn ensure_every_cycle_reported(
    events: &EventCollector,
    cycles: &[(Workload, String)],
) -> anyhow::Result<()> {
    let leak_reported = |records: &[EventRecord], id: &str| {
        records_about(records, LEAKED, id).iter().any(|record| {
            record.reason.as_deref() == Some("main-exit")
                && record.processes.iter().any(|process| {
                    process.cmdline == LEAK_LEFTOVER && process.killed_by.as_deref() == Some("kill")
                })
        })
    };
    let records = events
        .wait_for("every leak reported", WAIT, |records| {
            cycles
                .iter()
                .filter(|(workload, _)| *workload == Workload::Leak)
                .all(|(_, id)| leak_reported(records, id))
        })
        .await?;
    for (workload, id) in cycles {
        if *workload == Workload::Zombie {
            let total = reaped_total(&records, id);
            ensure!(
                total == ORPHANS,
                "container {id}: {total} reaped, expected {ORPHANS}:\n{}",
                event_lines(&records_about(&records, REAPED, id))
            );
        }
    }
    Ok(())
}
