//! An exec that leaves a background process behind: `sh -c '<sleep> & echo started'`.
//! Under undertaker the exec runs below the init as a subreaper, so when the shell exits its
//! leftover is TERMed and reported (`/undertaker/leaked`, reason `exec-exit`, with the exec
//! id), and ExecSync returns at once. Under runc the leftover lives on in the container, and
//! while it holds the exec's stdout ExecSync does not return (containerd waits for the output
//! to end).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use undertaker_e2e::{per_handler, Handler};
use undertaker_testbed::{event_lines, records_about, EventRecord, Testbed};

use crate::support::{
    ensure_identity, ensure_no_marked_process, marked_cmdline, marked_container, marker, named,
    wait_for_marked, DRAIN_ANNOTATION, DRAIN_TIMEOUT, WAIT,
};

per_handler!(exec_leaves_a_background_process);

/// ExecSync's own timeout (it bounds the process, not the output: see the runc case).
const EXEC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an ExecSync whose leftover holds its stdout is watched not returning under runc.
const STILL_BLOCKED: Duration = Duration::from_secs(5);

async fn exec_leaves_a_background_process(
    testbed: Arc<Testbed>,
    handler: Handler,
) -> anyhow::Result<()> {
    let events = testbed.collect_events().await?;
    let marker = marker(&testbed, "exec");
    let pod = testbed
        .pod("exec-leftovers", handler.name())
        .annotation(DRAIN_ANNOTATION, DRAIN_TIMEOUT)
        .run()
        .await?;
    let idle = "trap 'exit 0' TERM; sleep 3600 & wait";
    let container = marked_container(&pod, "host", &marker, idle).run().await?;

    // The first leftover holds the exec's stdout, the second does not.
    let holding = marked_cmdline(&marker, 1008);
    let detached = marked_cmdline(&marker, 1009);
    let exec = async |script: &str| {
        container
            .exec_sync(&["sh", "-c", script], EXEC_TIMEOUT)
            .await
    };
    // Each waits until its background child has exec'd `sleep` and its arguments are in
    // place, so the leftover is reported with its cmdline: the kernel names the process
    // (comm) before it sets up the new arguments, and a cmdline read between the two is empty
    // (seen once in CI under load, with a wait on comm). busybox's `read` drops the NULs, so
    // the cmdline reads as `/tmp/<marker>/sleep1008`.
    const HOLDING: &str = "/tmp/$MARK/sleep 1008 & \
        until read c < /proc/$!/cmdline; [ \"$c\" = /tmp/$MARK/sleep1008 ]; do :; done; \
        echo started";
    const DETACHED: &str = "/tmp/$MARK/sleep 1009 >/dev/null 2>&1 & \
        until read c < /proc/$!/cmdline; [ \"$c\" = /tmp/$MARK/sleep1009 ]; do :; done; \
        echo started";
    match handler {
        Handler::Undertaker => {
            for script in [HOLDING, DETACHED] {
                let started = Instant::now();
                let output = exec(script).await?;
                eprintln!("ExecSync {script:?} took {:?}", started.elapsed());
                ensure!(
                    output.stdout == "started\n" && output.exit_code == 0,
                    "ExecSync {script:?}: {output:?}"
                );
            }
            ensure_no_marked_process(&marker)?;
            let cmdlines = [holding, detached];
            let leaked = |records: &[EventRecord]| {
                records_about(records, "/undertaker/leaked", container.id())
            };
            let records = events
                .wait_for("leaked events naming both leftovers", WAIT, |records| {
                    named(&leaked(records), &cmdlines).len() >= cmdlines.len()
                })
                .await?;
            let records = leaked(&records);
            eprintln!("leaked events:\n{}", event_lines(&records));
            let found = named(&records, &cmdlines);
            ensure!(
                found.len() == 2,
                "each reported once:\n{}",
                event_lines(&records)
            );
            ensure!(
                found[0].1.exec_id != found[1].1.exec_id,
                "two execs, one exec id:\n{}",
                event_lines(&records)
            );
            for (process, record) in found {
                ensure_identity(record, &pod, container.id(), container.name())?;
                ensure!(
                    !record.exec_id.is_empty() && record.reason.as_deref() == Some("exec-exit"),
                    "expected an exec id and reason exec-exit: {record}"
                );
                ensure!(
                    process.comm == "sleep" && process.killed_by.as_deref() == Some("term"),
                    "reported as {process:?}"
                );
            }
        }
        Handler::Runc => {
            let output = exec(DETACHED).await?;
            ensure!(
                output.stdout == "started\n",
                "ExecSync {DETACHED:?}: {output:?}"
            );
            let survivors = wait_for_marked(|| container.live_processes(), &marker, 1).await?;
            ensure!(
                survivors[0].cmdline == detached,
                "the survivor is {:?}",
                survivors[0]
            );
            // The leftover holds the exec's stdout: CRI waits for it, not for the shell.
            let blocked = tokio::time::timeout(STILL_BLOCKED, exec(HOLDING)).await;
            ensure!(
                blocked.is_err(),
                "ExecSync {HOLDING:?} returned although its leftover holds stdout: {blocked:?}"
            );
            wait_for_marked(|| container.live_processes(), &marker, 2).await?;
        }
    }
    // The container itself runs on.
    ensure!(
        container
            .live_processes()
            .iter()
            .any(|p| p.cmdline == "sleep 3600"),
        "the container's own processes are gone: {:#?}",
        container.live_processes()
    );
    Ok(())
}
