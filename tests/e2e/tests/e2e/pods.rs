//! Pod sandbox lifecycle through CRI.

use std::sync::Arc;

use anyhow::ensure;
use undertaker_e2e::{ensure_nothing_left, per_handler, Handler};
use undertaker_testbed::{api, Testbed};

per_handler!(sandbox_run_stop_remove);

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
