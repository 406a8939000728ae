//! The core's behaviour on fakes: what each path publishes, in which order, and that
//! nothing is kept or left behind.

use std::{sync::Arc, time::Duration};

use containerd_shim_protos::{events::task::TaskExit, topics::*};
use undertaker_events::{LeakReason, Leaked, Unkillable, LEAKED, UNKILLABLE};

use super::{
    detached,
    process::Status,
    testing::{process, report, Harness},
};
use crate::stdio::StdioSpec;

const INIT_RECORDS: &str =
    "UT1 hello minor=0 pid=1 mode=pid1 scope=child drain_ms=2000\nmain pid=2\n";

fn add_exec(h: &Harness, exec_id: &str) {
    let spec = br#"{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"}"#;
    h.core
        .add_exec("c1", exec_id, StdioSpec::default(), spec.to_vec())
        .unwrap();
}

fn reason(event: &Leaked) -> LeakReason {
    event.reason.enum_value_or_default()
}

#[tokio::test]
async fn init_exit_with_leftovers_reports_them_before_the_exit() {
    let h = Harness::new();
    let pid = h.run("c1").await;
    h.init_says(pid, INIT_RECORDS, false);
    h.host.cgroup.reports.lock().unwrap().push_back(report(
        &[process(5000, 'S', "worker"), process(5001, 'Z', "dead")],
        &[],
    ));
    // The init drained one leftover itself, then exited with the main process's status.
    h.init_says(
        pid,
        "exited pid=2 exit=3 code=3\nleaked pid=7 by=term comm=sleep cmdline=sleep\\x0099\\x00\n",
        true,
    );
    h.exit(pid, 3);
    h.published(TASK_EXIT_EVENT_TOPIC, 1).await;
    assert_eq!(
        h.sink.topics(),
        [
            TASK_CREATE_EVENT_TOPIC,
            TASK_START_EVENT_TOPIC,
            LEAKED,
            LEAKED,
            TASK_EXIT_EVENT_TOPIC
        ]
    );
    let leaked: Vec<Leaked> = h.sink.all();
    assert_eq!(
        leaked[0].processes[0].comm, "sleep",
        "the init's own report first"
    );
    assert_eq!(
        leaked[1]
            .processes
            .iter()
            .map(|p| p.host_pid)
            .collect::<Vec<_>>(),
        [5000],
        "the cgroup kill's, without the zombie"
    );
    assert!(leaked
        .iter()
        .all(|e| reason(e) == LeakReason::LEAK_REASON_MAIN_EXIT));
    assert_eq!(leaked[1].identity.pod_name, "web-0");
    let exit: Vec<TaskExit> = h.sink.all();
    assert_eq!((exit[0].pid, exit[0].exit_status), (pid as u32, 3));
}

