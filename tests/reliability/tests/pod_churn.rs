//! Pod churn: 500 pods started and stopped at once (RunPodSandbox, then StopPodSandbox and
//! RemovePodSandbox straight away), 4 at a time, under `runc` and then under `undertaker` on
//! the same containerd. What kubelet does when a pod is deleted as it starts, and the path on
//! which a shim that exits with a request in flight fails the stop with `ttrpc: closed`
//! (issue 10: 1 in 180 such cycles on containerd 1.6 before the request-aware shutdown).
//!
//! Every CRI error is counted, not only the first; undertaker must have none. runc's count is
//! printed beside it (an error there is containerd's or the machine's, and says how much
//! undertaker's 0 is worth). Afterwards no shim, socket, mount, cgroup or process is left.
//!
//! `cargo test -p undertaker-reliability --test pod_churn` (root; see docs/reliability.md).
//! `UNDERTAKER_POD_CHURN_CYCLES=N` changes the number of cycles per handler.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use futures::stream::{self, StreamExt};
use undertaker_e2e::{ensure_nothing_left, run_scenario, Handler};
use undertaker_reliability::host::shim_socket;
use undertaker_testbed::Testbed;

/// Pod cycles per handler.
const CYCLES: usize = 500;
/// Cycles in flight at once.
const CONCURRENCY: usize = 4;
/// Errors quoted in full in the failure message (all are counted).
const QUOTED: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_stopped_as_they_start_never_fail_a_cri_call() {
    run_scenario(
        "pod_churn::pods_stopped_as_they_start_never_fail_a_cri_call",
        Handler::Undertaker,
        |testbed, _| churn(testbed),
    )
    .await;
}

/// What one handler's cycles gave.
struct Outcome {
    handler: Handler,
    elapsed: Duration,
    errors: Vec<String>,
    sockets: Vec<PathBuf>,
}

async fn churn(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    let cycles = cycles()?;
    let mut outcomes = Vec::new();
    for handler in [Handler::Runc, Handler::Undertaker] {
        let outcome = run_cycles(&testbed, handler, cycles).await;
        eprintln!(
            "pod_churn: {} {cycles} pod start-then-stop cycles, {CONCURRENCY} at a time, in \
             {:.1?}: {} CRI errors",
            handler.name(),
            outcome.elapsed,
            outcome.errors.len()
        );
        // Every pod is gone before the next handler's cycles start.
        ensure_nothing_left(&testbed, &format!("{} pod cycles", handler.name())).await?;
        outcomes.push(outcome);
    }
    for outcome in &outcomes {
        let left: Vec<&PathBuf> = outcome.sockets.iter().filter(|s| s.exists()).collect();
        ensure!(
            left.is_empty(),
            "{} shim sockets left: {left:#?}",
            outcome.handler.name()
        );
    }
    let undertaker = outcomes
        .iter()
        .find(|outcome| outcome.handler == Handler::Undertaker)
        .context("no undertaker outcome")?;
    let runc_errors = outcomes
        .iter()
        .find(|outcome| outcome.handler == Handler::Runc)
        .map_or(0, |outcome| outcome.errors.len());
    ensure!(
        undertaker.errors.is_empty(),
        "{} of {cycles} undertaker pod cycles had CRI errors (runc: {runc_errors}); the first \
         {QUOTED}:\n{}",
        undertaker.errors.len(),
        undertaker.errors[..undertaker.errors.len().min(QUOTED)].join("\n")
    );
    Ok(())
}

fn cycles() -> anyhow::Result<usize> {
    match std::env::var("UNDERTAKER_POD_CHURN_CYCLES") {
        Ok(value) => value
            .parse()
            .with_context(|| format!("UNDERTAKER_POD_CHURN_CYCLES={value:?}: not a number")),
        Err(_) => Ok(CYCLES),
    }
}

async fn run_cycles(testbed: &Testbed, handler: Handler, cycles: usize) -> Outcome {
    let started = Instant::now();
    let results: Vec<Result<PathBuf, String>> = stream::iter(0..cycles)
        .map(|index| cycle(testbed, handler, index))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut outcome = Outcome {
        handler,
        elapsed,
        errors: Vec::new(),
        sockets: Vec::new(),
    };
    for result in results {
        match result {
            Ok(socket) => outcome.sockets.push(socket),
            Err(error) => outcome.errors.push(error),
        }
    }
    outcome
}

/// One pod run, stopped and removed at once; returns its shim's socket. A failed stop is
/// retried once more as kubelet would, so that the pod does not outlive the cycle, but the
/// error counts.
async fn cycle(testbed: &Testbed, handler: Handler, index: usize) -> Result<PathBuf, String> {
    let name = format!("churn-{}-{index}", handler.name());
    let pod = testbed
        .pod(&name, handler.name())
        .run()
        .await
        .map_err(|error| format!("{name}: RunPodSandbox: {error}"))?;
    let socket = shim_socket(testbed, pod.id()).map_err(|error| format!("{name}: {error:#}"));
    if let Err(error) = pod.stop_and_remove().await {
        let retried = pod.stop_and_remove().await;
        return Err(format!(
            "{name} ({}): {error}{}",
            pod.id(),
            match retried {
                Ok(()) => " (a second stop and remove succeeded)".to_owned(),
                Err(again) => format!(" (the second try failed too: {again})"),
            }
        ));
    }
    socket
}
