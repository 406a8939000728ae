//! One scan of the node: list the containers through CRI, read each one from the host, look
//! again at the processes found in `D`, and put it all in a [`NodeReport`].

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use undertaker_cgroups::Setup;
use undertaker_cri::CriClient;

use crate::cri::{running_containers, ListedContainer};
use crate::error::ScanError;
use crate::observe::{observe, still_blocked, Observation};
use crate::report::{ContainerReport, NodeReport, SkipReason, Skipped};

#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// The CRI socket (containerd's `containerd.sock`).
    pub address: PathBuf,
    /// Only pods of this Kubernetes namespace.
    pub namespace: Option<String>,
    /// How long connecting and listing through CRI may take in all.
    pub timeout: Duration,
    /// How long to wait before looking again at processes found in `D`; only those still in
    /// `D` then count as stuck. Zero: no second look, every `D` counts.
    pub d_state_recheck: Duration,
}

/// Scans every running container the CRI endpoint knows.
pub async fn scan_node(options: &ScanOptions) -> Result<NodeReport, ScanError> {
    let listing = async {
        let cri = CriClient::connect(&options.address).await?;
        running_containers(&cri, options.namespace.as_deref()).await
    };
    let listed = tokio::time::timeout(options.timeout, listing)
        .await
        .map_err(|_| ScanError::Timeout {
            socket: options.address.clone(),
            timeout: options.timeout,
        })??;
    tracing::debug!(containers = listed.len(), "listed running containers");

    let setup = Setup::host().map_err(ScanError::Host)?;
    let (setup, observed) = tokio::task::spawn_blocking(move || {
        let observed: Vec<(ListedContainer, Result<Observation, SkipReason>)> = listed
            .into_iter()
            .map(|container| {
                let observation = match &container.pid {
                    Ok(pid) => observe(&setup, *pid),
                    Err(reason) => Err(reason.clone()),
                };
                (container, observation)
            })
            .collect();
        (setup, observed)
    })
    .await
    .map_err(ScanError::Task)?;

    let blocked = blocked_processes(&observed);
    let persisting = if blocked.is_empty() || options.d_state_recheck.is_zero() {
        blocked.iter().map(|(pid, _)| *pid).collect()
    } else {
        tokio::time::sleep(options.d_state_recheck).await;
        tokio::task::spawn_blocking(move || still_blocked(&setup, &blocked))
            .await
            .map_err(ScanError::Task)?
    };
    Ok(assemble(observed, &persisting))
}

/// Every process seen in `D`, by pid and name.
fn blocked_processes(
    observed: &[(ListedContainer, Result<Observation, SkipReason>)],
) -> Vec<(i32, String)> {
    observed
        .iter()
        .filter_map(|(_, observation)| observation.as_ref().ok())
        .flat_map(|observation| &observation.processes)
        .filter(|process| process.state == 'D')
        .map(|process| (process.pid, process.comm.clone()))
        .collect()
}

fn assemble(
    observed: Vec<(ListedContainer, Result<Observation, SkipReason>)>,
    persisting: &BTreeSet<i32>,
) -> NodeReport {
    let mut report = NodeReport::default();
    for (container, observation) in observed {
        match (container.pid, observation) {
            (Ok(pid), Ok(observation)) => report.containers.push(ContainerReport::new(
                container.identity,
                pid,
                &observation,
                persisting,
            )),
            (_, Err(reason)) | (Err(reason), _) => {
                tracing::info!(
                    container = %container.identity.path(),
                    id = %container.identity.short_id(),
                    reason = reason.text(),
                    "skipped"
                );
                report.skipped.push(Skipped {
                    identity: container.identity,
                    reason,
                });
            }
        }
    }
    report
        .containers
        .sort_by(|a, b| a.identity.cmp(&b.identity));
    report.skipped.sort_by(|a, b| a.identity.cmp(&b.identity));
    report
}
