//! containerd restarting while a pod runs: it must reconnect to the running shim.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use undertaker_e2e::{ensure_nothing_left, per_handler, Handler, IDLE_SCRIPT};
use undertaker_testbed::{api, Testbed};

per_handler!(containerd_restart_keeps_pods);

async fn containerd_restart_keeps_pods(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    let pod = testbed.pod("survivor", handler.name()).run().await?;
    let container = pod.container("idle").shell(IDLE_SCRIPT).run().await?;
    let pid_before = container.pid().await?;
    let shims_before = testbed.leftovers().shims;

    testbed.restart_containerd().await?;

    let listed = testbed
        .cri()
        .runtime()
        .list_containers(api::ListContainersRequest { filter: None })
        .await?
        .into_inner()
        .containers;
    let entry = listed.iter().find(|listed| listed.id == container.id());
    ensure!(
        entry.is_some_and(|entry| entry.state == api::ContainerState::ContainerRunning as i32),
        "container not listed as running after the restart: {listed:?}"
    );
    ensure!(
        container.pid().await? == pid_before,
        "the container's process changed"
    );
    ensure!(
        testbed.leftovers().shims == shims_before,
        "the shim was replaced"
    );
    let output = container
        .exec_sync(&["echo", "still-here"], Duration::from_secs(20))
        .await?;
    ensure!(
        output.stdout == "still-here\n",
        "exec after restart: {output:?}"
    );

    container.stop(Duration::from_secs(10)).await?;
    let status = container.status().await?;
    ensure!(
        status.state == api::ContainerState::ContainerExited as i32,
        "not stopped: {status:?}"
    );
    container.remove().await?;
    pod.stop_and_remove().await?;
    ensure_nothing_left(&testbed, "stopping and removing after the restart").await
}
