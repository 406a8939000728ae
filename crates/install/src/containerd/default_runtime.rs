//! `--default`: containerd's default CRI runtime, `default_runtime_name` in the CRI runtime
//! plugin's `containerd` table (schema 2: `io.containerd.grpc.v1.cri`, schema 3:
//! `io.containerd.cri.v1.runtime`), made ours and given back exactly.

use serde::{Deserialize, Serialize};
use toml_edit::{value, DocumentMut, Item, Table, TableLike, Value};

use super::runtime_table::lookup;
use super::Schema;
use crate::RUNTIME_NAME;

/// The key, in the `containerd` table of the CRI runtime plugin.
pub const KEY: &str = "default_runtime_name";
/// What containerd runs pods with when no `default_runtime_name` is set.
pub const CONTAINERD_DEFAULT: &str = "runc";

/// The default runtime an install with `--default` replaced (recorded in the install state).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplacedDefault {
    /// The `default_runtime_name` the config had; `None`: the key was not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ReplacedDefault {
    /// The runtime containerd ran pods with (`runc` when no name was set).
    pub fn runtime(&self) -> &str {
        self.name.as_deref().unwrap_or(CONTAINERD_DEFAULT)
    }
}

/// The key path of the `containerd` table.
fn containerd_path(schema: Schema) -> [&'static str; 3] {
    let [plugins, plugin, containerd, _] = schema.runtimes_path();
    [plugins, plugin, containerd]
}

/// The `default_runtime_name` the document sets, if any (an empty string is none).
pub fn name(doc: &DocumentMut, schema: Schema) -> Option<String> {
    let mut keys = containerd_path(schema).to_vec();
    keys.push(KEY);
    lookup(doc.as_table(), &keys)
        .and_then(Item::as_str)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
}

/// Whether the document makes our runtime the default.
pub fn is_ours(doc: &DocumentMut, schema: Schema) -> bool {
    name(doc, schema).as_deref() == Some(RUNTIME_NAME)
}

/// Sets `default_runtime_name` to `runtime`. An existing value is replaced where it stands,
/// keeping its spacing and comment; else the key is added to the `containerd` table (created
/// when there is none). Errors describe a config shape we cannot edit.
pub fn set(doc: &mut DocumentMut, schema: Schema, runtime: &str) -> Result<(), String> {
    let table = as_table(containerd_item_mut(doc, schema)?, schema)?;
    match table.get_mut(KEY) {
        Some(Item::Value(old @ Value::String(_))) => {
            let decor = old.decor().clone();
            *old = Value::from(runtime);
            *old.decor_mut() = decor;
            Ok(())
        }
        Some(_) => Err(format!(
            "`{}.{KEY}` is not a string",
            containerd_path(schema).join(".")
        )),
        None => {
            table.insert(KEY, value(runtime));
            Ok(())
        }
    }
}

/// Undoes [`set`] when the default is ours: gives back `previous`, or with none removes the
/// key (and an emptied `containerd` table's header). Returns whether anything changed.
pub fn restore(doc: &mut DocumentMut, schema: Schema, previous: Option<&str>) -> bool {
    if !is_ours(doc, schema) {
        return false;
    }
    if let Some(previous) = previous {
        return set(doc, schema, previous).is_ok();
    }
    let Ok(item) = containerd_item_mut(doc, schema) else {
        return false;
    };
    if let Some(table) = item.as_table_like_mut() {
        table.remove(KEY);
    }
    if let Some(table) = item.as_table_mut() {
        if table.iter().all(|(_, item)| item.is_table()) {
            // Only sub-tables are left: the header was there for our key alone.
            table.set_implicit(true);
        }
    }
    true
}

/// The `containerd` table's item, created (an implicit table, which prints no header until
/// it has a key) with the tables above it when missing.
fn containerd_item_mut(doc: &mut DocumentMut, schema: Schema) -> Result<&mut Item, String> {
    let implicit = || {
        let mut table = Table::new();
        table.set_implicit(true);
        Item::Table(table)
    };
    let [plugins, plugin, containerd] = containerd_path(schema);
    let mut table: &mut dyn TableLike = doc.as_table_mut();
    let mut walked = Vec::new();
    for key in [plugins, plugin] {
        walked.push(key);
        table = table
            .entry(key)
            .or_insert_with(implicit)
            .as_table_like_mut()
            .ok_or_else(|| format!("`{}` is not a table", walked.join(".")))?;
    }
    Ok(table.entry(containerd).or_insert_with(implicit))
}

fn as_table(item: &mut Item, schema: Schema) -> Result<&mut dyn TableLike, String> {
    item.as_table_like_mut()
        .ok_or_else(|| format!("`{}` is not a table", containerd_path(schema).join(".")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edited(text: &str, schema: Schema, runtime: &str) -> String {
        let mut doc: DocumentMut = text.parse().unwrap();
        set(&mut doc, schema, runtime).unwrap();
        doc.to_string()
    }

    #[test]
    fn an_existing_value_is_replaced_in_place_and_given_back() {
        let text = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name   =  \"runc\"  # kubeadm\n  snapshotter = \"overlayfs\"\n";
        let ours = edited(text, Schema::V2, RUNTIME_NAME);
        assert_eq!(
            ours,
            text.replace("\"runc\"", "\"undertaker\""),
            "only the value changed"
        );
        let mut doc: DocumentMut = ours.parse().unwrap();
        assert!(is_ours(&doc, Schema::V2));
        assert!(restore(&mut doc, Schema::V2, Some("runc")));
        assert_eq!(doc.to_string(), text);
        assert!(!restore(&mut doc, Schema::V2, Some("runc")), "not ours now");
    }

    #[test]
    fn a_missing_key_is_added_and_removed_again() {
        let text = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n";
        let ours = edited(text, Schema::V2, RUNTIME_NAME);
        let doc: DocumentMut = ours.parse().unwrap();
        assert_eq!(
            name(&doc, Schema::V2).as_deref(),
            Some(RUNTIME_NAME),
            "{ours}"
        );
        let mut doc: DocumentMut = ours.parse().unwrap();
        assert!(restore(&mut doc, Schema::V2, None));
        assert_eq!(doc.to_string(), text);
        assert_eq!(name(&doc, Schema::V2), None);
    }

    #[test]
    fn schema_3_uses_the_cri_runtime_plugin_and_a_non_string_is_refused() {
        let ours = edited("version = 3\n", Schema::V3, RUNTIME_NAME);
        assert!(
            ours.contains("[plugins.\"io.containerd.cri.v1.runtime\".containerd]\ndefault_runtime_name = \"undertaker\"\n"),
            "{ours}"
        );
        let mut doc: DocumentMut = "[plugins.cri.containerd]\ndefault_runtime_name = 3\n"
            .parse()
            .unwrap();
        let error = set(&mut doc, Schema::V1, RUNTIME_NAME).unwrap_err();
        assert!(
            error.contains("plugins.cri.containerd.default_runtime_name"),
            "{error}"
        );
    }
}
