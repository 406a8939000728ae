//! Idle pods (one `sleep 3600` container each): how long CRI takes to start one, how much
//! memory its shim holds at rest, and how long StopContainer takes when the container's
//! command has no SIGTERM handler.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use undertaker_testbed::{Container, Pod, Testbed};

use super::idle_cost::{self, IdleShim};
use super::{millis, pod_shim, remove_pods, wait_for_command};
use crate::handler::{Handler, PerHandler};
use crate::options::Options;
use crate::procfs::{shims_by_id, ShimMemory};
use crate::report::{Goal, Measurement, Unit};

/// The workload: PID 1 sleeps and has no handler for SIGTERM. A signal with the default
/// action sent from outside its PID namespace does nothing to a namespace's PID 1, so under
/// runc only the SIGKILL after the grace period ends it; under undertaker, PID 1 is the init,
/// which forwards SIGTERM to `sleep`.
const IDLE_COMMAND: [&str; 2] = ["sleep", "3600"];

/// Issue 12's goal for each of an idle shim's memory rows (VmRSS, PSS, RssAnon): at most
/// this fraction of runc's shim's.
const ISSUE_12_MEMORY_RATIO: f64 = 0.45;

pub(super) struct IdlePod {
    pub(super) handler: Handler,
    pub(super) pod: Pod,
    pub(super) container: Container,
}

/// Starts `--pods` idle pods per handler (timed), reads their shims' memory, stops
/// `--stop-runs` of their containers per handler (timed), then removes them all.
pub async fn measure(testbed: &Testbed, options: &Options) -> Result<Vec<Measurement>> {
    if options.pods == 0 {
        return Ok(Vec::new());
    }
    let (pods, start) = start_pods(testbed, options).await?;
    let result = measure_started(testbed, options, &pods, start).await;
    eprintln!("removing {} idle pods ...", pods.len());
    let removed = remove_pods(pods.into_iter().map(|idle| idle.pod).collect()).await;
    let measurements = result?;
    removed?;
    Ok(measurements)
}

async fn measure_started(
    testbed: &Testbed,
    options: &Options,
    pods: &[IdlePod],
    start: PerHandler,
) -> Result<Vec<Measurement>> {
    let concurrency = options.concurrency.max(1);
    let how = if concurrency == 1 {
        "one after the other".to_string()
    } else {
        format!("{concurrency} at a time")
    };
    let mut measurements = vec![Measurement {
        key: "pod_start",
        label: format!(
            "pod start: RunPodSandbox + CreateContainer + StartContainer ({} pods per handler, {how})",
            options.pods
        ),
        title: "pod start (CRI)".to_string(),
        unit: Unit::Milliseconds,
        goal: Goal::RatioAtMost(1.0),
        samples: start,
        cap: None,
        detail: None,
    }];
    eprintln!(
        "{} idle pods running; resting {} ms before reading their shims' memory ...",
        pods.len(),
        options.settle_ms
    );
    tokio::time::sleep(Duration::from_millis(options.settle_ms)).await;
    let shims = pod_shims(testbed, pods)?;
    let idle_before = shims
        .iter()
        .map(|shim| IdleShim::read(shim.handler, shim.index, shim.pid))
        .collect::<Result<Vec<_>>>()?;
    let window_started = Instant::now();
    measurements.extend(shim_memory(&shims)?);
    measurements.push(stop_latency(options, pods).await?);
    // The idle window spans the stop row (runc's stops wait out their grace period), for the
    // pods it did not touch, and lasts at least --idle-window.
    let window = Duration::from_secs(options.idle_window);
    let left = window.saturating_sub(window_started.elapsed());
    if !left.is_zero() {
        eprintln!("idle window: {} s more ...", left.as_secs());
        tokio::time::sleep(left).await;
    }
    let busy = stop_runs(options) + 1;
    measurements.extend(idle_cost::rows(
        &idle_before,
        window_started.elapsed(),
        busy,
    )?);
    Ok(measurements)
}

/// Containers stopped in the stop row per handler, after the warm-up stop.
fn stop_runs(options: &Options) -> usize {
    options.stop_runs.min(options.pods.saturating_sub(1))
}

/// The shim serving an idle pod.
struct PodShim {
    handler: Handler,
    /// The pod's place among its handler's idle pods.
    index: usize,
    pid: i32,
}

/// Each idle pod's shim, checked to run its handler's binary.
fn pod_shims(testbed: &Testbed, pods: &[IdlePod]) -> Result<Vec<PodShim>> {
    let shims = shims_by_id(testbed.socket());
    let mut found = Vec::new();
    for handler in Handler::turns(0) {
        for (index, idle) in pods
            .iter()
            .filter(|idle| idle.handler == handler)
            .enumerate()
        {
            found.push(PodShim {
                handler,
                index,
                pid: pod_shim(&shims, &idle.pod, handler)?,
            });
        }
    }
    Ok(found)
}

