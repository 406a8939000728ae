//! Pod identity for task events, which carry only containerd ids: read from the container's OCI
//! spec (the CRI annotations, as the shim does for undertaker's events), once per container.

use std::collections::HashMap;

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::GetContainerRequest;
use serde::Deserialize;
use tonic::transport::Channel;
use undertaker_events::Identity;

/// Past this many containers the cache starts over (containers forgotten on delete never
/// reach it; this bounds what missed deletes can pile up).
const MAX_CACHED: usize = 4096;

/// Identities of containers by (namespace, container id). A container that cannot be read
/// (gone, not made by CRI) is remembered with an empty pod, so it is asked about only once.
#[derive(Default)]
pub struct PodLookup {
    known: HashMap<(String, String), Identity>,
}

/// The part of an OCI spec we read.
#[derive(Deserialize)]
struct Spec {
    #[serde(default)]
    annotations: HashMap<String, String>,
}

impl PodLookup {
    /// The identity of `container_id` in `namespace`; its pod fields are empty when unknown.
    pub async fn identity(
        &mut self,
        channel: &Channel,
        namespace: &str,
        container_id: &str,
    ) -> Identity {
        let key = (namespace.to_string(), container_id.to_string());
        if let Some(identity) = self.known.get(&key) {
            return identity.clone();
        }
        let annotations = match spec_annotations(channel, namespace, container_id).await {
            Ok(annotations) => annotations,
            Err(error) => {
                tracing::debug!(
                    namespace,
                    container_id,
                    "no pod for the container: {error:#}"
                );
                HashMap::new()
            }
        };
        let identity = Identity::from_annotations(namespace, container_id, "", &annotations);
        if self.known.len() >= MAX_CACHED {
            self.known.clear();
        }
        self.known.insert(key, identity.clone());
        identity
    }

    /// Drops what is known of a container (it is being deleted).
    pub fn forget(&mut self, namespace: &str, container_id: &str) {
        self.known
            .remove(&(namespace.to_string(), container_id.to_string()));
    }
}

/// The annotations in the container's OCI spec, from containerd's container store.
async fn spec_annotations(
    channel: &Channel,
    namespace: &str,
    container_id: &str,
) -> anyhow::Result<HashMap<String, String>> {
    let mut request = tonic::Request::new(GetContainerRequest {
        id: container_id.to_string(),
    });
    request
        .metadata_mut()
        .insert("containerd-namespace", namespace.parse()?);
    let container = ContainersClient::new(channel.clone())
        .get(request)
        .await?
        .into_inner()
        .container
        .ok_or_else(|| anyhow::anyhow!("containerd returned no container"))?;
    let spec = container
        .spec
        .ok_or_else(|| anyhow::anyhow!("the container has no spec"))?;
    // containerd stores the OCI spec as JSON in the Any's value.
    let spec: Spec = serde_json::from_slice(&spec.value)?;
    Ok(spec.annotations)
}
