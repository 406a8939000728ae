//! The Kubernetes path through a real kube client: the writer's creates and patches reach a
//! stand-in API server (from a generated kubeconfig) as core/v1 Events on the right pod, with
//! the aggregated count. Needs no root and no cluster.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use undertaker_agent::{
    kube_client, queue, Aggregator, Item, KubeConfigSource, KubeEvents, Metrics, Pacing, Report,
    Writer, DEFAULT_WINDOW,
};
use undertaker_events::{
    Event as Payload, EventRecord, Identity, LeakReason, Leaked, Process, Reaped,
};

use support::standin::StandIn;

/// A check interval no test waits for: only exits and shutdown make writes.
const NEVER: Duration = Duration::from_secs(3600);

fn identity() -> Identity {
    support::pod_identity("5f1e-uid", "app", "c0ffee")
}

fn item(event: Payload) -> Item {
    let record = EventRecord::new(&event, "k8s.io", SystemTime::now());
    Item::Report(Box::new(Report::from_event(&event, record).unwrap()))
}

fn reaped(pid: u32) -> Item {
    let mut sleeper = Process::named(pid, "sleep").exited(0);
    sleeper.set_cmdline_raw(b"sleep\x000\x00");
    item(Payload::Reaped(Reaped::now(
        identity(),
        vec![sleeper],
        1,
        0,
    )))
}

fn leaked() -> Item {
    let mut shell = Process::named(7, "sh");
    shell.killed_by = undertaker_events::KilledBy::KILLED_BY_KILL.into();
    let leak = Leaked::now(identity(), vec![shell], LeakReason::LEAK_REASON_MAIN_EXIT);
    item(Payload::Leaked(leak))
}

async fn writer(standin: &StandIn, dir: &tempfile::TempDir) -> (Writer<KubeEvents>, Arc<Metrics>) {
    let kubeconfig = standin.kubeconfig(dir.path());
    let client = kube_client(&KubeConfigSource::File(kubeconfig))
        .await
        .expect("a client for the stand-in");
    let metrics = Arc::new(Metrics::new());
    let writer = Writer {
        api: KubeEvents::new(client),
        // No least gap between writes: each flush writes what came since the last one.
        aggregator: Aggregator::new(
            "node-7",
            Pacing {
                window: DEFAULT_WINDOW,
                min_gap: Duration::ZERO,
            },
        ),
        metrics: metrics.clone(),
        check_every: NEVER,
    };
    (writer, metrics)
}

#[tokio::test]
async fn a_storm_is_posted_as_one_core_v1_event_on_the_pod() {
    let standin = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (writer, metrics) = writer(&standin, &dir).await;
    let (sender, receiver) = queue(1000, metrics.clone());
    for pid in 1..=50 {
        assert!(sender.offer(reaped(pid)));
    }
    assert!(sender.offer(leaked()));
    let shutdown = CancellationToken::new();
    shutdown.cancel();

    writer.run(receiver, shutdown).await;

    let received = standin.received();
    assert_eq!(received.len(), 2, "{received:#?}");
    for request in &received {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/api/v1/namespaces/shop/events");
        let object = &request.event.involved_object;
        assert_eq!(object.kind.as_deref(), Some("Pod"));
        assert_eq!(object.name.as_deref(), Some("web-0"));
        assert_eq!(object.namespace.as_deref(), Some("shop"));
        assert_eq!(object.uid.as_deref(), Some("5f1e-uid"));
        let source = request.event.source.as_ref().unwrap();
        assert_eq!(source.component.as_deref(), Some("undertaker"));
        assert_eq!(source.host.as_deref(), Some("node-7"));
    }
    let reaped = received
        .iter()
        .find(|r| r.event.reason.as_deref() == Some("ZombiesReaped"))
        .expect("a ZombiesReaped event");
    assert_eq!(reaped.event.count, Some(50));
    assert_eq!(reaped.event.type_.as_deref(), Some("Normal"));
    let message = reaped.event.message.as_deref().unwrap();
    assert!(
        message.starts_with(
            "reaped 50 orphaned processes in container \"app\": 1 sleep (sleep 0) exit 0; \
             2 sleep (sleep 0) exit 0;"
        ),
        "{message}"
    );
    assert!(message.ends_with("; and 40 more"), "{message}");

    let leak = received
        .iter()
        .find(|r| r.event.reason.as_deref() == Some("LeakedProcesses"))
        .expect("a LeakedProcesses event");
    assert_eq!(leak.event.count, Some(1));
    assert_eq!(leak.event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        leak.event.message.as_deref(),
        Some(
            "killed 1 process left in container \"app\" after its main process exited: \
             7 sh by SIGKILL"
        )
    );
    assert!(metrics
        .encode()
        .contains("undertaker_agent_kubernetes_writes_total{operation=\"create\"} 2\n"));
}

#[tokio::test]
async fn more_reports_patch_the_event_count_and_a_gone_event_is_created_again() {
    let standin = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _metrics) = writer(&standin, &dir).await;
    writer_take(&mut writer, reaped(1));
    writer_take(&mut writer, reaped(2));
    writer.flush(None, false).await;
    writer_take(&mut writer, reaped(3));
    writer.flush(None, false).await;
    standin.forget_events();
    writer_take(&mut writer, reaped(4));
    writer.flush(None, false).await; // 404: made again at the next flush
    writer.flush(None, false).await;

    let received = standin.received();
    let calls: Vec<(&str, Option<i32>)> = received
        .iter()
        .map(|r| (r.method.as_str(), r.event.count))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST", Some(2)),
            ("PATCH", Some(3)),
            ("PATCH", Some(4)),
            ("POST", Some(4))
        ]
    );
    let name = received[0].event.metadata.name.clone().unwrap();
    assert_eq!(
        received[1].path,
        format!("/api/v1/namespaces/shop/events/{name}")
    );
    assert_eq!(received[1].content_type, "application/merge-patch+json");
    assert_eq!(received[1].event.metadata.name.as_deref(), Some(&*name));
    // The window's total, naming what came since the previous write.
    assert_eq!(
        received[1].event.message.as_deref(),
        Some(
            "reaped 3 orphaned processes in container \"app\": 3 sleep (sleep 0) exit 0; \
             and 2 more"
        )
    );
    assert_ne!(received[3].event.metadata.name.as_deref(), Some(&*name));
}

/// Counts a report the way the writer's loop does, without the loop.
fn writer_take(writer: &mut Writer<KubeEvents>, item: Item) {
    let Item::Report(report) = item else {
        panic!("a report");
    };
    writer.aggregator.add(&report, SystemTime::now());
}
