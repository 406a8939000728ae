//! Container metrics for `Stats` (kubelet's container stats come from here).

use containerd_shim::cgroup::{collect_metrics, get_cgroup};
use containerd_shim_protos::protobuf::{well_known_types::any::Any, Message};

use crate::error::{Result, ShimError};

/// The type URL containerd resolves cgroup v1 metrics by.
const METRICS_V1_TYPE: &str = "io.containerd.cgroups.v1.Metrics";

/// Reads the metrics of the cgroup that holds `pid`, the container's init.
pub async fn collect(id: &str, pid: i32) -> Result<Any> {
    let what = format!("container {id}: stats");
    if pid <= 0 {
        return Err(ShimError::wrong_state(what, "container has no process"));
    }
    let what2 = what.clone();
    let metrics = tokio::task::spawn_blocking(move || {
        let cgroup = get_cgroup(pid as u32)
            .map_err(|e| ShimError::Other(format!("{what2}: find cgroup of pid {pid}: {e}")))?;
        collect_metrics(&cgroup)
            .map_err(|e| ShimError::Other(format!("{what2}: read cgroup metrics: {e}")))
    })
    .await
    .map_err(|e| ShimError::Other(format!("{what}: {e}")))??;
    let value = metrics
        .write_to_bytes()
        .map_err(|e| ShimError::Protobuf { what, source: e })?;
    Ok(Any {
        type_url: METRICS_V1_TYPE.to_string(),
        value,
        ..Default::default()
    })
}
