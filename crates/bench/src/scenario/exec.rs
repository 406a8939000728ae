//! ExecSync of `true` in a running container, what an exec probe costs: its latency through
//! CRI, and the CPU time the pod's shim spends per exec (its own, and that of the `runc exec`
//! processes it runs and waits for).

use std::time::{Duration, Instant};

use anyhow::Result;
use undertaker_testbed::{Container, Pod, Testbed};

use super::{find_pod_shim, millis, remove_pods};
use crate::handler::{Handler, PerHandler};
use crate::options::Options;
use crate::procfs::CpuTime;
use crate::report::{Goal, Measurement, Unit};

/// How long one exec of `true` may take.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

struct ExecPod {
    handler: Handler,
    container: Container,
    shim: i32,
}

pub async fn measure(testbed: &Testbed, options: &Options) -> Result<Vec<Measurement>> {
    if options.exec_calls == 0 {
        return Ok(Vec::new());
    }
    let mut started: Vec<Pod> = Vec::new();
    let result = async {
        let mut pods = Vec::new();
        for handler in Handler::turns(0) {
            let pod = testbed.pod("bench-exec", handler.name()).run().await?;
            started.push(pod.clone());
            let container = pod
                .container("exec")
                .command(["sleep", "3600"])
                .run()
                .await?;
            let shim = find_pod_shim(testbed, &pod, handler)?;
            pods.push(ExecPod {
                handler,
                container,
                shim,
            });
        }
        measure_execs(options, &pods).await
    }
    .await;
    let removed = remove_pods(started).await;
    let measurements = result?;
    removed?;
    Ok(measurements)
}

async fn measure_execs(options: &Options, pods: &[ExecPod]) -> Result<Vec<Measurement>> {
    // The first exec of a container sets up what later ones reuse: not timed.
    for exec in pods {
        exec.container.exec_sync(&["true"], EXEC_TIMEOUT).await?;
    }
    let calls = options.exec_calls;
    eprintln!("{calls} ExecSync calls of `true` per handler, handlers taking turns ...");
    let cpu_before = pods
        .iter()
        .map(|exec| CpuTime::read(exec.shim))
        .collect::<Result<Vec<_>>>()?;
    let mut latency = PerHandler::default();
    for round in 0..calls {
        for handler in Handler::turns(round) {
            let Some(exec) = pods.iter().find(|exec| exec.handler == handler) else {
                continue;
            };
            let started = Instant::now();
            exec.container.exec_sync(&["true"], EXEC_TIMEOUT).await?;
            latency.push(handler, millis(started.elapsed()));
        }
    }
    let mut own = PerHandler::default();
    let mut with_children = PerHandler::default();
    for (exec, before) in pods.iter().zip(cpu_before) {
        let after = CpuTime::read(exec.shim)?;
        let per_exec = |ms: f64| ms / calls as f64;
        own.push(exec.handler, per_exec(after.own_ms - before.own_ms));
        with_children.push(
            exec.handler,
            per_exec(after.own_ms + after.children_ms - before.own_ms - before.children_ms),
        );
    }
    let detail = format!(
        "CPU: the pod shim's /proc/<pid>/stat before and after all {calls} execs, divided by \
         {calls} (clock ticks of 10 ms: {:.2} ms per exec at most of rounding)",
        10.0 / calls as f64
    );
    Ok(vec![
        Measurement::new(
            "exec_sync_true",
            format!("ExecSync of `true` in a running container ({calls} calls per handler)"),
            "ExecSync `true` latency".to_string(),
            Unit::Milliseconds,
            Goal::RatioAtMost(1.0),
            latency,
        ),
        Measurement {
            detail: Some(detail),
            ..Measurement::new(
                "exec_shim_cpu",
                "pod shim CPU time per exec (utime+stime)".to_string(),
                "shim CPU per exec".to_string(),
                Unit::Milliseconds,
                Goal::RatioAtMost(1.0),
                own,
            )
        },
        Measurement {
            detail: None,
            ..Measurement::new(
                "exec_shim_cpu_with_runc",
                "pod shim CPU time per exec, with the `runc` processes it waited for (+cutime+cstime)"
                    .to_string(),
                "shim + runc CPU per exec".to_string(),
                Unit::Milliseconds,
                Goal::None,
                with_children,
            )
        },
    ])
}
