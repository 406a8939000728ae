//! `undertaker events` against a real containerd (root; each test starts its own containerd
//! through undertaker-testbed): task events of a CRI container with its pod identity; our own
//! events published into containerd exactly as the shim publishes them (containerd-shim's
//! ttrpc `RemotePublisher`) and with a prefixed type URL (`containerd publish`); reconnecting
//! after containerd restarts; clean exits on SIGINT and SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_shim::publisher::RemotePublisher;
use containerd_shim::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use undertaker_events::protobuf::Message;
use undertaker_events::{
    annotations, to_any, Identity, KilledBy, LeakReason, Leaked, Process, Reaped, UndertakerEvent,
    Unkillable,
};
use undertaker_testbed::{is_root, Testbed, TestbedOptions, CRI_NAMESPACE};

/// Bounds every wait for the CLI or containerd; hitting one fails the test, it measures nothing.
const WAIT: Duration = Duration::from_secs(60);
/// How often a probe is published while waiting for the CLI's subscription.
const PROBE_EVERY: Duration = Duration::from_millis(250);
/// The container id of the probe events that show the CLI's subscription is in place.
const PROBE: &str = "probe";

#[tokio::test(flavor = "multi_thread")]
async fn json_shows_task_start_and_exit_of_a_cri_container_with_its_pod() {
    let Some(testbed) = testbed().await else {
        return;
    };
    let mut cli = EventsCli::spawn(testbed.socket(), &["--json", "--namespace", CRI_NAMESPACE]);
    cli.wait_following(&testbed).await;

    let pod = testbed.pod("events-pod", "runc").run().await.expect("pod");
    // A PID 1 that handles TERM, so the stop gives a known exit status; stopped only once it
    // says the handler is in place (PID 1 ignores a TERM that comes before).
    let container = pod
        .container("sleeper")
        .shell("trap 'exit 7' TERM; echo trapped; sleep 300 & wait")
        .run()
        .await
        .expect("container");
    container
        .wait_for_logs(WAIT, |lines| lines.iter().any(|l| l.text == "trapped"))
        .await
        .expect("the TERM handler is set");
    let pid = container.pid().await.expect("pid");
    container.stop(Duration::from_secs(20)).await.expect("stop");

    let id = container.id().to_string();
    let is = |topic: &'static str| {
        let id = id.clone();
        move |e: &Value| e["topic"] == topic && e["container_id"] == id.as_str()
    };
    let start = cli.next_json(is("/tasks/start")).await;
    let exit = cli.next_json(is("/tasks/exit")).await;

    println!("{start}\n{exit}");
    let metadata = pod.config().metadata.clone().expect("pod metadata");
    for event in [&start, &exit] {
        assert_eq!(event["namespace"], CRI_NAMESPACE, "{event}");
        assert_eq!(event["exec_id"], "", "{event}");
        assert_eq!(event["pod"], metadata.name.as_str(), "{event}");
        assert_eq!(
            event["pod_namespace"],
            metadata.namespace.as_str(),
            "{event}"
        );
        assert_eq!(event["pod_uid"], metadata.uid.as_str(), "{event}");
        assert_eq!(event["container_name"], "sleeper", "{event}");
        assert_eq!(event["processes"][0]["pid"], pid, "{event}");
    }
    assert_eq!(start["processes"][0]["exit_status"], Value::Null, "{start}");
    assert_eq!(exit["processes"][0]["exit_status"], 7, "{exit}");

    assert!(cli.stop(Signal::SIGTERM).success(), "{}", cli.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn undertaker_events_published_into_containerd_are_decoded_with_pod_identity() {
    let Some(testbed) = testbed().await else {
        return;
    };
    let mut cli = EventsCli::spawn(
        testbed.socket(),
        &["--filter", Reaped::TOPIC, "--filter", Leaked::TOPIC],
    );
    cli.wait_following(&testbed).await;
    let identity = pod_identity("0123456789abcdef0123");

    // As the shim publishes: over containerd's ttrpc socket, type URL = bare full name.
    let mut escaped = Process::named(12, "sleep");
    escaped.set_cmdline_raw(b"sleep\x001000\x00");
    escaped.state = "S".into();
    escaped.killed_by = KilledBy::KILLED_BY_CGROUP.into();
    let leaked = Leaked::now(
        identity.clone(),
        vec![escaped],
        LeakReason::LEAK_REASON_STOP,
    );
    publish_as_the_shim(&testbed, leaked).await;
    // The prefixed type URL other publishers use.
    let processes = vec![
        Process::named(7, "sh").signaled(15),
        Process::named(8, "true").exited(0),
    ];
    let reaped = Reaped::now(identity, processes, 3, 1);
    publish_with_type_url_prefix(&testbed, &reaped, "type.googleapis.com/");

    let leaked_line = cli
        .next_line(|line| line.contains(" /undertaker/leaked "))
        .await;
    let reaped_line = cli
        .next_line(|line| line.contains(" /undertaker/reaped k8s.io/shop"))
        .await;

    println!("{leaked_line}\n{reaped_line}");
    assert!(
        leaked_line.contains(
            " /undertaker/leaked k8s.io/shop/web-0/nginx id=0123456789abc total=1 reason=stop \
             [pid=12 comm=sleep state=S killed_by=cgroup cmdline=\"sleep 1000\"]"
        ),
        "{leaked_line}"
    );
    assert!(
        reaped_line.contains(
            " /undertaker/reaped k8s.io/shop/web-0/nginx id=0123456789abc total=3 dropped=1 \
             [pid=7 comm=sh exit_status=143 signal=15] [pid=8 comm=true exit_status=0]"
        ),
        "{reaped_line}"
    );
    assert!(cli.stop(Signal::SIGINT).success(), "{}", cli.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn reconnects_after_containerd_restarts() {
    let Some(testbed) = testbed().await else {
        return;
    };
    let mut cli = EventsCli::spawn(testbed.socket(), &["--json"]);
    cli.wait_following(&testbed).await;

    testbed
        .restart_containerd()
        .await
        .expect("containerd restarts");
    cli.wait_following(&testbed).await;
    let mut stuck = Process::named(31, "reader");
    stuck.state = "D".into();
    stuck.wchan = "fuse_wait_answer".into();
    let unkillable = Unkillable::now(pod_identity("c-after-restart"), vec![stuck]);
    publish_as_the_shim(&testbed, unkillable).await;

    let event = cli.next_json(|e| e["topic"] == Unkillable::TOPIC).await;
    assert_eq!(event["container_id"], "c-after-restart", "{event}");
    assert_eq!(event["pod"], "web-0", "{event}");
    assert_eq!(event["processes"][0]["state"], "D", "{event}");
    assert_eq!(
        event["processes"][0]["wchan"], "fuse_wait_answer",
        "{event}"
    );
    let stderr = cli.stderr();
    let notice = stderr.lines().find(|l| l.contains("reconnecting"));
    println!("{}", notice.unwrap_or_default());
    assert!(notice.is_some(), "a notice on stderr: {stderr}");
    assert!(cli.stop(Signal::SIGTERM).success(), "{}", cli.stderr());
}

#[test]
fn fails_when_containerd_cannot_be_reached_at_first() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("containerd.sock");

    let output = Command::new(env!("CARGO_BIN_EXE_undertaker"))
        .args(["events", "--address", missing.to_str().unwrap()])
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("follow containerd's events at"), "{stderr}");
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
}

#[test]
fn unknown_topics_are_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_undertaker"))
        .args(["events", "--filter", "/images/create"])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/undertaker/leaked"));
}

