//! Where every installed file lives on the host. All paths here are host paths.

use std::path::{Path, PathBuf};

use crate::{CLI_BINARY, INIT_BINARY, SHIM_BINARY};

/// The default directory for the shim and the CLI.
pub const DEFAULT_BIN_DIR: &str = "/usr/local/bin";
/// The init's directory; the shim also looks there when the runtime config names no init.
pub const INIT_DIR: &str = "/usr/local/lib/undertaker";
/// Our own directory under `/etc`: the runtime config, the state file, the backup.
pub const ETC_DIR: &str = "/etc/undertaker";
/// What an install did, for uninstall.
pub const STATE_PATH: &str = "/etc/undertaker/install-state.toml";
/// The copy of containerd's config as it was before the install changed it.
pub const BACKUP_DIR: &str = "/etc/undertaker/backup";
/// containerd's default config file and CRI socket.
pub const DEFAULT_CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
pub const DEFAULT_CONTAINERD_ADDRESS: &str = "/run/containerd/containerd.sock";

/// The installed binaries' places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub bin_dir: PathBuf,
    pub init_dir: PathBuf,
}

impl Default for Layout {
    fn default() -> Self {
        Layout::new(DEFAULT_BIN_DIR)
    }
}

impl Layout {
    /// The default layout with the shim and CLI in `bin_dir`.
    pub fn new(bin_dir: impl Into<PathBuf>) -> Self {
        Layout {
            bin_dir: bin_dir.into(),
            init_dir: PathBuf::from(INIT_DIR),
        }
    }

    /// Each binary's file name (also its name in the source directory) and host destination.
    pub fn binaries(&self) -> [(&'static str, PathBuf); 3] {
        [
            (SHIM_BINARY, self.bin_dir.join(SHIM_BINARY)),
            (CLI_BINARY, self.bin_dir.join(CLI_BINARY)),
            (INIT_BINARY, self.init_path()),
        ]
    }

    /// The init's host path, written into the runtime config as `InitPath`.
    pub fn init_path(&self) -> PathBuf {
        self.init_dir.join(INIT_BINARY)
    }
}

/// Where the backup of containerd config `config` goes.
pub fn backup_path(config: &Path) -> PathBuf {
    let name = config
        .file_name()
        .map(Path::new)
        .unwrap_or(Path::new("config.toml"));
    Path::new(BACKUP_DIR).join(name)
}
