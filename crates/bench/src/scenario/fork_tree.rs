//! A container with a tree of ~1,000 sleeping processes is killed (StopContainer with
//! timeout 0: SIGKILL at once); timed until its cgroup holds no process.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use undertaker_testbed::Testbed;

use super::{millis, wait_until, with_pod};
use crate::handler::{Handler, PerHandler};
use crate::options::Options;
use crate::procfs::CgroupWatch;
use crate::report::{Goal, Measurement, Unit};

/// Subtrees below PID 1.
const BRANCHES: usize = 10;

/// How often the cgroup is read while it empties.
const KILL_POLL: Duration = Duration::from_millis(1);

/// How long a killed tree may take to disappear before the run counts as failed.
const KILL_TIMEOUT: Duration = Duration::from_secs(60);

/// PID 1 starts `BRANCHES` subshells in the background and sleeps; each subshell starts
/// `leaves` sleepers and becomes a sleeper itself: `BRANCHES * (leaves + 1)` processes
/// below PID 1.
fn tree_script(leaves: usize) -> String {
    format!(
        "i=0; while [ $i -lt {BRANCHES} ]; do \
           ( j=0; while [ $j -lt {leaves} ]; do sleep 3600 & j=$((j+1)); done; exec sleep 3600 ) & \
           i=$((i+1)); \
         done; exec sleep 3600"
    )
}

pub async fn measure(testbed: &Testbed, options: &Options) -> Result<Option<Measurement>> {
    if options.fork_tree_runs == 0 {
        return Ok(None);
    }
    let leaves = (options.fork_tree_size / BRANCHES).max(1) - 1;
    let tree_size = BRANCHES * (leaves + 1);
    let mut samples = PerHandler::default();
    for round in 0..options.fork_tree_runs {
        for handler in Handler::turns(round) {
            eprintln!(
                "killing a {tree_size}-process tree under {} (run {} of {}) ...",
                handler.name(),
                round + 1,
                options.fork_tree_runs
            );
            let sample = kill_tree(testbed, handler, leaves, tree_size).await?;
            samples.push(handler, sample);
        }
    }
    Ok(Some(Measurement {
        key: "fork_tree_kill",
        label: format!(
            "SIGKILL (StopContainer timeout 0) of a {tree_size}-process fork tree until its cgroup is empty"
        ),
        title: format!("{tree_size}-process tree: SIGKILL to empty cgroup"),
        unit: Unit::Milliseconds,
        goal: Goal::RatioAtMost(1.0),
        samples,
        cap: None,
        detail: None,
    }))
}

/// One tree: grown, then killed; milliseconds from StopContainer's call until the
/// container's cgroup (and every cgroup below it) lists no process.
async fn kill_tree(testbed: &Testbed, handler: Handler, leaves: usize, size: usize) -> Result<f64> {
    let pod = testbed.pod("bench-fork-tree", handler.name()).run().await?;
    with_pod(&pod, async {
        let container = pod
            .container("tree")
            .shell(&tree_script(leaves))
            .run()
            .await?;
        let watch = CgroupWatch::find(&container.cgroup_path())?;
        // The tree and its PID 1 (and undertaker's init).
        wait_until(
            &format!("{size} processes in {}", watch.dir().display()),
            Duration::from_secs(120),
            || {
                let grown = watch.process_count() > size;
                async move { Ok(grown) }
            },
        )
        .await?;
        let started = Instant::now();
        let stop = tokio::spawn({
            let container = container.clone();
            async move { container.stop(Duration::ZERO).await }
        });
        while watch.process_count() > 0 {
            if started.elapsed() > KILL_TIMEOUT {
                bail!(
                    "{} still has processes after {KILL_TIMEOUT:?}",
                    watch.dir().display()
                );
            }
            tokio::time::sleep(KILL_POLL).await;
        }
        let emptied = started.elapsed();
        stop.await??;
        Ok(millis(emptied))
    })
    .await
}
