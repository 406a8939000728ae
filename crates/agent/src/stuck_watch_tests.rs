use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Event;
use undertaker_events::{Event as Payload, EventRecord, Process, Unkillable};

use super::*;
use crate::message::MAX_MESSAGE_BYTES;
use crate::report::Report;
use crate::test_support::pod_identity;

const GAP: Duration = Duration::from_secs(60);

/// The API server as the watch sees it: one pod, and a record of every call.
#[derive(Default)]
struct FakeCluster {
    pod: Mutex<Option<PodDeletion>>,
    events: Mutex<Vec<(&'static str, Event)>>,
    deletes: Mutex<Vec<(String, String, String)>>,
}

impl PodApi for Arc<FakeCluster> {
    async fn get(&self, namespace: &str, pod: &str) -> Result<Option<PodDeletion>, kube::Error> {
        assert_eq!((namespace, pod), ("shop", "web-0"));
        Ok(self.pod.lock().unwrap().clone())
    }
    async fn force_delete(&self, namespace: &str, pod: &str, uid: &str) -> Result<(), kube::Error> {
        let call = (namespace.to_string(), pod.to_string(), uid.to_string());
        self.deletes.lock().unwrap().push(call);
        Ok(())
    }
}

impl EventApi for Arc<FakeCluster> {
    async fn create(&self, event: &Event) -> Result<(), WriteError> {
        self.events.lock().unwrap().push(("create", event.clone()));
        Ok(())
    }
    async fn patch(&self, event: &Event) -> Result<(), WriteError> {
        self.events.lock().unwrap().push(("patch", event.clone()));
        Ok(())
    }
}

impl FakeCluster {
    fn deleting(&self, uid: &str, ends: SystemTime) {
        *self.pod.lock().unwrap() = Some(PodDeletion {
            uid: uid.into(),
            ends: Some(ends),
        });
    }
    fn events(&self) -> Vec<(&'static str, Event)> {
        self.events.lock().unwrap().clone()
    }
    fn deletes(&self) -> Vec<(String, String, String)> {
        self.deletes.lock().unwrap().clone()
    }
}

fn watch(
    force_delete_after: Option<Duration>,
) -> (
    StuckWatch<Arc<FakeCluster>, Arc<FakeCluster>>,
    Arc<FakeCluster>,
) {
    let cluster = Arc::new(FakeCluster::default());
    let kube = StuckKube {
        pods: cluster.clone(),
        events: cluster.clone(),
        node: "node-1".into(),
        min_write_gap: GAP,
        force_delete_after,
    };
    let watch = StuckWatch::new(
        Arc::new(Mutex::new(StuckSet::default())),
        Arc::new(Metrics::new()),
        Some(kube),
    );
    (watch, cluster)
}

/// The shim reported `sleep` (pid 7, host pid 4007) in container `app` unkillable.
fn report_stuck(watch: &StuckWatch<Arc<FakeCluster>, Arc<FakeCluster>>) {
    let mut process = Process::named(7, "sleep");
    process.host_pid = 4007;
    process.state = "D".into();
    process.wchan = "fuse_wait_answer".into();
    let event = Payload::Unkillable(Unkillable::now(
        pod_identity("web-0", "app", "c1"),
        vec![process],
    ));
    let record = EventRecord::new(&event, "k8s.io", SystemTime::now());
    let report = Report::from_event(&event, record).unwrap();
    watch.stuck.lock().unwrap().add(&report, SystemTime::now());
}

fn gauge(watch: &StuckWatch<Arc<FakeCluster>, Arc<FakeCluster>>) -> Vec<String> {
    watch
        .metrics
        .encode()
        .lines()
        .filter(|line| line.starts_with("undertaker_unkillable_processes_alive{"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_pod_past_its_grace_period_with_stuck_processes_gets_one_paced_warning() {
    let (mut watch, cluster) = watch(None);
    report_stuck(&watch);
    let t0 = SystemTime::now();

    // Not being deleted: counted, nothing posted.
    *cluster.pod.lock().unwrap() = Some(PodDeletion {
        uid: "uid-1".into(),
        ends: None,
    });
    watch.check(t0).await;
    assert_eq!(
        gauge(&watch),
        [
            r#"undertaker_unkillable_processes_alive{namespace="shop",pod="web-0",container="app"} 1"#
        ]
    );
    // Deleted, grace period not over yet: kubelet may still finish it.
    cluster.deleting("uid-1", t0 + Duration::from_secs(30));
    watch.check(t0 + Duration::from_secs(10)).await;
    assert!(cluster.events().is_empty(), "{:#?}", cluster.events());

    // Over by 130 s: a Warning on the pod itself, naming the process.
    let over = t0 + Duration::from_secs(160);
    watch.check(over).await;
    let events = cluster.events();
    let [(operation, event)] = events.as_slice() else {
        panic!("one create: {events:#?}");
    };
    assert_eq!(*operation, "create");
    assert_eq!(event.reason.as_deref(), Some("StuckTerminating"));
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.count, Some(1));
    assert_eq!(
        event.involved_object.field_path, None,
        "on the pod, not a container"
    );
    assert_eq!(event.involved_object.uid.as_deref(), Some("uid-1"));
    assert_eq!(
        event.message.as_deref(),
        Some(
            "2m 10s past its deletion grace period, held by 1 process that survives SIGKILL: \
             7 sleep state D in fuse_wait_answer (container \"app\")"
        )
    );

    // Still stuck: no write before the gap, then one patch counting every check.
    watch.check(over + Duration::from_secs(10)).await;
    assert_eq!(cluster.events().len(), 1);
    watch.check(over + GAP).await;
    let events = cluster.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    let (operation, patch) = &events[1];
    assert_eq!(*operation, "patch");
    assert_eq!(patch.metadata.name, event.metadata.name, "the same Event");
    assert_eq!(patch.count, Some(3));
    assert!(
        cluster.deletes().is_empty(),
        "never force-deleted unless asked"
    );
}

#[tokio::test]
async fn a_new_pod_of_the_same_name_or_no_pod_is_not_the_stuck_one() {
    let (mut watch, cluster) = watch(Some(Duration::ZERO));
    report_stuck(&watch);
    let past = SystemTime::now() - Duration::from_secs(600);

    cluster.deleting("uid-2", past);
    watch.check(SystemTime::now()).await;
    *cluster.pod.lock().unwrap() = None;
    watch.check(SystemTime::now()).await;

    assert!(cluster.events().is_empty(), "{:#?}", cluster.events());
    assert!(cluster.deletes().is_empty(), "{:#?}", cluster.deletes());
    assert_eq!(
        gauge(&watch).len(),
        1,
        "the processes are still on the node"
    );
}

#[tokio::test]
async fn force_delete_after_deletes_the_pod_once_when_it_is_overdue_that_long() {
    let (mut watch, cluster) = watch(Some(Duration::from_secs(300)));
    report_stuck(&watch);
    let t0 = SystemTime::now();
    cluster.deleting("uid-1", t0);

    watch.check(t0 + Duration::from_secs(299)).await;
    assert!(cluster.deletes().is_empty(), "not overdue long enough");
    watch.check(t0 + Duration::from_secs(300)).await;
    watch.check(t0 + Duration::from_secs(310)).await;
    assert_eq!(
        cluster.deletes(),
        [("shop".to_string(), "web-0".to_string(), "uid-1".to_string())],
        "once, with the pod's uid as precondition"
    );
    assert!(watch
        .metrics
        .encode()
        .contains("undertaker_agent_stuck_pods_force_deleted_total 1"));
}

#[tokio::test]
async fn when_the_processes_go_the_gauge_and_the_event_state_go_too() {
    let (mut watch, cluster) = watch(None);
    report_stuck(&watch);
    let t0 = SystemTime::now();
    cluster.deleting("uid-1", t0);
    watch.check(t0 + Duration::from_secs(1)).await;
    assert_eq!(cluster.events().len(), 1);

    watch.stuck.lock().unwrap().refresh(|_| Seen::Gone);
    watch.check(t0 + Duration::from_secs(2)).await;
    assert!(gauge(&watch).is_empty(), "{:?}", gauge(&watch));

    // Stuck again later (another process): a new Event, not a patch of the old one.
    report_stuck(&watch);
    watch.check(t0 + Duration::from_secs(3)).await;
    let events = cluster.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[1].0, "create");
    assert_ne!(events[1].1.metadata.name, events[0].1.metadata.name);
}

#[test]
fn the_message_stays_within_the_limit_naming_what_fits() {
    let processes: Vec<StuckProcess> = (0..100)
        .map(|pid| {
            let mut process = Process::named(pid, "a-long-program-name");
            process.host_pid = 5000 + pid;
            process.state = "D".into();
            process.wchan = "rpc_wait_bit_killable".into();
            let event = Payload::Unkillable(Unkillable::now(
                pod_identity("web-0", "app", "c1"),
                vec![process],
            ));
            let record = EventRecord::new(&event, "k8s.io", SystemTime::now());
            StuckProcess {
                container: "app".into(),
                process: record.processes[0].clone(),
                since: SystemTime::now(),
            }
        })
        .collect();
    let text = stuck_message(&processes, Duration::from_secs(3600));
    assert!(text.len() <= MAX_MESSAGE_BYTES, "{} bytes", text.len());
    assert!(text.starts_with("1h past its deletion grace period, held by 100 processes that survive SIGKILL: 0 a-long-program-name state D in rpc_wait_bit_killable (container \"app\"); 1 "), "{text}");
    assert!(text.contains(" more"), "{text}");
}
