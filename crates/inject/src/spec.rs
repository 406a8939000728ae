//! The OCI runtime spec (a bundle's `config.json`) and an exec's process spec, as JSON: the
//! few fields undertaker reads or changes are looked up by name, and everything else is kept
//! exactly as containerd wrote it, fields newer than any typed model of the spec included.
//!
//! A typed model (the `oci-spec` crate) drops on its way back to JSON every field it does not
//! know, so a spec rewritten through it would lose what the runtime was meant to see; and its
//! `runtime` types link the `regex` crate, a quarter of the shim's binary, for one field's
//! check (docs/decisions.md).

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A bundle's OCI spec: a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Spec(Map<String, Value>);

/// An exec's OCI process spec (what containerd sends with `Exec`): a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Process(Map<String, Value>);

/// A mount of the spec, as far as undertaker looks at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRef<'a> {
    pub destination: &'a str,
    pub typ: Option<&'a str>,
    pub source: Option<&'a str>,
    /// The options that are strings.
    pub options: Vec<&'a str>,
}

impl Spec {
    /// Parses `config.json`; anything but a JSON object is an error.
    pub fn from_slice(json: &[u8]) -> serde_json::Result<Spec> {
        serde_json::from_slice(json)
    }

    /// The spec as JSON, every field it was read with still there.
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).expect("a JSON object always serializes")
    }

    /// The `annotations` whose values are strings (the spec allows nothing else).
    pub fn annotations(&self) -> HashMap<String, String> {
        self.0
            .get("annotations")
            .and_then(Value::as_object)
            .map(|annotations| {
                annotations
                    .iter()
                    .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the container gets a PID namespace of its own: `linux.namespaces` has a `pid`
    /// entry without a `path` to join (runc joins only a non-empty path).
    pub fn has_own_pid_namespace(&self) -> bool {
        let namespaces = self
            .0
            .get("linux")
            .and_then(|linux| linux.get("namespaces"))
            .and_then(Value::as_array);
        namespaces.is_some_and(|namespaces| {
            namespaces.iter().any(|ns| {
                ns.get("type").and_then(Value::as_str) == Some("pid")
                    && ns
                        .get("path")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
            })
        })
    }

    /// The `mounts` that have a string `destination`, in order.
    pub fn mounts(&self) -> Vec<MountRef<'_>> {
        let Some(mounts) = self.0.get("mounts").and_then(Value::as_array) else {
            return Vec::new();
        };
        mounts.iter().filter_map(mount_ref).collect()
    }

    /// Drops the mounts whose destination is `destination` and appends `mount` (last, so that
    /// it lands on top of what an earlier mount put there).
    pub(crate) fn replace_mount(&mut self, destination: &str, mount: Value) {
        let mounts = self
            .0
            .entry("mounts")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !mounts.is_array() {
            *mounts = Value::Array(Vec::new());
        }
        let mounts = mounts.as_array_mut().expect("made an array above");
        mounts.retain(|m| {
            m.get("destination")
                .and_then(Value::as_str)
                .is_none_or(|d| Path::new(d) != Path::new(destination))
        });
        mounts.push(mount);
    }

    /// The `process` object, if the spec has one.
    pub fn process(&self) -> Option<Process> {
        self.0
            .get("process")
            .and_then(Value::as_object)
            .map(|process| Process(process.clone()))
    }

    pub(crate) fn set_process(&mut self, process: Process) {
        self.0.insert("process".into(), Value::Object(process.0));
    }
}

impl Process {
    /// Parses an exec's process spec; anything but a JSON object is an error.
    pub fn from_slice(json: &[u8]) -> serde_json::Result<Process> {
        serde_json::from_slice(json)
    }

    /// The process spec as JSON, every field it was read with still there.
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).expect("a JSON object always serializes")
    }

    /// `args`: `None` when missing; `Some(Err)` naming the problem when it is not a list of
    /// strings.
    pub fn args(&self) -> Option<Result<Vec<String>, String>> {
        let args = self.0.get("args")?;
        if args.is_null() {
            return None;
        }
        Some(
            args.as_array()
                .and_then(|args| {
                    args.iter()
                        .map(|arg| arg.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| format!("process.args is not a list of strings: {args}")),
        )
    }

    pub(crate) fn set_args(&mut self, args: Vec<String>) {
        let args = args.into_iter().map(Value::String).collect();
        self.0.insert("args".into(), Value::Array(args));
    }
}

fn mount_ref(mount: &Value) -> Option<MountRef<'_>> {
    let field = |name: &str| mount.get(name).and_then(Value::as_str);
    Some(MountRef {
        destination: field("destination")?,
        typ: field("type"),
        source: field("source"),
        options: mount
            .get("options")
            .and_then(Value::as_array)
            .map(|options| options.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields of runtime-spec 1.2 and 1.3 and two that no version has (yet).
    const WITH_UNKNOWN_FIELDS: &str = r#"{
        "ociVersion": "1.2.0",
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                    "ioPriority": {"class": "IOPRIO_CLASS_IDLE"}, "futureField": [1, {"a": null}]},
        "root": {"path": "rootfs"},
        "linux": {"memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0"},
                  "namespaces": [{"type": "network", "path": "/proc/1/ns/net"}, {"type": "pid"}]},
        "annotations": {"a": "1", "not-a-string": 2},
        "futureTop": {"a": 1}
    }"#;

    #[test]
    fn every_field_survives_a_round_trip_unchanged() {
        let spec = Spec::from_slice(WITH_UNKNOWN_FIELDS.as_bytes()).unwrap();
        let written: Value = serde_json::from_slice(&spec.to_vec()).unwrap();
        let original: Value = serde_json::from_str(WITH_UNKNOWN_FIELDS).unwrap();
        assert_eq!(written, original);
        let process = spec.process().unwrap();
        let written: Value = serde_json::from_slice(&process.to_vec()).unwrap();
        assert_eq!(written, original["process"]);
    }

    #[test]
    fn numbers_read_back_exactly_as_written() {
        // The fuzzer's find: an integer too large for u64 (here 10^70 + 24) is read as a
        // float, which without serde_json's float_roundtrip came out as 9.999999999999999e69,
        // and the spec the shim wrote read back different again.
        let huge = format!("1{}24", "0".repeat(68));
        let text = format!(
            r#"{{"n": [{huge}, 1e70, 0.1, 5e-324, 1.7976931348623157e308,
                                    18446744073709551615, -9223372036854775808, 3]}}"#
        );
        let written = Spec::from_slice(text.as_bytes()).unwrap().to_vec();
        let read: Value = serde_json::from_slice(&written).unwrap();
        let floats: Vec<f64> = read["n"].as_array().unwrap()[..5]
            .iter()
            .map(|n| n.as_f64().unwrap())
            .collect();
        assert_eq!(floats, [1e70, 1e70, 0.1, 5e-324, f64::MAX]);
        assert_eq!(read["n"][5].as_u64(), Some(u64::MAX));
        assert_eq!(read["n"][6].as_i64(), Some(i64::MIN));
        let again = Spec::from_slice(&written).unwrap().to_vec();
        assert_eq!(
            String::from_utf8_lossy(&again),
            String::from_utf8_lossy(&written)
        );
    }

    #[test]
    fn only_json_objects_are_specs() {
        assert!(Spec::from_slice(b"[]").is_err());
        assert!(Spec::from_slice(b"{").is_err());
        assert!(Process::from_slice(b"\"sh\"").is_err());
        assert_eq!(Spec::from_slice(b"{}").unwrap(), Spec::default());
    }

    #[test]
    fn annotations_are_the_string_ones() {
        let spec = Spec::from_slice(WITH_UNKNOWN_FIELDS.as_bytes()).unwrap();
        assert_eq!(
            spec.annotations(),
            HashMap::from([("a".to_string(), "1".to_string())])
        );
        assert!(Spec::default().annotations().is_empty());
    }

    #[test]
    fn a_pid_namespace_is_its_own_unless_it_names_one_to_join() {
        let spec = |namespaces: &str| {
            Spec::from_slice(format!(r#"{{"linux": {{"namespaces": {namespaces}}}}}"#).as_bytes())
                .unwrap()
        };
        assert!(spec(r#"[{"type": "pid"}]"#).has_own_pid_namespace());
        assert!(spec(r#"[{"type": "pid", "path": ""}]"#).has_own_pid_namespace());
        assert!(!spec(r#"[{"type": "pid", "path": "/proc/42/ns/pid"}]"#).has_own_pid_namespace());
        assert!(!spec(r#"[{"type": "network"}]"#).has_own_pid_namespace());
        assert!(!spec(r#"{"type": "pid"}"#).has_own_pid_namespace());
        assert!(!Spec::default().has_own_pid_namespace());
    }

    #[test]
    fn args_are_a_list_of_strings_or_an_error_that_shows_them() {
        let process = |json: &str| Process::from_slice(json.as_bytes()).unwrap();
        assert_eq!(
            process(r#"{"args": ["sh", "-c"]}"#).args(),
            Some(Ok(vec!["sh".to_string(), "-c".to_string()]))
        );
        assert_eq!(process("{}").args(), None);
        assert_eq!(process(r#"{"args": null}"#).args(), None);
        let err = process(r#"{"args": ["sh", 1]}"#)
            .args()
            .unwrap()
            .unwrap_err();
        assert!(err.contains(r#"["sh",1]"#), "{err}");
        assert!(process(r#"{"args": "sh"}"#).args().unwrap().is_err());
    }

    #[test]
    fn mounts_without_a_destination_are_skipped_and_a_replaced_one_goes_last() {
        let mut spec = Spec::from_slice(
            br#"{"mounts": [
                {"destination": "/a/", "type": "bind", "source": "/x", "options": ["rbind", 7]},
                {"type": "tmpfs"},
                {"destination": "/b"}
            ]}"#,
        )
        .unwrap();
        let mounts = spec.mounts();
        assert_eq!(mounts.len(), 2);
        assert_eq!(
            mounts[0],
            MountRef {
                destination: "/a/",
                typ: Some("bind"),
                source: Some("/x"),
                options: vec!["rbind"],
            }
        );
        spec.replace_mount(
            "/a",
            serde_json::json!({"destination": "/a", "type": "new"}),
        );
        let mounts = spec.mounts();
        let destinations: Vec<_> = mounts.iter().map(|m| m.destination).collect();
        assert_eq!(
            destinations,
            ["/b", "/a"],
            "`/a/` is `/a`; the mount without one stays"
        );
        assert_eq!(mounts[1].typ, Some("new"));
        let mut empty = Spec::default();
        empty.replace_mount("/i", serde_json::json!({"destination": "/i"}));
        assert_eq!(empty.mounts().len(), 1);
    }
}
