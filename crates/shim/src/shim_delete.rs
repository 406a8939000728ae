//! `containerd-shim-undertaker-v2 delete`: containerd's clean-up after a shim
//! died or a start failed. Removes what the runtime, mounts and processes left.

use std::path::Path;

use containerd_shim::{DeleteResponse, Error, Result};
use containerd_shim_protos::protobuf::MessageField;
use time::OffsetDateTime;

use crate::{
    container::CGROUP_KILL_TIMEOUT, exits::ExitRouter, options::RuntimeOptions, process::timestamp,
    runtime::Runtime,
};

/// The shim that ran this container is gone (killed, crashed): kill what is
/// left in the container's cgroup ourselves, so nothing outlives it. The
/// cgroup is found from the init if it still runs, and only if that process's
/// cgroup path names the container (a reused pid must not lead elsewhere).
async fn kill_leftovers(id: &str, init_pid: i32) {
    if init_pid <= 0 {
        return;
    }
    let id = id.to_string();
    let outcome = tokio::task::spawn_blocking(move || {
        let setup = undertaker_cgroups::Setup::host().ok()?;
        let cgroup = undertaker_cgroups::ContainerCgroup::of_pid(&setup, init_pid).ok()?;
        if !cgroup.primary().path.contains(&id) {
            return None;
        }
        cgroup.kill_all(CGROUP_KILL_TIMEOUT).ok()
    })
    .await
    .ok()
    .flatten();
    if let Some(report) = outcome {
        tracing::info!(
            killed = report.killed.len(),
            unkillable = report.unkillable.len(),
            "killed what the dead shim's container left"
        );
    }
}

pub async fn delete(id: &str, bundle: &Path) -> Result<DeleteResponse> {
    let options = RuntimeOptions::load(bundle).map_err(|e| Error::Other(e.to_string()))?;
    let exits = ExitRouter::start()
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
    let runtime = Runtime::new(
        &options.binary_name,
        &options.root,
        options.systemd_cgroup,
        bundle,
        exits,
    );
    let pid = std::fs::read_to_string(bundle.join("init.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    kill_leftovers(id, pid as i32).await;
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
