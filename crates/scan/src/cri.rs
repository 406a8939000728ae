//! The containers a node runs, from CRI: running containers, their pods (for names and the
//! runtime handler) and each one's host pid (containerd's verbose `ContainerStatus` info);
//! exited containers with the cgroup their spec named, to find what they left behind.

use std::collections::HashMap;

use undertaker_cri::{api, CriClient, CriError};

use crate::identity::ContainerIdentity;
use crate::report::SkipReason;

/// A container as CRI lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedContainer {
    pub identity: ContainerIdentity,
    /// Where to read it, or why it cannot be read (it exited or was removed after the list
    /// call; the runtime failed or does not tell pids).
    pub target: Result<Target, SkipReason>,
}

/// How a listed container is read from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A running container, by its main process's host pid.
    Running(i32),
    /// An exited container, by the cgroup its runtime made (whatever is in it now was left
    /// behind by the container's exit).
    Exited(String),
}

/// Every running container, and every exited one whose cgroup the runtime names, of pods
/// in `namespace` when given.
pub(crate) async fn listed_containers(
    cri: &CriClient,
    namespace: Option<&str>,
) -> Result<Vec<ListedContainer>, CriError> {
    let mut runtime = cri.runtime();
    let sandboxes: HashMap<String, api::PodSandbox> = runtime
        .list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
        .await
        .map_err(|status| cri.error("ListPodSandbox", status))?
        .into_inner()
        .items
        .into_iter()
        .map(|sandbox| (sandbox.id.clone(), sandbox))
        .collect();
    let containers = runtime
        .list_containers(api::ListContainersRequest { filter: None })
        .await
        .map_err(|status| cri.error("ListContainers", status))?
        .into_inner()
        .containers;
    let mut listed = Vec::new();
    for container in containers {
        let sandbox = sandboxes.get(&container.pod_sandbox_id);
        let identity = ContainerIdentity::from_cri(&container, sandbox);
        if namespace.is_some_and(|namespace| identity.pod_namespace != namespace) {
            continue;
        }
        let target = if container.state == api::ContainerState::ContainerRunning as i32 {
            container_pid(cri, &container.id).await.map(Target::Running)
        } else if container.state == api::ContainerState::ContainerExited as i32 {
            match exited_cgroup(cri, &container.id).await {
                Some(cgroup) => Ok(Target::Exited(cgroup)),
                None => {
                    tracing::debug!(id = %identity.short_id(), "exited, its cgroup unknown: not read");
                    continue;
                }
            }
        } else {
            continue;
        };
        listed.push(ListedContainer { identity, target });
    }
    Ok(listed)
}

/// The cgroup of an exited container, from the spec in its verbose status; `None` when the
/// runtime does not tell it or the container is gone.
async fn exited_cgroup(cri: &CriClient, id: &str) -> Option<String> {
    let response = cri
        .runtime()
        .container_status(api::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: true,
        })
        .await
        .ok()?;
    cgroup_from_verbose_info(&response.into_inner().info)
}

/// The pid from `ContainerStatus` (verbose); a container gone since the list is no error.
async fn container_pid(cri: &CriClient, id: &str) -> Result<i32, SkipReason> {
    let response = cri
        .runtime()
        .container_status(api::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: true,
        })
        .await;
    match response {
        Ok(response) => {
            let response = response.into_inner();
            pid_from_verbose_info(&response.info).ok_or_else(|| {
                let state = response.status.map_or(-1, |status| status.state);
                if state == api::ContainerState::ContainerRunning as i32 {
                    SkipReason::Unreadable("the runtime tells no pid for it".to_string())
                } else {
                    SkipReason::Exited("it exited after the list".to_string())
                }
            })
        }
        Err(status) if status.code() == tonic::Code::NotFound => Err(SkipReason::Exited(
            "it was removed after the list".to_string(),
        )),
        Err(status) => Err(SkipReason::Unreadable(
            cri.error("ContainerStatus", status).to_string(),
        )),
    }
}

/// The cgroup in containerd's verbose status: `info` holds the OCI spec the container ran
/// with (`runtimeSpec.linux.cgroupsPath`), which the runtime turned into its cgroup.
pub fn cgroup_from_verbose_info(info: &HashMap<String, String>) -> Option<String> {
    let info: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    let path = info
        .get("runtimeSpec")?
        .get("linux")?
        .get("cgroupsPath")?
        .as_str()?;
    undertaker_cgroups::cgroup_of_spec_path(path)
}

/// The pid in containerd's verbose status: the `info` key holds a JSON object with `pid`,
/// which is 0 once the task has exited.
pub fn pid_from_verbose_info(info: &HashMap<String, String>) -> Option<i32> {
    let info: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    info.get("pid")?
        .as_i64()
        .and_then(|pid| i32::try_from(pid).ok())
        .filter(|pid| *pid > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(json: &str) -> HashMap<String, String> {
        HashMap::from([("info".to_string(), json.to_string())])
    }

    #[test]
    fn reads_the_pid_of_a_running_task() {
        let verbose =
            info(r#"{"sandboxID":"abc","pid":4242,"runtimeType":"io.containerd.runc.v2"}"#);
        assert_eq!(pid_from_verbose_info(&verbose), Some(4242));
    }

    #[test]
    fn reads_the_cgroup_of_an_exited_container_from_its_spec() {
        let cgroupfs =
            info(r#"{"pid":0,"runtimeSpec":{"linux":{"cgroupsPath":"/kubepods/pod1/abc"}}}"#);
        assert_eq!(
            cgroup_from_verbose_info(&cgroupfs).as_deref(),
            Some("/kubepods/pod1/abc")
        );
        let systemd = info(
            r#"{"runtimeSpec":{"linux":{"cgroupsPath":"kubepods-pod1.slice:cri-containerd:abc"}}}"#,
        );
        assert_eq!(
            cgroup_from_verbose_info(&systemd).as_deref(),
            Some("/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope")
        );
        assert_eq!(cgroup_from_verbose_info(&info(r#"{"pid":0}"#)), None);
        assert_eq!(cgroup_from_verbose_info(&info("not json")), None);
    }

    #[test]
    fn no_pid_for_an_exited_task_or_other_runtimes() {
        assert_eq!(pid_from_verbose_info(&info(r#"{"pid":0}"#)), None);
        assert_eq!(pid_from_verbose_info(&info("not json")), None);
        assert_eq!(pid_from_verbose_info(&HashMap::new()), None);
    }
}
