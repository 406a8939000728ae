//! Hand-made OCI bundles for a shim driven without containerd: containerd's default spec
//! (`ctr oci spec`) with our command and cgroup, and a root filesystem of the host's static
//! busybox that the shim bind-mounts into the bundle as the request's rootfs.

use std::path::{Path, PathBuf};
use std::process::Command;

use containerd_shim_protos::api::Mount;
use serde_json::{json, Value};
use undertaker_testbed::find_program;

/// The directories runc mounts onto in the default spec: a read-only rootfs must have them.
const MOUNT_POINTS: [&str; 6] = ["proc", "dev", "sys", "run", "tmp", "etc"];

/// Lays out a root filesystem in `dir`: `/bin/busybox` (the host's static busybox), `/bin/sh`
/// linking to it, and the default spec's mount points.
pub fn busybox_rootfs(dir: &Path) -> anyhow::Result<()> {
    let busybox = find_program("busybox")
        .ok_or_else(|| anyhow::anyhow!("no busybox on PATH (apt-get install busybox-static)"))?;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy(&busybox, bin.join("busybox"))?;
    for applet in ["sh", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet))?;
    }
    for point in MOUNT_POINTS {
        std::fs::create_dir_all(dir.join(point))?;
    }
    Ok(())
}

/// containerd's default OCI spec, running `args` in cgroup `cgroups_path` (cgroupfs form,
/// `/parent/id`), with the root filesystem at `rootfs` in the bundle and no terminal.
pub fn spec(args: &[&str], cgroups_path: &str) -> anyhow::Result<Value> {
    let output = Command::new("ctr").args(["oci", "spec"]).output()?;
    anyhow::ensure!(
        output.status.success(),
        "ctr oci spec: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut spec: Value = serde_json::from_slice(&output.stdout)?;
    spec["process"]["args"] = json!(args);
    spec["process"]["terminal"] = json!(false);
    spec["process"]["env"] = json!(["PATH=/bin"]);
    spec["root"] = json!({ "path": "rootfs" });
    spec["linux"]["cgroupsPath"] = json!(cgroups_path);
    Ok(spec)
}

/// A bundle directory for container `id`.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub id: String,
    pub dir: PathBuf,
}

impl Bundle {
    /// Creates `<parent>/<id>` (empty).
    pub fn create(parent: &Path, id: &str) -> anyhow::Result<Bundle> {
        let dir = parent.join(id);
        std::fs::create_dir_all(&dir)?;
        Ok(Bundle {
            id: id.to_string(),
            dir,
        })
    }

    /// A bundle whose directory does not exist.
    pub fn missing(parent: &Path, id: &str) -> Bundle {
        Bundle {
            id: id.to_string(),
            dir: parent.join(id),
        }
    }

    /// Writes `spec` as the bundle's `config.json`.
    pub fn write_spec(&self, spec: &Value) -> anyhow::Result<()> {
        self.write_config(&serde_json::to_string_pretty(spec)?)
    }

    /// Writes `text` as the bundle's `config.json`, whatever it is.
    pub fn write_config(&self, text: &str) -> anyhow::Result<()> {
        std::fs::write(self.dir.join("config.json"), text)?;
        Ok(())
    }

    pub fn path(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }
}

/// The rootfs mount of a create request: bind `source` onto the bundle's `rootfs`, as
/// containerd passes a snapshot.
pub fn bind_rootfs(source: &Path) -> Mount {
    Mount {
        type_: "bind".to_string(),
        source: source.to_string_lossy().into_owned(),
        options: vec!["rbind".to_string(), "rw".to_string()],
        ..Default::default()
    }
}
