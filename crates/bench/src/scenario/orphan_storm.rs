//! An orphan storm in a container whose command never reaps: how many zombies are left once
//! the storm is over, and how long the storm took.

use std::time::Duration;

use anyhow::{Context, Result};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use undertaker_testbed::{Container, LogLine, Testbed};

use super::{millis, wait_until, with_pod};
use crate::handler::{Handler, PerHandler};
use crate::options::Options;
use crate::report::{Goal, Measurement, Unit};

/// The lines the storm prints before its first and after its last orphan. containerd stamps
/// each log line as it reads it, which times the storm the same way for both handlers.
const STARTED: &str = "orphan-storm-started";
const DONE: &str = "orphan-storm-done";

/// What the container's command becomes once the storm is started.
const SLEEPER: &str = "sleep 3600";

/// How long the zombies may take to be reaped after the last orphan exited.
const REAP_SETTLE: Duration = Duration::from_millis(500);

/// The container's command starts the storm as an orphan (from a subshell that exits at
/// once) and becomes `sleep 3600`, which never waits for a child. Each round of the storm is
/// a subshell that starts `sleep 0` in the background and exits at once: the `sleep 0` is
/// orphaned and adopted by the PID namespace's init, which is that `sleep` under runc, and
/// undertaker-init (which reaps) under undertaker. The storm's shell itself ends as one more
/// orphan of PID 1: runc is left with `orphans + 1` zombies. (Were the storm a child of the
/// command, its zombie would be the command's to reap, not an orphan, under either handler.)
fn storm_script(orphans: usize) -> String {
    format!(
        "(sh -c 'echo {STARTED}; i=0; while [ $i -lt {orphans} ]; do (sleep 0 &); i=$((i+1)); done; echo {DONE}' &); \
         exec {SLEEPER}"
    )
}

pub async fn measure(testbed: &Testbed, options: &Options) -> Result<Vec<Measurement>> {
    if options.orphan_runs == 0 {
        return Ok(Vec::new());
    }
    let mut zombies = PerHandler::default();
    let mut wall = PerHandler::default();
    for round in 0..options.orphan_runs {
        for handler in Handler::turns(round) {
            eprintln!(
                "{} orphans under {} (run {} of {}) ...",
                options.orphans,
                handler.name(),
                round + 1,
                options.orphan_runs
            );
            let (left, took) = storm(testbed, handler, options.orphans).await?;
            eprintln!("  {left} zombies left, storm took {took:.0} ms");
            zombies.push(handler, left as f64);
            wall.push(handler, took);
        }
    }
    Ok(vec![
        Measurement {
            key: "orphan_storm_zombies",
            label: format!(
                "zombies left by a {}-orphan storm (the command never reaps)",
                options.orphans
            ),
            title: format!("zombies after {} orphans", options.orphans),
            unit: Unit::Count,
            goal: Goal::UndertakerZero,
            samples: zombies,
            cap: None,
            detail: None,
        },
        Measurement {
            key: "orphan_storm_wall",
            label: format!(
                "{}-orphan storm: from its first to its last orphan started (log timestamps)",
                options.orphans
            ),
            title: format!("{}-orphan storm duration", options.orphans),
            unit: Unit::Milliseconds,
            goal: Goal::None,
            samples: wall,
            cap: None,
            detail: None,
        },
    ])
}

/// One storm: the zombies in the container's cgroup once it is over, and its duration in ms.
async fn storm(testbed: &Testbed, handler: Handler, orphans: usize) -> Result<(usize, f64)> {
    let pod = testbed.pod("bench-orphans", handler.name()).run().await?;
    with_pod(&pod, async {
        let container = pod
            .container("storm")
            .shell(&storm_script(orphans))
            .run()
            .await?;
        let timeout = Duration::from_secs(600);
        let lines = container
            .wait_for_logs(timeout, |lines| {
                lines.iter().any(|line| line.text.contains(DONE))
            })
            .await?;
        let took = millis(between(&lines, STARTED, DONE)?);
        let pid1 = container.pid().await?;
        wait_until("the last orphans to exit", Duration::from_secs(60), || {
            let busy = storm_processes_left(&container, pid1);
            async move { Ok(!busy) }
        })
        .await?;
        tokio::time::sleep(REAP_SETTLE).await;
        Ok((container.zombies().len(), took))
    })
    .await
}

/// The time between the log lines holding `first` and `last`, by containerd's timestamps.
fn between(lines: &[LogLine], first: &str, last: &str) -> Result<Duration> {
    let stamp = |text: &str| -> Result<OffsetDateTime> {
        let line = lines
            .iter()
            .find(|line| line.text.contains(text))
            .with_context(|| format!("no {text:?} in the container's log"))?;
        OffsetDateTime::parse(&line.timestamp, &Rfc3339)
            .with_context(|| format!("log timestamp {:?}", line.timestamp))
    };
    let elapsed = stamp(last)? - stamp(first)?;
    Ok(Duration::try_from(elapsed)?)
}

/// Whether anything but the container's PID 1 and its sleeping command still lives.
fn storm_processes_left(container: &Container, pid1: i32) -> bool {
    container
        .live_processes()
        .iter()
        .any(|process| process.pid != pid1 && process.cmdline != SLEEPER)
}
