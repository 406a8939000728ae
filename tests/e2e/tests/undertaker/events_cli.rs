//! `undertaker events --json` against the testbed's containerd, while a container's main
//! process reaps an orphan and exits leaving a daemon: the CLI prints the reaped and leaked
//! events exactly as decoded here, with the pod's identity, and the task exit with the pod
//! filled in from the container's labels.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{ensure, Context};
use serde_json::Value;
use undertaker_testbed::{
    event_lines, records_about, EventRecord, Testbed, CRI_NAMESPACE, PROBE_PREFIX,
};

use crate::support::{
    ensure_identity, marked_cmdline, marked_container, marker, metadata, named, wait_until,
    DRAIN_ANNOTATION, DRAIN_TIMEOUT, WAIT,
};

undertaker_e2e::undertaker_only!(events_json_shows_each_event_with_its_pod);

async fn events_json_shows_each_event_with_its_pod(testbed: Arc<Testbed>) -> anyhow::Result<()> {
    let binary = testbed.bin_dir().join("undertaker");
    if !binary.is_file() {
        let reason = format!("{} not built (cargo build -p undertaker)", binary.display());
        ensure!(std::env::var("CI").as_deref() != Ok("true"), "{reason}");
        eprintln!("skipping events_json_shows_each_event_with_its_pod: {reason}");
        return Ok(());
    }
    let events = testbed.collect_events().await?;
    let cli = EventsCli::spawn(&binary, testbed.socket())?;
    testbed
        .probe_until(|serial| cli.printed(&format!("\"{PROBE_PREFIX}{serial}\"")))
        .await?;

    let marker = marker(&testbed, "cli");
    let pod = testbed
        .pod("events-cli", "undertaker")
        .annotation(DRAIN_ANNOTATION, DRAIN_TIMEOUT)
        .run()
        .await?;
    // The orphan is reaped (its /proc entry outlives it as a zombie) before the daemon starts
    // and the script exits: waiting a fixed time instead could leave it to the drain under load.
    let body = "( sleep 0.1 & echo $! > $M/orphan ); read o < $M/orphan; \
                while [ -e /proc/$o ]; do sleep 0.02; done; daemon - 1010; echo done";
    let container = marked_container(&pod, "reporter", &marker, body)
        .run()
        .await?;
    ensure!(container.wait_exited(WAIT).await? == 0, "the script failed");

    let id = container.id().to_string();
    let leftover = [marked_cmdline(&marker, 1010)];
    let mine = |records: &[EventRecord], topic: &str| {
        let mut found = records_about(records, topic, &id);
        found.retain(|r| r.exec_id.is_empty());
        found
    };
    let records = events
        .wait_for(
            "reaped, leaked and exit events of the container",
            WAIT,
            |records| {
                !mine(records, "/undertaker/reaped").is_empty()
                    && !named(&mine(records, "/undertaker/leaked"), &leftover).is_empty()
                    && !mine(records, "/tasks/exit").is_empty()
            },
        )
        .await?;

    // Our events: what the CLI prints is what the library decodes, field for field.
    for topic in ["/undertaker/reaped", "/undertaker/leaked"] {
        let expected = mine(&records, topic);
        let printed = wait_until(&format!("the CLI to print {topic}"), WAIT, || {
            let printed = cli.json(topic, &id);
            (printed.len() >= expected.len()).then_some(printed)
        })
        .await?;
        for (line, record) in printed.iter().zip(&expected) {
            let decoded: EventRecord = serde_json::from_value(line.clone())
                .with_context(|| format!("not an event record: {line}"))?;
            ensure!(
                decoded == *record,
                "the CLI printed {line}\nthe library decoded {record:?}"
            );
            ensure_identity(&decoded, &pod, &id, "reporter")?;
        }
    }
    let leaked = cli.json("/undertaker/leaked", &id);
    let process = leaked
        .iter()
        .flat_map(|line| line["processes"].as_array().cloned().unwrap_or_default())
        .find(|process| process["cmdline"] == leftover[0].as_str())
        .with_context(|| format!("no leaked process {} in {leaked:?}", leftover[0]))?;
    for field in ["pid", "comm", "cmdline", "state", "exit_status"] {
        ensure!(process.get(field).is_some(), "no {field} in {process}");
    }
    ensure!(process["comm"] == "sleep", "{process}");
    ensure!(leaked[0]["reason"] == "main-exit", "{}", leaked[0]);

    // A task event carries no pod: the CLI looks it up from the container's CRI labels.
    let exit = wait_until("the CLI to print /tasks/exit", WAIT, || {
        cli.json("/tasks/exit", &id).into_iter().next()
    })
    .await?;
    let pod_meta = metadata(&pod);
    ensure!(
        exit["namespace"] == CRI_NAMESPACE
            && exit["pod"] == pod_meta.name.as_str()
            && exit["pod_namespace"] == pod_meta.namespace.as_str()
            && exit["pod_uid"] == pod_meta.uid.as_str()
            && exit["container_name"] == "reporter"
            && exit["processes"][0]["exit_status"] == 0,
        "task exit as printed: {exit}\nevents:\n{}",
        event_lines(&records)
    );
    Ok(())
}

/// `undertaker events --json --namespace k8s.io` in the background, its stdout collected;
/// killed when dropped.
struct EventsCli {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl EventsCli {
    fn spawn(binary: &Path, socket: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .arg("events")
            .arg("--address")
            .arg(socket)
            .args(["--json", "--namespace", CRI_NAMESPACE])
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("run {}", binary.display()))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                collected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line);
            }
        });
        Ok(EventsCli { child, lines })
    }

    /// Whether a printed line contains `text`.
    fn printed(&self, text: &str) -> bool {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().any(|line| line.contains(text))
    }

    /// The printed JSON objects on `topic` about the init process of `container_id`.
    fn json(&self, topic: &str, container_id: &str) -> Vec<Value> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| {
                event["topic"] == topic
                    && event["container_id"] == container_id
                    && event["exec_id"] == ""
            })
            .collect()
    }
}

impl Drop for EventsCli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
