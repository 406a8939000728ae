use std::sync::Mutex;

use k8s_openapi::api::core::v1::Event;
use tokio::sync::{mpsc, Notify, Semaphore};
use undertaker_events::{
    Event as Payload, EventRecord, Identity, LeakReason, Leaked, Process, Reaped,
};

use super::*;
use crate::aggregate::Pacing;
use crate::test_support::pod_identity;

fn identity(container_id: &str) -> Identity {
    pod_identity("web-0", "app", container_id)
}

use crate::queue::{queue, Item};
use crate::report::Report;

/// Records every call; fails or blocks as told.
#[derive(Default)]
struct FakeApi {
    calls: Mutex<Vec<(&'static str, Event)>>,
    /// Patches answer "not found".
    events_gone: bool,
    /// Every call fails.
    failing: bool,
    /// When set, each call waits for a permit (after telling `entered`).
    gate: Option<Arc<Semaphore>>,
    entered: Notify,
    called: Notify,
}

impl FakeApi {
    async fn call(&self, operation: &'static str, event: &Event) -> Result<(), WriteError> {
        if let Some(gate) = &self.gate {
            self.entered.notify_one();
            gate.acquire().await.unwrap().forget();
        }
        self.calls.lock().unwrap().push((operation, event.clone()));
        self.called.notify_one();
        let name = event.metadata.name.clone().unwrap_or_default();
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        if self.failing {
            return Err(WriteError::Timeout {
                operation,
                namespace,
                name,
                timeout: Duration::ZERO,
            });
        }
        if operation == "patch" && self.events_gone {
            return Err(WriteError::NotFound { namespace, name });
        }
        Ok(())
    }

