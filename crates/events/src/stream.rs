//! Following containerd's event stream (feature `containerd`): subscribe over containerd's
//! gRPC socket with one filter per topic, decode what arrives, and connect again with backoff
//! whenever the stream breaks (containerd restarted). One loop for every consumer: the CLI's
//! `undertaker events`, the node agent, the tests.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::SubscribeRequest;
use containerd_client::types::Envelope;
use tonic::codec::Streaming;
use tonic::transport::Channel;

use crate::{decode, DecodeError, Event};

/// How long connecting to containerd's socket may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait before connecting again after a failure; it doubles up to [`BACKOFF_MAX`]
/// while reconnecting does not get events flowing again.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(200);
/// The longest wait before connecting again.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// One event as containerd delivered it, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivered {
    /// The containerd namespace it was published in.
    pub namespace: String,
    /// When containerd stamped it (the envelope's time; now if it had none).
    pub published: SystemTime,
    pub event: Event,
}

/// Why [`EventStream::next`] returned no event.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("no answer from {address} within {timeout:?}")]
    ConnectTimeout { address: PathBuf, timeout: Duration },
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: PathBuf,
        source: tonic::transport::Error,
    },
    #[error("containerd at {address} refused the subscription: {:?}: {}", status.code(), status.message())]
    Subscribe {
        address: PathBuf,
        status: tonic::Status,
    },
    #[error("containerd's event stream at {address} broke: {:?}: {}", status.code(), status.message())]
    Broken {
        address: PathBuf,
        status: tonic::Status,
    },
    #[error("containerd at {address} closed the event stream")]
    Closed { address: PathBuf },
    /// One event could not be decoded; the stream goes on.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl StreamError {
    /// Whether the connection is gone (the next call connects again), rather than one event
    /// being bad.
    pub fn is_lost(&self) -> bool {
        !matches!(self, StreamError::Decode(_))
    }
}

/// containerd's event stream for some topics, optionally one namespace.
pub struct EventStream {
    address: PathBuf,
    namespace: Option<String>,
    topics: Vec<String>,
    live: Option<Live>,
    backoff: Backoff,
    /// Whether the last connection failed and the next one must wait the backoff.
    lost: bool,
    connections: u64,
}

struct Live {
    channel: Channel,
    stream: Option<Streaming<Envelope>>,
    delivered: bool,
}

impl EventStream {
    /// A stream of the events on `topics` (in `namespace`, or all) from the containerd at
    /// `address`; it connects on the first [`next`](Self::next).
    pub fn new(address: impl Into<PathBuf>, namespace: Option<&str>, topics: &[&str]) -> Self {
        EventStream {
            address: address.into(),
            namespace: namespace.map(str::to_string),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            live: None,
            backoff: Backoff::default(),
            lost: false,
            connections: 0,
        }
    }

    /// The next event on one of the stream's topics (events of other topics, or that carry no
    /// payload, are skipped). A failed or broken connection is returned once as an error for
    /// which [`StreamError::is_lost`] holds; the call after it first waits
    /// [`retry_in`](Self::retry_in), then connects again.
    pub async fn next(&mut self) -> Result<Delivered, StreamError> {
        if self.lost {
            tokio::time::sleep(self.backoff.current()).await;
            self.backoff.grow();
            self.lost = false;
        }
        let result = self.receive().await;
        if result.as_ref().is_err_and(StreamError::is_lost) {
            if self.live.take().is_some_and(|live| live.delivered) {
                self.backoff.reset();
            }
            self.lost = true;
        }
        result
    }

