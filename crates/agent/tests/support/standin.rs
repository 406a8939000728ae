//! A stand-in for the Kubernetes API server: an HTTP/1.1 server on 127.0.0.1 that records
//! every request, decodes its body as a core/v1 Event (a request that is not one fails the
//! test), and answers as the API server would: the Event back, 201 for a create, 200 for a
//! patch; 404 for patches while told the Events are gone. Pods (`/api/v1/namespaces/<ns>/pods/
//! <name>`) are answered from what the test put there: GET gives the pod or 404, DELETE takes
//! it away; both are recorded with their query. Node calls (`/api/v1/nodes/<name>`) are
//! recorded and answered with a bare Node of that name.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Event, Pod};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request the stand-in got.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub event: Event,
}

/// One pod call the stand-in got.
#[derive(Clone, Debug)]
pub struct PodCall {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
}

#[derive(Default)]
struct Shared {
    pods: Mutex<HashMap<String, Pod>>,
    pod_calls: Mutex<Vec<PodCall>>,
    node_calls: Mutex<Vec<PodCall>>,
    received: Mutex<Vec<Received>>,
    /// Bodies that did not decode as an Event.
    rejected: Mutex<Vec<String>>,
    events_gone: AtomicBool,
}

/// The running stand-in; stops when dropped.
pub struct StandIn {
    url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl StandIn {
    pub async fn start() -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared::default());
        let serving = shared.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(answer(request, &shared).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        StandIn {
            url,
            shared,
            server,
        }
    }

    /// Writes a kubeconfig pointing at the stand-in (plain HTTP, no credentials) into `dir`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        kubeconfig_for(dir, &self.url)
    }

    /// Serves `pod` at its namespace and name from now on.
    pub fn put_pod(&self, pod: Pod) {
        let path = pod_path(
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default(),
        );
        self.shared.pods.lock().unwrap().insert(path, pod);
    }

    /// Every pod call so far, in arrival order.
    pub fn pod_calls(&self) -> Vec<PodCall> {
        self.shared.pod_calls.lock().unwrap().clone()
    }

    /// Waits (bounded) until some pod call satisfies `wanted`, and returns it.
    pub async fn wait_for_pod_call(&self, wanted: impl Fn(&PodCall) -> bool) -> PodCall {
        first_within(|| self.pod_calls(), wanted).await
    }

    /// Every node call so far (the same fields as a pod call), in arrival order.
    pub fn node_calls(&self) -> Vec<PodCall> {
        self.shared.node_calls.lock().unwrap().clone()
    }

    /// Waits (bounded) until some node call satisfies `wanted`, and returns it.
    pub async fn wait_for_node_call(&self, wanted: impl Fn(&PodCall) -> bool) -> PodCall {
        first_within(|| self.node_calls(), wanted).await
    }

    /// From now on, patches answer 404 (the Event expired).
    pub fn forget_events(&self) {
        self.shared.events_gone.store(true, Ordering::SeqCst);
    }

    /// Every request so far, in arrival order; fails if any body was not an Event.
    pub fn received(&self) -> Vec<Received> {
        let rejected = self.shared.rejected.lock().unwrap();
        assert!(rejected.is_empty(), "not core/v1 Events: {rejected:#?}");
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits (bounded) until some request satisfies `wanted`, and returns it.
    pub async fn wait_for(&self, wanted: impl Fn(&Received) -> bool) -> Received {
        first_within(|| self.received(), wanted).await
    }
}

/// The first of `seen()` that satisfies `wanted`, looking again until it comes (60 s at most).
async fn first_within<T: std::fmt::Debug>(
    seen: impl Fn() -> Vec<T>,
    wanted: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = seen().into_iter().find(|item| wanted(item)) {
            return found;
        }
        assert!(Instant::now() < deadline, "none such; got {:#?}", seen());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Writes a kubeconfig for the API server at `url` (plain HTTP, no credentials, namespace
/// `default`) into `dir`, and returns its path.
pub fn kubeconfig_for(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {url}\n\
         contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin\n    \
         namespace: default\ncurrent-context: standin\nusers:\n- name: standin\n  user: {{}}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn answer(request: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let content_type = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    if path.contains("/pods/") {
        return answer_pod(shared, method, path, query, &body);
    }
    if let Some(node) = path.strip_prefix("/api/v1/nodes/") {
        let node = serde_json::json!({
            "apiVersion": "v1", "kind": "Node", "metadata": { "name": node },
        });
        shared.node_calls.lock().unwrap().push(PodCall {
            method,
            path,
            query,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        return reply(StatusCode::OK, serde_json::to_vec(&node).unwrap());
    }
    let event: Event = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(error) => {
            let text = String::from_utf8_lossy(&body);
            shared
                .rejected
                .lock()
                .unwrap()
                .push(format!("{method} {path}: {error}: {text}"));
            return reply(StatusCode::BAD_REQUEST, status_body(400, "BadRequest"));
        }
    };
    shared.received.lock().unwrap().push(Received {
        method: method.clone(),
        path,
        content_type,
        event,
    });
    match method.as_str() {
        "PATCH" if shared.events_gone.load(Ordering::SeqCst) => {
            reply(StatusCode::NOT_FOUND, status_body(404, "NotFound"))
        }
        "POST" => reply(StatusCode::CREATED, body.to_vec()),
        _ => reply(StatusCode::OK, body.to_vec()),
    }
}

fn pod_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/pods/{name}")
}

fn answer_pod(
    shared: &Shared,
    method: String,
    path: String,
    query: String,
    body: &[u8],
) -> Response<Full<Bytes>> {
    shared.pod_calls.lock().unwrap().push(PodCall {
        method: method.clone(),
        path: path.clone(),
        query,
        body: String::from_utf8_lossy(body).into_owned(),
    });
    let mut pods = shared.pods.lock().unwrap();
    let found = match method.as_str() {
        "DELETE" => pods.remove(&path),
        _ => pods.get(&path).cloned(),
    };
    match found {
        Some(pod) => reply(StatusCode::OK, serde_json::to_vec(&pod).unwrap()),
        None => reply(StatusCode::NOT_FOUND, status_body(404, "NotFound")),
    }
}

fn status_body(code: u16, reason: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "reason": reason, "code": code, "message": reason,
    }))
    .unwrap()
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    response
}
