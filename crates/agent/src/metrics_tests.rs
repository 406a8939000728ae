use std::time::SystemTime;

use undertaker_events::{
    Event, EventRecord, Identity, LeakReason, Leaked, Process, Reaped, Unkillable,
};
use undertaker_scan::{ContainerIdentity, ContainerReport, NodeReport};

use super::*;
use crate::test_support;

fn pod_identity(container: &str) -> Identity {
    test_support::pod_identity("web-0", container, "c1")
}

fn report(event: Event) -> Report {
    let record = EventRecord::new(&event, "k8s.io", SystemTime::now());
    Report::from_event(&event, record).unwrap()
}

fn sleepers(n: u32) -> Vec<Process> {
    (1..=n).map(|pid| Process::named(pid, "sleep")).collect()
}

/// The sample lines (no comments) of the exposition.
fn samples(metrics: &Metrics) -> Vec<String> {
    metrics
        .encode()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn reports_count_processes_by_namespace_pod_and_container() {
    let metrics = Metrics::new();
    // `total` counts processes not listed in the event too.
    metrics.count_report(&report(Event::Reaped(Reaped::now(
        pod_identity("app"),
        sleepers(2),
        40,
        0,
    ))));
    metrics.count_report(&report(Event::Reaped(Reaped::now(
        pod_identity("app"),
        sleepers(3),
        3,
        0,
    ))));
    metrics.count_report(&report(Event::Leaked(Leaked::now(
        pod_identity("sidecar"),
        sleepers(2),
        LeakReason::LEAK_REASON_MAIN_EXIT,
    ))));
    metrics.count_report(&report(Event::Unkillable(Unkillable::now(
        Identity::for_container("default", "plain-ctr", ""),
        sleepers(1),
    ))));

    let samples = samples(&metrics);

    for expected in [
        r#"undertaker_reaped_processes_total{namespace="shop",pod="web-0",container="app"} 43"#,
        r#"undertaker_leaked_processes_total{namespace="shop",pod="web-0",container="sidecar"} 2"#,
        r#"undertaker_unkillable_processes_total{namespace="",pod="",container="plain-ctr"} 1"#,
    ] {
        assert!(
            samples.iter().any(|s| s == expected),
            "{expected} in {samples:#?}"
        );
    }
    assert_eq!(
        samples
            .iter()
            .filter(|s| s.starts_with("undertaker_reaped_processes_total"))
            .count(),
        1
    );
}

#[test]
fn every_metric_is_described_with_its_type() {
    let metrics = Metrics::new();
    // Families show only once they have a series.
    metrics.count_report(&report(Event::Reaped(Reaped::now(
        pod_identity("app"),
        sleepers(1),
        1,
        0,
    ))));
    metrics.count_report(&report(Event::Leaked(Leaked::now(
        pod_identity("app"),
        sleepers(1),
        LeakReason::LEAK_REASON_STOP,
    ))));
    metrics.count_report(&report(Event::Unkillable(Unkillable::now(
        pod_identity("app"),
        sleepers(1),
    ))));
    metrics.set_zombies(&NodeReport {
        containers: vec![container("web-0", "app", 1)],
        skipped: Vec::new(),
    });
    metrics.api_written("create");
    metrics.api_failed("patch");
    let text = metrics.encode();
    for (name, kind) in [
        ("undertaker_reaped_processes", "counter"),
        ("undertaker_leaked_processes", "counter"),
        ("undertaker_unkillable_processes", "counter"),
        ("undertaker_container_zombies", "gauge"),
        ("undertaker_agent_scan_errors", "counter"),
        ("undertaker_agent_events_dropped", "counter"),
        ("undertaker_agent_kubernetes_writes", "counter"),
        ("undertaker_agent_kubernetes_api_errors", "counter"),
        ("undertaker_agent_containerd_reconnects", "counter"),
        ("undertaker_agent_containerd_connected", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} {kind}:\n{text}"
        );
        assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with EOF");
}

fn container(pod: &str, name: &str, zombies: usize) -> ContainerReport {
    ContainerReport {
        identity: ContainerIdentity {
            pod_namespace: "shop".into(),
            pod_name: pod.into(),
            container: name.into(),
            ..Default::default()
        },
        pid: Some(100),
        processes: 1,
        zombies,
        zombie_parents: Vec::new(),
        blocked: Vec::new(),
        left: Vec::new(),
        pids: None,
    }
}

#[test]
fn zombie_gauges_follow_the_last_scan_and_drop_gone_containers() {
    let metrics = Metrics::new();
    metrics.set_zombies(&NodeReport {
        containers: vec![container("web-0", "app", 7), container("web-1", "app", 0)],
        skipped: Vec::new(),
    });
    metrics.set_zombies(&NodeReport {
        containers: vec![container("web-1", "app", 2)],
        skipped: Vec::new(),
    });

    assert_eq!(
        zombie_samples(&metrics),
        [r#"undertaker_container_zombies{namespace="shop",pod="web-1",container="app"} 2"#]
    );
}

#[test]
fn an_exited_instance_beside_its_restarted_container_does_not_set_the_gauge() {
    let metrics = Metrics::new();
    let running = container("web-0", "app", 3);
    let mut exited = container("web-0", "app", 0);
    exited.pid = None;
    metrics.set_zombies(&NodeReport {
        containers: vec![running, exited],
        skipped: Vec::new(),
    });

    assert_eq!(
        zombie_samples(&metrics),
        [r#"undertaker_container_zombies{namespace="shop",pod="web-0",container="app"} 3"#]
    );
}

fn zombie_samples(metrics: &Metrics) -> Vec<String> {
    samples(metrics)
        .into_iter()
        .filter(|s| s.starts_with("undertaker_container_zombies"))
        .collect()
}

#[test]
fn agent_health_counters_have_their_labels() {
    let metrics = Metrics::new();
    metrics.api_written("create");
    metrics.api_written("patch");
    metrics.api_written("patch");
    metrics.api_failed("create");
    metrics.containerd_subscribed(false);
    metrics.containerd_lost();
    metrics.containerd_subscribed(true);
    metrics.scan_failed();

    let samples = samples(&metrics);

    for expected in [
        r#"undertaker_agent_kubernetes_writes_total{operation="create"} 1"#,
        r#"undertaker_agent_kubernetes_writes_total{operation="patch"} 2"#,
        r#"undertaker_agent_kubernetes_api_errors_total{operation="create"} 1"#,
        "undertaker_agent_containerd_reconnects_total 1",
        "undertaker_agent_containerd_connected 1",
        "undertaker_agent_scan_errors_total 1",
        "undertaker_agent_events_dropped_total 0",
    ] {
        assert!(
            samples.iter().any(|s| s == expected),
            "{expected} in {samples:#?}"
        );
    }
}