    async fn receive(&mut self) -> Result<Delivered, StreamError> {
        loop {
            let live = match &mut self.live {
                Some(live) => live,
                None => {
                    let channel = connect(&self.address).await?;
                    self.connections += 1;
                    self.live.insert(Live {
                        channel,
                        stream: None,
                        delivered: false,
                    })
                }
            };
            let stream = match &mut live.stream {
                Some(stream) => stream,
                None => {
                    let request = subscribe_request(self.namespace.as_deref(), &self.topics);
                    // containerd sends the response headers with the first event, so this
                    // returns only once an event arrives.
                    let response = EventsClient::new(live.channel.clone())
                        .subscribe(request)
                        .await
                        .map_err(|status| StreamError::Subscribe {
                            address: self.address.clone(),
                            status,
                        })?;
                    live.stream.insert(response.into_inner())
                }
            };
            let envelope = match stream.message().await {
                Ok(Some(envelope)) => envelope,
                Ok(None) => {
                    return Err(StreamError::Closed {
                        address: self.address.clone(),
                    })
                }
                Err(status) => {
                    return Err(StreamError::Broken {
                        address: self.address.clone(),
                        status,
                    })
                }
            };
            live.delivered = true;
            if let Some(delivered) = open(envelope, self.namespace.as_deref(), &self.topics)? {
                return Ok(delivered);
            }
        }
    }

    /// The live connection to containerd, for other calls on it (e.g. reading a container).
    pub fn channel(&self) -> Option<&Channel> {
        self.live.as_ref().map(|live| &live.channel)
    }

    /// How long the next call waits before connecting again, after a lost connection.
    pub fn retry_in(&self) -> Duration {
        self.backoff.current()
    }

    /// How many times a connection to containerd was made.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// containerd's socket.
    pub fn address(&self) -> &Path {
        &self.address
    }
}

/// containerd filters: one per topic (a list of filters is OR'ed; commas inside one are
/// AND'ed), each naming the namespace too when one is given.
pub fn subscribe_request(namespace: Option<&str>, topics: &[impl AsRef<str>]) -> SubscribeRequest {
    let filters = topics
        .iter()
        .map(|topic| {
            let topic = topic.as_ref();
            match namespace {
                Some(ns) => format!("namespace=={ns:?},topic=={topic:?}"),
                None => format!("topic=={topic:?}"),
            }
        })
        .collect();
    SubscribeRequest { filters }
}

/// Decodes `envelope` if it is on one of `topics` (and in `namespace`, when given) and is an
/// event this crate knows; `None` for everything else. containerd filtered already; checking
/// again means a filter it ignored shows nothing extra.
pub fn open(
    envelope: Envelope,
    namespace: Option<&str>,
    topics: &[impl AsRef<str>],
) -> Result<Option<Delivered>, DecodeError> {
    let wanted = topics.iter().any(|t| t.as_ref() == envelope.topic)
        && namespace.is_none_or(|ns| ns == envelope.namespace);
    let Some(any) = envelope.event.filter(|_| wanted) else {
        return Ok(None);
    };
    let event = decode(&envelope.topic, &any.type_url, &any.value)?;
    if let Event::Other { .. } = event {
        return Ok(None);
    }
    let published = envelope
        .timestamp
        .and_then(|t| SystemTime::try_from(t).ok())
        .unwrap_or_else(SystemTime::now);
    Ok(Some(Delivered {
        namespace: envelope.namespace,
        published,
        event,
    }))
}

/// Connects to containerd's socket at `address`, within [`CONNECT_TIMEOUT`].
pub async fn connect(address: &Path) -> Result<Channel, StreamError> {
    tokio::time::timeout(CONNECT_TIMEOUT, containerd_client::connect(address))
        .await
        .map_err(|_| StreamError::ConnectTimeout {
            address: address.to_path_buf(),
            timeout: CONNECT_TIMEOUT,
        })?
        .map_err(|source| StreamError::Connect {
            address: address.to_path_buf(),
            source,
        })
}

/// [`BACKOFF_FIRST`], doubling up to [`BACKOFF_MAX`].
#[derive(Clone, Copy, Debug)]
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(BACKOFF_FIRST)
    }
}

impl Backoff {
    fn current(self) -> Duration {
        self.0
    }

    fn grow(&mut self) {
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
    }

    fn reset(&mut self) {
        self.0 = BACKOFF_FIRST;
    }
}

#[cfg(test)]
mod tests {
    use containerd_client::types::Envelope;
    use containerd_shim_protos::events::task::TaskExit;

    use super::*;
    use crate::{to_any, TaskEvent};

