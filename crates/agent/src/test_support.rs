//! Shared by the unit tests.

use undertaker_events::{annotations, Identity};

/// The identity CRI gives container `container` (id `container_id`) of pod `pod` in
/// namespace `shop`, uid `uid-1`.
pub fn pod_identity(pod: &str, container: &str, container_id: &str) -> Identity {
    let annotations = [
        (annotations::SANDBOX_NAME, pod),
        (annotations::SANDBOX_NAMESPACE, "shop"),
        (annotations::SANDBOX_UID, "uid-1"),
        (annotations::CONTAINER_NAME, container),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Identity::from_annotations("k8s.io", container_id, "", &annotations)
}
