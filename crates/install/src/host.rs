//! Host paths as this process sees them: the same path under `--host-root` (a DaemonSet sees the
//! node's root at `/host`). Everything written *into* a config stays a host path; only file
//! access goes through [`HostRoot::path`].

use std::path::{Path, PathBuf};

/// The directory where the host's `/` is mounted (`/` when running on the host itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot(PathBuf);

impl Default for HostRoot {
    fn default() -> Self {
        HostRoot(PathBuf::from("/"))
    }
}

impl HostRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostRoot(root.into())
    }

    /// The mount point of the host's root.
    pub fn root(&self) -> &Path {
        &self.0
    }

    /// Whether this process runs on the host itself rather than in a container with the host
    /// mounted somewhere.
    pub fn is_own_root(&self) -> bool {
        self.0 == Path::new("/")
    }

    /// Where host path `host_path` (absolute) is reachable from here.
    pub fn path(&self, host_path: impl AsRef<Path>) -> PathBuf {
        let host_path = host_path.as_ref();
        match host_path.strip_prefix("/") {
            Ok(relative) => self.0.join(relative),
            Err(_) => self.0.join(host_path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_absolute_host_paths() {
        let host = HostRoot::new("/host");
        assert_eq!(
            host.path("/etc/containerd/config.toml"),
            Path::new("/host/etc/containerd/config.toml")
        );
        assert!(!host.is_own_root());
        assert_eq!(HostRoot::default().path("/etc/x"), Path::new("/etc/x"));
        assert!(HostRoot::default().is_own_root());
    }
}
