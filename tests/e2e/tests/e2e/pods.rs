//! Pod sandbox lifecycle through CRI.

use std::sync::Arc;

use anyhow::ensure;
use undertaker_e2e::{ensure_nothing_left, per_handler, Handler, IDLE_SCRIPT};
use undertaker_testbed::{api, CgroupDriver, Network, Testbed};

per_handler!(sandbox_run_stop_remove, network_namespace_as_configured);

async fn sandbox_run_stop_remove(testbed: Arc<Testbed>, handler: Handler) -> anyhow::Result<()> {
    let pod = testbed.pod("lifecycle", handler.name()).run().await?;

    let status = pod.status().await?;
    ensure!(
        status.state == api::PodSandboxState::SandboxReady as i32,
        "not ready: {status:?}"
    );
    ensure!(
        status.runtime_handler == handler.name(),
        "runs under {:?}",
        status.runtime_handler
    );
    let listed = testbed
        .cri()
        .runtime()
        .list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
        .await?
        .into_inner()
        .items;
    ensure!(
        listed.iter().any(|sandbox| sandbox.id == pod.id()),
        "not listed: {listed:?}"
    );
    // While the pod runs, the leftover scan must see it: else an empty scan proves nothing.
    let running = testbed.leftovers();
    ensure!(
        running.shims.len() == 1,
        "one shim serves the pod: {running}"
    );
    ensure!(
        running.shims[0].cmdline.contains(handler.shim_binary()),
        "the pod is not served by {}: {running}",
        handler.shim_binary()
    );
    // The release under test serves handler runc with its own shim, not the host's.
    let expected_shim = match handler {
        Handler::Runc => testbed.containerd().program(handler.shim_binary()),
        Handler::Undertaker => testbed.bin_dir().join(handler.shim_binary()),
    };
    let shim_exe = std::fs::read_link(format!("/proc/{}/exe", running.shims[0].pid))?;
    ensure!(
        std::fs::canonicalize(&shim_exe)? == std::fs::canonicalize(&expected_shim)?,
        "the shim is {} instead of {} ({})",
        shim_exe.display(),
        expected_shim.display(),
        testbed.describe()
    );
    ensure!(
        !running.mounts.is_empty()
            && !running.cgroups.is_empty()
            && !running.processes.is_empty()
            && !running.runc_state.is_empty(),
        "the scan misses the running sandbox: {running}"
    );
    // Under systemd's driver the sandbox is a transient unit below the testbed's slice.
    if testbed.cgroup_driver() == CgroupDriver::Systemd {
        let scope = format!("cri-containerd-{}.scope", pod.id());
        ensure!(
            running.cgroups.iter().any(|dir| dir.ends_with(&scope)),
            "no {scope} below {} ({}): {running}",
            testbed.cgroup_parent(),
            testbed.describe()
        );
    }

    pod.stop().await?;
    let status = pod.status().await?;
    ensure!(
        status.state == api::PodSandboxState::SandboxNotready as i32,
        "still ready: {status:?}"
    );

    pod.remove().await?;
    let error = pod
        .status()
        .await
        .expect_err("a removed sandbox has no status");
    ensure!(
        error.to_string().contains("NotFound"),
        "unexpected error: {error}"
    );
    ensure_nothing_left(&testbed, "RemovePodSandbox").await
}

/// The pod's network is the testbed's: the node's (its containers see the host's network
/// namespace), or the pod's own through CNI (`UNDERTAKER_NETWORK=cni`): another namespace,
/// `eth0` with an address of the bridge network's subnet, the pod's name as hostname, and its
/// veth gone from the bridge once the pod is removed (the leftover scan checks).
async fn network_namespace_as_configured(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    let pod = testbed.pod("netns", handler.name()).run().await?;
    let container = pod.container("idle").shell(IDLE_SCRIPT).run().await?;
    let probe = "readlink /proc/self/ns/net; hostname; ip -4 -o addr show dev eth0 2>&1 || true";
    let output = container
        .exec_sync(&["sh", "-c", probe], std::time::Duration::from_secs(60))
        .await?;
    ensure!(output.exit_code == 0, "the probe failed: {output:?}");
    let mut lines = output.stdout.lines();
    let netns = lines.next().unwrap_or_default().to_string();
    let hostname = lines.next().unwrap_or_default().to_string();
    let eth0 = lines.collect::<Vec<_>>().join("\n");
    let host_netns = std::fs::read_link("/proc/self/ns/net")?;
    let host_netns = host_netns.to_string_lossy();
    let on = testbed.describe();
    match testbed.network() {
        Network::Host => {
            ensure!(
                netns == host_netns,
                "not the node's network ({on}): {netns} vs {host_netns}"
            );
        }
        Network::Cni => {
            ensure!(
                netns != host_netns,
                "the node's network namespace ({on}): {netns}"
            );
            let subnet = undertaker_testbed::POD_SUBNET.trim_end_matches(".0/24");
            ensure!(
                eth0.contains(&format!("inet {subnet}.")),
                "no eth0 address in {} ({on}): {eth0}",
                undertaker_testbed::POD_SUBNET
            );
            ensure!(hostname == "netns", "hostname {hostname:?} ({on})");
            let during = testbed.leftovers();
            ensure!(
                during.network_ports.len() == 1,
                "one veth on the bridge while the pod runs: {during}"
            );
        }
    }
    pod.stop_and_remove().await?;
    ensure_nothing_left(&testbed, "RemovePodSandbox").await
}
