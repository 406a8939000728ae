//! `containerd-shim-undertaker-v2 delete`: containerd's clean-up after a shim
//! died or a start failed. Removes what the runtime, mounts and processes left.

use std::path::Path;

use containerd_shim::{DeleteResponse, Error, Result};
use containerd_shim_protos::protobuf::MessageField;
use time::OffsetDateTime;

use containerd_shim_protos::protobuf::MessageDyn;
use undertaker_events::{KilledBy, LeakReason};

use crate::{
    container::CGROUP_KILL_TIMEOUT,
    events::{forward_now, Publisher},
    exits::ExitRouter,
    options::RuntimeOptions,
    process::timestamp,
    reporting::{from_cgroup, Reporter},
    runtime::Runtime,
};

/// The shim that ran this container is gone (killed, crashed): kill what is
/// left in the container's cgroup ourselves, so nothing outlives it. The
/// cgroup is found from the init if it still runs, and only if that process's
/// cgroup path names the container (a reused pid must not lead elsewhere).
async fn kill_leftovers(id: &str, namespace: &str, bundle: &Path, init_pid: i32) {
    if init_pid <= 0 {
        return;
    }
    let id = id.to_string();
    let cgroup_id = id.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let setup = undertaker_cgroups::Setup::host().ok()?;
        let cgroup = undertaker_cgroups::ContainerCgroup::of_pid(&setup, init_pid).ok()?;
        if !cgroup.primary().path.contains(&cgroup_id) {
            return None;
        }
        cgroup.kill_all(CGROUP_KILL_TIMEOUT).ok()
    })
    .await
    .ok()
    .flatten();
    let Some(report) = outcome else { return };
    tracing::info!(
        killed = report.killed.len(),
        unkillable = report.unkillable.len(),
        "killed what the dead shim's container left"
    );
    publish_report(&id, namespace, bundle, &report).await;
}

/// Publishes the kill's leaked/unkillable events straight to containerd.
async fn publish_report(
    id: &str,
    namespace: &str,
    bundle: &Path,
    report: &undertaker_cgroups::KillReport,
) {
    let Ok(ttrpc_address) = std::env::var("TTRPC_ADDRESS") else {
        return;
    };
    let annotations = std::fs::read_to_string(bundle.join("config.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<oci_spec::runtime::Spec>(&text).ok())
        .and_then(|spec| spec.annotations().clone())
        .unwrap_or_default();
    let reporter = Reporter::new(&Publisher::disconnected(namespace), id, "", &annotations);
    let leaked: Vec<_> = report
        .killed
        .iter()
        .filter(|p| p.state != 'Z')
        .map(|p| from_cgroup(p, KilledBy::KILLED_BY_CGROUP))
        .collect();
    let unkillable: Vec<_> = report
        .unkillable
        .iter()
        .map(|p| from_cgroup(p, KilledBy::KILLED_BY_UNSPECIFIED))
        .collect();
    let mut events: Vec<(&str, Box<dyn MessageDyn>)> = Vec::new();
    if let Some(e) = reporter.leaked_event(leaked, LeakReason::LEAK_REASON_DELETE) {
        events.push((undertaker_events::LEAKED, Box::new(e)));
    }
    if let Some(e) = reporter.unkillable_event(unkillable) {
        events.push((undertaker_events::UNKILLABLE, Box::new(e)));
    }
    for (topic, event) in events {
        if let Err(e) = forward_now(&ttrpc_address, namespace, topic, event.as_ref()).await {
            tracing::warn!("publishing {topic} failed: {e}");
        }
    }
}

pub async fn delete(id: &str, namespace: &str, bundle: &Path) -> Result<DeleteResponse> {
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
    let pid = std::fs::read_to_string(bundle.join("init.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    kill_leftovers(id, namespace, bundle, pid as i32).await;
    match runtime.delete(id, true).await {
        Err(e) if !e.is_not_found() => tracing::warn!(%id, "runtime delete failed: {e}"),
        _ => {}
    }
    let rootfs = bundle.join("rootfs");
    if let Err(e) = containerd_shim::mount::umount_recursive(rootfs.to_str(), libc::MNT_DETACH) {
        tracing::warn!("unmounting {} failed: {e}", rootfs.display());
    }
    Ok(DeleteResponse {
        pid,
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: MessageField::some(timestamp(OffsetDateTime::now_utc())),
        ..Default::default()
    })
}
