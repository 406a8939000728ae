//! How a testbed is set up, and the defaults taken from the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::build_dirs::current_profile_dir;
use crate::containerd::{ContainerdSource, OCI_RUNTIME_ENV};
use crate::driver::CgroupDriver;
use crate::network::Network;

/// How a testbed is set up.
#[derive(Clone, Debug)]
pub struct TestbedOptions {
    /// Prepended to containerd's PATH: where `containerd-shim-undertaker-v2` and
    /// `undertaker-init` are. Default: [`default_bin_dir`].
    pub bin_dir: PathBuf,
    /// containerd snapshotter for CRI and imports (default: [`default_snapshotter`]).
    pub snapshotter: String,
    /// containerd's log level (the shims' logs are forwarded at their own level).
    pub log_level: String,
    /// containerd namespaces the test images are imported into (`k8s.io` is CRI's).
    pub image_namespaces: Vec<String>,
    /// How long containerd may take to come up.
    pub ready_timeout: Duration,
    /// Which containerd runs (default: `$UNDERTAKER_CONTAINERD`, else the host's).
    pub containerd: ContainerdSource,
    /// The OCI runtime of both handlers, `BinaryName` in their options: `runc`, `crun` or a
    /// path (default: `$UNDERTAKER_OCI_RUNTIME`, else `runc`).
    pub oci_runtime: String,
    /// The pods' network (default: `$UNDERTAKER_NETWORK`, else the node's).
    pub network: Network,
    /// The cgroup driver of both handlers (default: `$UNDERTAKER_CGROUP_DRIVER`, else
    /// cgroupfs).
    pub cgroup_driver: CgroupDriver,
}

impl Default for TestbedOptions {
    fn default() -> Self {
        TestbedOptions {
            bin_dir: default_bin_dir(),
            snapshotter: default_snapshotter().to_string(),
            log_level: "debug".to_string(),
            image_namespaces: vec![CRI_NAMESPACE.to_string()],
            ready_timeout: Duration::from_secs(30),
            containerd: ContainerdSource::from_env(),
            oci_runtime: std::env::var(OCI_RUNTIME_ENV)
                .ok()
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "runc".to_string()),
            network: Network::from_env(),
            cgroup_driver: CgroupDriver::from_env(),
        }
    }
}

/// `overlayfs` where the kernel has overlay, else `native` (plain copies, slow but works
/// anywhere).
pub fn default_snapshotter() -> &'static str {
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if filesystems
        .lines()
        .any(|line| line.split_whitespace().last() == Some("overlay"))
    {
        "overlayfs"
    } else {
        "native"
    }
}

/// The containerd namespace CRI keeps its images and containers in.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// `$UNDERTAKER_BIN_DIR`, else the cargo profile directory of the running binary (where
/// `cargo build` put the shim and `scripts/build-init.sh` the init), else
/// `<workspace>/target/debug`.
pub fn default_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("UNDERTAKER_BIN_DIR") {
        return PathBuf::from(dir);
    }
    current_profile_dir()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug"))
}
