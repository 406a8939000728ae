//! The `undertaker.io/` annotations, as a pod author sets them: opting out of the init, a bad
//! value failing the create with a message naming the annotation, and the signal scope.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use undertaker_e2e::IDLE_SCRIPT;
use undertaker_testbed::{stream_lines, Container, LogStream, Testbed};

use crate::support::{wait_for_cmdline, WAIT};

undertaker_e2e::undertaker_only!(
    init_false_runs_the_command_as_pid1,
    a_bad_value_fails_the_container_naming_the_annotation,
    group_scope_sends_term_to_the_process_group,
);

/// The command line the injected init runs under in the container.
const INIT_PATH: &str = "/dev/.undertaker/init";

/// `undertaker.io/init: "false"` runs the command itself as the container's PID 1; without it
/// the init is PID 1 and the command runs below it.
async fn init_false_runs_the_command_as_pid1(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    let pod = testbed.pod("no-init", "undertaker").run().await?;
    let with_init = pod.container("with-init").shell(IDLE_SCRIPT).run().await?;
    let without_init = pod
        .container("without-init")
        .annotation("undertaker.io/init", "false")
        .shell(IDLE_SCRIPT)
        .run()
        .await?;

    let injected = with_init.pid1_after_exec(WAIT).await?;
    ensure!(
        injected.cmdline.starts_with(INIT_PATH) && injected.cmdline.ends_with(IDLE_SCRIPT),
        "PID 1 of the default container is {:?}, expected {INIT_PATH} … -- sh -c …",
        injected.cmdline
    );
    let own = without_init.pid1_after_exec(WAIT).await?;
    ensure!(
        own.cmdline == format!("sh -c {IDLE_SCRIPT}"),
        "PID 1 with undertaker.io/init=false is {:?}, expected the command itself",
        own.cmdline
    );
    // Seen from inside, too: /proc/1 of the container's PID namespace.
    let inside = without_init
        .exec_sync(&["cat", "/proc/1/cmdline"], WAIT)
        .await?;
    ensure!(
        inside.stdout.replace('\0', " ").trim_end() == format!("sh -c {IDLE_SCRIPT}"),
        "/proc/1/cmdline inside: {:?}",
        inside.stdout
    );
    Ok(())
}

/// A value undertaker cannot use fails the container, with an error naming the annotation,
/// never a silent default. CRI's CreateContainer only records the container; the shim first
/// sees the spec when the task is created, so for a container it is StartContainer that
/// fails, and for a pod annotation RunPodSandbox (whose sandbox task starts at once).
async fn a_bad_value_fails_the_container_naming_the_annotation(
    testbed: Arc<Testbed>,
) -> anyhow::Result<()> {
    const BAD: [(&str, &str); 3] = [
        ("undertaker.io/drain-timeout", "bogus"),
        ("undertaker.io/signal-scope", "everyone"),
        ("undertaker.io/init", "maybe"),
    ];
    let named_in = |error: &str, annotation: &str, value: &str| -> anyhow::Result<()> {
        ensure!(
            error.contains(annotation) && error.contains(value),
            "{annotation}={value:?}: the error does not name both: {error}"
        );
        eprintln!("{annotation}={value:?}: {error}");
        Ok(())
    };
    let pod = testbed.pod("bad-annotations", "undertaker").run().await?;
    for (annotation, value) in BAD {
        let container = pod
            .container("bad")
            .annotation(annotation, value)
            .shell(IDLE_SCRIPT)
            .create()
            .await?;
        let error = match container.start().await {
            Ok(()) => anyhow::bail!("{annotation}={value:?} was accepted"),
            Err(error) => error.to_string(),
        };
        named_in(&error, annotation, value)?;
        container.remove().await?;
    }

    let (annotation, value) = BAD[0];
    let sandbox = testbed
        .pod("bad-pod-annotation", "undertaker")
        .annotation(annotation, value)
        .run()
        .await;
    let error = match sandbox {
        Ok(pod) => anyhow::bail!(
            "pod annotation {annotation}={value:?} was accepted: {}",
            pod.id()
        ),
        Err(error) => error.to_string(),
    };
    named_in(&error, annotation, value)
}

/// The main shell traps TERM and then watches a background sleep of its own process group.
/// With `undertaker.io/signal-scope: group` the stop's TERM reaches the whole group: the
/// sleep dies, the shell sees it and exits 0. With the default (`child`) only the shell gets
/// TERM; the sleep lives on and the stop ends in SIGKILL after the grace period.
async fn group_scope_sends_term_to_the_process_group(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    const SCRIPT: &str = "trap 'echo main-got-term' TERM; sleep 1000 & member=$!; \
                          while kill -0 $member 2>/dev/null; do sleep 0.1; done; echo member-gone";
    const GRACE: Duration = Duration::from_secs(2);
    let pod = testbed.pod("scopes", "undertaker").run().await?;
    let child = pod.container("child-scope").shell(SCRIPT).run().await?;
    let group = pod
        .container("group-scope")
        .annotation("undertaker.io/signal-scope", "group")
        .shell(SCRIPT)
        .run()
        .await?;
    for container in [&child, &group] {
        wait_for_cmdline(container, "sleep 1000").await?;
    }

    let (stopped_child, stopped_group) = futures::join!(child.stop(GRACE), group.stop(GRACE));
    stopped_child?;
    stopped_group?;

    // The log is written asynchronously: wait for the lines each shell must have said.
    let said = async |container: &Container, lines: usize| {
        let logs = container
            .wait_for_logs(WAIT, |logs| logs.len() >= lines)
            .await?;
        anyhow::Ok(stream_lines(&logs, LogStream::Stdout))
    };
    let group_said = said(&group, 2).await?;
    ensure!(
        group_said == ["main-got-term", "member-gone"],
        "group scope: the shell said {group_said:?}"
    );
    let code = group.status().await?.exit_code;
    ensure!(code == 0, "group scope: exit code {code}, expected 0");

    let child_said = said(&child, 1).await?;
    ensure!(
        child_said == ["main-got-term"],
        "child scope: the shell said {child_said:?}"
    );
    let code = child.status().await?.exit_code;
    ensure!(
        code == 137,
        "child scope: exit code {code}, expected 137 (KILL after the grace period)"
    );
    Ok(())
}
