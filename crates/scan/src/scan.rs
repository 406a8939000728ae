//! One scan of the node: list the containers through CRI, read each running one from the
//! host and each exited one's cgroup, look again at the processes found in `D` or left
//! behind, and put it all in a [`NodeReport`].

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use undertaker_cgroups::Setup;
use undertaker_cri::CriClient;

use crate::cri::{listed_containers, ListedContainer, Target};
use crate::error::ScanError;
use crate::observe::{observe, observe_exited, still_there, Observation, Seen};
use crate::report::{ContainerReport, NodeReport, SkipReason, Skipped};

#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// The CRI socket (containerd's `containerd.sock`).
    pub address: PathBuf,
    /// Only pods of this Kubernetes namespace.
    pub namespace: Option<String>,
    /// How long connecting and listing through CRI may take in all.
    pub timeout: Duration,
    /// How long to wait before looking again at processes found in `D` or left by an exited
    /// container; only those still there then count. Zero: no second look, all count.
    pub d_state_recheck: Duration,
}

/// What was read of one listed container: `Ok(None)` for an exited container that left
/// nothing behind (not reported).
type Read = (ListedContainer, Result<Option<Observation>, SkipReason>);

/// Scans every running container the CRI endpoint knows, and the cgroups of exited ones.
pub async fn scan_node(options: &ScanOptions) -> Result<NodeReport, ScanError> {
    let listing = async {
        let cri = CriClient::connect(&options.address).await?;
        listed_containers(&cri, options.namespace.as_deref()).await
    };
    let listed = tokio::time::timeout(options.timeout, listing)
        .await
        .map_err(|_| ScanError::Timeout {
            socket: options.address.clone(),
            timeout: options.timeout,
        })??;
    tracing::debug!(containers = listed.len(), "listed containers");

    let setup = Setup::host().map_err(ScanError::Host)?;
    let (setup, observed) = tokio::task::spawn_blocking(move || {
        let observed: Vec<Read> = listed
            .into_iter()
            .map(|container| {
                let observation = match &container.target {
                    Ok(Target::Running(pid)) => observe(&setup, *pid).map(Some),
                    Ok(Target::Exited(path)) => observe_exited(&setup, path),
                    Err(reason) => Err(reason.clone()),
                };
                (container, observation)
            })
            .collect();
        (setup, observed)
    })
    .await
    .map_err(ScanError::Task)?;

    let seen = to_recheck(&observed);
    let persisting = if seen.is_empty() || options.d_state_recheck.is_zero() {
        seen.iter().map(|seen| seen.pid).collect()
    } else {
        tokio::time::sleep(options.d_state_recheck).await;
        tokio::task::spawn_blocking(move || still_there(&setup, &seen))
            .await
            .map_err(ScanError::Task)?
    };
    Ok(assemble(observed, &persisting))
}

/// Every process seen in `D` in a running container, and every live process of an exited
/// one.
fn to_recheck(observed: &[Read]) -> Vec<Seen> {
    observed
        .iter()
        .filter_map(|(container, observation)| {
            let exited = matches!(container.target, Ok(Target::Exited(_)));
            Some((exited, observation.as_ref().ok()?.as_ref()?))
        })
        .flat_map(|(exited, observation)| {
            observation
                .processes
                .iter()
                .filter(move |process| exited || process.state == 'D')
                .map(move |process| Seen {
                    pid: process.pid,
                    comm: process.comm.clone(),
                    in_d: !exited,
                })
        })
        .collect()
}

fn assemble(observed: Vec<Read>, persisting: &BTreeSet<i32>) -> NodeReport {
    let mut report = NodeReport::default();
    for (container, observation) in observed {
        let pid = match &container.target {
            Ok(Target::Running(pid)) => Some(*pid),
            _ => None,
        };
        match observation {
            Ok(Some(observation)) => report.containers.push(ContainerReport::new(
                container.identity,
                pid,
                &observation,
                persisting,
            )),
            Ok(None) => {}
            Err(reason) => {
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
