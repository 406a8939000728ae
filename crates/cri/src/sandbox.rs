use std::collections::HashMap;

use crate::api;
use crate::{CriClient, CriError};

/// A minimal pod sandbox config in the node's network namespace (no CNI needed).
///
/// `uid` should be unique per pod; the namespace is `default`.
pub fn host_network_sandbox_config(name: &str, uid: &str) -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.to_string(),
            uid: uid.to_string(),
            namespace: "default".to_string(),
            attempt: 0,
        }),
        // No hostname: the node's UTS namespace is shared along with its network, and runc
        // refuses to set a hostname without a private one.
        labels: HashMap::new(),
        annotations: HashMap::new(),
        linux: Some(api::LinuxPodSandboxConfig {
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    network: api::NamespaceMode::Node as i32,
                    pid: api::NamespaceMode::Container as i32,
                    ipc: api::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl CriClient {
    /// Runs a pod sandbox under runtime handler `handler` (empty: the runtime's default) and
    /// returns its id.
    pub async fn run_pod_sandbox(
        &self,
        config: api::PodSandboxConfig,
        handler: &str,
    ) -> Result<String, CriError> {
        let request = api::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: handler.to_string(),
        };
        self.runtime()
            .run_pod_sandbox(request)
            .await
            .map(|response| response.into_inner().pod_sandbox_id)
            .map_err(|status| self.error("RunPodSandbox", status))
    }

    /// Stops the sandbox (killing its containers) and removes it.
    pub async fn stop_and_remove_pod_sandbox(&self, pod_sandbox_id: &str) -> Result<(), CriError> {
        let mut runtime = self.runtime();
        runtime
            .stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: pod_sandbox_id.to_string(),
            })
            .await
            .map_err(|status| self.error("StopPodSandbox", status))?;
        runtime
            .remove_pod_sandbox(api::RemovePodSandboxRequest {
                pod_sandbox_id: pod_sandbox_id.to_string(),
            })
            .await
            .map_err(|status| self.error("RemovePodSandbox", status))?;
        Ok(())
    }

    /// Proves that runtime handler `handler` works: runs a host-network sandbox named `name`
    /// under it, then stops and removes it (also when the run failed halfway).
    pub async fn check_handler(&self, handler: &str, name: &str) -> Result<(), CriError> {
        let uid = format!("{name}-{}", std::process::id());
        let id = self
            .run_pod_sandbox(host_network_sandbox_config(name, &uid), handler)
            .await?;
        self.stop_and_remove_pod_sandbox(&id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_config_uses_the_node_network() {
        let config = host_network_sandbox_config("probe", "uid-1");
        let namespaces = config
            .linux
            .and_then(|linux| linux.security_context)
            .and_then(|context| context.namespace_options)
            .expect("namespace options are set");
        assert_eq!(namespaces.network, api::NamespaceMode::Node as i32);
        assert_eq!(config.metadata.expect("metadata").uid, "uid-1");
    }

    #[tokio::test]
    async fn connect_error_names_the_socket() {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("missing.sock");
        let error = CriClient::connect(&socket)
            .await
            .expect_err("no socket there");
        assert!(
            error.to_string().contains(&socket.display().to_string()),
            "{error}"
        );
    }
}