#[tokio::test]
async fn sigkill_of_the_init_kills_the_cgroup_and_names_only_the_leftovers() {
    let h = Harness::new();
    let pid = h.run("c1").await;
    h.host.cgroup.reports.lock().unwrap().push_back(report(
        &[
            process(pid, 'S', "undertaker-init"),
            process(6000, 'S', "worker"),
            process(6001, 'X', "gone"),
        ],
        &[],
    ));
    h.core
        .kill("c1", "", libc::SIGKILL as u32, true)
        .await
        .unwrap();
    assert!(
        h.runtime.calls().iter().all(|c| !c.starts_with("kill")),
        "never only the main pid: {:?}",
        h.runtime.calls()
    );
    h.exit(pid, 137);
    h.published(TASK_EXIT_EVENT_TOPIC, 1).await;
    assert_eq!(
        h.sink.topics(),
        [
            TASK_CREATE_EVENT_TOPIC,
            TASK_START_EVENT_TOPIC,
            LEAKED,
            TASK_EXIT_EVENT_TOPIC
        ]
    );
    let leaked: Vec<Leaked> = h.sink.all();
    assert_eq!(leaked[0].processes.len(), 1);
    assert_eq!(leaked[0].processes[0].host_pid, 6000);
    assert_eq!(reason(&leaked[0]), LeakReason::LEAK_REASON_STOP);
    // The exit's own sweep found the cgroup empty: one kill for the stop, one at exit.
    assert_eq!(
        h.host
            .cgroup
            .kills
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

#[tokio::test]
async fn delete_kills_stragglers_deletes_the_container_and_frees_it() {
    let h = Harness::new();
    let pid = h.run("c1").await;
    h.exit(pid, 0);
    h.published(TASK_EXIT_EVENT_TOPIC, 1).await;
    h.host
        .cgroup
        .reports
        .lock()
        .unwrap()
        .push_back(report(&[process(7000, 'S', "late")], &[]));
    let weak = Arc::downgrade(&h.core.container("c1").unwrap());
    let (got_pid, exit) = h.core.delete("c1", "").await.unwrap();
    assert_eq!((got_pid, exit.status), (pid as u32, 0));
    assert_eq!(
        &h.sink.topics()[3..],
        [LEAKED, TASK_DELETE_EVENT_TOPIC],
        "{:?}",
        h.sink.topics()
    );
    let leaked: Vec<Leaked> = h.sink.all();
    assert_eq!(reason(&leaked[0]), LeakReason::LEAK_REASON_DELETE);
    assert!(h
        .runtime
        .calls()
        .contains(&"delete c1 force=false".to_string()));
    assert!(h.core.container("c1").is_err());
    // Every task that watched the container ends with it: nothing keeps it in memory.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while weak.upgrade().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deleted container is still referenced"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn exec_exit_reports_its_leftovers_with_its_exec_id_before_its_exit() {
    let h = Harness::new();
    h.run("c1").await;
    add_exec(&h, "e1");
    let exec_pid = h.core.start("c1", "e1").await.unwrap() as i32;
    h.init_says(
        exec_pid,
        "UT1 hello minor=0 pid=1 mode=subreaper scope=child drain_ms=2000\nmain pid=50\nexited pid=50 exit=0 code=0\nleaked pid=51 by=kill comm=bg cmdline=bg\\x00\n",
        true,
    );
    h.exit(exec_pid, 0);
    h.published(TASK_EXIT_EVENT_TOPIC, 1).await;
    assert_eq!(
        &h.sink.topics()[2..],
        [
            TASK_EXEC_ADDED_EVENT_TOPIC,
            TASK_EXEC_STARTED_EVENT_TOPIC,
            LEAKED,
            TASK_EXIT_EVENT_TOPIC
        ]
    );
    let leaked: Vec<Leaked> = h.sink.all();
    assert_eq!(leaked[0].identity.exec_id, "e1");
    assert_eq!(leaked[0].identity.exec_command, "sh", "the exec's args");
    assert_eq!(reason(&leaked[0]), LeakReason::LEAK_REASON_EXEC_EXIT);
    let exit: Vec<TaskExit> = h.sink.all();
    assert_eq!(exit[0].id, "e1");
    h.core.delete("c1", "e1").await.unwrap();
    assert!(h.core.container("c1").unwrap().process("e1").is_err());
}

#[tokio::test]
async fn an_init_held_by_an_unkillable_process_is_reported_exited_and_deleted_once_released() {
    let h = Harness::new();
    let pid = h.run("c1").await;
    h.init_says(pid, INIT_RECORDS, false);
    h.host.cgroup.reports.lock().unwrap().push_back(report(
        &[process(pid, 'S', "undertaker-init")],
        &[process(8000, 'D', "fuse-reader")],
    ));
    h.host.exiting.lock().unwrap().insert(pid);
    h.host.alive.lock().unwrap().insert(pid);
    let _request = h.core.life().hold();
    h.core
        .kill("c1", "", libc::SIGKILL as u32, true)
        .await
        .unwrap();
    assert_eq!(
        &h.sink.topics()[2..],
        [UNKILLABLE, TASK_EXIT_EVENT_TOPIC],
        "the exit is reported though the init is never reaped"
    );
    let unkillable: Vec<Unkillable> = h.sink.all();
    assert_eq!(unkillable[0].processes[0].wchan, "fuse_wait");
    let exit: Vec<TaskExit> = h.sink.all();
    assert_eq!(exit[0].exit_status, 137);
    assert!(
        h.core
            .container("c1")
            .unwrap()
            .init
            .io
            .lock()
            .await
            .is_none(),
        "its stdio is shut: what survived must not keep containerd waiting for the output's end"
    );
    h.core.delete("c1", "").await.unwrap();
    assert!(
        !h.runtime.calls().iter().any(|c| c.starts_with("delete")),
        "runc cannot delete it while the init is held"
    );
    assert!(h.core.shutdown());
    drop(_request);
    assert!(
        !h.exits_within(Duration::from_millis(50)).await,
        "the release wait holds the shim"
    );
    h.host.alive.lock().unwrap().remove(&pid);
    assert!(h.exits_within(Duration::from_secs(10)).await);
    assert!(h
        .runtime
        .calls()
        .contains(&"delete c1 force=true".to_string()));
}

#[tokio::test]
async fn a_kill_in_flight_answers_before_its_containers_delete_and_the_shim_exits_after_both() {
    let h = Harness::new();
    let pid = h.run("c1").await;
    let gate = h.runtime.kill_gate.closed_until_dropped();
    // What the service does for a Kill: a request hold, the work detached.
    let core = h.core.clone();
    let request = h.core.life().hold();
    let kill = tokio::spawn(async move {
        let result = detached(core.life(), {
            let core = core.clone();
            async move { core.kill("c1", "", libc::SIGTERM as u32, false).await }
        })
        .await;
        drop(request);
        result
    });
    h.runtime.kill_gate.reached().await;
    // Meanwhile the init exits (the TERM outran its `runc kill`) and containerd deletes the
    // container; containerd 1.6 closes the container's connection once Delete answers.
    h.exit(pid, 143);
    h.published(TASK_EXIT_EVENT_TOPIC, 1).await;
    let core = h.core.clone();
    let mut delete = tokio::spawn(async move { core.delete("c1", "").await });
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut delete)
            .await
            .is_err(),
        "Delete must not answer while a Kill of its container is in flight"
    );
    assert!(!kill.is_finished());
    drop(gate);
    kill.await.unwrap().unwrap();
    delete.await.unwrap().unwrap();
    assert!(h.core.shutdown(), "no container is left");
    assert!(
        h.exits_within(Duration::from_secs(10)).await,
        "exits once nothing is in flight"
    );
}

