//! The runtime options of `containerd-shim-undertaker-v2`: one definition for the shim that
//! reads them, the installer that writes them and the testbed that generates them.
//!
//! containerd's CRI decodes a runtime's `options` table into runc's own options type only for
//! `io.containerd.runc.v1/v2`. For any other runtime type — ours — it sends
//! `runtimeoptions.v1.Options`, whose `ConfigPath` names a TOML file and (containerd >= 1.7)
//! whose `ConfigBody` carries the whole `options` table when no path is set. That TOML is what
//! this crate parses and writes, in runc's key spelling (`BinaryName`, `Root`, `SystemdCgroup`,
//! ...) plus our `InitPath`. Decoding the protobuf `Any` stays in the shim.
//!
//! ```
//! use undertaker_options::RuntimeOptions;
//!
//! let options = RuntimeOptions::from_toml("SystemdCgroup = true\n", "runtime.toml").unwrap();
//! assert!(options.systemd_cgroup);
//! assert_eq!(options.binary_name, "runc", "unset keys keep runc's defaults");
//! assert_eq!(options.to_toml(), "SystemdCgroup = true\n", "only what differs is written");
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The OCI runtime binary used when the options name none (runc's own default).
pub const DEFAULT_BINARY_NAME: &str = "runc";
/// runc's state root when the options name none (containerd's runc shim's default).
pub const DEFAULT_ROOT: &str = "/run/containerd/runc";

/// A runtime config that could not be read or parsed; each names where it came from.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("runtime config {path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `origin` is the file's path, or what else the text came from (`(ConfigBody)`). toml's
    /// message names the key and line.
    #[error("runtime config {origin}: {source}")]
    Parse {
        origin: String,
        #[source]
        source: toml::de::Error,
    },
}

/// The settings the shim runs a container with. Every key is optional (absent keys take the
/// defaults below); unknown keys are an error, so a typo never goes unnoticed.
///
/// The serde form (PascalCase, every field but `TypeUrl` and `ConfigPath`) is also the shim's
/// stored copy in the bundle: keep field names stable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct RuntimeOptions {
    /// The runc-compatible binary, a name looked up in PATH or a path.
    pub binary_name: String,
    /// runc's state root (`runc --root`); the shim adds the containerd namespace.
    pub root: String,
    /// Use the systemd cgroup driver (`runc --systemd-cgroup`).
    pub systemd_cgroup: bool,
    /// Where undertaker-init is; empty means next to the shim, then the install path.
    pub init_path: String,
    /// `runc create --no-pivot` (for rootfs on ramfs).
    pub no_pivot_root: bool,
    /// `runc create --no-new-keyring`.
    pub no_new_keyring: bool,
    /// A cgroup to move the shim itself into.
    pub shim_cgroup: String,
    /// Owner of the stdio pipes handed to the container.
    pub io_uid: u32,
    pub io_gid: u32,
    /// Accepted so that an `options` table that still names these (containerd >= 1.7 sends
    /// the whole table as `ConfigBody`) decodes; not used, never written.
    #[serde(skip_serializing)]
    pub type_url: String,
    #[serde(skip_serializing)]
    pub config_path: String,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            binary_name: DEFAULT_BINARY_NAME.into(),
            root: DEFAULT_ROOT.into(),
            systemd_cgroup: false,
            init_path: String::new(),
            no_pivot_root: false,
            no_new_keyring: false,
            shim_cgroup: String::new(),
            io_uid: 0,
            io_gid: 0,
            type_url: String::new(),
            config_path: String::new(),
        }
    }
}

impl RuntimeOptions {
    /// Reads a runtime config file (the `ConfigPath` of the runtime's options).
    pub fn from_file(path: &Path) -> Result<Self, OptionsError> {
        let text = std::fs::read_to_string(path).map_err(|source| OptionsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses config text; `origin` (a path, `(ConfigBody)`) goes into the error.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, OptionsError> {
        toml::from_str(text).map_err(|source| OptionsError::Parse {
            origin: origin.to_string(),
            source,
        })
    }

    /// The TOML form, holding only the keys whose value differs from the default, so that a
    /// written file says what was chosen (and a default that changes later still applies).
    pub fn to_toml(&self) -> String {
        let table = |options: &RuntimeOptions| {
            toml::Table::try_from(options).expect("strings, bools and integers always serialize")
        };
        let defaults = table(&RuntimeOptions::default());
        let mut chosen = table(self);
        chosen.retain(|key, value| defaults.get(key) != Some(value));
        toml::to_string(&chosen).expect("a flat table of strings, bools and integers")
    }

    /// runc's state root for containers of containerd namespace `namespace`:
    /// `<Root>/<namespace>`, as containerd's runc shim lays it out, so the same container id in
    /// two namespaces never collides.
    pub fn runc_root(&self, namespace: &str) -> PathBuf {
        Path::new(&self.root).join(namespace)
    }
}

#[cfg(test)]
mod tests;
