//! A process that survives SIGKILL, made for real: moved into a frozen cgroup-v1 freezer
//! sub-cgroup of its container's cgroup. It is reported as unkillable (pid, comm, state,
//! wchan); StopContainer and RemoveContainer still complete within a bound; then the test
//! thaws it and cleans up what it held.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use undertaker_testbed::{
    cgroup_dirs, event_lines, records_about, remove_cgroup_tree, EventRecord, FrozenProcess,
    HostProcess, PidMode, Testbed,
};

use crate::support::{
    ensure_identity, marked_container, marker, wait_for_marked, wait_until, DRAIN_ANNOTATION,
    DRAIN_TIMEOUT, WAIT,
};

undertaker_e2e::undertaker_only!(
    frozen_process_in_its_own_pid_namespace,
    frozen_process_in_a_shared_pid_namespace,
);

/// The stop's grace period.
const GRACE: Duration = Duration::from_secs(2);
/// How long StopContainer and RemoveContainer may take, with an unkillable process in the
/// container, before the test calls them hung (CRI itself would wait minutes).
const BOUND: Duration = Duration::from_secs(30);

async fn frozen_process_in_its_own_pid_namespace(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    frozen_process(testbed, PidMode::Container).await
}

async fn frozen_process_in_a_shared_pid_namespace(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    frozen_process(testbed, PidMode::Pod).await
}

async fn frozen_process(testbed: Arc<Testbed>, pid_mode: PidMode) -> anyhow::Result<()> {
    let events = testbed.collect_events().await?;
    let marker = marker(&testbed, "frozen");
    let pod = testbed
        .pod("unkillable", "undertaker")
        .pid_mode(pid_mode)
        .annotation(DRAIN_ANNOTATION, DRAIN_TIMEOUT)
        .run()
        .await?;
    let container = marked_container(&pod, "freezer", &marker, "child - 1007; exec sleep 1000")
        .run()
        .await?;
    let marked = wait_for_marked(|| container.live_processes(), &marker, 1).await?;
    let frozen = FrozenProcess::freeze(&container, marked[0].pid)?;
    let pid = frozen.pid();
    let init = container.pid().await?;

    tokio::time::timeout(BOUND, container.stop(GRACE))
        .await
        .with_context(|| {
            format!(
                "StopContainer still running after {BOUND:?}; the container's init {}",
                describe(init)
            )
        })??;
    let unkillable = |records: &[EventRecord]| {
        let mut found = records_about(records, "/undertaker/unkillable", container.id());
        found.retain(|r| r.processes.iter().any(|p| p.host_pid == Some(pid as u32)));
        found
    };
    let records = events
        .wait_for(
            "an unkillable event naming the frozen process",
            WAIT,
            |records| !unkillable(records).is_empty(),
        )
        .await?;
    let reported = unkillable(&records);
    eprintln!("unkillable events:\n{}", event_lines(&reported));
    let record = &reported[0];
    ensure_identity(record, &pod, container.id(), container.name())?;
    let process = record
        .processes
        .iter()
        .find(|p| p.host_pid == Some(pid as u32))
        .expect("filtered on it");
    ensure!(
        process.comm == "sleep" && !process.state.is_empty() && !process.wchan.is_empty(),
        "reported as {process:?}, expected comm sleep with a state and a wchan"
    );

    tokio::time::timeout(BOUND, container.remove())
        .await
        .with_context(|| {
            format!(
                "RemoveContainer still running after {BOUND:?}; the container's init {}",
                describe(init)
            )
        })??;
    // It really survived all of that: the test proves something only if it did.
    let still = HostProcess::read(pid).filter(|p| !p.is_zombie());
    ensure!(
        still.is_some(),
        "the frozen process {pid} died while frozen"
    );

    frozen.thaw()?;
    wait_until(
        "the thawed process to die of its pending SIGKILL",
        WAIT,
        || {
            HostProcess::read(pid)
                .is_none_or(|p| p.is_zombie())
                .then_some(())
        },
    )
    .await?;
    drop(frozen);
    let path = container.cgroup_path();
    if pid_mode == PidMode::Container {
        // The frozen process held the container's init in its pid namespace's teardown; the
        // shim deletes the container from the runtime once the init is gone, and the
        // runtime removes the cgroups.
        wait_until(
            "the shim to delete the released container and its cgroups to go",
            WAIT,
            || cgroup_dirs(&path).is_empty().then_some(()),
        )
        .await
        .with_context(|| format!("cgroups still there: {:#?}", cgroup_dirs(&path)))?;
    } else {
        // The runtime could not remove cgroups a frozen process held; nobody else will.
        let held = cgroup_dirs(&path);
        if !held.is_empty() {
            eprintln!("cgroups left by the removal, removed now: {held:#?}");
        }
        let kept = remove_cgroup_tree(&path);
        ensure!(kept.is_empty(), "cannot remove {kept:?}");
    }
    Ok(())
}

/// What /proc says about `pid` (state and where it sleeps), for failure messages.
fn describe(pid: i32) -> String {
    match HostProcess::read(pid) {
        Some(process) => {
            let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
            format!(
                "(pid {pid}, {}) is in state {} at {wchan:?}",
                process.comm, process.state
            )
        }
        None => format!("(pid {pid}) is gone"),
    }
}
