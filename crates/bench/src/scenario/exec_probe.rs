//! An exec probe that times out while a child it started still holds its stdout: `sh -c
//! 'sleep 600 & exec sleep 600'` with ExecSync's timeout at 1 s. containerd kills the exec's
//! process when the timeout passes, but its output is only complete once every holder of the
//! pipe is gone: the background `sleep` keeps it open. Under runc nothing else kills it, and on
//! containerd 1.6 the ExecSync did not return within 600 s; undertaker's init wraps the exec
//! and kills what it leaves once its main process is gone. The wait is capped; what is left in
//! the container afterwards is counted.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Result;
use undertaker_testbed::{Container, Testbed};

use super::{millis, wait_for_command, wait_until, with_pod};
use crate::handler::{Handler, PerHandler};
use crate::options::Options;
use crate::report::{Goal, Measurement, Unit};

/// The probe: its main process and a background child, both holding stdout.
const PROBE: [&str; 3] = ["sh", "-c", "sleep 600 & exec sleep 600"];

/// ExecSync's own timeout (CRI counts it in whole seconds).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the probe's processes get to disappear after ExecSync returned (or was given up).
const LEFTOVER_GRACE: Duration = Duration::from_secs(1);

/// The container's command.
const SLEEPER: [&str; 2] = ["sleep", "3600"];

/// One probe: how long until ExecSync returned (the cap if it did not), and what it left.
struct Probed {
    elapsed_ms: f64,
    capped: bool,
    left: Vec<String>,
}

pub async fn measure(testbed: &Testbed, options: &Options) -> Result<Vec<Measurement>> {
    if options.probe_runs == 0 {
        return Ok(Vec::new());
    }
    let cap = Duration::from_secs(options.probe_cap);
    let mut returned = PerHandler::default();
    let mut left = PerHandler::default();
    let mut seen = Vec::new();
    for round in 0..options.probe_runs {
        for handler in Handler::turns(round) {
            eprintln!(
                "exec probe holding stdout under {} (timeout 1 s, waiting at most {} s, run {} of {}) ...",
                handler.name(),
                cap.as_secs(),
                round + 1,
                options.probe_runs
            );
            let probed = probe(testbed, handler, cap).await?;
            eprintln!(
                "  {}{:.0} ms, {} processes left",
                if probed.capped { ">" } else { "" },
                probed.elapsed_ms,
                probed.left.len()
            );
            returned.push(handler, probed.elapsed_ms);
            left.push(handler, probed.left.len() as f64);
            seen.push(format!(
                "{}: {}",
                handler.name(),
                if probed.left.is_empty() {
                    "nothing".to_string()
                } else {
                    probed.left.join(", ")
                }
            ));
        }
    }
    let cap_ms = millis(cap);
    Ok(vec![
        Measurement {
            cap: Some(cap_ms),
            detail: Some(format!(
                "waits cut off at {} s are marked capped (the ExecSync had not returned)",
                cap.as_secs()
            )),
            ..Measurement::new(
                "exec_probe_timeout_return",
                format!(
                    "ExecSync of `{}` with timeout 1 s: until it returns (cut off at {} s)",
                    PROBE[2],
                    cap.as_secs()
                ),
                "timed-out probe: ExecSync returns".to_string(),
                Unit::Milliseconds,
                Goal::RatioAtMost(1.0),
                returned,
            )
        },
        Measurement {
            detail: Some(format!("left: {}", seen.join("; "))),
            ..Measurement::new(
                "exec_probe_leftovers",
                format!(
                    "processes of that probe left in the container {} s after ExecSync returned or was cut off",
                    LEFTOVER_GRACE.as_secs()
                ),
                "timed-out probe: processes left".to_string(),
                Unit::Count,
                Goal::UndertakerZero,
                left,
            )
        },
    ])
}

async fn probe(testbed: &Testbed, handler: Handler, cap: Duration) -> Result<Probed> {
    let pod = testbed.pod("bench-probe", handler.name()).run().await?;
    with_pod(&pod, async {
        let container = pod.container("probed").command(SLEEPER).run().await?;
        wait_for_command(&container, &SLEEPER).await?;
        let before: HashSet<i32> = live_pids(&container);
        let started = Instant::now();
        let outcome = tokio::time::timeout(cap, container.exec_sync(&PROBE, PROBE_TIMEOUT)).await;
        let elapsed = started.elapsed();
        let capped = outcome.is_err();
        if let Ok(Err(error)) = &outcome {
            // containerd answers a timed-out ExecSync with an error: that is it returning.
            eprintln!("  ExecSync returned an error: {error}");
        }
        let new = || {
            container
                .live_processes()
                .into_iter()
                .filter(|process| !before.contains(&process.pid))
                .collect::<Vec<_>>()
        };
        let _ = wait_until("the probe's processes to go", LEFTOVER_GRACE, || {
            let gone = new().is_empty();
            async move { Ok(gone) }
        })
        .await;
        Ok(Probed {
            elapsed_ms: if capped { millis(cap) } else { millis(elapsed) },
            capped,
            left: new().into_iter().map(|process| process.cmdline).collect(),
        })
    })
    .await
}

fn live_pids(container: &Container) -> HashSet<i32> {
    container
        .live_processes()
        .iter()
        .map(|process| process.pid)
        .collect()
}
