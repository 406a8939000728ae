//! A readiness-probe-style exec that leaves a background child, once a second for a minute,
//! through a real containerd (root): under undertaker each exec's leftover is killed and
//! reported, the metrics count every one of them exactly, and the agent posts one quiet Event
//! for the container (created at the first report, then nothing until the pacing allows, here
//! not before shutdown) that names the exec's command, counts the reports and totals the
//! processes. Under runc the same probes leave their children running and nothing is
//! reported.
//!
//! Needs the shim and the init built: `cargo build -p undertaker-shim && scripts/build-init.sh`.

mod support;

use std::time::Duration;

use undertaker_testbed::{Container, Pod, Testbed};

use support::running::{with_api, WAIT};

/// The probe: a background child that outlives the exec (its output is not the exec's, so
/// ExecSync returns under runc too).
const PROBE: [&str; 3] = ["sh", "-c", "sleep 1000 >/dev/null 2>&1 &"];
/// How many probes, one a second: a minute of a probe every second.
const PROBES: u32 = 60;
/// The least time between two writes of one Event, for this test: longer than the test, so
/// every write after the first is one the pacing should have held back until shutdown.
const HELD_BACK: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_leaving_a_child_every_second_is_one_quiet_event_with_exact_counters() {
    let Some((testbed, standin, agent)) = with_api(|options| {
        options.check_every = undertaker_agent::CHECK_EVERY;
        options.min_write_gap = HELD_BACK;
    })
    .await
    else {
        return;
    };

    let (pod, app) = probed(&testbed, "undertaker").await;
    let meta = pod.config().metadata.clone().unwrap();
    let leaked_series = format!(
        r#"undertaker_leaked_processes_total{{namespace="{}",pod="{}",container="app"}}"#,
        meta.namespace, meta.name
    );

    // The first probe's report alone makes the Event: created without waiting for more.
    let output = app.exec_sync(&PROBE, WAIT).await.expect("ExecSync");
    assert_eq!(output.exit_code, 0, "{output:?}");
    let created = standin
        .wait_for(|r| r.event.reason.as_deref() == Some("LeakedProcesses"))
        .await;
    assert_eq!(created.method, "POST");
    assert_eq!(created.event.count, Some(1));

    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    for _ in 1..PROBES {
        every_second.tick().await;
        let output = app.exec_sync(&PROBE, WAIT).await.expect("ExecSync");
        assert_eq!(output.exit_code, 0, "{output:?}");
    }

    // Every leftover killed and counted, none lost to the Event pacing.
    let leaked = agent
        .wait_sample(&leaked_series, |v| v >= f64::from(PROBES))
        .await;
    assert_eq!(leaked, f64::from(PROBES));
    let left = app
        .exec_sync(&["ps", "-o", "pid,args"], WAIT)
        .await
        .expect("ps");
    assert!(
        !left.stdout.lines().any(|line| line.ends_with("sleep 1000")),
        "the probes' children are gone:\n{}",
        left.stdout
    );

    // A minute of reports: the Event was not written again.
    let writes = standin.received();
    assert_eq!(writes.len(), 1, "one write in the minute: {writes:#?}");

    // At shutdown what was held back is written: the same Event, every report counted.
    agent.stop().await;
    let writes = standin.received();
    let [create, patch] = writes.as_slice() else {
        panic!("a create and one patch: {writes:#?}");
    };
    assert_eq!(patch.method, "PATCH");
    assert_eq!(
        patch.event.metadata.name, create.event.metadata.name,
        "the same Event"
    );
    assert_eq!(patch.event.count, Some(PROBES as i32), "occurrences");
    let object = &patch.event.involved_object;
    assert_eq!(object.name.as_deref(), Some(meta.name.as_str()));
    assert_eq!(object.field_path.as_deref(), Some("spec.containers{app}"));
    let message = patch.event.message.clone().unwrap();
    assert!(
        message.starts_with(&format!(
            "killed {PROBES} processes left by exec \"sh -c sleep 1000 >/dev/null 2>&1 &\" \
             in container \"app\": "
        )),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_runc_the_same_probe_leaves_its_children_and_reports_nothing() {
    let Some((testbed, standin, agent)) = with_api(|_| {}).await else {
        return;
    };
    let (_pod, app) = probed(&testbed, "runc").await;

    for _ in 0..3 {
        let output = app.exec_sync(&PROBE, WAIT).await.expect("ExecSync");
        assert_eq!(output.exit_code, 0, "{output:?}");
    }

    let left = app
        .exec_sync(&["ps", "-o", "pid,args"], WAIT)
        .await
        .expect("ps");
    let children = left
        .stdout
        .lines()
        .filter(|line| line.ends_with("sleep 1000"))
        .count();
    assert_eq!(children, 3, "every probe's child is left:\n{}", left.stdout);
    agent.stop().await;
    assert_eq!(standin.received().len(), 0, "{:#?}", standin.received());
}

/// A pod under `handler` whose container `app` sleeps, for the probes to exec in.
async fn probed(testbed: &Testbed, handler: &str) -> (Pod, Container) {
    let pod = testbed.pod("probed", handler).run().await.expect("pod");
    let app = pod
        .container("app")
        .shell("exec sleep 999")
        .run()
        .await
        .expect("container");
    (pod, app)
}
