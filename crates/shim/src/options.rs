//! Runtime options: what containerd hands the shim in `CreateTaskRequest.options`.
//!
//! containerd's CRI decodes a runtime's `options` table into runc's own options
//! type only for `io.containerd.runc.v1/v2`. For any other runtime type — ours,
//! `io.containerd.undertaker.v2` — it sends `runtimeoptions.v1.Options`, whose
//! `ConfigPath` names a TOML file and (containerd >= 1.7) whose `ConfigBody`
//! carries the whole `options` table when no path is set. Both end up here as
//! one [`RuntimeOptions`], written in runc's key spelling (`BinaryName`, `Root`,
//! `SystemdCgroup`, ...) plus our `InitPath`.

use std::path::{Path, PathBuf};

use containerd_shim_protos::{
    protobuf::{well_known_types::any::Any, CodedInputStream, Message},
    shim::oci::Options as RuncOptions,
};
use serde::{Deserialize, Serialize};

/// The type URL containerd gives runc's options.
pub const RUNC_OPTIONS_TYPE: &str = "containerd.runc.v1.Options";
/// The type URL containerd gives the generic options of non-runc runtimes.
pub const RUNTIME_OPTIONS_TYPE: &str = "runtimeoptions.v1.Options";
/// Where the shim stores the options of a container, in its bundle, so that the
/// `delete` action (run after a shim died) finds the same runc root and binary.
pub const OPTIONS_FILE: &str = "undertaker-options.json";

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("runtime options of type {type_url:?} are not supported (expected {RUNC_OPTIONS_TYPE} or {RUNTIME_OPTIONS_TYPE})")]
    UnknownType { type_url: String },
    #[error("runtime options of type {type_url}: cannot decode: {reason}")]
    Decode { type_url: String, reason: String },
    #[error("runtime config {path}: cannot read: {source}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("runtime config {origin}: {source}")]
    ParseConfig {
        origin: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("stored options {path}: {reason}")]
    Stored { path: PathBuf, reason: String },
}

