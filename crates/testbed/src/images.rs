//! The busybox and pause test images: built once per process (cached on disk, keyed by the
//! busybox binary's content) and imported into a testbed's containerd with `ctr`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::build_dirs::current_profile_dir;
use crate::error::{Result, TestbedError};
use crate::host;
use crate::image_layout::{busybox_rootfs_layer, image_layout_archive, sha256_digest, ImageSpec};

/// The general-purpose test image: busybox, `Cmd ["sh"]`.
pub const BUSYBOX_IMAGE: &str = "docker.io/library/busybox:undertaker-test";
/// The sandbox (pause) image: busybox sleeping forever.
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:undertaker-test";

/// Bump when the image contents change without busybox changing.
const IMAGE_FORMAT: &str = "v1";

/// The archive once built; the lock also keeps two tests of one process from building it at
/// the same time.
static ARCHIVE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The OCI layout tarball holding [`BUSYBOX_IMAGE`] and [`PAUSE_IMAGE`], building it on first use.
pub fn test_images_archive() -> Result<PathBuf> {
    let mut archive = ARCHIVE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(path) = archive.as_ref() {
        return Ok(path.clone());
    }
    let path = build_cached_archive()?;
    *archive = Some(path.clone());
    Ok(path)
}

fn build_cached_archive() -> Result<PathBuf> {
    let busybox_path = host::static_busybox()?;
    let busybox = std::fs::read(&busybox_path).map_err(TestbedError::io("read", &busybox_path))?;
    let key = sha256_digest(&busybox);
    let key = &key["sha256:".len().."sha256:".len() + 16];
    let dir = image_cache_dir().join(format!("{IMAGE_FORMAT}-{key}"));
    let archive_path = dir.join("test-images.tar");
    if archive_path.is_file() {
        return Ok(archive_path);
    }
    std::fs::create_dir_all(&dir).map_err(TestbedError::io("create", &dir))?;
    let image_error = |reason: String| TestbedError::Image {
        image: BUSYBOX_IMAGE.to_string(),
        reason,
    };
    let applets = busybox_applets(&busybox_path)?;
    let layer =
        busybox_rootfs_layer(&busybox, &applets).map_err(|error| image_error(error.to_string()))?;
    let images = [
        ImageSpec {
            name: BUSYBOX_IMAGE,
            entrypoint: &[],
            cmd: &["sh"],
            env: &[],
        },
        ImageSpec {
            name: PAUSE_IMAGE,
            entrypoint: &["/bin/sleep", "infinity"],
            cmd: &[],
            env: &[],
        },
    ];
    let archive =
        image_layout_archive(layer, &images).map_err(|error| image_error(error.to_string()))?;
    // Several test processes may build at once: write aside, then rename into place.
    let partial = dir.join(format!("test-images.tar.{}", std::process::id()));
    std::fs::write(&partial, archive).map_err(TestbedError::io("write", &partial))?;
    std::fs::rename(&partial, &archive_path)
        .map_err(TestbedError::io("rename into place", &archive_path))?;
    Ok(archive_path)
}

/// Every applet this busybox has, so tests may use any of them by name.
pub(crate) fn busybox_applets(busybox: &Path) -> Result<Vec<String>> {
    let output = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|source| TestbedError::Spawn {
            program: busybox.display().to_string(),
            source,
        })?;
    if !output.status.success() {
        return Err(TestbedError::Command {
            command: format!("{} --list", busybox.display()),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|applet| !applet.is_empty() && !applet.contains('/'))
        .map(str::to_string)
        .collect())
}

/// `UNDERTAKER_IMAGE_CACHE`, else `<cargo target dir>/testbed-images` (found from the running
/// binary's path), else the temp dir.
fn image_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("UNDERTAKER_IMAGE_CACHE") {
        return PathBuf::from(dir);
    }
    current_profile_dir()
        .and_then(|profile| Some(profile.parent()?.join("testbed-images")))
        .unwrap_or_else(|| std::env::temp_dir().join("undertaker-testbed-images"))
}
