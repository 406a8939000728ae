//! The containers a node runs, from CRI: running containers, their pods (for names and the
//! runtime handler) and each one's host pid (containerd's verbose `ContainerStatus` info).

use std::collections::HashMap;

use undertaker_cri::{api, CriClient, CriError};

use crate::identity::ContainerIdentity;
use crate::report::SkipReason;

/// A running container as CRI lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedContainer {
    pub identity: ContainerIdentity,
    /// Its main process's host pid, or why there is none (it exited or was removed after
    /// the list call; the runtime failed or does not tell pids).
    pub pid: Result<i32, SkipReason>,
}

/// Every running container, of pods in `namespace` when given.
pub(crate) async fn running_containers(
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
    let running = api::ContainerFilter {
        state: Some(api::ContainerStateValue {
            state: api::ContainerState::ContainerRunning as i32,
        }),
        ..Default::default()
    };
    let containers = runtime
        .list_containers(api::ListContainersRequest {
            filter: Some(running),
        })
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
        let pid = container_pid(cri, &container.id).await;
        listed.push(ListedContainer { identity, pid });
    }
    Ok(listed)
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
    fn no_pid_for_an_exited_task_or_other_runtimes() {
        assert_eq!(pid_from_verbose_info(&info(r#"{"pid":0}"#)), None);
        assert_eq!(pid_from_verbose_info(&info("not json")), None);
        assert_eq!(pid_from_verbose_info(&HashMap::new()), None);
    }
}
