//! The agent in this process against a testbed containerd: starting it, scraping its
//! `/metrics`, publishing events into containerd.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::support::standin::StandIn;
use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::ForwardRequest;
use containerd_client::types::Envelope;
use containerd_shim_protos::events::task::TaskExit;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use undertaker_agent::{Agent, AgentOptions, KubeConfigSource};
use undertaker_events::protobuf::MessageFull;
use undertaker_events::{to_any, UndertakerEvent};
use undertaker_testbed::{default_bin_dir, is_root, Testbed, TestbedOptions, CRI_NAMESPACE};

/// Bounds every wait; hitting one fails the test, it measures nothing.
pub const WAIT: Duration = Duration::from_secs(60);
/// Only exits and shutdown make Event writes: one write per container, at its exit.
pub const NEVER: Duration = Duration::from_secs(3600);

/// A testbed, or `None` (test skipped) without root or without the shim and init built;
/// in CI (`CI=true`) those are failures.
pub async fn testbed() -> Option<Testbed> {
    let missing = if !is_root() {
        Some("needs root to run containerd".to_string())
    } else {
        ["containerd-shim-undertaker-v2", "undertaker-init"]
            .iter()
            .map(|name| default_bin_dir().join(name))
            .find(|path| !path.is_file())
            .map(|path| {
                format!(
                    "{} not built (cargo build -p undertaker-shim && scripts/build-init.sh)",
                    path.display()
                )
            })
    };
    if let Some(reason) = missing {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("cannot run in CI: {reason}");
        }
        eprintln!("skipped: {reason}");
        return None;
    }
    Some(
        Testbed::start(TestbedOptions::default())
            .await
            .expect("testbed"),
    )
}

/// Publishes `message` on `topic` into containerd (the events service's `Forward`, what
/// `containerd publish` calls for shims).
pub async fn publish_on<M: MessageFull>(testbed: &Testbed, topic: &str, message: &M) {
    let any = to_any(message).unwrap();
    let channel = containerd_client::connect(testbed.socket()).await.unwrap();
    let envelope = Envelope {
        timestamp: Some(SystemTime::now().into()),
        namespace: CRI_NAMESPACE.to_string(),
        topic: topic.to_string(),
        event: Some(prost_types::Any {
            type_url: any.type_url,
            value: any.value,
        }),
    };
    EventsClient::new(channel)
        .forward(ForwardRequest {
            envelope: Some(envelope),
        })
        .await
        .expect("forward the event");
}

pub async fn publish<E: UndertakerEvent>(testbed: &Testbed, event: &E) {
    publish_on(testbed, E::TOPIC, event).await;
}

/// The agent, in this process, with metrics on a free port; stopped on drop.
pub struct RunningAgent {
    metrics_addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
    /// Files the agent reads while it runs (its kubeconfig).
    files: Option<tempfile::TempDir>,
}

impl RunningAgent {
    /// The agent with the options these tests share: only exits and shutdown make Event
    /// writes (see [`NEVER`]).
    pub async fn start(testbed: &Testbed, kubeconfig: Option<&Path>) -> Self {
        Self::start_with(testbed, kubeconfig, |_| {}).await
    }

    /// As [`RunningAgent::start`], with `tweak` applied to the options.
    pub async fn start_with(
        testbed: &Testbed,
        kubeconfig: Option<&Path>,
        tweak: impl FnOnce(&mut AgentOptions),
    ) -> Self {
        let mut options = AgentOptions {
            containerd_address: testbed.socket().to_path_buf(),
            containerd_namespace: Some(CRI_NAMESPACE.to_string()),
            metrics_addr: "127.0.0.1:0".parse().unwrap(),
            kubernetes: kubeconfig.map(|path| KubeConfigSource::File(path.to_path_buf())),
            node_name: "test-node".to_string(),
            scan_interval: Some(Duration::from_millis(300)),
            queue_size: 1024,
            check_every: NEVER,
            ..AgentOptions::default()
        };
        tweak(&mut options);
        let agent = Agent::new(options).await.expect("agent");
        let metrics_addr = agent.metrics_addr();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(agent.run(async move { stop.cancelled().await }));
        RunningAgent {
            metrics_addr,
            shutdown,
            task: Some(task),
            files: None,
        }
    }

    /// `GET /metrics` over HTTP.
    pub async fn scrape(&self) -> String {
        let mut stream = TcpStream::connect(self.metrics_addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/openmetrics-text"),
            "{head}"
        );
        body.to_string()
    }

    /// The value of the sample `series` (name and labels, as exposed), if it is there.
    pub async fn sample(&self, series: &str) -> Option<f64> {
        let text = self.scrape().await;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|value| value.parse().unwrap())
    }

    /// Waits (bounded) until `series` is there with a value for which `wanted` holds.
    pub async fn wait_sample(&self, series: &str, wanted: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(value) = self.sample(series).await.filter(|v| wanted(*v)) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "no {series} as wanted in:\n{}",
                self.scrape().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the agent is subscribed. containerd answers a subscription only with its
    /// first event, so exits of a container that does not exist are published meanwhile (the
    /// agent has nothing to write for them).
    pub async fn wait_subscribed(&self, testbed: &Testbed) {
        let probe = TaskExit {
            container_id: "agent-probe".to_string(),
            id: "agent-probe".to_string(),
            ..Default::default()
        };
        let deadline = Instant::now() + WAIT;
        while self.sample("undertaker_agent_containerd_connected").await != Some(1.0) {
            assert!(Instant::now() < deadline, "{}", self.scrape().await);
            publish_on(testbed, "/tasks/exit", &probe).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("the agent stops")
                .unwrap();
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A testbed containerd, a stand-in API server and the agent posting to it, subscribed; `None`
/// when the testbed cannot run (see [`testbed`]). `tweak` adjusts the agent's options.
pub async fn with_api(
    tweak: impl FnOnce(&mut AgentOptions),
) -> Option<(Testbed, StandIn, RunningAgent)> {
    let testbed = testbed().await?;
    let standin = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = standin.kubeconfig(dir.path());
    let mut agent = RunningAgent::start_with(&testbed, Some(&kubeconfig), tweak).await;
    agent.files = Some(dir);
    agent.wait_subscribed(&testbed).await;
    Some((testbed, standin, agent))
}
