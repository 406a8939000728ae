//! The image the DaemonSet in `install/kubernetes/` runs, made without a Docker engine: the
//! static busybox root filesystem of the test images (its `nsenter` reaches the host's
//! systemd), a static bash at `/bin/bash` (the DaemonSet's script is bash), a CA bundle at
//! `/etc/ssl/certs/ca-certificates.crt` (the Kubernetes client verifies against it when a
//! kubeconfig names no CA, and fails without one), and the three static binaries in
//! `/opt/undertaker/bin`, the directory `undertaker install --from` copies to the node.
//! `scripts/image.sh` builds it; `ctr images import` loads it.

use std::path::Path;

use crate::error::{Result, TestbedError};
use crate::host::{self, is_static_elf};
use crate::image_layout::{busybox_rootfs_layer_with, image_layout_archive, ImageSpec, LayerFile};
use crate::images::busybox_applets;

/// Where the binaries are in the image.
pub const INSTALLER_BIN_DIR: &str = "/opt/undertaker/bin";
/// The binaries the installer copies to the node.
pub const INSTALLER_BINARIES: [&str; 3] = [
    "containerd-shim-undertaker-v2",
    "undertaker",
    "undertaker-init",
];
/// The image's name, as the DaemonSet names it.
pub const INSTALLER_IMAGE: &str = concat!(
    "ghcr.io/undertaker-dev/undertaker:",
    env!("CARGO_PKG_VERSION")
);

/// Where the image's CA bundle is (the path rustls-native-certs and OpenSSL look at first).
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The files of the installer image besides busybox: each is copied from the host.
pub struct InstallerFiles<'a> {
    /// The directory holding [`INSTALLER_BINARIES`], statically linked.
    pub bin_dir: &'a Path,
    /// A statically linked bash.
    pub bash: &'a Path,
    /// A PEM bundle of CA certificates.
    pub ca_bundle: &'a Path,
}

/// The installer image as an OCI image-layout tarball named `name`, of `files`. Every binary
/// must be statically linked: they run in the image and, once installed, on any node's
/// userland.
pub fn installer_image_archive(files: &InstallerFiles<'_>, name: &str) -> Result<Vec<u8>> {
    let image_error = |reason: String| TestbedError::Image {
        image: name.to_string(),
        reason,
    };
    let static_file = |path: &Path, image_path: String| -> Result<LayerFile> {
        if !is_static_elf(path) {
            return Err(image_error(format!(
                "{} is missing or not a statically linked executable",
                path.display()
            )));
        }
        let bytes = std::fs::read(path).map_err(TestbedError::io("read", path))?;
        Ok(LayerFile {
            path: image_path,
            mode: 0o755,
            bytes,
        })
    };
    let ca_bundle =
        std::fs::read(files.ca_bundle).map_err(TestbedError::io("read", files.ca_bundle))?;
    if !String::from_utf8_lossy(&ca_bundle).contains("-----BEGIN CERTIFICATE-----") {
        return Err(image_error(format!(
            "{} holds no PEM certificate",
            files.ca_bundle.display()
        )));
    }
    let mut layer_files = vec![
        static_file(files.bash, "bin/bash".to_string())?,
        LayerFile {
            path: CA_BUNDLE.trim_start_matches('/').to_string(),
            mode: 0o644,
            bytes: ca_bundle,
        },
    ];
    for binary in INSTALLER_BINARIES {
        let image_path = format!("{}/{binary}", INSTALLER_BIN_DIR.trim_start_matches('/'));
        layer_files.push(static_file(&files.bin_dir.join(binary), image_path)?);
    }
    let busybox_path = host::static_busybox()?;
    let busybox = std::fs::read(&busybox_path).map_err(TestbedError::io("read", &busybox_path))?;
    let applets = busybox_applets(&busybox_path)?;
    let layer = busybox_rootfs_layer_with(&busybox, &applets, &layer_files)
        .map_err(|error| image_error(error.to_string()))?;
    let path = format!(
        "PATH={INSTALLER_BIN_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    let entrypoint = format!("{INSTALLER_BIN_DIR}/undertaker");
    let image = ImageSpec {
        name,
        entrypoint: &[&entrypoint],
        cmd: &[],
        env: &[&path],
    };
    image_layout_archive(layer, &[image]).map_err(|error| image_error(error.to_string()))
}
