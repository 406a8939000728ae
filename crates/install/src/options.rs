//! What both commands need to know about the node.

use std::path::PathBuf;
use std::time::Duration;

use crate::layout::{DEFAULT_BIN_DIR, DEFAULT_CONTAINERD_ADDRESS, DEFAULT_CONTAINERD_CONFIG};
use crate::{HostRoot, Layout, Restart};

/// The node's paths and how to restart its containerd. Paths are host paths.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub host_root: HostRoot,
    pub containerd_config: PathBuf,
    /// containerd's CRI socket (host path).
    pub containerd_address: PathBuf,
    pub layout: Layout,
    pub restart: Restart,
    /// Show the changes as a diff and change nothing.
    pub dry_run: bool,
    /// How long containerd may take to answer CRI after a restart.
    pub ready_timeout: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            host_root: HostRoot::default(),
            containerd_config: PathBuf::from(DEFAULT_CONTAINERD_CONFIG),
            containerd_address: PathBuf::from(DEFAULT_CONTAINERD_ADDRESS),
            layout: Layout::new(DEFAULT_BIN_DIR),
            restart: Restart::Auto,
            dry_run: false,
            ready_timeout: Duration::from_secs(60),
        }
    }
}
