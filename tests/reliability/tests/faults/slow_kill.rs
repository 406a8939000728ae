//! The OCI runtime's `kill` answers late: both handlers run a wrapper around the runtime
//! that waits 1 s after the signal went. A container that exits on SIGTERM then exits while
//! the Kill of its StopContainer is still in flight, and containerd deletes its task.
//! containerd 1.6 closes a container's connection to the shim right after that Delete and
//! the Shutdown that follows it, so a shim whose Delete answers first loses the Kill's answer
//! and the stop fails with `failed to stop container ...: ttrpc: closed` (issue 10; seen
//! under load in CI with the real runc; 3 of 3 stops here before the fix). Every stop must
//! succeed under both handlers: undertaker's Delete waits for the Kill; containerd's runc
//! shim did not fail here either (its stops took 2.1-2.2 s, undertaker's 1.1-1.2 s).

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use undertaker_e2e::{run_scenario_with, Handler, IDLE_SCRIPT};
use undertaker_reliability::{wait_for_commands, WAIT};
use undertaker_testbed::{OciRuntime, Testbed, TestbedOptions};

/// Containers stopped one after the other in one long-lived pod.
const ROUNDS: usize = 3;
/// StopContainer's grace period: the container exits on the TERM long before.
const GRACE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undertaker() {
    with_slow_kill(Handler::Undertaker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runc() {
    with_slow_kill(Handler::Runc).await;
}

async fn with_slow_kill(handler: Handler) {
    let name = format!("slow_kill::{}", handler.name());
    let wrapper_dir = tempfile::tempdir().expect("a temp dir for the runtime wrapper");
    let runtime = OciRuntime::from_env().expect("the OCI runtime");
    let wrapper = wrapper_dir.path().join("slow-kill-runtime");
    std::fs::write(
        &wrapper,
        wrapper_script(&runtime.binary.display().to_string()),
    )
    .and_then(|()| std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)))
    .expect("write the runtime wrapper");
    let options = TestbedOptions {
        oci_runtime: wrapper.display().to_string(),
        ..TestbedOptions::default()
    };
    run_scenario_with(&name, handler, options, stops_with_a_slow_kill).await;
}

/// `runtime`, but `kill` answers 1 s after it signalled.
fn wrapper_script(runtime: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # {runtime}, except that kill answers 1 s after the signal went.\n\
         for arg in \"$@\"; do\n\
         \x20   if [ \"$arg\" = kill ]; then\n\
         \x20       {runtime} \"$@\"\n\
         \x20       status=$?\n\
         \x20       /bin/sleep 1\n\
         \x20       exit $status\n\
         \x20   fi\n\
         done\n\
         exec {runtime} \"$@\"\n"
    )
}

async fn stops_with_a_slow_kill(testbed: Arc<Testbed>, handler: Handler) -> anyhow::Result<()> {
    let pod = testbed.pod("slow-kill", handler.name()).run().await?;
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let container = pod
            .container(&format!("app-{round}"))
            .shell(IDLE_SCRIPT)
            .run()
            .await?;
        // The TERM trap is set once the script has started its sleep.
        wait_for_commands(&container, &["sleep 3600"]).await?;
        let started = Instant::now();
        let stopped = container.stop(GRACE).await;
        eprintln!(
            "slow_kill: {} round {round}: StopContainer returned after {:?}: {}",
            handler.name(),
            started.elapsed(),
            stopped
                .as_ref()
                .map_or_else(|e| e.to_string(), |()| "ok".into())
        );
        if let Err(error) = stopped {
            failures.push(format!("round {round}: {error}"));
            // Let the container finish stopping before it is removed.
            container.stop(GRACE).await.ok();
        }
        let code = container
            .wait_exited(WAIT)
            .await
            .with_context(|| format!("round {round}: the container's exit"))?;
        ensure!(
            code == 0,
            "round {round}: exit code {code}, expected 0 (its TERM trap)"
        );
        container.remove().await?;
    }
    ensure!(
        failures.is_empty(),
        "{} of {ROUNDS} stops failed: {failures:#?}",
        failures.len()
    );
    Ok(())
}
