//! undertaker's main job, shown: the same misbehaving pod once under runc and once under
//! undertaker, in a private containerd, with what each leaves behind side by side.
//!
//! Run as root after `scripts/build.sh` (or just `scripts/demo.sh`). Everything it starts is
//! removed at the end, and on Ctrl-C.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::signal::unix::{signal, SignalKind};
use undertaker_testbed::{
    is_root, Container, EventRecord, HostProcess, Pod, Testbed, TestbedOptions,
};

/// The workload: PID 1 is a shell that leaves 300 short-lived orphans to PID 1 and a daemon
/// that ignores SIGTERM (setsid and a double fork), then execs `sleep`, which never reaps.
const WORKLOAD: &str = "for i in $(seq 300); do ( sleep 1 & ); done; \
                        setsid sh -c '( trap \"\" TERM; exec sleep 1001 ) &'; \
                        exec sleep 1000";
const ORPHANS: usize = 300;
/// What an operator then runs in the container: a command that backgrounds a process.
const EXEC: [&str; 3] = [
    "sh",
    "-c",
    "sleep 1002 >/dev/null 2>&1 & until read c < /proc/$!/comm && [ $c = sleep ]; do :; done; echo started",
];
/// The grace period of the stop (kubelet's default is 30 s).
const GRACE: Duration = Duration::from_secs(10);
/// Bounds every wait of the demo.
const WAIT: Duration = Duration::from_secs(30);

