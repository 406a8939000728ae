//! Who a container is in Kubernetes terms: its pod's namespace, name and uid, its own name,
//! and the runtime handler its pod runs under.

use std::collections::HashMap;

use undertaker_cri::api;

/// Labels kubelet puts on every container it creates; used when the sandbox is unknown
/// (e.g. it was removed between our two list calls).
const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

/// The fields are in the order rows are sorted: namespace, pod, container, then the ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerIdentity {
    pub pod_namespace: String,
    pub pod_name: String,
    pub container: String,
    pub pod_uid: String,
    /// The CRI container id.
    pub id: String,
    /// The CRI runtime handler of the pod (`runc`, `undertaker`, ...); `None` when the runtime
    /// does not say (an empty handler is the runtime's default one).
    pub runtime_handler: Option<String>,
}

impl ContainerIdentity {
    /// From a CRI container and its pod sandbox: the sandbox's metadata first (what the pod
    /// was created with), else kubelet's labels on the container, else the container's own
    /// metadata for its name.
    pub fn from_cri(container: &api::Container, sandbox: Option<&api::PodSandbox>) -> Self {
        let metadata = sandbox.and_then(|sandbox| sandbox.metadata.as_ref());
        let labels = &container.labels;
        let container_name = container
            .metadata
            .as_ref()
            .map(|metadata| metadata.name.clone())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| label(labels, CONTAINER_NAME_LABEL));
        ContainerIdentity {
            pod_namespace: metadata
                .map(|m| m.namespace.clone())
                .unwrap_or_else(|| label(labels, POD_NAMESPACE_LABEL)),
            pod_name: metadata
                .map(|m| m.name.clone())
                .unwrap_or_else(|| label(labels, POD_NAME_LABEL)),
            pod_uid: metadata
                .map(|m| m.uid.clone())
                .unwrap_or_else(|| label(labels, POD_UID_LABEL)),
            container: container_name,
            id: container.id.clone(),
            runtime_handler: sandbox.map(|sandbox| sandbox.runtime_handler.clone()),
        }
    }

    /// `namespace/pod/container`, how messages name a container.
    pub fn path(&self) -> String {
        format!(
            "{}/{}/{}",
            self.pod_namespace, self.pod_name, self.container
        )
    }

    /// The first 13 characters of the id, as `crictl ps` shows it.
    pub fn short_id(&self) -> &str {
        self.id.get(..13).unwrap_or(&self.id)
    }
}

fn label(labels: &HashMap<String, String>, key: &str) -> String {
    labels.get(key).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(labels: &[(&str, &str)]) -> api::Container {
        api::Container {
            id: "0123456789abcdef0123".into(),
            pod_sandbox_id: "sandbox-1".into(),
            metadata: Some(api::ContainerMetadata {
                name: "app".into(),
                attempt: 0,
            }),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_sandbox_metadata_names_the_pod_and_its_handler() {
        let sandbox = api::PodSandbox {
            id: "sandbox-1".into(),
            metadata: Some(api::PodSandboxMetadata {
                name: "web-7d9".into(),
                uid: "uid-1".into(),
                namespace: "shop".into(),
                attempt: 0,
            }),
            runtime_handler: "runc".into(),
            ..Default::default()
        };
        let stale_labels = container(&[(POD_NAME_LABEL, "other"), (POD_NAMESPACE_LABEL, "x")]);
        let identity = ContainerIdentity::from_cri(&stale_labels, Some(&sandbox));
        assert_eq!(identity.path(), "shop/web-7d9/app");
        assert_eq!(identity.pod_uid, "uid-1");
        assert_eq!(identity.runtime_handler.as_deref(), Some("runc"));
        assert_eq!(identity.short_id(), "0123456789abc");
    }

    #[test]
    fn without_a_sandbox_kubelets_labels_name_the_pod() {
        let mut labelled = container(&[
            (POD_NAME_LABEL, "web-7d9"),
            (POD_NAMESPACE_LABEL, "shop"),
            (POD_UID_LABEL, "uid-2"),
            (CONTAINER_NAME_LABEL, "from-label"),
        ]);
        labelled.metadata = None;
        let identity = ContainerIdentity::from_cri(&labelled, None);
        assert_eq!(identity.path(), "shop/web-7d9/from-label");
        assert_eq!(identity.pod_uid, "uid-2");
        assert_eq!(identity.runtime_handler, None);
    }
}
