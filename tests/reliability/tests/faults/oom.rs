//! A container over its memory limit is OOM-killed: containerd must get `/tasks/oom` for
//! it and CRI must report reason `OOMKilled`, under undertaker as under runc (where the
//! memory hog is PID 1 itself; under undertaker it is the init's child).
//!
//! The hog starts only once StartContainer has returned, when the test creates a file in a
//! mounted host directory: containerd's runc shim starts watching the container's OOM events
//! after `runc start`, so a hog that allocated at once could be killed before the watch began
//! (CI16, under load: runc's exit 137 came with no `/tasks/oom`).

use std::sync::Arc;

use anyhow::ensure;
use undertaker_e2e::{per_handler, Handler};
use undertaker_reliability::WAIT;
use undertaker_testbed::{api, records_about, Testbed};

per_handler!(memory_hog_is_oom_killed);

const LIMIT: i64 = 32 << 20;
const OOM_TOPIC: &str = "/tasks/oom";
/// Where the container sees the host directory the test starts the hog through.
const TRIGGER: &str = "/trigger";

async fn memory_hog_is_oom_killed(testbed: Arc<Testbed>, handler: Handler) -> anyhow::Result<()> {
    let events = testbed
        .collect_events_on(&[OOM_TOPIC, "/tasks/exit"])
        .await?;
    let pod = testbed.pod("oom", handler.name()).run().await?;
    let trigger = tempfile::tempdir()?;
    // dd's 64 MiB buffer, filled from /dev/zero, is twice the limit.
    let container = pod
        .container("hog")
        .shell(&format!(
            "until [ -e {TRIGGER}/go ]; do sleep 0.05; done; \
             exec dd if=/dev/zero of=/dev/null bs=64M count=1"
        ))
        .mount(TRIGGER, trigger.path().to_string_lossy())
        .resources(api::LinuxContainerResources {
            memory_limit_in_bytes: LIMIT,
            ..Default::default()
        })
        .run()
        .await?;
    std::fs::write(trigger.path().join("go"), "")?;
    let code = container.wait_exited(WAIT).await?;
    ensure!(code == 137, "exit code {code}, expected 137 (SIGKILL)");
    events
        .wait_for("/tasks/oom about the container", WAIT, |records| {
            !records_about(records, OOM_TOPIC, container.id()).is_empty()
        })
        .await?;
    let status = container.status().await?;
    ensure!(
        status.reason == "OOMKilled",
        "CRI reason {:?}, expected OOMKilled (message {:?})",
        status.reason,
        status.message
    );
    pod.stop_and_remove().await?;
    Ok(())
}
