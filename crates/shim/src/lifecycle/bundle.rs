//! What create does to the bundle: read the spec, inject undertaker-init into it, mount
//! and unmount the rootfs. All blocking; called through `blocking`.

use std::{
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use containerd_shim_protos::api::Mount;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use undertaker_inject::{InitSettings, Injection};

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
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ShimError::invalid(what(), format!("cannot read it: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| ShimError::invalid(what(), format!("cannot parse it: {e}")))
}

fn write_spec(bundle: &Path, spec: &Spec) -> Result<()> {
    let path = bundle.join("config.json");
    let json = serde_json::to_vec(spec).map_err(|e| ShimError::Json {
        what: format!("encode OCI spec {}", path.display()),
        source: e,
    })?;
    std::fs::write(&path, json).map_err(|e| ShimError::io("write OCI spec", &path, e))
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

pub(crate) fn has_own_pid_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| {
            nss.iter()
                .any(|ns| ns.typ() == LinuxNamespaceType::Pid && ns.path().is_none())
        })
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

    fn spec_with(namespaces: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},"linux":{{"namespaces":[{namespaces}]}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn own_pid_namespace_means_a_new_one() {
        assert!(has_own_pid_namespace(&spec_with(
            r#"{"type":"pid"},{"type":"mount"}"#
        )));
        // shareProcessNamespace: the sandbox's namespace by path.
        assert!(!has_own_pid_namespace(&spec_with(
            r#"{"type":"pid","path":"/proc/42/ns/pid"}"#
        )));
        // hostPID: no pid namespace at all.
        assert!(!has_own_pid_namespace(&spec_with(r#"{"type":"mount"}"#)));
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
