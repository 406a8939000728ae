//! The `--json` view: a documented, versioned schema (docs/scan.md), kept apart from the
//! in-memory report so the report can change without breaking consumers. Fields are only
//! ever added within a schema version.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::identity::ContainerIdentity;
use crate::report::{ContainerReport, NodeReport, SkipReason};
use crate::thresholds::{Problem, Thresholds};

/// The `schema` field of every document.
pub const SCHEMA: &str = "undertaker.io/scan/v1";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    containers: Vec<Container<'a>>,
    skipped: Vec<Skipped<'a>>,
    thresholds: JsonThresholds,
    problems: Vec<JsonProblem<'a>>,
}

#[derive(Serialize)]
struct Pod<'a> {
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
}

#[derive(Serialize)]
struct Container<'a> {
    id: &'a str,
    pod: Pod<'a>,
    container: &'a str,
    runtime_handler: Option<&'a str>,
    /// `running`, or `exited` (reported for what its cgroup still holds).
    state: &'static str,
    /// `null` once exited.
    pid: Option<i32>,
    processes: usize,
    zombies: usize,
    zombie_parents: Vec<ZombieParent<'a>>,
    d_state: Vec<Blocked<'a>>,
    left_after_exit: Vec<Left<'a>>,
    pids: Option<Pids>,
}

#[derive(Serialize)]
struct ZombieParent<'a> {
    pid: i32,
    comm: Option<&'a str>,
    zombies: usize,
    zombie_comms: &'a BTreeMap<String, usize>,
}

#[derive(Serialize)]
struct Blocked<'a> {
    pid: i32,
    comm: &'a str,
    cmdline: &'a str,
    wchan: &'a str,
    persisting: bool,
}

#[derive(Serialize)]
struct Left<'a> {
    pid: i32,
    comm: &'a str,
    cmdline: &'a str,
    state: String,
    wchan: &'a str,
    persisting: bool,
}

#[derive(Serialize)]
struct Pids {
    current: u64,
    max: Option<u64>,
}

#[derive(Serialize)]
struct Skipped<'a> {
    id: &'a str,
    pod: Pod<'a>,
    container: &'a str,
    reason: &'static str,
    detail: &'a str,
}

#[derive(Serialize)]
struct JsonThresholds {
    max_zombies: usize,
    max_d_state: usize,
    max_pids_percent: u8,
    max_left_after_exit: usize,
}

#[derive(Serialize)]
struct JsonProblem<'a> {
    id: &'a str,
    pod: Pod<'a>,
    container: &'a str,
    kind: &'static str,
    value: u64,
    limit: u64,
    summary: String,
}

/// The report as one pretty-printed JSON document (schema [`SCHEMA`]).
pub fn to_json(report: &NodeReport, thresholds: &Thresholds, problems: &[Problem<'_>]) -> String {
    let document = Document {
        schema: SCHEMA,
        containers: report.containers.iter().map(container).collect(),
        skipped: report
            .skipped
            .iter()
            .map(|skipped| Skipped {
                id: &skipped.identity.id,
                pod: pod(&skipped.identity),
                container: &skipped.identity.container,
                reason: match skipped.reason {
                    SkipReason::Exited(_) => "exited",
                    SkipReason::Unreadable(_) => "unreadable",
                },
                detail: skipped.reason.text(),
            })
            .collect(),
        thresholds: JsonThresholds {
            max_zombies: thresholds.max_zombies,
            max_d_state: thresholds.max_d_state,
            max_pids_percent: thresholds.max_pids_percent,
            max_left_after_exit: thresholds.max_left_after_exit,
        },
        problems: problems
            .iter()
            .map(|problem| JsonProblem {
                id: &problem.container.identity.id,
                pod: pod(&problem.container.identity),
                container: &problem.container.identity.container,
                kind: problem.finding.kind(),
                value: problem.value(),
                limit: problem.limit(),
                summary: problem.summary(),
            })
            .collect(),
    };
    // Plain structs of strings and numbers: serializing cannot fail.
    serde_json::to_string_pretty(&document).expect("the scan document serializes")
}

fn pod(identity: &ContainerIdentity) -> Pod<'_> {
    Pod {
        namespace: &identity.pod_namespace,
        name: &identity.pod_name,
        uid: &identity.pod_uid,
    }
}

