//! The state file: what an install did, so `uninstall` undoes exactly that even when run with
//! other flags, and a repeated install knows the registration in the config is its own.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::containerd::ReplacedDefault;
use crate::layout::STATE_PATH;
use crate::HostRoot;

/// What the last install did. Paths are host paths.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallState {
    /// The containerd config it registered our runtime in.
    pub containerd_config: PathBuf,
    /// A copy of that config from before the install changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_backup: Option<PathBuf>,
    /// The config did not exist; the install created it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub config_created: bool,
    /// The drop-in file it wrote (schema 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_in: Option<PathBuf>,
    /// Every file it installed: binaries and the runtime config.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// `--default`: it made our runtime containerd's default, replacing this one (last: a
    /// table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_default: Option<ReplacedDefault>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A state file that exists but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Read(#[from] crate::FsError),
    #[error("the install state {path} is damaged ({source}); fix or remove it")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
}

impl InstallState {
    /// The state left by an earlier install, if any.
    pub fn load(host: &HostRoot) -> Result<Option<Self>, StateError> {
        let path = host.path(STATE_PATH);
        let Some(bytes) = crate::fsio::read_if_exists(&path)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        toml::from_str(&text)
            .map(Some)
            .map_err(|source| StateError::Parse { path, source })
    }

    /// The host path of the state file.
    pub fn path() -> &'static Path {
        Path::new(STATE_PATH)
    }

    /// The file content, with a header saying what it is for.
    pub fn to_file_content(&self) -> String {
        let body = toml::to_string(self).expect("paths, bools and lists always serialize");
        format!("# Written by `undertaker install`; `undertaker uninstall` reads it. Do not edit.\n{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostRoot::new(dir.path());
        assert_eq!(InstallState::load(&host).unwrap(), None);
        let state = InstallState {
            containerd_config: "/etc/containerd/config.toml".into(),
            config_backup: Some("/etc/undertaker/backup/config.toml".into()),
            config_created: false,
            drop_in: None,
            files: vec!["/usr/local/bin/undertaker".into()],
            replaced_default: Some(ReplacedDefault {
                name: Some("runc".into()),
            }),
        };
        let path = host.path(STATE_PATH);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, state.to_file_content()).unwrap();
        assert_eq!(InstallState::load(&host).unwrap(), Some(state));
        std::fs::write(&path, "containerd_config = 3\n").unwrap();
        let error = InstallState::load(&host).unwrap_err();
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }
}