async fn start_pods(testbed: &Testbed, options: &Options) -> Result<(Vec<IdlePod>, PerHandler)> {
    let concurrency = options.concurrency.max(1);
    let mut pods = Vec::new();
    let mut start = PerHandler::default();
    for (round, first) in (0..options.pods).step_by(concurrency).enumerate() {
        let batch = concurrency.min(options.pods - first);
        for handler in Handler::turns(round) {
            eprintln!(
                "starting idle pods {}..{} of {} under {} ...",
                first + 1,
                first + batch,
                options.pods,
                handler.name()
            );
            let started =
                futures::future::join_all((0..batch).map(|_| start_idle_pod(testbed, handler)))
                    .await;
            for result in started {
                let (idle, elapsed) = result?;
                start.push(handler, millis(elapsed));
                pods.push(idle);
            }
        }
    }
    Ok((pods, start))
}

/// RunPodSandbox, CreateContainer and StartContainer, timed together.
pub(super) async fn start_idle_pod(
    testbed: &Testbed,
    handler: Handler,
) -> Result<(IdlePod, Duration)> {
    let builder = testbed.pod("bench-idle", handler.name());
    let started = Instant::now();
    let pod = builder.run().await?;
    let container = pod.container("idle").command(IDLE_COMMAND).run().await?;
    let elapsed = started.elapsed();
    Ok((
        IdlePod {
            handler,
            pod,
            container,
        },
        elapsed,
    ))
}

/// VmRSS, PSS and RssAnon of each pod's shim, in MiB.
fn shim_memory(shims: &[PodShim]) -> Result<Vec<Measurement>> {
    let mut rss = PerHandler::default();
    let mut pss = PerHandler::default();
    let mut anon = PerHandler::default();
    for shim in shims {
        let memory = ShimMemory::read(shim.pid)?;
        let mib = |kb: u64| kb as f64 / 1024.0;
        rss.push(shim.handler, mib(memory.vm_rss_kb));
        pss.push(shim.handler, mib(memory.pss_kb));
        anon.push(shim.handler, mib(memory.rss_anon_kb));
    }
    Ok(vec![
        Measurement {
            key: "shim_vmrss",
            label: "shim VmRSS per idle pod (/proc/<pid>/status)".to_string(),
            title: "shim VmRSS per pod".to_string(),
            unit: Unit::Mib,
            goal: Goal::RatioAtMost(ISSUE_12_MEMORY_RATIO),
            samples: rss,
            cap: None,
            detail: None,
        },
        Measurement {
            key: "shim_pss",
            label: "shim PSS per idle pod (smaps_rollup; shared pages split among shims)"
                .to_string(),
            title: "shim PSS per pod".to_string(),
            unit: Unit::Mib,
            goal: Goal::RatioAtMost(ISSUE_12_MEMORY_RATIO),
            samples: pss,
            cap: None,
            detail: None,
        },
        Measurement {
            key: "shim_rss_anon",
            label: "shim RssAnon per idle pod (private heap and stacks)".to_string(),
            title: "shim RssAnon per pod".to_string(),
            unit: Unit::Mib,
            goal: Goal::RatioAtMost(ISSUE_12_MEMORY_RATIO),
            samples: anon,
            cap: None,
            detail: None,
        },
    ])
}

/// StopContainer with the grace period, one container at a time, handlers taking turns.
///
/// The first StopContainer after containerd starts took 0.1-0.5 s longer here, whichever
/// handler it went to (containerd warming up), so each handler's first idle pod is stopped
/// unmeasured first, with SIGKILL at once.
async fn stop_latency(options: &Options, pods: &[IdlePod]) -> Result<Measurement> {
    let grace = Duration::from_secs(options.stop_grace);
    let mut samples = PerHandler::default();
    for handler in Handler::turns(0) {
        eprintln!(
            "warming up: stopping an idle container under {} ...",
            handler.name()
        );
        nth_container(pods, handler, 0)?
            .stop(Duration::ZERO)
            .await?;
    }
    let runs = stop_runs(options);
    for round in 0..runs {
        for handler in Handler::turns(round) {
            let container = nth_container(pods, handler, round + 1)?;
            wait_for_command(container, &IDLE_COMMAND).await?;
            eprintln!(
                "stopping an idle container under {} (grace {} s, run {} of {runs}) ...",
                handler.name(),
                options.stop_grace,
                round + 1
            );
            let started = Instant::now();
            container.stop(grace).await?;
            samples.push(handler, millis(started.elapsed()));
        }
    }
    Ok(Measurement {
        key: "stop_no_term_handler",
        label: format!(
            "StopContainer of `sleep 3600` as the command (no TERM handler), grace {} s",
            options.stop_grace
        ),
        title: format!("stop, no TERM handler, grace {} s", options.stop_grace),
        unit: Unit::Milliseconds,
        goal: Goal::RatioBelow(0.01),
        samples,
        cap: None,
        detail: None,
    })
}

/// The container of `handler`'s `index`th idle pod.
fn nth_container(pods: &[IdlePod], handler: Handler, index: usize) -> Result<&Container> {
    pods.iter()
        .filter(|idle| idle.handler == handler)
        .nth(index)
        .map(|idle| &idle.container)
        .context("fewer idle pods than stop runs")
}