/// The settings the shim runs a container with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct RuntimeOptions {
    /// The runc-compatible binary, a name looked up in PATH or a path.
    pub binary_name: String,
    /// runc's state root (`runc --root`).
    pub root: String,
    /// Use the systemd cgroup driver (`runc --systemd-cgroup`).
    pub systemd_cgroup: bool,
    /// Where undertaker-init is; empty means next to the shim, then the install path.
    pub init_path: String,
    pub no_pivot_root: bool,
    pub no_new_keyring: bool,
    /// A cgroup to move the shim itself into.
    pub shim_cgroup: String,
    /// Owner of the stdio pipes handed to the container.
    pub io_uid: u32,
    pub io_gid: u32,
    /// Accepted so a `options` table that still names these decodes; not used.
    #[serde(skip_serializing)]
    pub type_url: String,
    #[serde(skip_serializing)]
    pub config_path: String,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            binary_name: "runc".into(),
            root: "/run/containerd/runc".into(),
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
    /// Decodes the options of a create request; `None` means containerd sent none.
    pub fn from_any(any: Option<&Any>) -> Result<Self, OptionsError> {
        let Some(any) = any else {
            return Ok(Self::default());
        };
        let type_url = any.type_url.trim_start_matches("types.containerd.io/");
        match type_url {
            RUNC_OPTIONS_TYPE => {
                let runc = RuncOptions::parse_from_bytes(&any.value).map_err(|e| {
                    OptionsError::Decode {
                        type_url: any.type_url.clone(),
                        reason: e.to_string(),
                    }
                })?;
                Ok(Self::from_runc(&runc))
            }
            RUNTIME_OPTIONS_TYPE => {
                let generic =
                    GenericOptions::decode(&any.value).map_err(|reason| OptionsError::Decode {
                        type_url: any.type_url.clone(),
                        reason,
                    })?;
                if !generic.config_body.is_empty() {
                    Self::from_toml(&generic.config_body, "(ConfigBody)")
                } else if !generic.config_path.is_empty() {
                    Self::from_file(Path::new(&generic.config_path))
                } else {
                    Ok(Self::default())
                }
            }
            "" if any.value.is_empty() => Ok(Self::default()),
            _ => Err(OptionsError::UnknownType {
                type_url: any.type_url.clone(),
            }),
        }
    }

    fn from_runc(runc: &RuncOptions) -> Self {
        let defaults = Self::default();
        let or_default = |v: &str, d: &str| {
            if v.is_empty() {
                d.to_string()
            } else {
                v.to_string()
            }
        };
        RuntimeOptions {
            binary_name: or_default(&runc.binary_name, &defaults.binary_name),
            root: or_default(&runc.root, &defaults.root),
            systemd_cgroup: runc.systemd_cgroup,
            no_pivot_root: runc.no_pivot_root,
            no_new_keyring: runc.no_new_keyring,
            shim_cgroup: runc.shim_cgroup.clone(),
            io_uid: runc.io_uid,
            io_gid: runc.io_gid,
            ..defaults
        }
    }

    /// Reads a runtime config file (the `ConfigPath` of the runtime's options).
    pub fn from_file(path: &Path) -> Result<Self, OptionsError> {
        let text = std::fs::read_to_string(path).map_err(|source| OptionsError::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<Self, OptionsError> {
        toml::from_str(text).map_err(|source| OptionsError::ParseConfig {
            origin: origin.to_string(),
            source,
        })
    }

    /// runc's state root for containers of containerd namespace `namespace`:
    /// `<Root>/<namespace>`, as containerd's runc shim lays it out, so the same
    /// container id in two namespaces never collides.
    pub fn runc_root(&self, namespace: &str) -> PathBuf {
        Path::new(&self.root).join(namespace)
    }

    /// Stores the options in the bundle for the `delete` action.
    pub fn store(&self, bundle: &Path) -> Result<(), OptionsError> {
        let path = bundle.join(OPTIONS_FILE);
        let json = serde_json::to_vec(self).map_err(|e| OptionsError::Stored {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&path, json).map_err(|e| OptionsError::Stored {
            path,
            reason: e.to_string(),
        })
    }

    /// Loads what [`RuntimeOptions::store`] wrote; defaults when nothing was stored.
    pub fn load(bundle: &Path) -> Result<Self, OptionsError> {
        let path = bundle.join(OPTIONS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| OptionsError::Stored {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(OptionsError::Stored {
                path,
                reason: e.to_string(),
            }),
        }
    }
}

/// `runtimeoptions.v1.Options`: `type_url = 1`, `config_path = 2`, `config_body = 3`
/// (bytes). containerd's generated type isn't in containerd-shim-protos, and three
/// string fields don't justify a code generator.
#[derive(Debug, Default, PartialEq)]
struct GenericOptions {
    type_url: String,
    config_path: String,
    config_body: String,
}

impl GenericOptions {
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut out = GenericOptions::default();
        let mut input = CodedInputStream::from_bytes(bytes);
        while let Some(tag) = input.read_raw_tag_or_eof().map_err(|e| e.to_string())? {
            let (field, wire_type) = (tag >> 3, tag & 7);
            match (field, wire_type) {
                (1..=3, 2) => {
                    let raw = input.read_bytes().map_err(|e| e.to_string())?;
                    let text = String::from_utf8(raw)
                        .map_err(|_| format!("field {field} is not UTF-8"))?;
                    match field {
                        1 => out.type_url = text,
                        2 => out.config_path = text,
                        _ => out.config_body = text,
                    }
                }
                (1..=3, w) => return Err(format!("field {field} has wire type {w}, want 2")),
                (_, w) => {
                    let wire = containerd_shim_protos::protobuf::rt::WireType::new(w)
                        .ok_or_else(|| format!("bad wire type {w}"))?;
                    input
                        .skip_field(wire)
                        .map_err(|e| format!("skip field {field}: {e}"))?;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use containerd_shim_protos::protobuf::CodedOutputStream;

    use super::*;

    fn generic(path: &str, body: &str) -> Any {
        let mut value = Vec::new();
        {
            let mut out = CodedOutputStream::vec(&mut value);
            out.write_string(1, "").unwrap();
            out.write_string(2, path).unwrap();
            out.write_string(3, body).unwrap();
            out.flush().unwrap();
        }
        Any {
            type_url: RUNTIME_OPTIONS_TYPE.into(),
            value,
            ..Default::default()
        }
    }

    #[test]
    fn no_options_means_runc_defaults() {
        let o = RuntimeOptions::from_any(None).unwrap();
        assert_eq!(o.binary_name, "runc");
        assert_eq!(o.root, "/run/containerd/runc");
        assert!(!o.systemd_cgroup);
    }

    #[test]
    fn runc_options_are_taken_field_by_field() {
        let runc = RuncOptions {
            binary_name: "crun".into(),
            root: "/tmp/r".into(),
            systemd_cgroup: true,
            io_uid: 7,
            ..Default::default()
        };
        let any = Any {
            type_url: RUNC_OPTIONS_TYPE.into(),
            value: runc.write_to_bytes().unwrap(),
            ..Default::default()
        };
        let o = RuntimeOptions::from_any(Some(&any)).unwrap();
        assert_eq!(
            (o.binary_name.as_str(), o.root.as_str()),
            ("crun", "/tmp/r")
        );
        assert!(o.systemd_cgroup);
        assert_eq!(o.io_uid, 7);
    }

    #[test]
    fn config_body_is_parsed_as_toml() {
        let any = generic(
            "",
            "BinaryName = \"/usr/bin/runc\"\nSystemdCgroup = true\nInitPath = \"/opt/i\"\n",
        );
        let o = RuntimeOptions::from_any(Some(&any)).unwrap();
        assert_eq!(o.binary_name, "/usr/bin/runc");
        assert!(o.systemd_cgroup);
        assert_eq!(o.init_path, "/opt/i");
        assert_eq!(o.root, "/run/containerd/runc", "unset keys keep defaults");
    }

    #[test]
    fn config_path_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runtime.toml");
        std::fs::write(&path, "Root = \"/run/x\"\n").unwrap();
        let o = RuntimeOptions::from_any(Some(&generic(path.to_str().unwrap(), ""))).unwrap();
        assert_eq!(o.root, "/run/x");
    }

    #[test]
    fn missing_config_file_names_the_path() {
        let err = RuntimeOptions::from_any(Some(&generic("/nonexistent/u.toml", ""))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/u.toml"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let err = RuntimeOptions::from_toml("BinaryNmae = \"x\"\n", "t").unwrap_err();
        assert!(err.to_string().contains("BinaryNmae"), "{err}");
        assert!(RuntimeOptions::from_toml("SystemdCgroup = \"yes\"\n", "t").is_err());
    }

    #[test]
    fn unknown_option_types_are_refused_by_name() {
        let any = Any {
            type_url: "example.com/Other".into(),
            value: vec![1, 2, 3],
            ..Default::default()
        };
        let err = RuntimeOptions::from_any(Some(&any)).unwrap_err();
        assert!(err.to_string().contains("example.com/Other"), "{err}");
    }

    #[test]
    fn garbage_generic_options_are_decode_errors() {
        let any = Any {
            type_url: RUNTIME_OPTIONS_TYPE.into(),
            value: vec![0x10, 0x01], // field 2 as a varint
            ..Default::default()
        };
        assert!(matches!(
            RuntimeOptions::from_any(Some(&any)),
            Err(OptionsError::Decode { .. })
        ));
    }

    #[test]
    fn runc_state_is_kept_per_namespace() {
        let o = RuntimeOptions::default();
        assert_eq!(
            o.runc_root("k8s.io"),
            Path::new("/run/containerd/runc/k8s.io")
        );
    }

    #[test]
    fn stored_options_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            RuntimeOptions::load(dir.path()).unwrap(),
            RuntimeOptions::default()
        );
        let o = RuntimeOptions {
            root: "/tmp/root".into(),
            init_path: "/x/init".into(),
            ..Default::default()
        };
        o.store(dir.path()).unwrap();
        assert_eq!(RuntimeOptions::load(dir.path()).unwrap(), o);
    }
}
