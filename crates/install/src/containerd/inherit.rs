//! The options our runtime takes over from the node's runc runtime, so containers run under
//! undertaker exactly as they did under runc (same cgroup driver, same runc binary and root).

use toml_edit::{DocumentMut, Item};

use super::runtime_table::lookup;
use super::Schema;

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
    fn nothing_to_inherit_from_an_empty_config() {
        assert_eq!(options("version = 2\n", Schema::V2), RuncOptions::default());
    }
}
