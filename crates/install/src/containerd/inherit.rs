//! The options our runtime takes over from the node's runc runtime, so containers run under
//! undertaker exactly as they did under runc (same cgroup driver, same runc binary and root).

use toml_edit::{DocumentMut, Item, TableLike};

use super::default_runtime::CONTAINERD_DEFAULT;
use super::runtime_table::lookup;
use super::Schema;
use crate::RUNTIME_NAME;

/// What the node's runc runtime sets that our shim must set the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuncOptions {
    /// The runtime these came from (`runc`, or the `default_runtime_name`).
    pub from_runtime: Option<String>,
    pub binary_name: Option<String>,
    pub root: Option<String>,
    pub systemd_cgroup: bool,
}

/// The options of the default runtime when it is a runc runtime, else of runtime `runc`, else
/// none (containerd's runc defaults then apply).
pub fn runc_options(doc: &DocumentMut, schema: Schema) -> RuncOptions {
    let [plugins, plugin, containerd, runtimes] = schema.runtimes_path();
    let Some(cri) =
        lookup(doc.as_table(), &[plugins, plugin, containerd]).and_then(Item::as_table_like)
    else {
        return RuncOptions::default();
    };
    let default_name = cri
        .get("default_runtime_name")
        .and_then(Item::as_str)
        .filter(|name| !name.is_empty());
    let runc_runtime = |name: &str| {
        lookup(cri, &[runtimes, name])
            .and_then(Item::as_table_like)
            .filter(|runtime| {
                let runtime_type = runtime.get("runtime_type").and_then(Item::as_str);
                runtime_type.is_some_and(|kind| kind.starts_with("io.containerd.runc."))
            })
            .map(|runtime| (name.to_string(), runtime))
    };
    let Some((name, runtime)) = default_name
        .and_then(runc_runtime)
        .or_else(|| runc_runtime("runc"))
    else {
        return RuncOptions::default();
    };
    let options = runtime.get("options").and_then(Item::as_table_like);
    let string_option = |key: &str| {
        options
            .and_then(|options| options.get(key))
            .and_then(Item::as_str)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
    };
    RuncOptions {
        from_runtime: Some(name),
        binary_name: string_option("BinaryName"),
        root: string_option("Root"),
        systemd_cgroup: options
            .and_then(|options| options.get("SystemdCgroup"))
            .and_then(Item::as_bool)
            .unwrap_or(false),
    }
}

/// What `--default` carries over from runtime `name`, the default it replaces: every key of
/// its `options` table, as TOML text for the shim's own options parser (which then refuses any
/// key the shim does not take). An error says why pods could not run under undertaker as they
/// ran under that runtime.
pub fn default_runtime_options(
    doc: &DocumentMut,
    schema: Schema,
    name: &str,
) -> Result<String, String> {
    let [plugins, plugin, containerd, runtimes] = schema.runtimes_path();
    let runtime = lookup(
        doc.as_table(),
        &[plugins, plugin, containerd, runtimes, name],
    )
    .and_then(Item::as_table_like);
    let Some(runtime) = runtime else {
        if name == CONTAINERD_DEFAULT {
            // containerd's built-in runc runtime: runc's defaults, which are the shim's too.
            return Ok(String::new());
        }
        return Err(format!(
            "the default runtime `{name}` is not defined in this file, so its options cannot be \
             carried over to `{RUNTIME_NAME}`"
        ));
    };
    let runtime_type = runtime
        .get("runtime_type")
        .and_then(Item::as_str)
        .unwrap_or("");
    if !runtime_type.starts_with("io.containerd.runc.") {
        return Err(format!(
            "the default runtime `{name}` has runtime_type `{runtime_type}`, not a runc runtime; \
             undertaker runs pods with a runc-compatible runtime, so making it the default would \
             change what every pod runs in"
        ));
    }
    let mut options = DocumentMut::new();
    if let Some(table) = runtime.get("options").and_then(Item::as_table_like) {
        copy_keys(table, &mut options);
    }
    Ok(options.to_string())
}

fn copy_keys(from: &dyn TableLike, into: &mut DocumentMut) {
    for (key, item) in from.iter() {
        let item = match item {
            // An inline table's values become the document's own keys.
            Item::Value(value) => Item::Value(value.clone().decorated("", "")),
            other => other.clone(),
        };
        into.insert(key, item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(text: &str, schema: Schema) -> RuncOptions {
        runc_options(&text.parse().unwrap(), schema)
    }

    #[test]
    fn takes_systemd_cgroup_binary_and_root_from_runc() {
        let text = r#"version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
    BinaryName = "/usr/local/sbin/runc-custom"
    Root = "/run/runc-custom"
"#;
        let inherited = options(text, Schema::V2);
        assert_eq!(inherited.from_runtime.as_deref(), Some("runc"));
        assert!(inherited.systemd_cgroup);
        assert_eq!(
            inherited.binary_name.as_deref(),
            Some("/usr/local/sbin/runc-custom")
        );
        assert_eq!(inherited.root.as_deref(), Some("/run/runc-custom"));
    }

    #[test]
    fn prefers_the_default_runtime_when_it_is_runc_based() {
        let text = r#"version = 3
[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "crun"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
    SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.crun]
    runtime_type = "io.containerd.runc.v2"
    options = { BinaryName = "crun", SystemdCgroup = true }
"#;
        let inherited = options(text, Schema::V3);
        assert_eq!(inherited.from_runtime.as_deref(), Some("crun"));
        assert_eq!(inherited.binary_name.as_deref(), Some("crun"));
        assert!(inherited.systemd_cgroup);
    }

    #[test]
    fn falls_back_to_runc_when_the_default_is_another_shim() {
        let text = r#"
[plugins.cri.containerd]
  default_runtime_name = "kata"
[plugins.cri.containerd.runtimes.kata]
  runtime_type = "io.containerd.kata.v2"
  options = { SystemdCgroup = true }
[plugins.cri.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
"#;
        let inherited = options(text, Schema::V1);
        assert_eq!(inherited.from_runtime.as_deref(), Some("runc"));
        assert!(!inherited.systemd_cgroup);
    }

    #[test]
    fn default_runtime_options_are_every_key_of_a_runc_runtime() {
        let text = r#"version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  options = { SystemdCgroup = true, NoPivotRoot = true }
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]
  runtime_type = "io.containerd.kata.v2"
"#;
        let doc: DocumentMut = text.parse().unwrap();
        let options = default_runtime_options(&doc, Schema::V2, "runc").unwrap();
        let parsed = undertaker_options::RuntimeOptions::from_toml(&options, "t").unwrap();
        assert!(parsed.systemd_cgroup && parsed.no_pivot_root, "{options}");
        let kata = default_runtime_options(&doc, Schema::V2, "kata").unwrap_err();
        assert!(kata.contains("io.containerd.kata.v2"), "{kata}");
        let missing = default_runtime_options(&doc, Schema::V2, "gvisor").unwrap_err();
        assert!(missing.contains("`gvisor` is not defined"), "{missing}");
        let builtin = default_runtime_options(&DocumentMut::new(), Schema::V2, "runc").unwrap();
        assert_eq!(builtin, "", "containerd's own runc sets nothing");
    }

    #[test]
    fn nothing_to_inherit_from_an_empty_config() {
        assert_eq!(options("version = 2\n", Schema::V2), RuncOptions::default());
    }
}
