//! The runtime config file the installer writes and the shim reads.
//!
//! containerd's CRI plugin hands a shim its runtime's `options` table only as runc's options type
//! when the runtime type is `io.containerd.runc.*`; for any other type (ours) it passes
//! `runtimeoptions.v1.Options { TypeUrl, ConfigPath }` and (1.6) drops every other key. So the
//! containerd config only carries `ConfigPath = RUNTIME_CONFIG_PATH`, and the settings the shim
//! needs live in this file, spelled as runc's options spell them.
//!
//! The keys, their defaults and the parser are `undertaker-options`, the one definition the
//! shim uses too: the installer accepts exactly the files the shim accepts.

use std::path::Path;

pub use undertaker_options::{OptionsError, RuntimeOptions, DEFAULT_BINARY_NAME};

/// Where the installer writes the runtime config on the host, and the `ConfigPath` it registers.
pub const RUNTIME_CONFIG_PATH: &str = "/etc/undertaker/runtime.toml";

/// The runtime config at `path` as it is now: defaults when there is none. A file the shim
/// would refuse (an unknown key, a bad value) is an error naming the file and the key.
pub fn load_existing(path: &Path) -> Result<RuntimeOptions, OptionsError> {
    match path.try_exists() {
        Ok(false) => Ok(RuntimeOptions::default()),
        _ => RuntimeOptions::from_file(path),
    }
}

/// The file content: the options that differ from the defaults, with a header saying who
/// wrote it.
pub fn file_content(options: &RuntimeOptions) -> String {
    format!(
        "# Written by `undertaker install` for containerd-shim-undertaker-v2.\n\
         # Keys are spelled as in runc's runtime options; `undertaker uninstall` removes this file.\n\
         {}",
        options.to_toml()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_file_content() {
        let options = RuntimeOptions {
            binary_name: "/usr/bin/crun".into(),
            root: "/run/custom-runc".into(),
            systemd_cgroup: true,
            init_path: "/usr/local/lib/undertaker/undertaker-init".into(),
            no_pivot_root: true,
            io_uid: 1000,
            ..Default::default()
        };
        let text = file_content(&options);
        assert!(text.contains("BinaryName = \"/usr/bin/crun\""), "{text}");
        assert!(text.contains("SystemdCgroup = true"), "{text}");
        assert_eq!(RuntimeOptions::from_toml(&text, "t").unwrap(), options);
    }

    #[test]
    fn defaults_write_no_keys() {
        let text = file_content(&RuntimeOptions::default());
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 0);
    }

    #[test]
    fn a_missing_file_is_the_defaults_and_a_bad_one_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runtime.toml");
        assert_eq!(load_existing(&path).unwrap(), RuntimeOptions::default());
        std::fs::write(&path, "NoPivotRoot = true\nIoUid = 7\n").unwrap();
        let kept = load_existing(&path).unwrap();
        assert!(kept.no_pivot_root);
        assert_eq!(kept.io_uid, 7);
        std::fs::write(&path, "SystemdCgroups = true\n").unwrap();
        let error = load_existing(&path).unwrap_err().to_string();
        assert!(error.contains("SystemdCgroups"), "{error}");
        assert!(error.contains(&path.display().to_string()), "{error}");
    }
}
