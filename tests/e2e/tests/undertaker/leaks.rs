//! Processes a container leaves behind: children that ignore TERM when it is stopped, and
//! daemons its main process leaves when it exits. Nothing of them may stay on the host, and
//! under undertaker each one is reported as leaked, with the pod's identity and how it was
//! killed. Also in a shareProcessNamespace pod and a hostPID pod, where undertaker-init is not
//! PID 1 and catches the orphans as a child subreaper.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use undertaker_e2e::{per_handler, Handler};
use undertaker_testbed::{
    event_lines, records_about, Container, EventCollector, EventRecord, PidMode, Pod, Testbed,
};

use crate::support::{
    ensure_identity, ensure_no_marked_process, marked_cmdline, marked_container, marker, named,
    wait_for_marked, DRAIN_ANNOTATION, DRAIN_TIMEOUT, WAIT,
};

per_handler!(
    stop_kills_children_that_ignore_term,
    stop_kills_children_that_ignore_term_in_a_shared_pid_namespace,
    stop_kills_children_that_ignore_term_with_host_pid,
    main_exit_kills_its_daemons,
    main_exit_kills_its_daemons_in_a_shared_pid_namespace,
    main_exit_kills_its_daemons_with_host_pid,
    main_exit_leftovers_are_named_in_the_termination_message,
);

/// Long enough for undertaker's TERM, drain and KILL; under runc a shell PID 1 ignores TERM,
/// so its stop ends with this grace period's SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

async fn stop_kills_children_that_ignore_term(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    stop_with_term_ignoring_children(testbed, handler, PidMode::Container).await
}

async fn stop_kills_children_that_ignore_term_in_a_shared_pid_namespace(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    stop_with_term_ignoring_children(testbed, handler, PidMode::Pod).await
}

async fn stop_kills_children_that_ignore_term_with_host_pid(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    stop_with_term_ignoring_children(testbed, handler, PidMode::Node).await
}

async fn main_exit_kills_its_daemons(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    main_exit_with_daemons(testbed, handler, PidMode::Container).await
}

async fn main_exit_kills_its_daemons_in_a_shared_pid_namespace(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    main_exit_with_daemons(testbed, handler, PidMode::Pod).await
}

async fn main_exit_kills_its_daemons_with_host_pid(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    main_exit_with_daemons(testbed, handler, PidMode::Node).await
}

/// A shell with two background children and one escaped daemon, all ignoring TERM, is
/// stopped: after StopContainer nothing of it runs on the host, and under undertaker each of
/// the three is reported, SIGKILLed by the init once the drain timeout passed.
async fn stop_with_term_ignoring_children(
    testbed: Arc<Testbed>,
    handler: Handler,
    pid_mode: PidMode,
) -> anyhow::Result<()> {
    let events = testbed.collect_events().await?;
    let marker = marker(&testbed, "stop");
    let pod = testbed
        .pod("leaks-on-stop", handler.name())
        .pid_mode(pid_mode)
        .annotation(DRAIN_ANNOTATION, DRAIN_TIMEOUT)
        .run()
        .await?;
    let body = "child '' 1001; child '' 1002; daemon '' 1003; wait";
    let container = marked_container(&pod, "stubborn", &marker, body)
        .run()
        .await?;
    wait_for_marked(|| container.live_processes(), &marker, 3).await?;

    container.stop(GRACE).await?;
    ensure_no_marked_process(&marker)?;
    ensure!(
        container.live_processes().is_empty(),
        "left in the container's cgroup: {:#?}",
        container.live_processes()
    );
    let expected: Vec<(String, &str)> = [1001, 1002, 1003]
        .into_iter()
        .map(|seconds| (marked_cmdline(&marker, seconds), "kill"))
        .collect();
    match handler {
        Handler::Undertaker => {
            let status = container.status().await?;
            ensure!(
                status.exit_code == 143,
                "exit code {}, expected 143: the shell died of the forwarded TERM",
                status.exit_code
            );
            ensure_leaked(&events, &pod, &container, &expected, "main-exit").await
        }
        Handler::Runc => ensure_no_undertaker_events(&events),
    }
}

/// The main process starts two daemons (setsid and a double fork), one that dies of TERM and
/// one that ignores it, and exits 0: the container exits 0, nothing of it runs on the host,
/// and under undertaker the init TERMs the first and KILLs the second after the drain
/// timeout, reporting both.
async fn main_exit_with_daemons(
    testbed: Arc<Testbed>,
    handler: Handler,
    pid_mode: PidMode,
) -> anyhow::Result<()> {
    let events = testbed.collect_events().await?;
    let marker = marker(&testbed, "daemons");
    let pod = testbed
        .pod("leaks-on-exit", handler.name())
        .pid_mode(pid_mode)
        .annotation(DRAIN_ANNOTATION, DRAIN_TIMEOUT)
        .run()
        .await?;
    let body = "daemon - 1004; daemon '' 1005; echo daemons started";
    let container = marked_container(&pod, "daemonizer", &marker, body)
        .run()
        .await?;

    let code = container.wait_exited(WAIT).await?;
    ensure!(code == 0, "exit code {code}: the main process exits 0");
    ensure_no_marked_process(&marker)?;
    ensure!(
        container.live_processes().is_empty(),
        "left in the container's cgroup: {:#?}",
        container.live_processes()
    );
    let lines = container.logs()?;
    ensure!(
        lines.iter().any(|line| line.text == "daemons started"),
        "the daemons never started: {lines:?}"
    );
    let expected = [
        (marked_cmdline(&marker, 1004), "term"),
        (marked_cmdline(&marker, 1005), "kill"),
    ];
    match handler {
        Handler::Undertaker => {
            ensure_leaked(&events, &pod, &container, &expected, "main-exit").await
        }
        Handler::Runc => ensure_no_undertaker_events(&events),
    }
}

