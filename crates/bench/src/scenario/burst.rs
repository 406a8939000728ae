//! Many pods at once: `--burst-pods` idle pods per handler started `--burst-concurrency` at a
//! time (each batch timed from its first RunPodSandbox to its last StartContainer's return),
//! then all of them stopped at once (StopPodSandbox in parallel, timed until the last returns).

use std::time::Instant;

use anyhow::Result;
use futures::future::join_all;
use undertaker_testbed::{Pod, Testbed};

use super::idle_pods::start_idle_pod;
use super::{millis, remove_pods};
use crate::handler::{Handler, PerHandler};
use crate::options::Options;
use crate::report::{Goal, Measurement, Unit};

pub async fn measure(testbed: &Testbed, options: &Options) -> Result<Vec<Measurement>> {
    if options.burst_pods == 0 {
        return Ok(Vec::new());
    }
    let pods = options.burst_pods;
    let at_once = options.burst_concurrency.clamp(1, pods);
    let mut start = PerHandler::default();
    let mut stop = PerHandler::default();
    for handler in Handler::turns(0) {
        eprintln!(
            "burst: {pods} pods under {}, {at_once} at once, then stopping all at once ...",
            handler.name()
        );
        let mut started: Vec<Pod> = Vec::new();
        let result = burst(testbed, handler, pods, at_once, &mut started).await;
        let removed = remove_pods(started).await;
        let (batches, stopped) = result?;
        removed?;
        eprintln!(
            "  batches {:?} ms, stop {stopped:.0} ms",
            batches.iter().map(|ms| ms.round()).collect::<Vec<_>>()
        );
        for batch in batches {
            start.push(handler, batch);
        }
        stop.push(handler, stopped);
    }
    Ok(vec![
        Measurement::new(
            "pod_start_burst",
            format!(
                "pod start at concurrency {at_once}: {at_once} × (RunPodSandbox + CreateContainer + StartContainer) at once, until the last returns"
            ),
            format!("{at_once} pods started at once"),
            Unit::Milliseconds,
            Goal::RatioAtMost(1.0),
            start,
        ),
        Measurement::new(
            "pod_stop_burst",
            format!("StopPodSandbox of {pods} idle pods at once, until the last returns"),
            format!("{pods} pods stopped at once"),
            Unit::Milliseconds,
            Goal::RatioAtMost(1.0),
            stop,
        ),
    ])
}

/// Starts `pods` pods of `handler` in batches of `at_once` (each started pod goes to
/// `started`, for removal), then stops them all at once; the batches' and the stop's ms.
async fn burst(
    testbed: &Testbed,
    handler: Handler,
    pods: usize,
    at_once: usize,
    started: &mut Vec<Pod>,
) -> Result<(Vec<f64>, f64)> {
    let mut batches = Vec::new();
    let mut first_error = None;
    for first in (0..pods).step_by(at_once) {
        let batch = at_once.min(pods - first);
        let began = Instant::now();
        let results = join_all((0..batch).map(|_| start_idle_pod(testbed, handler))).await;
        let elapsed = began.elapsed();
        for result in results {
            match result {
                Ok((idle, _)) => started.push(idle.pod),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        // Only full batches are at the concurrency the row names.
        if batch == at_once {
            batches.push(millis(elapsed));
        }
    }
    let began = Instant::now();
    let stopped = join_all(started.iter().map(Pod::stop)).await;
    let elapsed = began.elapsed();
    stopped.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok((batches, millis(elapsed)))
}