    fn calls(&self) -> Vec<(&'static str, Event)> {
        self.calls.lock().unwrap().clone()
    }
}

impl EventApi for Arc<FakeApi> {
    async fn create(&self, event: &Event) -> Result<(), WriteError> {
        self.call("create", event).await
    }
    async fn patch(&self, event: &Event) -> Result<(), WriteError> {
        self.call("patch", event).await
    }
}

fn reaped(pid: u32) -> Item {
    let processes = vec![Process::named(pid, "sleep").exited(0)];
    let event = Payload::Reaped(Reaped::now(identity("c1"), processes, 1, 0));
    let record = EventRecord::new(&event, "k8s.io", SystemTime::now());
    Item::Report(Box::new(Report::from_event(&event, record).unwrap()))
}

fn leaked() -> Item {
    let processes = vec![Process::named(3, "sleep")];
    let leak = Leaked::now(identity("c1"), processes, LeakReason::LEAK_REASON_MAIN_EXIT);
    let event = Payload::Leaked(leak);
    let record = EventRecord::new(&event, "k8s.io", SystemTime::now());
    Item::Report(Box::new(Report::from_event(&event, record).unwrap()))
}

fn writer(
    api: &Arc<FakeApi>,
    metrics: &Arc<Metrics>,
    check_every: Duration,
) -> Writer<Arc<FakeApi>> {
    paced_writer(api, metrics, check_every, Pacing::default())
}

fn paced_writer(
    api: &Arc<FakeApi>,
    metrics: &Arc<Metrics>,
    check_every: Duration,
    pacing: Pacing,
) -> Writer<Arc<FakeApi>> {
    Writer {
        api: api.clone(),
        aggregator: Aggregator::new("node-1", pacing),
        metrics: metrics.clone(),
        check_every,
    }
}

/// No gap between two writes of one Event: every flush writes what came since the last.
const UNPACED: Pacing = Pacing {
    window: crate::aggregate::DEFAULT_WINDOW,
    min_gap: Duration::ZERO,
};

/// A check interval no test waits for: only exits and shutdown make writes.
const NEVER: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_storm_queued_before_shutdown_is_one_created_event() {
    let api = Arc::new(FakeApi::default());
    let metrics = Arc::new(Metrics::new());
    let (sender, receiver) = queue(1000, metrics.clone());
    for pid in 1..=200 {
        assert!(sender.offer(reaped(pid)));
    }
    let shutdown = CancellationToken::new();
    shutdown.cancel();

    writer(&api, &metrics, NEVER).run(receiver, shutdown).await;

    let calls = api.calls();
    let [(operation, event)] = calls.as_slice() else {
        panic!("one write, not {calls:#?}");
    };
    assert_eq!(*operation, "create");
    assert_eq!(event.count, Some(200));
    assert_eq!(event.reason.as_deref(), Some("ZombiesReaped"));
    assert!(metrics
        .encode()
        .contains("undertaker_agent_kubernetes_writes_total{operation=\"create\"} 1\n"));
}

#[tokio::test]
async fn an_exit_writes_the_containers_events_at_once_then_patches_follow() {
    let api = Arc::new(FakeApi::default());
    let metrics = Arc::new(Metrics::new());
    let (sender, receiver) = queue(16, metrics.clone());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(writer(&api, &metrics, NEVER).run(receiver, shutdown.clone()));

    sender.offer(leaked());
    sender.offer(Item::Exited {
        container_id: "c1".into(),
    });
    api.called.notified().await;
    sender.offer(leaked());
    sender.offer(leaked());
    shutdown.cancel();
    running.await.unwrap();

    let calls = api.calls();
    let operations: Vec<_> = calls.iter().map(|(op, e)| (*op, e.count)).collect();
    assert_eq!(operations, [("create", Some(1)), ("patch", Some(3))]);
    assert_eq!(calls[0].1.metadata.name, calls[1].1.metadata.name);
    assert_eq!(calls[1].1.type_.as_deref(), Some("Warning"));
}

#[tokio::test]
async fn failed_calls_are_counted_as_api_errors() {
    let api = Arc::new(FakeApi {
        failing: true,
        ..Default::default()
    });
    let metrics = Arc::new(Metrics::new());
    let (sender, receiver) = queue(16, metrics.clone());
    sender.offer(reaped(1));
    let shutdown = CancellationToken::new();
    shutdown.cancel();

    writer(&api, &metrics, NEVER).run(receiver, shutdown).await;

    assert_eq!(api.calls().len(), 1);
    assert!(metrics
        .encode()
        .contains("undertaker_agent_kubernetes_api_errors_total{operation=\"create\"} 1\n"));
}

#[tokio::test]
async fn a_gone_event_is_created_anew() {
    let api = Arc::new(FakeApi {
        events_gone: true,
        ..Default::default()
    });
    let metrics = Arc::new(Metrics::new());
    let mut writer = paced_writer(&api, &metrics, NEVER, UNPACED);
    let (sender, mut receiver) = mpsc::channel(8);
    sender.send(reaped(1)).await.unwrap();
    writer.take(receiver.recv().await.unwrap());
    writer.flush(None, false).await;
    sender.send(reaped(2)).await.unwrap();
    writer.take(receiver.recv().await.unwrap());

    writer.flush(None, false).await; // the patch finds nothing
    writer.flush(None, false).await;

    let calls: Vec<_> = api
        .calls()
        .into_iter()
        .map(|(op, e)| (op, e.count, e.metadata.name.unwrap()))
        .collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!((calls[0].0, calls[0].1), ("create", Some(1)));
    assert_eq!((calls[1].0, calls[1].1), ("patch", Some(2)));
    assert_eq!((calls[2].0, calls[2].1), ("create", Some(2)));
    assert_ne!(calls[2].2, calls[0].2, "a new name");
}

#[tokio::test]
async fn a_stuck_api_server_makes_intake_drop_not_wait() {
    let gate = Arc::new(Semaphore::new(0));
    let api = Arc::new(FakeApi {
        gate: Some(gate.clone()),
        ..Default::default()
    });
    let metrics = Arc::new(Metrics::new());
    let (sender, receiver) = queue(2, metrics.clone());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(writer(&api, &metrics, NEVER).run(receiver, shutdown.clone()));
    sender.offer(reaped(1));
    sender.offer(Item::Exited {
        container_id: "c1".into(),
    });
    api.entered.notified().await; // the writer now waits on the API

    let accepted = (2..=11).filter(|pid| sender.offer(reaped(*pid))).count();

    assert_eq!(accepted, 2, "the queue's bound");
    assert!(metrics
        .encode()
        .contains("undertaker_agent_events_dropped_total 8\n"));
    gate.add_permits(10);
    shutdown.cancel();
    running.await.unwrap();
    let counts: Vec<_> = api.calls().iter().map(|(_, e)| e.count).collect();
    assert_eq!(counts, [Some(1), Some(3)], "what was queued is written");
}