/// With `undertaker.io/termination-message: "true"`, the daemons the main process left are
/// named in the termination message file (mounted as kubelet mounts it), after what the app
/// wrote; runc writes nothing there.
async fn main_exit_leftovers_are_named_in_the_termination_message(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    let marker = marker(&testbed, "termlog");
    let host_file = testbed.dir().join(format!("{marker}.termination-log"));
    std::fs::write(&host_file, "")?;
    let pod = testbed
        .pod("leaks-termination-message", handler.name())
        .annotation(DRAIN_ANNOTATION, DRAIN_TIMEOUT)
        .annotation("undertaker.io/termination-message", "true")
        .run()
        .await?;
    let body = "daemon - 1006; daemon '' 1007; echo 'app: done' > /dev/termination-log";
    let container = marked_container(&pod, "termlog", &marker, body)
        .mount("/dev/termination-log", host_file.display().to_string())
        .run()
        .await?;
    let code = container.wait_exited(WAIT).await?;
    ensure!(code == 0, "exit code {code}: the main process exits 0");
    ensure_no_marked_process(&marker)?;
    let message = std::fs::read_to_string(&host_file)?;
    eprintln!("termination message under {}:\n{message}", handler.name());
    match handler {
        Handler::Undertaker => {
            let mut lines = message.lines();
            ensure!(
                lines.next() == Some("app: done"),
                "the app's message first: {message:?}"
            );
            let summary = lines.next().unwrap_or_default();
            ensure!(
                summary.starts_with("undertaker: killed 2 processes left behind: "),
                "{message:?}"
            );
            for (seconds, by) in [(1006, "SIGTERM"), (1007, "SIGKILL")] {
                let named = format!("sleep ({}) by {by}", marked_cmdline(&marker, seconds));
                ensure!(summary.contains(&named), "{named:?} not in {summary:?}");
            }
            ensure!(lines.next().is_none(), "one line only: {message:?}");
        }
        Handler::Runc => ensure!(message == "app: done\n", "runc wrote {message:?}"),
    }
    pod.stop_and_remove().await?;
    Ok(())
}

/// Waits for `/undertaker/leaked` events of `container` naming every command line of
/// `expected` exactly once, each killed the way it says, for `reason`, with the pod identity.
async fn ensure_leaked(
    events: &EventCollector,
    pod: &Pod,
    container: &Container,
    expected: &[(String, &str)],
    reason: &str,
) -> anyhow::Result<()> {
    let cmdlines: Vec<String> = expected
        .iter()
        .map(|(cmdline, _)| cmdline.clone())
        .collect();
    let leaked =
        |records: &[EventRecord]| records_about(records, "/undertaker/leaked", container.id());
    let records = events
        .wait_for(
            "leaked events naming every marked process",
            WAIT,
            |records| named(&leaked(records), &cmdlines).len() >= cmdlines.len(),
        )
        .await?;
    let records = leaked(&records);
    eprintln!(
        "leaked events of {}:\n{}",
        container.name(),
        event_lines(&records)
    );
    let found = named(&records, &cmdlines);
    ensure!(
        found.len() == cmdlines.len(),
        "each process reported once; got:\n{}",
        event_lines(&records)
    );
    for (cmdline, killed_by) in expected {
        let (process, record) = found
            .iter()
            .find(|(process, _)| &process.cmdline == cmdline)
            .expect("every command line was found");
        ensure_identity(record, pod, container.id(), container.name())?;
        ensure!(record.exec_id.is_empty(), "an exec id: {record:?}");
        ensure!(
            record.reason.as_deref() == Some(reason),
            "reason {:?}, expected {reason}: {record}",
            record.reason
        );
        ensure!(
            process.comm == "sleep" && process.killed_by.as_deref() == Some(*killed_by),
            "{cmdline} reported as {process:?}, expected comm sleep, killed by {killed_by}"
        );
    }
    Ok(())
}

/// runc publishes nothing on undertaker's topics.
fn ensure_no_undertaker_events(events: &EventCollector) -> anyhow::Result<()> {
    let ours: Vec<_> = events
        .records()
        .into_iter()
        .filter(|record| record.topic.starts_with("/undertaker/"))
        .collect();
    ensure!(
        ours.is_empty(),
        "undertaker events under runc:\n{}",
        event_lines(&ours)
    );
    Ok(())
}
