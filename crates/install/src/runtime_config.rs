//! The runtime config file the installer writes and the shim reads.
//!
//! containerd's CRI plugin hands a shim its runtime's `options` table only as runc's options type
//! when the runtime type is `io.containerd.runc.*`; for any other type (ours) it passes
//! `runtimeoptions.v1.Options { TypeUrl, ConfigPath }` and (1.6) drops every other key. So the
//! containerd config only carries `ConfigPath = RUNTIME_CONFIG_PATH`, and the settings the shim
//! needs live in this file, spelled as runc's options spell them.
//!
//! This module depends on serde and toml only, so the shim can use it through
//! `undertaker-install` with `default-features = false`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the installer writes the runtime config on the host, and the `ConfigPath` it registers.
pub const RUNTIME_CONFIG_PATH: &str = "/etc/undertaker/runtime.toml";

/// The OCI runtime binary used when the config names none (runc's own default).
pub const DEFAULT_BINARY_NAME: &str = "runc";

/// Settings for the shim, read from [`RUNTIME_CONFIG_PATH`] (or the `ConfigPath` containerd
/// passes). Every key is optional; unknown keys are an error so a typo never goes unnoticed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// The runc-compatible binary to run containers with (name on `PATH`, or a path).
    #[serde(
        rename = "BinaryName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub binary_name: Option<String>,
    /// The OCI runtime's state root (runc `--root`), when not the runtime's default.
    #[serde(rename = "Root", default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// Whether the OCI runtime should use the systemd cgroup driver (runc `--systemd-cgroup`).
    #[serde(rename = "SystemdCgroup", default, skip_serializing_if = "is_false")]
    pub systemd_cgroup: bool,
    /// Where the static init lives on the host, when not in the shim's default search path.
    #[serde(rename = "InitPath", default, skip_serializing_if = "Option::is_none")]
    pub init_path: Option<PathBuf>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A runtime config file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeConfigError {
    #[error("cannot read the undertaker runtime config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid undertaker runtime config {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
}

impl RuntimeConfig {
    /// Reads and parses the config file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RuntimeConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RuntimeConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|source| RuntimeConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Parses config text (the file's content).
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The OCI runtime binary to use: `BinaryName`, else `runc`.
    pub fn binary_name_or_default(&self) -> &str {
        self.binary_name.as_deref().unwrap_or(DEFAULT_BINARY_NAME)
    }

    /// The file content, with a header saying who wrote it.
    pub fn to_file_content(&self) -> String {
        let body = toml::to_string(self).expect("a struct of strings and bools always serializes");
        format!(
            "# Written by `undertaker install` for containerd-shim-undertaker-v2.\n\
             # Keys are spelled as in runc's runtime options; `undertaker uninstall` removes this file.\n\
             {body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_file_content() {
        let config = RuntimeConfig {
            binary_name: Some("/usr/bin/crun".into()),
            root: Some("/run/custom-runc".into()),
            systemd_cgroup: true,
            init_path: Some("/usr/local/lib/undertaker/undertaker-init".into()),
        };
        let text = config.to_file_content();
        assert!(text.contains("BinaryName = \"/usr/bin/crun\""), "{text}");
        assert!(text.contains("SystemdCgroup = true"), "{text}");
        assert_eq!(RuntimeConfig::parse(&text).unwrap(), config);
    }

    #[test]
    fn absent_keys_take_runc_defaults() {
        let config = RuntimeConfig::parse("").unwrap();
        assert_eq!(config.binary_name_or_default(), "runc");
        assert!(!config.systemd_cgroup);
        assert_eq!(
            config
                .to_file_content()
                .lines()
                .filter(|l| !l.starts_with('#'))
                .count(),
            0
        );
    }

    #[test]
    fn unknown_keys_are_an_error_naming_the_key() {
        let error = RuntimeConfig::parse("SystemdCgroups = true\n").unwrap_err();
        assert!(error.to_string().contains("SystemdCgroups"), "{error}");
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runtime.toml");
        let missing = RuntimeConfig::load(&path).unwrap_err();
        assert!(
            missing.to_string().contains(&path.display().to_string()),
            "{missing}"
        );
        std::fs::write(&path, "BinaryName = 3\n").unwrap();
        let invalid = RuntimeConfig::load(&path).unwrap_err();
        assert!(
            matches!(invalid, RuntimeConfigError::Parse { .. }),
            "{invalid}"
        );
        assert!(
            invalid.to_string().contains(&path.display().to_string()),
            "{invalid}"
        );
    }
}
