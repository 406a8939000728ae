//! Container stats and resource updates through CRI.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use undertaker_e2e::{per_handler, Handler, IDLE_SCRIPT};
use undertaker_testbed::{api, Container, Testbed};

per_handler!(
    container_stats_report_cpu_and_memory,
    update_resources_sets_the_memory_limit,
    an_oom_kill_is_the_containers_exit_reason
);

/// What kubelet reads from ContainerStats: CPU time, and memory working set, RSS and the
/// bytes available below the limit (CRI computes `limit - working set`).
async fn container_stats_report_cpu_and_memory(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    const LIMIT: u64 = 256 * 1024 * 1024;
    let pod = testbed.pod("stats", handler.name()).run().await?;
    // Use some CPU and memory, so none of the numbers may be zero.
    let container = pod
        .container("busy")
        .shell("dd if=/dev/zero of=/tmp/fill bs=1M count=8 2>/dev/null; trap 'exit 0' TERM; sleep 3600 & wait")
        .resources(api::LinuxContainerResources {
            memory_limit_in_bytes: LIMIT as i64,
            ..Default::default()
        })
        .run()
        .await?;
    let value = |value: Option<&api::UInt64Value>| value.map_or(0, |value| value.value);
    let started = Instant::now();
    loop {
        let stats = container.stats().await?;
        let memory = stats.memory.unwrap_or_default();
        let working_set = value(memory.working_set_bytes.as_ref());
        let cpu = value(
            stats
                .cpu
                .as_ref()
                .and_then(|cpu| cpu.usage_core_nano_seconds.as_ref()),
        );
        if working_set > 0 && cpu > 0 {
            let rss = value(memory.rss_bytes.as_ref());
            let available = value(memory.available_bytes.as_ref());
            ensure!(rss > 0, "no RSS in {stats:?}");
            ensure!(
                available.checked_add(working_set) == Some(LIMIT),
                "available {available} + working set {working_set} is not the {LIMIT} limit: {stats:?}"
            );
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(20) {
            bail!("stats never showed memory and CPU use: {stats:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn update_resources_sets_the_memory_limit(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    const LIMIT: i64 = 64 * 1024 * 1024;
    let pod = testbed.pod("update", handler.name()).run().await?;
    let container = pod.container("idle").shell(IDLE_SCRIPT).run().await?;
    let before = memory_limit(&container).await?;
    ensure!(before != LIMIT, "the limit is already {LIMIT}");

    container
        .update_resources(api::LinuxContainerResources {
            memory_limit_in_bytes: LIMIT,
            cpu_shares: 512,
            ..Default::default()
        })
        .await?;
    let after = memory_limit(&container).await?;
    ensure!(
        after == LIMIT,
        "memory limit {after} after the update, expected {LIMIT}"
    );
    Ok(())
}

/// The memory limit of the container's cgroup, read on the host: v1 `memory.limit_in_bytes`,
/// or v2 `memory.max` where memory is on the unified hierarchy.
async fn memory_limit(container: &Container) -> anyhow::Result<i64> {
    let pid = container.pid().await?;
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .context("read /proc/<pid>/cgroup")?;
    // cgroup v1 (or hybrid): the memory controller's own hierarchy.
    let v1_memory = cgroups.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        controllers
            .split(',')
            .any(|controller| controller == "memory")
            .then(|| format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"))
    });
    if let Some(file) = v1_memory {
        let text = std::fs::read_to_string(&file).with_context(|| format!("read {file}"))?;
        return text
            .trim()
            .parse()
            .with_context(|| format!("parse {file}: {text:?}"));
    }
    // cgroup v2 only: "max" means no limit.
    if let Some(path) = cgroups.lines().find_map(|line| line.strip_prefix("0::")) {
        let file = format!("/sys/fs/cgroup{path}/memory.max");
        let text = std::fs::read_to_string(&file).with_context(|| format!("read {file}"))?;
        return Ok(text.trim().parse().unwrap_or(i64::MAX));
    }
    bail!("no memory cgroup for pid {pid} in {cgroups:?}")
}

/// A container that outgrows its memory limit is killed by the kernel's OOM killer: exit 137,
/// and reason `OOMKilled`, which CRI sets only from the shim's `/tasks/oom` event (v1: the
/// memory cgroup's eventfd; v2: `memory.events`' `oom_kill`). Under undertaker the killed
/// process is the init's child, and the init passes its death on as 137.
async fn an_oom_kill_is_the_containers_exit_reason(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    const LIMIT: i64 = 32 * 1024 * 1024;
    let pod = testbed.pod("oom", handler.name()).run().await?;
    // `tail` keeps its last line whole, and /dev/zero has no newline: it grows until killed.
    let container = pod
        .container("hog")
        .shell("tail /dev/zero")
        .resources(api::LinuxContainerResources {
            memory_limit_in_bytes: LIMIT,
            memory_swap_limit_in_bytes: LIMIT,
            ..Default::default()
        })
        .run()
        .await?;
    let code = container.wait_exited(Duration::from_secs(120)).await?;
    // containerd may handle the exit a moment before the OOM event.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = container.status().await?;
        if status.reason == "OOMKilled" || Instant::now() >= deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ensure!(
        code == 137 && status.reason == "OOMKilled",
        "exit {code}, reason {:?} ({}), on {}",
        status.reason,
        status.message,
        testbed.describe()
    );
    Ok(())
}
