//! containerd restarts while ten pods run. Five containers are asked (SIGUSR1) to exit on
//! their own just before the restart, so they end while containerd is down or coming up;
//! the other five are stopped afterwards. Every shim must be the same one, every exit code
//! the workload's own, and every pod stoppable and removable.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use futures::stream::{self, StreamExt, TryStreamExt};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use undertaker_reliability::workloads::{exit_on_term_script, exit_on_usr1_script};
use undertaker_reliability::{undertaker_only, wait_for_commands, WAIT};
use undertaker_testbed::{api, Container, Pod, Testbed};

undertaker_only!(ten_running_pods_survive_a_containerd_restart);

const PODS: usize = 10;
/// Pods below this index are stopped after the restart; the others end on their own.
const STOPPED: usize = 5;
const GRACE: Duration = Duration::from_secs(10);

/// The exit code pod `index`'s container must end with.
fn exit_code(index: usize) -> i32 {
    if index < STOPPED {
        10 + index as i32
    } else {
        20 + index as i32
    }
}

async fn start_pod(testbed: &Testbed, index: usize) -> anyhow::Result<(Pod, Container)> {
    let pod = testbed
        .pod(&format!("restart-{index}"), "undertaker")
        .run()
        .await?;
    let script = if index < STOPPED {
        exit_on_term_script(exit_code(index))
    } else {
        exit_on_usr1_script(exit_code(index), "0.5")
    };
    let container = pod.container("worker").shell(&script).run().await?;
    // The trap is set once the shell has started its sleep.
    wait_for_commands(&container, &["sleep 1000"]).await?;
    Ok((pod, container))
}

async fn ten_running_pods_survive_a_containerd_restart(
    testbed: Arc<Testbed>,
) -> anyhow::Result<()> {
    let pods: Vec<(Pod, Container)> = stream::iter(0..PODS)
        .map(|index| start_pod(&testbed, index))
        .buffered(4)
        .try_collect()
        .await?;
    let shims_before = shim_pids(&testbed);
    ensure!(
        shims_before.len() == PODS,
        "{} shims for {PODS} pods",
        shims_before.len()
    );

    for (_, container) in &pods[STOPPED..] {
        // The init forwards it to the shell, whose trap exits half a second later.
        kill(Pid::from_raw(container.pid().await?), Signal::SIGUSR1)?;
    }
    testbed.restart_containerd().await?;

    ensure!(
        shim_pids(&testbed) == shims_before,
        "the shims changed across the restart"
    );
    for (index, (_, container)) in pods.iter().enumerate().skip(STOPPED) {
        let code = container.wait_exited(WAIT).await?;
        ensure!(
            code == exit_code(index),
            "pod {index} exited on its own with {code}, expected {}",
            exit_code(index)
        );
    }
    for (index, (_, container)) in pods.iter().enumerate().take(STOPPED) {
        let status = container.status().await?;
        ensure!(
            status.state == api::ContainerState::ContainerRunning as i32,
            "pod {index}'s container is not running after the restart: {status:?}"
        );
        container.stop(GRACE).await?;
        let code = container.status().await?.exit_code;
        ensure!(
            code == exit_code(index),
            "pod {index} stopped with {code}, expected {}",
            exit_code(index)
        );
    }
    stream::iter(&pods)
        .map(|(pod, container)| async move {
            container.remove().await?;
            pod.stop_and_remove().await?;
            anyhow::Ok(())
        })
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

fn shim_pids(testbed: &Testbed) -> Vec<i32> {
    let mut pids: Vec<i32> = testbed
        .leftovers()
        .shims
        .into_iter()
        .map(|shim| shim.pid)
        .collect();
    pids.sort_unstable();
    pids
}
