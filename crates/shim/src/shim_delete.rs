//! `containerd-shim-undertaker-v2 delete`: containerd's clean-up after a shim
//! died or a start failed. Removes what the runtime, mounts and processes left.

use std::{path::Path, sync::Arc};

use containerd_shim::{DeleteResponse, Error, Result};
use containerd_shim_protos::protobuf::MessageField;
use time::OffsetDateTime;
use undertaker_events::LeakReason;

use crate::{
    exits::ExitRouter,
    lifecycle::{timestamp, Events, Reporter, CGROUP_KILL_TIMEOUT},
    options::{RuntimeOptions, ShimOptions},
    publisher::{forward_now, Collected},
    runtime::Runtime,
};

/// The shim that ran this container is gone (killed, crashed): kill what is left in the
/// container's cgroup ourselves, so nothing outlives it. The cgroup is found from the
/// init if it still runs, and only if that process's cgroup path names the container (a
/// reused pid must not lead elsewhere).
async fn kill_leftovers(id: &str, namespace: &str, bundle: &Path, init_pid: i32) {
    if init_pid <= 0 {
        return;
    }
    let (cgroup_id, spec_path) = (id.to_string(), bundle.join("config.json"));
    let outcome = tokio::task::spawn_blocking(move || {
        let setup = undertaker_cgroups::Setup::host().ok()?;
        let cgroup = undertaker_cgroups::ContainerCgroup::of_pid(&setup, init_pid).ok()?;
        if !cgroup.primary().path.contains(&cgroup_id) {
            return None;
        }
        let report = cgroup.kill_all(CGROUP_KILL_TIMEOUT).ok()?;
        let annotations = std::fs::read(spec_path)
            .ok()
            .and_then(|json| undertaker_inject::Spec::from_slice(&json).ok())
            .map(|spec| spec.annotations())
            .unwrap_or_default();
        Some((report, annotations))
    })
    .await
    .ok()
    .flatten();
    let Some((report, annotations)) = outcome else {
        return;
    };
    tracing::info!(
        killed = report.killed.len(),
        unkillable = report.unkillable.len(),
        "killed what the dead shim's container left"
    );
    // The same events, filtered the same way, as a live shim publishes for a delete.
    let collected = Arc::new(Collected::default());
    let events = Events::new(collected.clone(), namespace);
    Reporter::new(&events, id, "", &annotations).kill_report(
        &report,
        LeakReason::LEAK_REASON_DELETE,
        &[init_pid],
    );
    let Ok(ttrpc_address) = std::env::var("TTRPC_ADDRESS") else {
        return;
    };
    for (topic, event) in collected.take() {
        if let Err(e) = forward_now(&ttrpc_address, namespace, &topic, event.as_ref()).await {
            tracing::warn!("publishing {topic} failed: {e}");
        }
    }
}

pub(crate) async fn delete(id: &str, namespace: &str, bundle: &Path) -> Result<DeleteResponse> {
    let options = RuntimeOptions::load(bundle).map_err(|e| Error::Other(e.to_string()))?;
    let exits = ExitRouter::start()
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
    let runtime = Runtime::new(
        &options.binary_name,
        options.runc_root(namespace),
        options.systemd_cgroup,
        bundle,
        exits,
    );
    let pid = tokio::fs::read_to_string(bundle.join("init.pid"))
        .await
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    kill_leftovers(id, namespace, bundle, pid as i32).await;
    match runtime.delete(id, true).await {
        Err(e) if !e.is_not_found() => tracing::warn!(%id, "runtime delete failed: {e}"),
        _ => {}
    }
    crate::lifecycle::unmount_rootfs(bundle.to_path_buf()).await;
    Ok(DeleteResponse {
        pid,
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: MessageField::some(timestamp(OffsetDateTime::now_utc())),
        ..Default::default()
    })
}
