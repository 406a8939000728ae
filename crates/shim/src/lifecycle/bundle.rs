//! What create does to the bundle: read the spec, inject undertaker-init into it, mount
//! and unmount the rootfs. All blocking; called through `blocking`.

use std::{
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use containerd_shim_protos::api::Mount;
use undertaker_inject::{InitSettings, Injection, Spec};

use crate::{
    error::{Result, ShimError},
    init_binary,
    options::RuntimeOptions,
    report_channel::{self, REPORT_FD},
};

/// The bundle's OCI spec; a missing or malformed one is bad input from the caller.
pub(crate) fn read_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let what = || format!("OCI spec {}", path.display());
    let json = std::fs::read(&path)
        .map_err(|e| ShimError::invalid(what(), format!("cannot read it: {e}")))?;
    Spec::from_slice(&json).map_err(|e| ShimError::invalid(what(), format!("cannot parse it: {e}")))
}

fn write_spec(bundle: &Path, spec: &Spec) -> Result<()> {
    let path = bundle.join("config.json");
    std::fs::write(&path, spec.to_vec()).map_err(|e| ShimError::io("write OCI spec", &path, e))
}

/// Rewrites the bundle's spec so undertaker-init runs first; returns the injection and
/// the report channel's (read, write) ends.
pub(crate) fn inject_init(
    id: &str,
    bundle: &Path,
    spec: &Spec,
    options: &RuntimeOptions,
    settings: &InitSettings,
) -> Result<(Injection, OwnedFd, OwnedFd)> {
    let init = init_binary::locate(&options.init_path)?;
    let copy = init_binary::copy_into_bundle(&init, bundle)?;
    let mut spec = spec.clone();
    let injection = undertaker_inject::inject(&mut spec, &copy, settings, Some(REPORT_FD))
        .map_err(|e| {
            ShimError::invalid(
                format!("container {id}: inject undertaker-init"),
                e.to_string(),
            )
        })?;
    write_spec(bundle, &spec)?;
    let (read_end, write_end) = report_channel::pipe()?;
    Ok((injection, read_end, write_end))
}

/// Mounts containerd's rootfs mounts on `<bundle>/rootfs`; true if there were any.
pub(crate) async fn mount_rootfs(mounts: &[Mount], bundle: &Path) -> Result<bool> {
    if mounts.is_empty() {
        return Ok(false);
    }
    let rootfs = bundle.join("rootfs");
    tokio::fs::create_dir_all(&rootfs)
        .await
        .map_err(|e| ShimError::io("create rootfs dir", &rootfs, e))?;
    for m in mounts {
        if let Err(e) = containerd_shim::util::mount_rootfs(m, &rootfs).await {
            unmount_rootfs(bundle.to_path_buf()).await;
            return Err(ShimError::Other(format!(
                "mount {} ({}) on {}: {e}",
                m.source,
                m.type_,
                rootfs.display()
            )));
        }
    }
    Ok(true)
}

pub(crate) async fn unmount_rootfs(bundle: PathBuf) {
    let rootfs = bundle.join("rootfs");
    let what = format!("unmount {}", rootfs.display());
    let unmounted = super::blocking(what, move || {
        containerd_shim::mount::umount_recursive(rootfs.to_str(), libc::MNT_DETACH)
            .map_err(|e| format!("unmounting {} failed: {e}", rootfs.display()))
    })
    .await;
    match unmounted {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("{e}"),
        Err(e) => tracing::warn!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_is_written_back_with_every_field_it_was_read_with() {
        let dir = tempfile::tempdir().unwrap();
        let original = r#"{"ociVersion":"1.3.0","process":{"args":["sh"],"futureField":{"a":[1]}},
            "linux":{"memoryPolicy":{"mode":"MPOL_BIND","nodes":"0"}},"futureTop":true}"#;
        std::fs::write(dir.path().join("config.json"), original).unwrap();
        write_spec(dir.path(), &read_spec(dir.path()).unwrap()).unwrap();
        let written = std::fs::read(dir.path().join("config.json")).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&written).unwrap(),
            serde_json::from_str::<serde_json::Value>(original).unwrap()
        );
    }

    #[test]
    fn a_missing_or_bad_spec_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let invalid = containerd_shim_protos::ttrpc::Code::INVALID_ARGUMENT;
        let err = read_spec(dir.path()).unwrap_err();
        assert_eq!(err.code(), invalid);
        assert!(err.to_string().contains("config.json"), "{err}");
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let err = read_spec(dir.path()).unwrap_err();
        assert_eq!(err.code(), invalid);
        assert!(err.to_string().contains("config.json"), "{err}");
    }
}
