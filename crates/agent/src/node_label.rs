//! A node's label, set or removed with one merge patch of its labels (other labels and
//! concurrent writers are left alone): how the DaemonSet's pod marks a node installed, for the
//! RuntimeClass to schedule on, and unmarks it before an uninstall.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// Why the node's label could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot {verb} label {key} on node {node}: {source}")]
pub struct NodeLabelError {
    verb: &'static str,
    key: String,
    node: String,
    #[source]
    source: kube::Error,
}

/// Sets `key` to `value` on `node`, or removes it (`None`; removing an absent label is no
/// error).
pub async fn set_node_label(
    client: kube::Client,
    node: &str,
    key: &str,
    value: Option<&str>,
) -> Result<(), NodeLabelError> {
    let patch = json!({ "metadata": { "labels": { key: value } } });
    Api::<Node>::all(client)
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
        .map_err(|source| NodeLabelError {
            verb: if value.is_some() { "set" } else { "remove" },
            key: key.to_string(),
            node: node.to_string(),
            source,
        })
}
