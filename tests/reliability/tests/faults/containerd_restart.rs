//! containerd restarts while ten pods run. Five containers are asked (SIGUSR1) to exit on
//! their own while containerd is down: the testbed holds the restart until each of their
//! shims says (over its own Task API) that the container stopped. The other five are stopped
//! afterwards. Every shim must be the same one, every exit code the workload's own, and every
//! pod stoppable and removable.
//!
//! Exits are not sent while containerd comes up: containerd 1.6's CRI drops an exit that
//! arrives between its recovery's `State` of a task (running) and its adding the container
//! to its store (the exit monitor finds no container, and the `/tasks/exit` event came before
//! it subscribed); the container then stays running in CRI for good, under either shim. Seen
//! here with undertaker, from the containerd log: `received exit event` for the container,
//! then nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use containerd_shim_protos::api;
use containerd_shim_protos::shim_async::{Client, TaskClient};
use futures::stream::{self, StreamExt, TryStreamExt};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use undertaker_reliability::host::shim_socket;
use undertaker_reliability::own_shim::context;
use undertaker_reliability::workloads::{exit_on_term_script, exit_on_usr1_script};
use undertaker_reliability::{undertaker_only, wait_for_commands, WAIT};
use undertaker_testbed::{api as cri, Container, Pod, ProcessInfo, Testbed};

undertaker_only!(ten_running_pods_survive_a_containerd_restart);

const PODS: usize = 10;
/// Pods below this index are stopped after the restart; the others end on their own.
const STOPPED: usize = 5;
const GRACE: Duration = Duration::from_secs(10);

/// The exit code pod `index`'s container must end with.
fn exit_code(index: usize) -> i32 {
    if index < STOPPED {
        10 + index as i32
    } else {
        20 + index as i32
    }
}

async fn start_pod(testbed: &Testbed, index: usize) -> anyhow::Result<(Pod, Container)> {
    let pod = testbed
        .pod(&format!("restart-{index}"), "undertaker")
        .run()
        .await?;
    let script = if index < STOPPED {
        exit_on_term_script(exit_code(index))
    } else {
        exit_on_usr1_script(exit_code(index), "0.5")
    };
    let container = pod.container("worker").shell(&script).run().await?;
    // The trap is set once the shell has started its sleep.
    wait_for_commands(&container, &["sleep 1000"]).await?;
    Ok((pod, container))
}

async fn ten_running_pods_survive_a_containerd_restart(
    testbed: Arc<Testbed>,
) -> anyhow::Result<()> {
    let pods: Vec<(Pod, Container)> = stream::iter(0..PODS)
        .map(|index| start_pod(&testbed, index))
        .buffered(4)
        .try_collect()
        .await?;
    let shims_before = shims(&testbed);
    ensure!(
        shims_before.len() == PODS,
        "{} shims for {PODS} pods: {shims_before:?}",
        shims_before.len()
    );

    let mut exiting = Vec::new();
    for (_, container) in &pods[STOPPED..] {
        exiting.push((container.id().to_string(), container.pid().await?));
    }
    let testbed_ref = &testbed;
    let exited = testbed
        .restart_containerd_around(async move {
            for (id, pid) in &exiting {
                // The init forwards it to the shell, whose trap exits half a second later.
                kill(Pid::from_raw(*pid), Signal::SIGUSR1)
                    .with_context(|| format!("SIGUSR1 to {id}'s init {pid}"))?;
            }
            let mut codes = Vec::new();
            for (id, _) in &exiting {
                codes.push(stopped_in_its_shim(testbed_ref, id).await?);
            }
            anyhow::Ok(codes)
        })
        .await??;
    for (index, code) in (STOPPED..PODS).zip(&exited) {
        ensure!(
            *code == exit_code(index) as u32,
            "pod {index}'s shim recorded exit {code} while containerd was down, expected {}",
            exit_code(index)
        );
    }

    let shims_after = shims(&testbed);
    ensure!(
        pids(&shims_after) == pids(&shims_before),
        "the shims changed across the restart: before {shims_before:?}, after \
         {shims_after:?}; containerd's log on shims since the restart:\n{}",
        shim_lines_of_the_log(&testbed)
    );
    for (index, (_, container)) in pods.iter().enumerate().skip(STOPPED) {
        let code = container.wait_exited(WAIT).await?;
        ensure!(
            code == exit_code(index),
            "pod {index} exited on its own with {code}, expected {}",
            exit_code(index)
        );
    }
    for (index, (_, container)) in pods.iter().enumerate().take(STOPPED) {
        let status = container.status().await?;
        ensure!(
            status.state == cri::ContainerState::ContainerRunning as i32,
            "pod {index}'s container is not running after the restart: {status:?}"
        );
        container.stop(GRACE).await?;
        let code = container.status().await?.exit_code;
        ensure!(
            code == exit_code(index),
            "pod {index} stopped with {code}, expected {}",
            exit_code(index)
        );
    }
    stream::iter(&pods)
        .map(|(pod, container)| async move {
            container.remove().await?;
            pod.stop_and_remove().await?;
            anyhow::Ok(())
        })
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Waits (bounded by [`WAIT`]) until the shim serving container `id` says, over its own Task
/// API (containerd is down), that the container's task stopped; returns its exit status.
async fn stopped_in_its_shim(testbed: &Testbed, id: &str) -> anyhow::Result<u32> {
    let address = format!("unix://{}", shim_socket(testbed, id)?.display());
    let task = TaskClient::new(
        Client::connect(&address)
            .await
            .with_context(|| format!("connect to the shim of {id} at {address}"))?,
    );
    let request = api::StateRequest {
        id: id.to_string(),
        ..Default::default()
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let state = task
            .state(context(), &request)
            .await
            .with_context(|| format!("State of {id} from its shim"))?;
        if state.status.enum_value() == Ok(api::Status::STOPPED) {
            return Ok(state.exit_status);
        }
        ensure!(
            Instant::now() < deadline,
            "{id} still {:?} in its shim after {WAIT:?}",
            state.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The shim processes serving the testbed's containerd, by pid. Not the short-lived
/// invocations of the shim binary as a command (`... start`, `... delete`): after the restart,
/// CRI deletes the tasks that exited while containerd was down, and containerd 1.6 runs
/// `<shim> ... delete` for each container whose connection it closed; such a process, seen
/// here, is not a new shim (a CI run counted one as such).
fn shims(testbed: &Testbed) -> Vec<ProcessInfo> {
    let mut shims = testbed.leftovers().shims;
    shims.retain(|shim| {
        let command = shim.cmdline.split_whitespace().last();
        command != Some("start") && command != Some("delete")
    });
    shims.sort_unstable_by_key(|shim| shim.pid);
    shims
}

fn pids(shims: &[ProcessInfo]) -> Vec<i32> {
    shims.iter().map(|shim| shim.pid).collect()
}

/// containerd's log lines about shims since its last start, to tell a shim that died from
/// one containerd cleaned up or started.
fn shim_lines_of_the_log(testbed: &Testbed) -> String {
    let log = std::fs::read_to_string(testbed.log_path()).unwrap_or_default();
    let since_restart = log
        .rfind("starting containerd")
        .map_or(log.as_str(), |at| &log[at..]);
    since_restart
        .lines()
        .filter(|line| line.contains("shim") || line.contains("level=error"))
        .filter(|line| !line.contains("loading plugin"))
        .collect::<Vec<_>>()
        .join("\n")
}
