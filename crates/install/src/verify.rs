//! Proving the handler works: wait for containerd's CRI to answer, then run a pod sandbox with
//! runtime handler `undertaker` and remove it again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use undertaker_cri::{api, CriClient, CriError};

use crate::RUNTIME_NAME;

/// The pod name the check runs (visible in containerd's logs while it runs).
const CHECK_POD_NAME: &str = "undertaker-install-check";
/// How often the CRI socket is polled while containerd comes back.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// containerd did not come back, or the handler did not run a pod.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("containerd's CRI at {socket} did not answer within {timeout:?}: {last}")]
    NotReady {
        socket: PathBuf,
        timeout: Duration,
        #[source]
        last: CriError,
    },
    #[error(
        "containerd's CRI at {socket} answers but did not report RuntimeReady within {timeout:?}"
    )]
    RuntimeNotReady { socket: PathBuf, timeout: Duration },
    #[error("a pod sandbox with runtime handler `{RUNTIME_NAME}` failed: {0}")]
    Handler(#[source] CriError),
}

/// Waits until the CRI endpoint at `socket` answers `Version`.
pub async fn wait_ready(socket: &Path, timeout: Duration) -> Result<CriClient, VerifyError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt = async {
            let client = CriClient::connect(socket).await?;
            client.version().await?;
            let status = client.status().await?;
            Ok::<_, CriError>((client, status))
        };
        match attempt.await {
            Ok((client, status)) if runtime_ready(&status) => return Ok(client),
            Ok(_) if tokio::time::Instant::now() >= deadline => {
                return Err(VerifyError::RuntimeNotReady {
                    socket: socket.to_path_buf(),
                    timeout,
                })
            }
            Ok(_) => tracing::debug!("containerd answers, but its runtime is not ready yet"),
            Err(last) if tokio::time::Instant::now() >= deadline => {
                return Err(VerifyError::NotReady {
                    socket: socket.to_path_buf(),
                    timeout,
                    last,
                })
            }
            Err(error) => tracing::debug!(%error, "containerd not ready yet"),
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Whether CRI reports condition `RuntimeReady` (network readiness needs CNI; not our business).
fn runtime_ready(status: &api::StatusResponse) -> bool {
    status.status.as_ref().is_some_and(|status| {
        status
            .conditions
            .iter()
            .any(|condition| condition.r#type == "RuntimeReady" && condition.status)
    })
}

/// Runs and removes a pod sandbox under our handler.
pub async fn check_handler(client: &CriClient) -> Result<(), VerifyError> {
    tracing::info!(
        handler = RUNTIME_NAME,
        "running a pod sandbox to verify the handler"
    );
    client
        .check_handler(RUNTIME_NAME, CHECK_POD_NAME)
        .await
        .map_err(VerifyError::Handler)
}

/// The ids of pod sandboxes that still run under our handler.
pub async fn sandboxes_using_handler(client: &CriClient) -> Result<Vec<String>, CriError> {
    let request = api::ListPodSandboxRequest { filter: None };
    let response = client
        .runtime()
        .list_pod_sandbox(request)
        .await
        .map_err(|status| client.error("ListPodSandbox", status))?;
    Ok(response
        .into_inner()
        .items
        .into_iter()
        .filter(|sandbox| sandbox.runtime_handler == RUNTIME_NAME)
        .filter(|sandbox| sandbox.state == api::PodSandboxState::SandboxReady as i32)
        .map(|sandbox| sandbox.id)
        .collect())
}