async fn testbed() -> Option<Testbed> {
    if !is_root() {
        eprintln!("skipped: needs root to run containerd");
        return None;
    }
    Some(
        Testbed::start(TestbedOptions::default())
            .await
            .expect("testbed"),
    )
}

fn pod_identity(container_id: &str) -> Identity {
    let annotations = [
        (annotations::SANDBOX_NAME, "web-0"),
        (annotations::SANDBOX_NAMESPACE, "shop"),
        (annotations::SANDBOX_UID, "uid-1"),
        (annotations::CONTAINER_NAME, "nginx"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Identity::from_annotations(CRI_NAMESPACE, container_id, "", &annotations)
}

/// Publishes `event` the way the shim does: containerd-shim's `RemotePublisher` on containerd's
/// ttrpc socket (a fresh connection each time, so a restarted containerd is no matter).
async fn publish_as_the_shim<E: UndertakerEvent>(testbed: &Testbed, event: E) {
    let ttrpc = testbed.ttrpc_socket().to_str().expect("UTF-8 path");
    let publisher = RemotePublisher::new(ttrpc)
        .await
        .expect("connect to containerd's ttrpc");
    publisher
        .publish(Context::default(), E::TOPIC, CRI_NAMESPACE, Box::new(event))
        .await
        .expect("queue the event");
}

/// Publishes `event` with its type URL prefixed, through `containerd publish` (the binary
/// containerd hands to shims; in 1.6 it calls the events service's `Forward` over gRPC).
fn publish_with_type_url_prefix<E: UndertakerEvent>(testbed: &Testbed, event: &E, prefix: &str) {
    let mut any = to_any(event).unwrap();
    any.type_url.insert_str(0, prefix);
    let mut child = Command::new("containerd")
        .arg("--address")
        .arg(testbed.socket())
        .args(["publish", "--topic", E::TOPIC, "--namespace", CRI_NAMESPACE])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run containerd publish");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&any.write_to_bytes().unwrap()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "containerd publish: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `undertaker events` running in the background; killed on drop.
struct EventsCli {
    child: Child,
    stdout: UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl EventsCli {
    fn spawn(socket: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_undertaker"))
            .args(["--log", "undertaker=debug", "events", "--address"])
            .arg(socket)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run undertaker events");
        let (lines, stdout) = unbounded_channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (err, collected) = (BufReader::new(child.stderr.take().unwrap()), stderr.clone());
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                let mut collected = collected.lock().unwrap();
                collected.push_str(&line);
                collected.push('\n');
            }
        });
        EventsCli {
            child,
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Publishes probe events until the CLI prints one: containerd gives a subscriber no
    /// other sign that its subscription is in place. Lines before the probe are dropped.
    async fn wait_following(&mut self, testbed: &Testbed) {
        let probe = || {
            Reaped::now(
                Identity::for_container(CRI_NAMESPACE, PROBE, ""),
                vec![],
                0,
                0,
            )
        };
        let following = async {
            loop {
                publish_as_the_shim(testbed, probe()).await;
                let next = tokio::time::timeout(PROBE_EVERY, self.stdout.recv()).await;
                match next {
                    Ok(Some(line)) if line.contains(PROBE) => return,
                    Ok(Some(_)) | Err(_) => {}
                    Ok(None) => panic!("undertaker events ended"),
                }
            }
        };
        if tokio::time::timeout(WAIT, following).await.is_err() {
            panic!("no probe event came through; stderr:\n{}", self.stderr());
        }
    }

    /// The next stdout line for which `wanted` holds (others are skipped).
    async fn next_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let found = async {
            while let Some(line) = self.stdout.recv().await {
                if wanted(&line) {
                    return Some(line);
                }
            }
            None
        };
        match tokio::time::timeout(WAIT, found).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("undertaker events ended; stderr:\n{}", self.stderr()),
            Err(_) => panic!("no such event line; stderr:\n{}", self.stderr()),
        }
    }

    /// The next JSON event for which `wanted` holds; every line must be JSON.
    async fn next_json(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let line = self
            .next_line(|line| {
                let event: Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                wanted(&event)
            })
            .await;
        serde_json::from_str(&line).unwrap()
    }

    /// Sends `signal` and returns how the CLI exited.
    fn stop(&mut self, signal: Signal) -> ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for EventsCli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