    fn envelope(
        namespace: &str,
        topic: &str,
        any: Option<protobuf::well_known_types::any::Any>,
    ) -> Envelope {
        Envelope {
            timestamp: Some(std::time::UNIX_EPOCH.into()),
            namespace: namespace.to_string(),
            topic: topic.to_string(),
            event: any.map(|any| prost_types::Any {
                type_url: any.type_url,
                value: any.value,
            }),
        }
    }

    fn exit() -> TaskExit {
        TaskExit {
            container_id: "c1".into(),
            pid: 42,
            exit_status: 3,
            ..Default::default()
        }
    }

    #[test]
    fn filters_name_each_topic_and_the_namespace() {
        let topics = ["/tasks/exit", "/undertaker/leaked"];

        let all = subscribe_request(None, &topics);
        let k8s = subscribe_request(Some("k8s.io"), &topics);

        assert_eq!(
            all.filters,
            ["topic==\"/tasks/exit\"", "topic==\"/undertaker/leaked\""]
        );
        assert_eq!(
            k8s.filters,
            [
                "namespace==\"k8s.io\",topic==\"/tasks/exit\"",
                "namespace==\"k8s.io\",topic==\"/undertaker/leaked\""
            ]
        );
    }

    #[test]
    fn open_decodes_wanted_events_with_containerd_time() {
        let delivered = open(
            envelope("k8s.io", "/tasks/exit", Some(to_any(&exit()).unwrap())),
            None,
            &["/tasks/exit"],
        )
        .unwrap()
        .expect("a wanted event");

        assert_eq!(delivered.namespace, "k8s.io");
        assert_eq!(delivered.published, std::time::UNIX_EPOCH);
        assert_eq!(delivered.event, Event::Task(TaskEvent::Exit(exit())));
    }

    #[test]
    fn open_skips_other_topics_namespaces_and_empty_envelopes() {
        let any = || Some(to_any(&exit()).unwrap());

        let other_topic = open(
            envelope("k8s.io", "/tasks/exit", any()),
            None,
            &["/tasks/start"],
        );
        let other_ns = open(
            envelope("moby", "/tasks/exit", any()),
            Some("k8s.io"),
            &["/tasks/exit"],
        );
        let empty = open(
            envelope("k8s.io", "/tasks/exit", None),
            None,
            &["/tasks/exit"],
        );
        let unknown = open(
            envelope("k8s.io", "/images/create", any()),
            None,
            &["/images/create"],
        );

        for skipped in [other_topic, other_ns, empty, unknown] {
            assert_eq!(skipped.unwrap(), None);
        }
    }

    #[test]
    fn open_reports_a_payload_of_the_wrong_type() {
        let error = open(
            envelope("k8s.io", "/tasks/start", Some(to_any(&exit()).unwrap())),
            None,
            &["/tasks/start"],
        )
        .unwrap_err();
        assert!(matches!(error, DecodeError::WrongType { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn a_missing_socket_is_lost_and_retried_with_growing_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let mut stream =
            EventStream::new(dir.path().join("containerd.sock"), None, &["/tasks/exit"]);

        let first = stream.next().await.unwrap_err();
        assert!(matches!(first, StreamError::Connect { .. }), "{first:?}");
        assert!(first.is_lost());
        assert!(first.to_string().contains("containerd.sock"), "{first}");
        assert_eq!(stream.retry_in(), BACKOFF_FIRST);

        let second = stream.next().await.unwrap_err();
        assert!(second.is_lost());
        assert_eq!(
            stream.retry_in(),
            BACKOFF_FIRST * 2,
            "no events flowed: wait longer"
        );
        assert_eq!(stream.connections(), 0);
        assert!(stream.channel().is_none());
    }

    #[test]
    fn backoff_doubles_up_to_the_limit_and_resets() {
        let mut backoff = Backoff::default();
        let mut seen = vec![backoff.current()];
        for _ in 0..8 {
            backoff.grow();
            seen.push(backoff.current());
        }
        assert_eq!(seen[1], BACKOFF_FIRST * 2);
        assert_eq!(*seen.last().unwrap(), BACKOFF_MAX);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));

        backoff.reset();
        assert_eq!(backoff.current(), BACKOFF_FIRST);
    }
}
