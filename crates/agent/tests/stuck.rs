//! A pod stuck in Terminating, for real (root, a hybrid host: the unkillable process is one
//! held in a frozen cgroup-v1 freezer sub-cgroup, which SIGKILL cannot end): a container's
//! child is frozen, the container is stopped, the shim reports the child unkillable, and the
//! agent, against the stand-in API server, counts it alive, posts `StuckTerminating` on the pod
//! once the pod's deletion grace period is over, and (with `--force-delete-stuck-after`)
//! force-deletes the pod with its uid as precondition. Thawed, the process dies of its pending
//! SIGKILL and the gauge goes.
//!
//! Needs the shim and the init built: `cargo build -p undertaker-shim && scripts/build-init.sh`.

mod support;

use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use undertaker_testbed::{remove_cgroup_tree, FrozenProcess, HostProcess};

use support::running::{with_api, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_held_by_an_unkillable_process_past_its_grace_period_is_named_and_force_deleted() {
    let Some((testbed, standin, agent)) = with_api(|options| {
        options.stuck_check_every = Duration::from_millis(500);
        options.force_delete_stuck_after = Some(Duration::from_secs(1));
    })
    .await
    else {
        return;
    };
    let pod = testbed.pod("stuck", "undertaker").run().await.expect("pod");
    let app = pod
        .container("app")
        .shell("sleep 1000 & exec sleep 999")
        .run()
        .await
        .expect("container");
    let meta = pod.config().metadata.clone().unwrap();
    let alive = format!(
        r#"undertaker_unkillable_processes_alive{{namespace="{}",pod="{}",container="app"}}"#,
        meta.namespace, meta.name
    );

    let deadline = Instant::now() + WAIT;
    let child = loop {
        let found = app
            .host_processes()
            .into_iter()
            .find(|p| p.cmdline.ends_with("sleep 1000"));
        if let Some(child) = found {
            break child;
        }
        assert!(
            Instant::now() < deadline,
            "no `sleep 1000` in the container"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let frozen = FrozenProcess::freeze(&app, child.pid).expect("freeze the child");
    tokio::time::timeout(WAIT, app.stop(Duration::from_secs(2)))
        .await
        .expect("StopContainer returns though a process survives")
        .expect("StopContainer");

    // Counted while it lives, and reported (UnkillableProcesses); no pod in the API server
    // yet, so it is not stuck terminating.
    assert_eq!(agent.wait_sample(&alive, |n| n >= 1.0).await, 1.0);
    standin
        .wait_for(|r| r.event.reason.as_deref() == Some("UnkillableProcesses"))
        .await;
    let stuck =
        |r: &support::standin::Received| r.event.reason.as_deref() == Some("StuckTerminating");
    assert!(
        !standin.received().iter().any(stuck),
        "{:#?}",
        standin.received()
    );

    // Kubernetes deleted the pod; its grace period ended 30 s ago.
    let ended = SystemTime::now() - Duration::from_secs(30);
    standin.put_pod(Pod {
        metadata: ObjectMeta {
            name: Some(meta.name.clone()),
            namespace: Some(meta.namespace.clone()),
            uid: Some(meta.uid.clone()),
            deletion_timestamp: Some(Time(Timestamp::try_from(ended).unwrap())),
            ..ObjectMeta::default()
        },
        ..Pod::default()
    });
    let posted = standin.wait_for(stuck).await;
    assert_eq!(posted.method, "POST");
    let event = &posted.event;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        event.involved_object.name.as_deref(),
        Some(meta.name.as_str())
    );
    assert_eq!(
        event.involved_object.uid.as_deref(),
        Some(meta.uid.as_str())
    );
    assert_eq!(event.involved_object.field_path, None, "on the pod itself");
    let message = event.message.clone().unwrap();
    assert!(
        message
            .contains("past its deletion grace period, held by 1 process that survives SIGKILL: ")
            && message.contains(" sleep (sleep 1000) state ")
            && message.ends_with("(container \"app\")"),
        "{message}"
    );

    let delete = standin
        .wait_for_pod_call(|call| call.method == "DELETE")
        .await;
    assert!(
        delete.path.ends_with(&format!(
            "/namespaces/{}/pods/{}",
            meta.namespace, meta.name
        )),
        "{delete:?}"
    );
    let body: serde_json::Value = serde_json::from_str(&delete.body).expect("DeleteOptions");
    assert_eq!(body["gracePeriodSeconds"], 0, "{body}");
    assert_eq!(body["preconditions"]["uid"], meta.uid.as_str(), "{body}");
    // It survived all of that, or the test showed nothing.
    assert!(HostProcess::read(child.pid).is_some_and(|p| !p.is_zombie()));

    // Thawed, it dies of the SIGKILL it holds, and the gauge goes.
    frozen.thaw().expect("thaw");
    let deadline = Instant::now() + WAIT;
    while agent.sample(&alive).await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the gauge stays after the process died"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(frozen);
    tokio::time::timeout(WAIT, app.remove())
        .await
        .expect("RemoveContainer returns")
        .expect("RemoveContainer");
    let kept = remove_cgroup_tree(&app.cgroup_path());
    assert!(kept.is_empty(), "cannot remove {kept:?}");
    agent.stop().await;
}
