//! A fake node for the install tests: a temp host root with containerd's config from a
//! fixture, and a directory of built binaries.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use undertaker_testbed::{tree_snapshot, TreeSnapshot};

use crate::{
    HostRoot, InstallOptions, InstallOutcome, Layout, NodeOptions, Restart, UninstallOptions,
};

pub const CONFIG: &str = "/etc/containerd/config.toml";

/// A fake node: a host root with containerd's config, and a directory of built binaries.
pub struct Node {
    pub root: tempfile::TempDir,
    pub source: tempfile::TempDir,
}

impl Node {
    pub fn with_config(fixture: Option<&str>) -> Node {
        let root = tempfile::tempdir().unwrap();
        // Directories every host has; the install puts its files in them.
        for dir in ["usr/local/bin", "usr/local/lib"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        if let Some(name) = fixture {
            let text = std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("fixtures/containerd")
                    .join(name),
            )
            .unwrap();
            std::fs::create_dir_all(root.path().join("etc/containerd")).unwrap();
            let config = root.path().join("etc/containerd/config.toml");
            std::fs::write(&config, text).unwrap();
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let source = tempfile::tempdir().unwrap();
        for name in [crate::SHIM_BINARY, crate::CLI_BINARY, crate::INIT_BINARY] {
            std::fs::write(
                source.path().join(name),
                format!("#!/bin/sh\n# {name} v1\n"),
            )
            .unwrap();
        }
        Node { root, source }
    }

    pub fn node_options(&self) -> NodeOptions {
        NodeOptions {
            host_root: HostRoot::new(self.root.path()),
            containerd_config: PathBuf::from(CONFIG),
            containerd_address: PathBuf::from("/run/containerd/containerd.sock"),
            layout: Layout::default(),
            restart: Restart::Skip,
            dry_run: false,
            ready_timeout: Duration::from_secs(1),
        }
    }

    pub fn install_options(&self) -> InstallOptions {
        InstallOptions {
            node: self.node_options(),
            source_dir: self.source.path().to_path_buf(),
            verify: false,
            make_default: false,
        }
    }

    pub fn uninstall_options(&self) -> UninstallOptions {
        UninstallOptions {
            node: self.node_options(),
            force: false,
        }
    }

    pub fn read(&self, host_path: &str) -> String {
        std::fs::read_to_string(self.local(host_path)).unwrap()
    }

    pub fn read_bytes(&self, host_path: &str) -> Vec<u8> {
        std::fs::read(self.local(host_path)).unwrap()
    }

    pub fn local(&self, host_path: &str) -> PathBuf {
        HostRoot::new(self.root.path()).path(host_path)
    }

    /// Every file under the host root and its content (directories as empty entries).
    pub fn snapshot(&self) -> TreeSnapshot {
        tree_snapshot(self.root.path())
    }
}

/// The files an install changed; it must not have restarted or verified (no containerd here).
pub fn installed(outcome: InstallOutcome) -> Vec<PathBuf> {
    match outcome {
        InstallOutcome::Installed {
            changed,
            restarted,
            verified,
        } => {
            assert!(!restarted && !verified, "no restart was asked for");
            changed
        }
        other => panic!("expected an install, got {other:?}"),
    }
}
