//! `set_node_label` (what `undertaker label-node` runs in the DaemonSet's pod) against the
//! stand-in API server: one merge patch of the node's labels, `"true"` to set, `null` to
//! remove, so other labels and other writers are left alone. No root needed.

mod support;

use support::standin::{kubeconfig_for, StandIn};
use undertaker_agent::{kube_client, set_node_label, KubeConfigSource};

const NODE_LABEL: &str = "undertaker.io/installed";

#[tokio::test]
async fn the_label_is_set_and_removed_by_a_merge_patch_of_the_nodes_labels_alone() {
    let standin = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let source = KubeConfigSource::File(standin.kubeconfig(dir.path()));

    let client = kube_client(&source).await.expect("client");
    set_node_label(client.clone(), "node-a", NODE_LABEL, Some("true"))
        .await
        .expect("set");
    set_node_label(client, "node-a", NODE_LABEL, None)
        .await
        .expect("remove");

    let calls = standin.node_calls();
    let bodies: Vec<serde_json::Value> = calls
        .iter()
        .map(|call| {
            assert_eq!(
                (call.method.as_str(), call.path.as_str()),
                ("PATCH", "/api/v1/nodes/node-a")
            );
            serde_json::from_str(&call.body).expect("a JSON patch")
        })
        .collect();
    let patch = |value: serde_json::Value| serde_json::json!({ "metadata": { "labels": { NODE_LABEL: value } } });
    assert_eq!(
        bodies,
        [patch("true".into()), patch(serde_json::Value::Null)]
    );
}

#[tokio::test]
async fn an_unreachable_api_server_is_an_error_naming_the_label_and_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let kubeconfig = kubeconfig_for(dir.path(), &url);
    let client = kube_client(&KubeConfigSource::File(kubeconfig))
        .await
        .expect("client");
    let error = set_node_label(client, "node-a", NODE_LABEL, None)
        .await
        .expect_err("nothing listens");
    let message = error.to_string();
    assert!(
        message.starts_with("cannot remove label undertaker.io/installed on node node-a: "),
        "{message}"
    );
}
