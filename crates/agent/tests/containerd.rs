//! The agent against a real containerd and real shims (root; each test starts its own
//! containerd through undertaker-testbed, with handlers `undertaker` and `runc`): the leak and
//! zombie scenarios end up as exact counters on /metrics (scraped over HTTP), as zombie gauges
//! from the periodic scan, and as core/v1 Events at a stand-in API server; the agent subscribes
//! again after containerd restarts.
//!
//! Needs the shim and the init built: `cargo build -p undertaker-shim && scripts/build-init.sh`.

mod support;

use std::time::Duration;

use undertaker_events::{Process, Reaped};

use support::running::{publish, testbed, with_api, RunningAgent, WAIT};

/// A main process that leaves a TERM-proof process behind when it exits: the inner shell
/// ignores TERM and execs its last command, so one `sleep 1000` that ignores TERM is left.
const LEAK_SCRIPT: &str = r#"sh -c "trap \"\" TERM; sleep 1000" & until [ "$(tr '\0' ' ' < /proc/$!/cmdline 2>/dev/null)" = "sleep 1000 " ]; do sleep 0.01; done; exit 0"#;
/// 50 orphans: each `sleep 0` outlives the subshell that started it, so its parent becomes
/// the container's init, which must reap it (undertaker-init does, and reports it).
const ORPHAN_SCRIPT: &str = "for i in $(seq 50); do (sleep 0 &); done; exec sleep 1000";
/// 50 zombies of a live parent that never reaps: 50 children that wait until the main shell
/// has exec'd `sleep`, then exit. Exactly 50 every run (no init reaps another's children).
const UNREAPED_SCRIPT: &str = "for i in $(seq 50); do \
     ( while read -r comm < /proc/$$/comm; [ \"$comm\" != sleep ]; do sleep 0.01; done ) & \
     done; exec sleep 1000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leak_and_zombie_scenarios_show_as_exact_metrics_and_pod_events() {
    let Some((testbed, standin, agent)) = with_api(|_| {}).await else {
        return;
    };

    // Leak: the main process exits, the TERM-proof sleep is left; after the 200ms drain the
    // init SIGKILLs it and reports it.
    let leak_pod = testbed
        .pod("leak-pod", "undertaker")
        .run()
        .await
        .expect("pod");
    let leaker = leak_pod
        .container("leaker")
        .shell(LEAK_SCRIPT)
        .annotation("undertaker.io/drain-timeout", "200ms")
        .run()
        .await
        .expect("container");
    leaker
        .wait_exited(WAIT)
        .await
        .expect("the main process exits");
    let meta = leak_pod.config().metadata.clone().unwrap();
    let leak_event = standin
        .wait_for(|r| r.event.reason.as_deref() == Some("LeakedProcesses"))
        .await;
    let leaked_series = format!(
        r#"undertaker_leaked_processes_total{{namespace="{}",pod="{}",container="leaker"}}"#,
        meta.namespace, meta.name
    );
    // The Event is written at the container's exit, after every report before it was counted.
    let leaked = agent.sample(&leaked_series).await;
    assert_eq!(leaked, Some(1.0), "the sleep: {:?}", leak_event.event);
    assert_eq!(leak_event.method, "POST");
    assert_eq!(
        leak_event.path,
        format!("/api/v1/namespaces/{}/events", meta.namespace)
    );
    let object = &leak_event.event.involved_object;
    assert_eq!(object.kind.as_deref(), Some("Pod"));
    assert_eq!(object.name.as_deref(), Some(meta.name.as_str()));
    assert_eq!(object.namespace.as_deref(), Some(meta.namespace.as_str()));
    assert_eq!(object.uid.as_deref(), Some(meta.uid.as_str()));
    assert_eq!(leak_event.event.count, Some(1));
    assert_eq!(leak_event.event.type_.as_deref(), Some("Warning"));
    let message = leak_event.event.message.clone().unwrap();
    let (headline, process) = message.split_once(": ").unwrap();
    assert_eq!(
        headline,
        "killed 1 process left in container \"leaker\" after its main process exited"
    );
    // `<pid> sleep (sleep 1000) by SIGKILL`, the pid in the container's PID namespace.
    let (pid, rest) = process.split_once(' ').unwrap();
    assert!(pid.parse::<u32>().is_ok_and(|pid| pid > 1), "{message}");
    assert_eq!(rest, "sleep (sleep 1000) by SIGKILL");

    // Zombies: under undertaker the init reaps the 50 orphans and reports them; the scan
    // counts the 50 zombies a runc container's non-reaping main process piles up.
    let reaping_pod = testbed
        .pod("zombie-pod", "undertaker")
        .run()
        .await
        .expect("pod");
    let reaping = reaping_pod
        .container("zombies")
        .shell(ORPHAN_SCRIPT)
        .run()
        .await
        .expect("container");
    let runc_pod = testbed
        .pod("runc-zombie-pod", "runc")
        .run()
        .await
        .expect("pod");
    runc_pod
        .container("zombies")
        .shell(UNREAPED_SCRIPT)
        .run()
        .await
        .expect("container");
    let reaping_meta = reaping_pod.config().metadata.clone().unwrap();
    let runc_meta = runc_pod.config().metadata.clone().unwrap();
    let labels = |meta: &undertaker_testbed::api::PodSandboxMetadata| {
        format!(
            r#"{{namespace="{}",pod="{}",container="zombies"}}"#,
            meta.namespace, meta.name
        )
    };
    let reaped_series = format!("undertaker_reaped_processes_total{}", labels(&reaping_meta));
    assert_eq!(agent.wait_sample(&reaped_series, |v| v >= 50.0).await, 50.0);
    let runc_zombies = format!("undertaker_container_zombies{}", labels(&runc_meta));
    assert_eq!(agent.wait_sample(&runc_zombies, |v| v >= 50.0).await, 50.0);
    let reaping_zombies = format!("undertaker_container_zombies{}", labels(&reaping_meta));
    assert_eq!(agent.wait_sample(&reaping_zombies, |_| true).await, 0.0);
    let runc_reaped = format!("undertaker_reaped_processes_total{}", labels(&runc_meta));
    assert_eq!(
        agent.sample(&runc_reaped).await,
        None,
        "runc reports nothing"
    );

    reaping.stop(Duration::from_secs(10)).await.expect("stop");
    let reaped_event = standin
        .wait_for(|r| r.event.reason.as_deref() == Some("ZombiesReaped"))
        .await;
    // `count` is how many reports the Event stands for: the init batches what it reaps each
    // second, so 50 orphans are one report or a few; the message has the processes' total.
    let reports = reaped_event.event.count.unwrap_or_default();
    assert!((1..=50).contains(&reports), "count {reports}");
    assert_eq!(reaped_event.event.type_.as_deref(), Some("Normal"));
    let object = &reaped_event.event.involved_object;
    assert_eq!(object.name.as_deref(), Some(reaping_meta.name.as_str()));
    assert_eq!(object.uid.as_deref(), Some(reaping_meta.uid.as_str()));
    let message = reaped_event.event.message.clone().unwrap();
    assert!(
        message.starts_with("reaped 50 orphaned processes in container \"zombies\": "),
        "{message}"
    );
    assert!(message.ends_with("; and 40 more"), "{message}");
    assert_eq!(
        standin.received().len(),
        2,
        "one Event per pod and reason: {:#?}",
        standin.received()
    );
    assert_eq!(
        agent.sample("undertaker_agent_events_dropped_total").await,
        Some(0.0)
    );

    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_again_after_containerd_restarts_and_counts_what_follows() {
    let Some(testbed) = testbed().await else {
        return;
    };
    let agent = RunningAgent::start(&testbed, None).await;
    agent.wait_subscribed(&testbed).await;
    assert_eq!(
        agent
            .sample("undertaker_agent_containerd_reconnects_total")
            .await,
        Some(0.0)
    );

    testbed.restart_containerd().await.expect("restart");
    agent.wait_subscribed(&testbed).await;
    let processes = (1..=3)
        .map(|pid| Process::named(pid, "sleep").exited(0))
        .collect();
    let identity = support::pod_identity("uid-1", "nginx", "0123456789abcdef");
    publish(&testbed, &Reaped::now(identity, processes, 7, 0)).await;

    let series =
        r#"undertaker_reaped_processes_total{namespace="shop",pod="web-0",container="nginx"}"#;
    assert_eq!(agent.wait_sample(series, |v| v > 0.0).await, 7.0);
    assert_eq!(
        agent
            .sample("undertaker_agent_containerd_reconnects_total")
            .await,
        Some(1.0)
    );
    agent.stop().await;
}
