//! `containerd-shim-undertaker-v2 delete`: containerd's clean-up after a shim
//! died or a start failed. Removes what the runtime, mounts and processes left.

use std::path::Path;

use containerd_shim::{DeleteResponse, Error, Result};
use containerd_shim_protos::protobuf::MessageField;
use time::OffsetDateTime;

use crate::{exits::ExitRouter, options::RuntimeOptions, process::timestamp, runtime::Runtime};

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
