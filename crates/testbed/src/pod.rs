//! Pod sandboxes through CRI, configured the way kubelet would (host network, or the pod's own
//! through CNI: see [`crate::Network`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use undertaker_cri::{api, CriClient};

use crate::container::ContainerBuilder;
use crate::driver::CgroupDriver;
use crate::error::{Result, TestbedError};
use crate::network::Network;

/// Which PID namespace a pod's containers get (kubelet's three cases).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PidMode {
    /// One PID namespace per container (the Kubernetes default).
    #[default]
    Container,
    /// One PID namespace for the whole pod (`shareProcessNamespace: true`); the sandbox
    /// process is PID 1.
    Pod,
    /// The node's PID namespace (`hostPID: true`).
    Node,
}

impl PidMode {
    fn namespace_mode(self) -> api::NamespaceMode {
        match self {
            PidMode::Container => api::NamespaceMode::Container,
            PidMode::Pod => api::NamespaceMode::Pod,
            PidMode::Node => api::NamespaceMode::Node,
        }
    }
}

/// Describes a pod before it runs; made by `Testbed::pod`.
#[derive(Clone, Debug)]
pub struct PodBuilder {
    pub(crate) cri: CriClient,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) handler: String,
    pub(crate) log_dir: PathBuf,
    pub(crate) cgroup_parent: String,
    pub(crate) pid_mode: PidMode,
    pub(crate) privileged: bool,
    pub(crate) annotations: HashMap<String, String>,
    pub(crate) labels: HashMap<String, String>,
    pub(crate) busybox_image: String,
    pub(crate) network: Network,
    pub(crate) cgroup_driver: CgroupDriver,
}

impl PodBuilder {
    /// The PID namespace mode (default: one per container).
    pub fn pid_mode(mut self, mode: PidMode) -> Self {
        self.pid_mode = mode;
        self
    }

    /// The node's network namespace (`hostNetwork: true`), whatever the testbed's network:
    /// a pod that must reach a server on the node's loopback.
    pub fn host_network(mut self) -> Self {
        self.network = Network::Host;
        self
    }

    /// Lets the pod run privileged containers (CRI refuses them in an unprivileged sandbox).
    pub fn privileged(mut self, privileged: bool) -> Self {
        self.privileged = privileged;
        self
    }

    /// A pod annotation (e.g. `undertaker.io/drain-timeout`).
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// A pod label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The cgroup parent (cgroupfs path); defaults to the testbed's own parent, which is
    /// what cleanup and `leftovers` look below.
    pub fn cgroup_parent(mut self, parent: impl Into<String>) -> Self {
        self.cgroup_parent = parent.into();
        self
    }

    /// The CRI sandbox config this builder describes.
    pub fn config(&self) -> api::PodSandboxConfig {
        api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: self.name.clone(),
                uid: self.uid.clone(),
                namespace: "default".to_string(),
                attempt: 0,
            }),
            // No hostname for host-network pods: they share the node's UTS namespace, where
            // runc refuses to set one. A pod of its own network has its name, as kubelet does.
            hostname: match self.network {
                Network::Host => String::new(),
                Network::Cni => self.name.clone(),
            },
            log_directory: self.log_dir.to_string_lossy().into_owned(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            linux: Some(api::LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent.clone(),
                security_context: Some(api::LinuxSandboxSecurityContext {
                    namespace_options: Some(self.namespace_options()),
                    privileged: self.privileged,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The testbed's network (the node's, or the pod's own through CNI), IPC per pod, PID as
    /// chosen.
    fn namespace_options(&self) -> api::NamespaceOption {
        let network = match self.network {
            Network::Host => api::NamespaceMode::Node,
            Network::Cni => api::NamespaceMode::Pod,
        };
        api::NamespaceOption {
            network: network as i32,
            pid: self.pid_mode.namespace_mode() as i32,
            ipc: api::NamespaceMode::Pod as i32,
            ..Default::default()
        }
    }

    /// Runs the sandbox under the builder's runtime handler.
    pub async fn run(self) -> Result<Pod> {
        std::fs::create_dir_all(&self.log_dir)
            .map_err(TestbedError::io("create", &self.log_dir))?;
        let config = self.config();
        let id = self
            .cri
            .run_pod_sandbox(config.clone(), &self.handler)
            .await?;
        Ok(Pod {
            cri: self.cri,
            id,
            handler: self.handler,
            config,
            log_dir: self.log_dir,
            cgroup_parent: self.cgroup_parent,
            cgroup_driver: self.cgroup_driver,
            busybox_image: self.busybox_image,
        })
    }
}

/// A running (or stopped) pod sandbox. Dropping it does nothing: the testbed removes every
/// pod when it is dropped.
#[derive(Clone, Debug)]
pub struct Pod {
    pub(crate) cri: CriClient,
    id: String,
    handler: String,
    config: api::PodSandboxConfig,
    log_dir: PathBuf,
    cgroup_parent: String,
    cgroup_driver: CgroupDriver,
    busybox_image: String,
}

impl Pod {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn handler(&self) -> &str {
        &self.handler
    }

    /// The config the sandbox was run with (CreateContainer needs it again).
    pub fn config(&self) -> &api::PodSandboxConfig {
        &self.config
    }

    /// Where the pod's container logs go.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The cgroup parent of the pod's containers (a path, or a slice with the systemd driver).
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// The cgroup driver the pod's containers are placed with.
    pub fn cgroup_driver(&self) -> CgroupDriver {
        self.cgroup_driver
    }

    pub(crate) fn namespace_options(&self) -> Option<api::NamespaceOption> {
        self.config
            .linux
            .as_ref()?
            .security_context
            .as_ref()?
            .namespace_options
            .clone()
    }

    /// A container in this pod, running the busybox test image unless told otherwise.
    pub fn container(&self, name: &str) -> ContainerBuilder<'_> {
        ContainerBuilder::new(self, name, &self.busybox_image)
    }

    /// The sandbox's CRI status.
    pub async fn status(&self) -> Result<api::PodSandboxStatus> {
        let response = self
            .cri
            .runtime()
            .pod_sandbox_status(api::PodSandboxStatusRequest {
                pod_sandbox_id: self.id.clone(),
                verbose: false,
            })
            .await
            .map_err(|status| self.cri.error("PodSandboxStatus", status))?;
        response
            .into_inner()
            .status
            .ok_or_else(|| TestbedError::Unexpected {
                call: "PodSandboxStatus",
                reason: format!("no status for sandbox {}", self.id),
            })
    }

    /// Stops the sandbox and every container in it.
    pub async fn stop(&self) -> Result<()> {
        self.cri
            .runtime()
            .stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: self.id.clone(),
            })
            .await
            .map_err(|status| self.cri.error("StopPodSandbox", status))?;
        Ok(())
    }

    /// Removes the (stopped) sandbox and its containers.
    pub async fn remove(&self) -> Result<()> {
        self.cri
            .runtime()
            .remove_pod_sandbox(api::RemovePodSandboxRequest {
                pod_sandbox_id: self.id.clone(),
            })
            .await
            .map_err(|status| self.cri.error("RemovePodSandbox", status))?;
        Ok(())
    }

    /// Stops, then removes the sandbox.
    pub async fn stop_and_remove(&self) -> Result<()> {
        Ok(self.cri.stop_and_remove_pod_sandbox(&self.id).await?)
    }
}
