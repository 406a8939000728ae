//! Shared by the integration tests; each test binary uses a part of it.
#![allow(dead_code)]

pub mod running;
pub mod standin;

use undertaker_events::{annotations, Identity};

/// The identity CRI gives container `container` (id `container_id`) of pod `web-0` in
/// namespace `shop` with uid `uid`, in containerd namespace `k8s.io`.
pub fn pod_identity(uid: &str, container: &str, container_id: &str) -> Identity {
    let annotations = [
        (annotations::SANDBOX_NAME, "web-0"),
        (annotations::SANDBOX_NAMESPACE, "shop"),
        (annotations::SANDBOX_UID, uid),
        (annotations::CONTAINER_NAME, container),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Identity::from_annotations("k8s.io", container_id, "", &annotations)
}
