//! Idle pods (one `sleep 3600` container each): how long CRI takes to start one, how much
//! memory its shim holds at rest, and how long StopContainer takes when the container's
//! command has no SIGTERM handler.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use undertaker_testbed::{Container, Pod, Testbed};

use super::{millis, remove_pods, wait_until};
use crate::handler::{Handler, PerHandler};
use crate::options::Options;
use crate::procfs::{shims_by_id, ShimMemory};
use crate::report::{Goal, Measurement, Unit};

/// The workload: PID 1 sleeps and has no handler for SIGTERM. A signal with the default
/// action sent from outside its PID namespace does nothing to a namespace's PID 1, so under
/// runc only the SIGKILL after the grace period ends it; under undertaker, PID 1 is the init,
/// which forwards SIGTERM to `sleep`.
const IDLE_COMMAND: [&str; 2] = ["sleep", "3600"];

struct IdlePod {
    handler: Handler,
    pod: Pod,
    container: Container,
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
    }];
    eprintln!(
        "{} idle pods running; resting {} ms before reading their shims' memory ...",
        pods.len(),
        options.settle_ms
    );
    tokio::time::sleep(Duration::from_millis(options.settle_ms)).await;
    measurements.extend(shim_memory(testbed, pods)?);
    measurements.push(stop_latency(options, pods).await?);
    Ok(measurements)
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
async fn start_idle_pod(testbed: &Testbed, handler: Handler) -> Result<(IdlePod, Duration)> {
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
fn shim_memory(testbed: &Testbed, pods: &[IdlePod]) -> Result<Vec<Measurement>> {
    let shims = shims_by_id(testbed.socket());
    let mut rss = PerHandler::default();
    let mut pss = PerHandler::default();
    let mut anon = PerHandler::default();
    for idle in pods {
        let (pid, binary) = shims
            .get(idle.pod.id())
            .with_context(|| format!("no shim serves pod {}", idle.pod.id()))?;
        if binary != idle.handler.shim_binary() {
            bail!(
                "pod {} of handler {} is served by {binary}",
                idle.pod.id(),
                idle.handler.name()
            );
        }
        let memory = ShimMemory::read(*pid)?;
        let mib = |kb: u64| kb as f64 / 1024.0;
        rss.push(idle.handler, mib(memory.vm_rss_kb));
        pss.push(idle.handler, mib(memory.pss_kb));
        anon.push(idle.handler, mib(memory.rss_anon_kb));
    }
    Ok(vec![
        Measurement {
            key: "shim_vmrss",
            label: "shim VmRSS per idle pod (/proc/<pid>/status)".to_string(),
            title: "shim VmRSS per pod".to_string(),
            unit: Unit::Mib,
            goal: Goal::RatioAtMost(0.5),
            samples: rss,
        },
        Measurement {
            key: "shim_pss",
            label: "shim PSS per idle pod (smaps_rollup; shared pages split among shims)"
                .to_string(),
            title: "shim PSS per pod".to_string(),
            unit: Unit::Mib,
            goal: Goal::None,
            samples: pss,
        },
        Measurement {
            key: "shim_rss_anon",
            label: "shim RssAnon per idle pod (private heap and stacks)".to_string(),
            title: "shim RssAnon per pod".to_string(),
            unit: Unit::Mib,
            goal: Goal::None,
            samples: anon,
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
    let runs = options.stop_runs.min(options.pods.saturating_sub(1));
    for round in 0..runs {
        for handler in Handler::turns(round) {
            let container = nth_container(pods, handler, round + 1)?;
            wait_until(
                "the idle container's sleep",
                Duration::from_secs(30),
                || {
                    let sleeping = container
                        .live_processes()
                        .iter()
                        .any(|process| process.cmdline == IDLE_COMMAND.join(" "));
                    async move { Ok(sleeping) }
                },
            )
            .await?;
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