#[tokio::test]
async fn a_request_in_flight_when_the_last_container_is_deleted_holds_the_shim_until_it_replies() {
    let h = Harness::new();
    let pid = h.run("c1").await;
    // A request of any kind (a State, a Pids) still being handled.
    let request = h.core.life().hold();
    h.exit(pid, 0);
    h.published(TASK_EXIT_EVENT_TOPIC, 1).await;
    h.core.delete("c1", "").await.unwrap();
    assert!(h.core.shutdown(), "no container is left");
    assert!(
        !h.exits_within(Duration::from_millis(50)).await,
        "the shim must not exit with a request still in flight"
    );
    drop(request);
    assert!(
        h.exits_within(Duration::from_secs(10)).await,
        "exits once the request replied"
    );
}

#[tokio::test]
async fn shutdown_with_a_container_left_is_refused() {
    let h = Harness::new();
    h.run("c1").await;
    assert!(!h.core.shutdown());
    assert!(!h.exits_within(Duration::from_millis(20)).await);
}

#[tokio::test]
async fn a_failed_create_leaves_nothing_behind() {
    let h = Harness::new();
    h.runtime
        .fail_create
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let err = h.core.create(h.create_request("c1")).await.unwrap_err();
    assert!(err.to_string().contains("fake failure"), "{err}");
    assert_eq!(
        h.runtime.calls(),
        ["create c1", "delete c1 force=true"],
        "runc's half-created container is force-deleted"
    );
    assert!(h.core.container("c1").is_err());
    assert!(h.sink.topics().is_empty());
    // The id is free again.
    h.runtime
        .fail_create
        .store(false, std::sync::atomic::Ordering::SeqCst);
    h.core.create(h.create_request("c1")).await.unwrap();
}

#[tokio::test]
async fn a_second_create_of_one_id_is_refused() {
    let h = Harness::new();
    h.run("c1").await;
    let err = h.core.create(h.create_request("c1")).await.unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(
        h.core.container("c1").unwrap().init.status(),
        Status::Running
    );
}

#[tokio::test]
async fn kill_of_an_exec_that_is_not_started_never_signals() {
    let h = Harness::new();
    h.run("c1").await;
    add_exec(&h, "e1");
    let err = h.core.kill("c1", "e1", 15, false).await.unwrap_err();
    assert!(err.to_string().contains("not started"), "{err}");
}

#[tokio::test]
async fn the_termination_message_names_the_main_exits_leftovers_when_asked() {
    let h = Harness::new();
    let log = h.dir().join("termination-log");
    std::fs::write(&log, "").unwrap();
    let mounts = format!(
        r#"{{"destination":"/dev/termination-log","type":"bind","source":"{}","options":["rbind","rw"]}}"#,
        log.display()
    );
    let annotations = r#""undertaker.io/termination-message":"true""#;
    let req = h.create_request_with("c1", annotations, &mounts);
    let pid = h.core.create(req).await.unwrap() as i32;
    h.core.start("c1", "").await.unwrap();
    h.init_says(pid, INIT_RECORDS, false);
    h.host
        .cgroup
        .reports
        .lock()
        .unwrap()
        .push_back(report(&[process(5000, 'S', "worker")], &[]));
    h.init_says(
        pid,
        "exited pid=2 exit=0 code=0\nleaked pid=7 by=term comm=sleep cmdline=sleep\\x0099\\x00\n",
        true,
    );
    h.exit(pid, 0);
    h.published(TASK_EXIT_EVENT_TOPIC, 1).await;
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "undertaker: killed 2 processes left behind: 7 sleep (sleep 99) by SIGTERM; 5000 worker (worker) by SIGKILL\n"
    );
}

#[tokio::test]
async fn a_bad_termination_message_annotation_fails_the_create_by_name() {
    let h = Harness::new();
    let req = h.create_request_with("c1", r#""undertaker.io/termination-message":"yes""#, "");
    let err = h.core.create(req).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("undertaker.io/termination-message"),
        "{err}"
    );
    assert!(
        h.runtime.calls().is_empty(),
        "refused before the runtime is asked"
    );
}
