//! Where everything of one testbed lives inside its private directory.

use std::path::{Path, PathBuf};

/// The files and directories of one testbed, all under `dir`.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The private directory itself (removed when the testbed is dropped).
    pub dir: PathBuf,
    /// containerd's persistent root (content store, snapshots, metadata).
    pub root: PathBuf,
    /// containerd's state directory (task bundles, sandbox files).
    pub state: PathBuf,
    /// containerd's gRPC socket (CRI and the containerd API).
    pub socket: PathBuf,
    /// containerd's ttrpc socket (shims publish events here).
    pub ttrpc_socket: PathBuf,
    /// The containerd config file.
    pub config: PathBuf,
    /// The undertaker runtime's options file (named by `ConfigPath` in the containerd config).
    pub runtime_options: PathBuf,
    /// containerd's stdout and stderr (with the shims' logs forwarded into it).
    pub log: PathBuf,
    /// The pid of the current containerd, written by the supervisor loop.
    pub pid_file: PathBuf,
    /// Present once the supervisor loop should stop restarting containerd.
    pub stop_file: PathBuf,
    /// While present, the supervisor loop does not start a containerd that exited again.
    pub hold_file: PathBuf,
    /// runc's state root for runtime `runc`.
    pub runc_root: PathBuf,
    /// runc's state root for runtime `undertaker`.
    pub undertaker_runc_root: PathBuf,
    /// CNI plugin and config directories: empty for host-network pods (CRI just needs somewhere
    /// to look), the bridge network's plugins and conflist with `UNDERTAKER_NETWORK=cni`.
    pub cni_bin: PathBuf,
    pub cni_conf: PathBuf,
    /// Pod log directories.
    pub pods: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Self {
        Layout {
            dir: dir.to_path_buf(),
            root: dir.join("root"),
            state: dir.join("state"),
            socket: dir.join("containerd.sock"),
            ttrpc_socket: dir.join("containerd.sock.ttrpc"),
            config: dir.join("containerd.toml"),
            runtime_options: dir.join("undertaker-runtime.toml"),
            log: dir.join("containerd.log"),
            pid_file: dir.join("containerd.pid"),
            stop_file: dir.join("stop"),
            hold_file: dir.join("hold"),
            runc_root: dir.join("runc"),
            undertaker_runc_root: dir.join("runc-undertaker"),
            cni_bin: dir.join("cni/bin"),
            cni_conf: dir.join("cni/conf"),
            pods: dir.join("pods"),
        }
    }

    /// The directories to create before containerd starts.
    pub fn directories(&self) -> [&Path; 7] {
        [
            &self.root,
            &self.state,
            &self.runc_root,
            &self.undertaker_runc_root,
            &self.cni_bin,
            &self.cni_conf,
            &self.pods,
        ]
    }

    /// The runc state roots (one per runtime) whose entries are containers still known to runc.
    pub fn runc_roots(&self) -> [&Path; 2] {
        [&self.runc_root, &self.undertaker_runc_root]
    }
}
