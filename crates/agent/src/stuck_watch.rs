//! Pods stuck in Terminating, named: every check, the processes the shims reported unkillable
//! ([`StuckSet`]) are looked up on the host (gone ones forgotten, the rest counted in
//! `undertaker_unkillable_processes_alive`); a pod still holding some whose deletion grace
//! period is over gets a Warning `StuckTerminating` Event naming them (pid, comm, state,
//! wchan), written at most once per `min_write_gap`; with `force_delete_after`, a pod overdue
//! that long is force-deleted (grace period 0, its uid as precondition). The stuck processes
//! stay on the node either way: only a reboot or the end of what they wait on frees them.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Preconditions};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use undertaker_cgroups::ProcessInfo;
use undertaker_events::ProcessRecord;

use crate::message::{describe, listing};
use crate::metrics::Metrics;
use crate::pod_event::{EventNames, PodEvent};
use crate::report::ReportKind;
use crate::stuck::{PodKey, Seen, StuckProcess, StuckSet};
use crate::writer::{EventApi, WriteError, CALL_TIMEOUT};

/// How often the stuck processes are looked at by default.
pub const STUCK_CHECK_EVERY: Duration = Duration::from_secs(10);
/// The Event's reason.
pub const STUCK_TERMINATING: &str = "StuckTerminating";

/// What the API server says of a pod being looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodDeletion {
    pub uid: String,
    /// `metadata.deletionTimestamp`: when its grace period ends (request time + grace).
    pub ends: Option<SystemTime>,
}

/// The pod calls the watch makes: the API server, or a fake in tests.
pub trait PodApi: Send + Sync {
    /// The pod's uid and deletion deadline; `None` when there is no such pod.
    fn get(
        &self,
        namespace: &str,
        pod: &str,
    ) -> impl Future<Output = Result<Option<PodDeletion>, kube::Error>> + Send;
    /// Deletes the pod's API object at once (grace period 0), only if its uid is `uid`.
    fn force_delete(
        &self,
        namespace: &str,
        pod: &str,
        uid: &str,
    ) -> impl Future<Output = Result<(), kube::Error>> + Send;
}

/// core/v1 Pods through a kube client.
#[derive(Clone)]
pub struct KubePods {
    pub client: kube::Client,
}

impl PodApi for KubePods {
    async fn get(&self, namespace: &str, pod: &str) -> Result<Option<PodDeletion>, kube::Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get_opt(pod).await?.map(|pod| PodDeletion {
            uid: pod.metadata.uid.unwrap_or_default(),
            ends: pod
                .metadata
                .deletion_timestamp
                .map(|at| SystemTime::from(at.0)),
        }))
    }

    async fn force_delete(&self, namespace: &str, pod: &str, uid: &str) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        api.delete(pod, &params).await.map(drop)
    }
}

/// The Kubernetes side of the watch.
pub struct StuckKube<P, E> {
    pub pods: P,
    pub events: E,
    pub node: String,
    /// The least time between two writes of one pod's Event.
    pub min_write_gap: Duration,
    /// Force-delete a pod this long past its grace period; `None`: never.
    pub force_delete_after: Option<Duration>,
}

/// One pod's `StuckTerminating` Event.
#[derive(Debug)]
struct Posted {
    name: String,
    first: SystemTime,
    /// Checks that found the pod stuck: the Event's `count`.
    count: u64,
    created: bool,
    written_at: Option<SystemTime>,
    force_deleted: bool,
}

/// The watch task's state.
pub struct StuckWatch<P, E> {
    pub stuck: Arc<Mutex<StuckSet>>,
    pub metrics: Arc<Metrics>,
    pub kube: Option<StuckKube<P, E>>,
    posted: HashMap<PodKey, Posted>,
    names: EventNames,
}

impl<P: PodApi, E: EventApi> StuckWatch<P, E> {
    pub fn new(
        stuck: Arc<Mutex<StuckSet>>,
        metrics: Arc<Metrics>,
        kube: Option<StuckKube<P, E>>,
    ) -> Self {
        StuckWatch {
            stuck,
            metrics,
            kube,
            posted: HashMap::new(),
            names: EventNames::default(),
        }
    }

