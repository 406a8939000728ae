//! Runtime options: what containerd hands the shim in `CreateTaskRequest.options`.
//!
//! The options themselves (keys, defaults, the TOML file) are defined once, in
//! `undertaker-options`, which the installer and the testbed use too. This module only decodes
//! the protobuf `Any` containerd sends — runc's own options type, or
//! `runtimeoptions.v1.Options` whose `ConfigPath` names a TOML file and (containerd >= 1.7)
//! whose `ConfigBody` carries the runtime's whole `options` table — and keeps a copy of the
//! options in the bundle for the `delete` action.

use std::path::{Path, PathBuf};

use containerd_shim_protos::{
    protobuf::{well_known_types::any::Any, CodedInputStream, Message},
    shim::oci::Options as RuncOptions,
};
pub use undertaker_options::RuntimeOptions;

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
    #[error(transparent)]
    Config(#[from] undertaker_options::OptionsError),
    #[error("stored options {path}: {reason}")]
    Stored { path: PathBuf, reason: String },
}

/// What the shim adds to [`RuntimeOptions`]: decoding containerd's `Any`, and the copy in the
/// bundle.
pub trait ShimOptions: Sized {
    /// Decodes the options of a create request; `None` means containerd sent none.
    fn from_any(any: Option<&Any>) -> Result<Self, OptionsError>;
    /// Stores the options in the bundle for the `delete` action.
    fn store(&self, bundle: &Path) -> Result<(), OptionsError>;
    /// Loads what [`ShimOptions::store`] wrote; defaults when nothing was stored.
    fn load(bundle: &Path) -> Result<Self, OptionsError>;
}

impl ShimOptions for RuntimeOptions {
    fn from_any(any: Option<&Any>) -> Result<Self, OptionsError> {
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
                Ok(from_runc(&runc))
            }
            RUNTIME_OPTIONS_TYPE => {
                let generic =
                    GenericOptions::decode(&any.value).map_err(|reason| OptionsError::Decode {
                        type_url: any.type_url.clone(),
                        reason,
                    })?;
                let options = if !generic.config_body.is_empty() {
                    Self::from_toml(&generic.config_body, "(ConfigBody)")?
                } else if !generic.config_path.is_empty() {
                    Self::from_file(Path::new(&generic.config_path))?
                } else {
                    Self::default()
                };
                Ok(options)
            }
            "" if any.value.is_empty() => Ok(Self::default()),
            _ => Err(OptionsError::UnknownType {
                type_url: any.type_url.clone(),
            }),
        }
    }

    fn store(&self, bundle: &Path) -> Result<(), OptionsError> {
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

    fn load(bundle: &Path) -> Result<Self, OptionsError> {
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

/// runc's options type, field by field; empty strings keep the defaults.
fn from_runc(runc: &RuncOptions) -> RuntimeOptions {
    let defaults = RuntimeOptions::default();
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

    #[test]
    fn a_file_stored_by_an_earlier_shim_loads() {
        let dir = tempfile::tempdir().unwrap();
        let earlier = r#"{"BinaryName":"runc","Root":"/run/r","SystemdCgroup":true,"InitPath":"/i","NoPivotRoot":false,"NoNewKeyring":true,"ShimCgroup":"","IoUid":5,"IoGid":6}"#;
        std::fs::write(dir.path().join(OPTIONS_FILE), earlier).unwrap();
        let o = RuntimeOptions::load(dir.path()).unwrap();
        assert_eq!((o.root.as_str(), o.io_uid, o.io_gid), ("/run/r", 5, 6));
        assert!(o.systemd_cgroup && o.no_new_keyring);
        o.store(dir.path()).unwrap();
        let written = std::fs::read_to_string(dir.path().join(OPTIONS_FILE)).unwrap();
        assert_eq!(written, earlier, "the stored form is unchanged");
    }

    #[test]
    fn a_config_body_with_every_runc_key_decodes() {
        let body =
            "NoPivotRoot = true\nNoNewKeyring = true\nShimCgroup = \"/s\"\nIoUid = 3\nIoGid = 4\n";
        let o = RuntimeOptions::from_any(Some(&generic("", body))).unwrap();
        assert!(o.no_pivot_root && o.no_new_keyring);
        assert_eq!((o.shim_cgroup.as_str(), o.io_uid, o.io_gid), ("/s", 3, 4));
        let typo = RuntimeOptions::from_any(Some(&generic("", "IoUidd = 3\n"))).unwrap_err();
        assert!(typo.to_string().contains("IoUidd"), "{typo}");
    }
}
