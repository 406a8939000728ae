//! The shim of a running pod is SIGKILLed. containerd notices the lost connection and runs
//! the shim binary's `delete` action for each of its tasks: that must kill the container's
//! whole cgroup (the init would otherwise keep running, orphaned) and, under undertaker,
//! report what it killed as leaked, reason `delete`. runc's shim, the contrast, cleans up
//! the same way and reports nothing.

use std::sync::Arc;

use anyhow::ensure;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use undertaker_e2e::{per_handler, Handler};
use undertaker_events::LEAKED;
use undertaker_reliability::host::only_shim;
use undertaker_reliability::host::shim_socket;
use undertaker_reliability::workloads::run_stubborn;
use undertaker_reliability::{wait_until, WAIT};
use undertaker_testbed::{event_lines, records_about, EventRecord, Testbed};

per_handler!(killed_shim_leaves_nothing_running);

/// The socket of the killed shim: containerd's clean-up leaves it in `/run/containerd/s`
/// (for runc's shim as for ours), so the test removes it.
struct DeadShimSocket(std::path::PathBuf);

impl Drop for DeadShimSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The `sleep` arguments of the two TERM-ignoring children and of the main process.
const CHILDREN: [u32; 2] = [1001, 1002];
const MAIN: u32 = 1003;

async fn killed_shim_leaves_nothing_running(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    let events = testbed.collect_events().await?;
    let pod = testbed.pod("shim-killed", handler.name()).run().await?;
    let (container, sleeps) = run_stubborn(&pod, "stubborn", &CHILDREN, MAIN).await?;

    let shim = only_shim(&testbed)?;
    let _socket = DeadShimSocket(shim_socket(&testbed, pod.id())?);
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
    if handler == Handler::Runc {
        // runc's clean-up kills the container too, and reports nothing.
        let ours: Vec<EventRecord> = events
            .records()
            .into_iter()
            .filter(|record| record.topic.starts_with("/undertaker/"))
            .collect();
        ensure!(ours.is_empty(), "undertaker events under runc: {ours:?}");
        pod.stop_and_remove().await?;
        return Ok(());
    }
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
