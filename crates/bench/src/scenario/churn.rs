//! Container churn in one pod, as CrashLoopBackOff does it: a container is created, started,
//! exits and is removed, again and again, while the pod (and its shim) stays. What the pod's
//! shim keeps of each cycle shows as growth of its private memory and open descriptors.

use std::time::Duration;

use anyhow::{Context, Result};
use undertaker_testbed::{api, Container, Pod, Testbed};

use super::{find_pod_shim, wait_until_every, with_pod};
use crate::handler::{Handler, PerHandler};
use crate::options::Options;
use crate::procfs::{open_fds, ShimMemory};
use crate::report::{Goal, Measurement, Unit};

/// How long one container may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the container's state is polled until it has exited.
const EXIT_POLL: Duration = Duration::from_millis(5);

/// The pod shim's state at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ShimState {
    rss_anon_kb: u64,
    fds: usize,
}

/// What one handler's pod shim was before and after the cycles.
#[derive(Clone, Copy, Debug)]
struct Churned {
    start: ShimState,
    end: ShimState,
}

pub async fn measure(testbed: &Testbed, options: &Options) -> Result<Vec<Measurement>> {
    if options.churn_cycles == 0 {
        return Ok(Vec::new());
    }
    let cycles = options.churn_cycles;
    eprintln!("churn: {cycles} container cycles in one pod per handler, both at once ...");
    // Memory and descriptors, not time, are measured here: both handlers' pods cycle at the
    // same time, which halves the wall time and gives both the same machine.
    let [first, second] = Handler::turns(0);
    let (first_churned, second_churned) = futures::future::try_join(
        churn(testbed, first, cycles),
        churn(testbed, second, cycles),
    )
    .await?;
    let mut anon = PerHandler::default();
    let mut fds = PerHandler::default();
    let mut detail = Vec::new();
    for (handler, churned) in [(first, first_churned), (second, second_churned)] {
        anon.push(
            handler,
            churned.end.rss_anon_kb as f64 - churned.start.rss_anon_kb as f64,
        );
        fds.push(handler, churned.end.fds as f64 - churned.start.fds as f64);
        detail.push(format!(
            "{}: RssAnon {} → {} kB, {} → {} fds",
            handler.name(),
            churned.start.rss_anon_kb,
            churned.end.rss_anon_kb,
            churned.start.fds,
            churned.end.fds
        ));
    }
    let detail = format!(
        "{} (start: after one warm-up cycle; end: after {cycles} more)",
        detail.join("; ")
    );
    Ok(vec![
        Measurement {
            detail: Some(detail),
            ..Measurement::new(
                "churn_rss_anon_growth",
                format!(
                    "container churn: pod shim RssAnon growth over {cycles} create/start/exit/remove cycles in one pod"
                ),
                format!("churn: RssAnon growth, {cycles} cycles"),
                Unit::Kb,
                Goal::RatioAtMost(1.0),
                anon,
            )
        },
        Measurement {
            detail: None,
            ..Measurement::new(
                "churn_fd_growth",
                format!("container churn: pod shim open fds, end − start, over {cycles} cycles"),
                format!("churn: fd growth, {cycles} cycles"),
                Unit::Count,
                Goal::UndertakerZero,
                fds,
            )
        },
    ])
}

/// One pod of `handler`: a warm-up cycle, the shim's state, `cycles` cycles, its state again.
async fn churn(testbed: &Testbed, handler: Handler, cycles: usize) -> Result<Churned> {
    let pod = testbed.pod("bench-churn", handler.name()).run().await?;
    with_pod(&pod, async {
        let shim = find_pod_shim(testbed, &pod, handler)?;
        // The first container of a pod sets up what every later one reuses.
        cycle(&pod).await?;
        let start = shim_state(shim)?;
        for done in 0..cycles {
            cycle(&pod)
                .await
                .with_context(|| format!("churn cycle {} under {}", done + 1, handler.name()))?;
            if (done + 1) % 100 == 0 {
                eprintln!("  {} cycles under {}", done + 1, handler.name());
            }
        }
        let end = shim_state(shim)?;
        Ok(Churned { start, end })
    })
    .await
}

/// CreateContainer, StartContainer, the container's `true` exits, RemoveContainer.
async fn cycle(pod: &Pod) -> Result<()> {
    let container = pod.container("churn").command(["true"]).run().await?;
    wait_exited(&container).await?;
    container.remove().await?;
    Ok(())
}

async fn wait_exited(container: &Container) -> Result<()> {
    wait_until_every(
        "the churn container to exit",
        EXIT_TIMEOUT,
        EXIT_POLL,
        || async {
            let status = container.status().await?;
            Ok(status.state == api::ContainerState::ContainerExited as i32)
        },
    )
    .await
}

fn shim_state(pid: i32) -> Result<ShimState> {
    Ok(ShimState {
        rss_anon_kb: ShimMemory::read(pid)?.rss_anon_kb,
        fds: open_fds(pid)?,
    })
}