    /// Checks every `every` until `shutdown`.
    pub async fn run(mut self, every: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let stuck = self.stuck.clone();
            // /proc reads: off the runtime's threads.
            let refreshed = tokio::task::spawn_blocking(move || {
                stuck
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .refresh(on_the_host)
            })
            .await;
            if let Err(error) = refreshed {
                tracing::error!("looking at the stuck processes failed: {error}");
            }
            self.check(SystemTime::now()).await;
        }
    }

    /// Sets the gauge from what is stuck now and, with Kubernetes, posts or force-deletes
    /// for the pods whose grace period is over.
    pub async fn check(&mut self, now: SystemTime) {
        let pods: Vec<(PodKey, Vec<StuckProcess>)> = {
            let stuck = self.stuck.lock().unwrap_or_else(|e| e.into_inner());
            self.metrics.set_unkillable_alive(stuck.gauge_samples());
            stuck
                .pods()
                .filter(|(key, _)| !key.pod.is_empty() && !key.namespace.is_empty())
                .map(|(key, processes)| (key.clone(), processes.to_vec()))
                .collect()
        };
        self.posted
            .retain(|key, _| pods.iter().any(|(stuck, _)| stuck == key));
        if self.kube.is_none() {
            return;
        }
        for (key, processes) in pods {
            self.judge(&key, &processes, now).await;
        }
    }

    async fn judge(&mut self, key: &PodKey, processes: &[StuckProcess], now: SystemTime) {
        let Some(kube) = &self.kube else { return };
        let deletion = match timeout(CALL_TIMEOUT, kube.pods.get(&key.namespace, &key.pod)).await {
            Ok(Ok(deletion)) => deletion,
            Ok(Err(error)) => {
                self.metrics.api_failed("get");
                tracing::warn!("get pod {}/{}: {error}", key.namespace, key.pod);
                return;
            }
            Err(_) => {
                self.metrics.api_failed("get");
                tracing::warn!(
                    "get pod {}/{}: no answer within {CALL_TIMEOUT:?}",
                    key.namespace,
                    key.pod
                );
                return;
            }
        };
        let overdue = match deletion {
            // Gone, or a new pod of the same name: not the one that holds the processes.
            None => None,
            Some(pod) if !key.uid.is_empty() && pod.uid != key.uid => None,
            Some(pod) => pod.ends.and_then(|ends| now.duration_since(ends).ok()),
        };
        let Some(overdue) = overdue else {
            self.posted.remove(key);
            return;
        };
        let posted = self.posted.entry(key.clone()).or_insert_with(|| Posted {
            name: self.names.next(&key.pod, now),
            first: now,
            count: 0,
            created: false,
            written_at: None,
            force_deleted: false,
        });
        posted.count += 1;
        let due = !posted.created
            || posted
                .written_at
                .is_none_or(|at| now.duration_since(at).unwrap_or_default() >= kube.min_write_gap);
        if due {
            let event = PodEvent {
                node: &kube.node,
                name: &posted.name,
                namespace: &key.namespace,
                pod: &key.pod,
                uid: &key.uid,
                field_path: None,
                reason: STUCK_TERMINATING,
                type_: "Warning",
                message: stuck_message(processes, overdue),
                count: posted.count,
                first: posted.first,
                last: now,
            }
            .build();
            let (operation, call) = if posted.created {
                ("patch", kube.events.patch(&event).await)
            } else {
                ("create", kube.events.create(&event).await)
            };
            match call {
                Ok(()) => {
                    self.metrics.api_written(operation);
                    posted.created = true;
                    posted.written_at = Some(now);
                }
                Err(WriteError::NotFound { .. }) => {
                    posted.name = self.names.next(&key.pod, now);
                    posted.created = false;
                }
                Err(error) => {
                    self.metrics.api_failed(operation);
                    tracing::warn!("{error}");
                }
            }
        }
        let force = kube
            .force_delete_after
            .is_some_and(|after| overdue >= after && !posted.force_deleted);
        if force {
            match kube
                .pods
                .force_delete(&key.namespace, &key.pod, &key.uid)
                .await
            {
                Ok(()) => {
                    posted.force_deleted = true;
                    self.metrics.force_deleted();
                    tracing::warn!(
                        pod = %format!("{}/{}", key.namespace, key.pod),
                        overdue = %humantime::format_duration(whole_seconds(overdue)),
                        "force-deleted a pod stuck terminating; its unkillable processes stay on the node"
                    );
                }
                Err(error) => {
                    self.metrics.api_failed("delete");
                    tracing::warn!("force-delete pod {}/{}: {error}", key.namespace, key.pod);
                }
            }
        }
    }
}

/// "2m 10s past its deletion grace period, held by 1 process that survives SIGKILL:
/// 42 sleep state D in fuse_wait_answer (container \"app\")", at most [`crate::MAX_MESSAGE_BYTES`].
pub fn stuck_message(processes: &[StuckProcess], overdue: Duration) -> String {
    let n = processes.len();
    let (noun, verb) = if n == 1 {
        ("process", "survives")
    } else {
        ("processes", "survive")
    };
    let headline = format!(
        "{} past its deletion grace period, held by {n} {noun} that {verb} SIGKILL",
        humantime::format_duration(whole_seconds(overdue))
    );
    let items = processes.iter().map(|stuck| {
        format!(
            "{} (container {:?})",
            describe(ReportKind::Unkillable, &stuck.process),
            stuck.container
        )
    });
    listing(headline, items, n as u64)
}

fn whole_seconds(duration: Duration) -> Duration {
    Duration::from_secs(duration.as_secs())
}

/// What `/proc` says of a reported process: alive while its pid runs the same program and
/// is not a zombie; an unreadable `/proc` keeps what was known.
fn on_the_host(process: &ProcessRecord) -> Seen {
    let Some(pid) = process.host_pid.and_then(|pid| i32::try_from(pid).ok()) else {
        return Seen::Gone;
    };
    match ProcessInfo::read(Path::new("/proc"), pid) {
        Ok(Some(info)) if info.comm == process.comm && !matches!(info.state, 'Z' | 'X') => {
            Seen::Alive {
                state: info.state.to_string(),
                wchan: info.wchan,
            }
        }
        Ok(_) => Seen::Gone,
        Err(error) => {
            tracing::debug!(pid, "cannot read the process: {error}");
            Seen::Alive {
                state: process.state.clone(),
                wchan: process.wchan.clone(),
            }
        }
    }
}

#[cfg(test)]
#[path = "stuck_watch_tests.rs"]
mod tests;
