//! The shim of a running pod is SIGKILLed. containerd notices the lost connection and runs
//! the shim binary's `delete` action for each of its tasks: that must kill the container's
//! whole cgroup (the init would otherwise keep running, orphaned) and report what it killed
//! as leaked, reason `delete`.

use std::sync::Arc;

use anyhow::ensure;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use undertaker_events::LEAKED;
use undertaker_reliability::host::only_shim;
use undertaker_reliability::workloads::run_stubborn;
use undertaker_reliability::{undertaker_only, wait_until, WAIT};
use undertaker_testbed::{event_lines, records_about, EventRecord, Testbed};

undertaker_only!(killed_shim_leaves_nothing_running);

/// The `sleep` arguments of the two TERM-ignoring children and of the main process.
const CHILDREN: [u32; 2] = [1001, 1002];
const MAIN: u32 = 1003;

async fn killed_shim_leaves_nothing_running(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    let events = testbed.collect_events().await?;
    let pod = testbed.pod("shim-killed", "undertaker").run().await?;
    let (container, sleeps) = run_stubborn(&pod, "stubborn", &CHILDREN, MAIN).await?;

    let shim = only_shim(&testbed)?;
    kill(Pid::from_raw(shim), Signal::SIGKILL)?;

    wait_until("the container's cgroup to be empty", WAIT, || {
        container.live_processes().is_empty().then_some(())
    })
    .await?;
    // CRI's own wait on the task fails with the connection and records its "unknown" exit
    // code (255) first; the delete action's status comes with containerd's `/tasks/exit`.
    container.wait_exited(WAIT).await?;
    let exit_of_cleanup = |records: &[EventRecord]| {
        records_about(records, "/tasks/exit", container.id())
            .iter()
            .flat_map(|record| record.processes.clone())
            .any(|process| process.exit_status == Some(137))
    };
    events
        .wait_for(
            "/tasks/exit with the delete action's status 137",
            WAIT,
            exit_of_cleanup,
        )
        .await?;
    let reported = |records: &[EventRecord]| -> Vec<String> {
        records_about(records, LEAKED, container.id())
            .iter()
            .filter(|record| record.reason.as_deref() == Some("delete"))
            .flat_map(|record| record.processes.clone())
            .filter(|process| process.killed_by.as_deref() == Some("cgroup"))
            .map(|process| process.cmdline)
            .collect()
    };
    let records = events
        .wait_for(
            "a leaked event (reason delete) naming the three sleeps",
            WAIT,
            |records| {
                let named = reported(records);
                sleeps.iter().all(|sleep| named.contains(sleep))
            },
        )
        .await?;
    eprintln!(
        "after the shim's SIGKILL:\n{}",
        event_lines(&records_about(&records, LEAKED, container.id()))
    );
    let named = reported(&records);
    for sleep in &sleeps {
        let times = named.iter().filter(|name| *name == sleep).count();
        ensure!(times == 1, "{sleep} reported {times} times: {named:?}");
    }

    pod.stop_and_remove().await?;
    Ok(())
}