/// What one handler made of the workload.
struct Outcome {
    handler: &'static str,
    container: Container,
    zombies: usize,
    exec_left: Vec<HostProcess>,
    stop_took: Duration,
    exit_code: i32,
    left_after_stop: Vec<HostProcess>,
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("undertaker-demo: cannot start a tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("undertaker-demo: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    if !is_root() {
        bail!("the demo runs its own containerd: run it as root (scripts/demo.sh does)");
    }
    println!("undertaker demo: one misbehaving pod, under runc and under undertaker\n");
    println!("  workload  PID 1 is a shell that leaves {ORPHANS} short-lived orphans and a daemon");
    println!("            that ignores SIGTERM (setsid + double fork), then execs `sleep`, which");
    println!(
        "            never reaps; later `kubectl exec` runs `{}`",
        EXEC[2]
    );
    println!(
        "  then      StopContainer with a {}s grace period\n",
        GRACE.as_secs()
    );
    let mut interrupt = signal(SignalKind::interrupt()).context("listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;

    print!("starting a private containerd ... ");
    let started = tokio::select! {
        started = Testbed::start(TestbedOptions::default()) => started,
        _ = interrupt.recv() => bail!("interrupted"),
        _ = terminate.recv() => bail!("terminated"),
    };
    let testbed = Arc::new(started.context("start the testbed")?);
    println!("ready in {}\n", testbed.dir().display());

    let outcome = tokio::select! {
        outcome = story(&testbed) => outcome,
        _ = interrupt.recv() => Err(anyhow::anyhow!("interrupted")),
        _ = terminate.recv() => Err(anyhow::anyhow!("terminated")),
    };
    if outcome.is_err() {
        println!("\ncleaning up ...");
    }
    let cleaned = clean_up(&testbed).await;
    outcome.and(cleaned)
}

/// Removes every pod and shows that nothing of them is left; dropping the testbed then stops
/// containerd and removes its directory.
async fn clean_up(testbed: &Testbed) -> anyhow::Result<()> {
    testbed.remove_all_pods().await.context("remove the pods")?;
    let leftovers = testbed.wait_for_no_leftovers(WAIT).await;
    if leftovers.is_empty() {
        println!("cleanup: pods removed; no shim, mount, cgroup or process of theirs is left");
        Ok(())
    } else {
        bail!("left behind after removing the pods:\n{leftovers}")
    }
}

async fn story(testbed: &Testbed) -> anyhow::Result<()> {
    let events = testbed.collect_events().await?;
    let (runc, undertaker) = futures::join!(play(testbed, "runc"), play(testbed, "undertaker"));
    let (runc, undertaker) = (runc?, undertaker?);
    // The init's report on the stop arrives with the exit; give the bus a moment to deliver.
    let wanted = |records: &[EventRecord]| {
        records.iter().any(|r| {
            r.topic == "/undertaker/leaked"
                && r.container_id == undertaker.container.id()
                && r.reason.as_deref() == Some("main-exit")
        })
    };
    let _ = events
        .wait_for("the leaked event of the stop", WAIT, wanted)
        .await;

    let records = events.records();
    println!();
    print_table(&runc, &undertaker, &records);
    println!();
    print_events(&records, &runc);
    print_events(&records, &undertaker);
    println!();
    Ok(())
}

/// Runs the workload in a pod of its own under `handler` and follows it to the stop.
async fn play(testbed: &Testbed, handler: &'static str) -> anyhow::Result<Outcome> {
    let pod: Pod = testbed
        .pod(&format!("demo-{handler}"), handler)
        .run()
        .await?;
    let container = pod.container("app").shell(WORKLOAD).run().await?;
    println!(
        "{handler:>10}: pod {} running",
        pod.id().get(..13).unwrap_or(pod.id())
    );

    // Ready: the shell has exec'd the never-reaping sleep, the daemon runs, no orphan does.
    wait_until(&format!("{handler}: the workload to settle"), || {
        let live = container.live_processes();
        let running = |cmdline: &str| live.iter().any(|p| p.cmdline == cmdline);
        (running("sleep 1000") && running("sleep 1001") && !running("sleep 1")).then_some(())
    })
    .await?;
    let zombies = container.zombies().len();
    println!("{handler:>10}: orphans done; {zombies} zombies in the pod");

    let output = container.exec_sync(&EXEC, WAIT).await?;
    let exec_left: Vec<HostProcess> = container
        .live_processes()
        .into_iter()
        .filter(|p| p.cmdline == "sleep 1002")
        .collect();
    println!(
        "{handler:>10}: exec printed {:?}; {} of its processes still running",
        output.stdout.trim(),
        exec_left.len()
    );

    let started = Instant::now();
    container.stop(GRACE).await?;
    let stop_took = started.elapsed();
    let exit_code = container.status().await?.exit_code;
    let left_after_stop = container.live_processes();
    println!("{handler:>10}: stopped in {:.1}s", stop_took.as_secs_f64());
    Ok(Outcome {
        handler,
        container,
        zombies,
        exec_left,
        stop_took,
        exit_code,
        left_after_stop,
    })
}

fn print_table(runc: &Outcome, undertaker: &Outcome, events: &[EventRecord]) {
    let row = |what: &str, value: &dyn Fn(&Outcome) -> String| {
        println!("  {what:<40} {:<30} {}", value(runc), value(undertaker));
    };
    println!("  {:<40} {:<30} {}", "", runc.handler, undertaker.handler);
    row("zombies after the orphans exited", &|o| {
        o.zombies.to_string()
    });
    row(
        "the exec's background process after it",
        &|o| match o.exec_left.first() {
            Some(process) => format!("running (pid {})", process.pid),
            None => "gone".to_string(),
        },
    );
    row("StopContainer took", &|o| {
        format!("{:.1}s", o.stop_took.as_secs_f64())
    });
    row("exit code", &|o| match o.exit_code {
        137 => "137 (SIGKILL)".to_string(),
        143 => "143 (SIGTERM)".to_string(),
        code => code.to_string(),
    });
    row("the daemon that ignores SIGTERM", &|o| {
        let reported = leaked_with(events, o, "sleep 1001");
        match reported {
            Some(killed_by) => format!("TERM, then {killed_by}; reported"),
            None => "SIGKILLed unseen with PID 1".to_string(),
        }
    });
    row("left on the host after the stop", &|o| {
        if o.left_after_stop.is_empty() {
            "nothing".to_string()
        } else {
            let names: Vec<&str> = o
                .left_after_stop
                .iter()
                .map(|p| p.cmdline.as_str())
                .collect();
            names.join(", ")
        }
    });
}

/// How the leaked process `cmdline` of `outcome`'s container was killed, if it was reported.
fn leaked_with(events: &[EventRecord], outcome: &Outcome, cmdline: &str) -> Option<String> {
    events
        .iter()
        .filter(|r| r.topic == "/undertaker/leaked" && r.container_id == outcome.container.id())
        .flat_map(|r| &r.processes)
        .find(|p| p.cmdline == cmdline)
        .map(|p| p.killed_by.clone().unwrap_or_else(|| "killed".to_string()))
}

/// The `/undertaker/*` events about `outcome`'s container, one short line each (reaps
/// summarised: a batch lists up to hundreds of processes).
fn print_events(events: &[EventRecord], outcome: &Outcome) {
    let mine: Vec<&EventRecord> = events
        .iter()
        .filter(|r| r.topic.starts_with("/undertaker/") && r.container_id == outcome.container.id())
        .collect();
    if mine.is_empty() {
        println!("events from the {} pod: none", outcome.handler);
        return;
    }
    println!("events from the {} pod:", outcome.handler);
    let reaped: Vec<&&EventRecord> = mine
        .iter()
        .filter(|r| r.topic == "/undertaker/reaped")
        .collect();
    if let Some(first) = reaped.first() {
        let total: u64 = reaped.iter().map(|r| r.total.unwrap_or(0)).sum();
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        for process in reaped.iter().flat_map(|r| &r.processes) {
            let status = process
                .exit_status
                .map_or("?".to_string(), |s| s.to_string());
            *kinds
                .entry(format!("{} exit {status}", process.comm))
                .or_default() += 1;
        }
        let kinds: Vec<String> = kinds.into_keys().collect();
        println!(
            "  /undertaker/reaped  {}: {total} reaped, in {} event{} (listed: {})",
            who(first),
            reaped.len(),
            if reaped.len() == 1 { "" } else { "s" },
            kinds.join(", ")
        );
    }
    for record in mine.iter().filter(|r| r.topic != "/undertaker/reaped") {
        let processes: Vec<String> = record
            .processes
            .iter()
            .map(|p| {
                format!(
                    "{:?} killed by {}",
                    p.cmdline,
                    p.killed_by.as_deref().unwrap_or("-")
                )
            })
            .collect();
        let reason = record.reason.as_deref().unwrap_or("-");
        let exec = if record.exec_id.is_empty() {
            ""
        } else {
            " (an exec)"
        };
        println!(
            "  {}  {}{exec}, reason {reason}: {}",
            record.topic,
            who(record),
            processes.join("; ")
        );
    }
}

/// `pod namespace/pod name (uid) container`, as the event names them.
fn who(record: &EventRecord) -> String {
    format!(
        "{}/{}/{} (pod uid {}) container {}",
        record.namespace, record.pod_namespace, record.pod, record.pod_uid, record.container_name
    )
}

async fn wait_until(what: &str, mut probe: impl FnMut() -> Option<()>) -> anyhow::Result<()> {
    let started = Instant::now();
    while probe().is_none() {
        if started.elapsed() >= WAIT {
            bail!("timed out after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