fn container(report: &ContainerReport) -> Container<'_> {
    Container {
        id: &report.identity.id,
        pod: pod(&report.identity),
        container: &report.identity.container,
        runtime_handler: report.identity.runtime_handler.as_deref(),
        state: if report.exited() { "exited" } else { "running" },
        pid: report.pid,
        processes: report.processes,
        zombies: report.zombies,
        zombie_parents: report
            .zombie_parents
            .iter()
            .map(|parent| ZombieParent {
                pid: parent.pid,
                comm: parent.comm.as_deref(),
                zombies: parent.zombies,
                zombie_comms: &parent.zombie_comms,
            })
            .collect(),
        d_state: report
            .blocked
            .iter()
            .map(|process| Blocked {
                pid: process.pid,
                comm: &process.comm,
                cmdline: &process.cmdline,
                wchan: &process.wchan,
                persisting: process.persisting,
            })
            .collect(),
        left_after_exit: report
            .left
            .iter()
            .map(|process| Left {
                pid: process.pid,
                comm: &process.comm,
                cmdline: &process.cmdline,
                state: process.state.to_string(),
                wchan: &process.wchan,
                persisting: process.persisting,
            })
            .collect(),
        pids: report.pids.map(|usage| Pids {
            current: usage.current,
            max: usage.max,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::sample_node;
    use crate::thresholds::problems;
    use serde_json::{json, Value};

    #[test]
    fn the_document_follows_the_documented_schema() {
        let report = sample_node();
        let thresholds = Thresholds::default();
        let found = problems(&report, &thresholds);
        let document: Value = serde_json::from_str(&to_json(&report, &thresholds, &found)).unwrap();
        assert_eq!(document["schema"], "undertaker.io/scan/v1");
        assert_eq!(document["containers"].as_array().unwrap().len(), 3);
        assert_eq!(
            document["containers"][2],
            json!({
                "id": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                "pod": {"namespace": "shop", "name": "worker-1", "uid": "uid-worker"},
                "container": "queue",
                "runtime_handler": "undertaker",
                "state": "running",
                "pid": 5200,
                "processes": 10,
                "zombies": 40,
                "zombie_parents": [
                    {"pid": 5201, "comm": "python3", "zombies": 38, "zombie_comms": {"convert": 38}},
                    {"pid": 5300, "comm": null, "zombies": 2, "zombie_comms": {"curl": 2}}
                ],
                "d_state": [
                    {"pid": 5205, "comm": "cat", "cmdline": "cat /mnt/fuse/file",
                     "wchan": "fuse_wait_answer", "persisting": true},
                    {"pid": 5206, "comm": "dd", "cmdline": "dd if=/dev/sda",
                     "wchan": "io_schedule", "persisting": false}
                ],
                "left_after_exit": [],
                "pids": {"current": 80, "max": 100}
            })
        );
        assert_eq!(document["containers"][0]["runtime_handler"], Value::Null);
        assert_eq!(document["containers"][0]["pids"], Value::Null);
        assert_eq!(
            document["containers"][1]["pids"],
            json!({"current": 8, "max": null})
        );
        assert_eq!(
            document["skipped"],
            json!([{
                "id": "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
                "pod": {"namespace": "batch", "name": "job-1", "uid": "uid-job"},
                "container": "run",
                "reason": "exited",
                "detail": "its main process 7400 is gone (exited)"
            }])
        );
        assert_eq!(
            document["thresholds"],
            json!({"max_zombies": 10, "max_d_state": 0, "max_pids_percent": 90,
                   "max_left_after_exit": 0})
        );
        assert_eq!(
            document["problems"],
            json!([
                {"id": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                 "pod": {"namespace": "shop", "name": "worker-1", "uid": "uid-worker"},
                 "container": "queue", "kind": "zombies", "value": 40, "limit": 10,
                 "summary": "shop/worker-1/queue 40 zombies of python3"},
                {"id": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                 "pod": {"namespace": "shop", "name": "worker-1", "uid": "uid-worker"},
                 "container": "queue", "kind": "d_state", "value": 1, "limit": 0,
                 "summary": "shop/worker-1/queue 1 in D at fuse_wait_answer"}
            ])
        );
    }

    #[test]
    fn an_exited_container_has_no_pid_and_lists_what_it_left() {
        let mut report = NodeReport::default();
        report
            .containers
            .push(crate::fixture::exited_container("stuck"));
        let thresholds = Thresholds::default();
        let found = problems(&report, &thresholds);
        let document: Value = serde_json::from_str(&to_json(&report, &thresholds, &found)).unwrap();
        let container = &document["containers"][0];
        assert_eq!(container["state"], "exited");
        assert_eq!(container["pid"], Value::Null);
        assert_eq!(
            container["left_after_exit"][0],
            json!({"pid": 7001, "comm": "sleep", "cmdline": "/bin/sleep", "state": "D",
                   "wchan": "do_freezer_trap", "persisting": true})
        );
        assert_eq!(container["left_after_exit"][1]["persisting"], false);
        assert_eq!(document["problems"][0]["kind"], "left_after_exit");
        assert_eq!(document["problems"][0]["value"], 1);
    }

    #[test]
    fn an_empty_node_is_a_valid_document() {
        let report = NodeReport::default();
        let document: Value =
            serde_json::from_str(&to_json(&report, &Thresholds::default(), &[])).unwrap();
        assert_eq!(document["containers"], json!([]));
        assert_eq!(document["skipped"], json!([]));
        assert_eq!(document["problems"], json!([]));
    }
}
