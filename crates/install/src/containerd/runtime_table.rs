//! Our runtime's table under `plugins.<cri plugin>.containerd.runtimes`: building, finding,
//! adding and removing it in a config document without touching anything else.

use toml_edit::{value, Array, Decor, DocumentMut, Item, Key, Table, TableLike};

use super::Schema;
use crate::{ANNOTATION_PATTERN, RUNTIME_NAME, RUNTIME_TYPE};

/// The comment above the table, so whoever reads the config knows where it came from.
const HEADER_COMMENT: &str =
    "# Added by `undertaker install`; `undertaker uninstall` removes it.\n";

/// The item at `keys` under `table`, through tables and inline tables alike.
pub fn lookup<'a>(table: &'a dyn TableLike, keys: &[&str]) -> Option<&'a Item> {
    let (first, rest) = keys.split_first()?;
    let item = table.get(first)?;
    if rest.is_empty() {
        return Some(item);
    }
    lookup(item.as_table_like()?, rest)
}

/// Our runtime's table in `doc`, if the config defines one.
pub fn find(doc: &DocumentMut, schema: Schema) -> Option<&Item> {
    let mut keys = schema.runtimes_path().to_vec();
    keys.push(RUNTIME_NAME);
    lookup(doc.as_table(), &keys)
}

/// Whether a runtime table registers what we would: our runtime type, the annotation
/// pass-through, and `ConfigPath`. Keys an operator added beside ours are fine.
pub fn matches(runtime: &Item, config_path: &str) -> bool {
    let Some(table) = runtime.as_table_like() else {
        return false;
    };
    let str_at = |keys: &[&str]| lookup(table, keys).and_then(Item::as_str);
    let is_our_pattern_list = |key: &str| {
        table.get(key).and_then(Item::as_array).is_some_and(|list| {
            list.iter()
                .any(|entry| entry.as_str() == Some(ANNOTATION_PATTERN))
        })
    };
    str_at(&["runtime_type"]) == Some(RUNTIME_TYPE)
        && is_our_pattern_list("pod_annotations")
        && is_our_pattern_list("container_annotations")
        && str_at(&["options", "ConfigPath"]) == Some(config_path)
}

/// Adds our runtime table (which must not exist yet), creating the tables above it as
/// implicit tables so they print no headers. Errors describe a config shape we cannot extend.
pub fn add(doc: &mut DocumentMut, schema: Schema, config_path: &str) -> Result<(), String> {
    let mut table = doc.as_table_mut();
    let mut walked = Vec::new();
    for key in schema.runtimes_path() {
        walked.push(key);
        let item = table.entry(key).or_insert_with(|| {
            let mut implicit = Table::new();
            implicit.set_implicit(true);
            Item::Table(implicit)
        });
        table = item.as_table_mut().ok_or_else(|| {
            format!(
                "`{}` is not a table (an inline table or a value); add runtime `{RUNTIME_NAME}` by hand",
                walked.join(".")
            )
        })?;
    }
    let mut runtime = build(config_path);
    // At the end of the file, where a reader finds it and nothing else moves.
    runtime.set_position(Some(isize::MAX));
    table.insert(RUNTIME_NAME, Item::Table(runtime));
    Ok(())
}

/// Removes our runtime table; returns whether there was one.
pub fn remove(doc: &mut DocumentMut, schema: Schema) -> bool {
    let mut table: &mut dyn TableLike = doc.as_table_mut();
    for key in schema.runtimes_path() {
        match table.get_mut(key).and_then(Item::as_table_like_mut) {
            Some(inner) => table = inner,
            None => return false,
        }
    }
    table.remove(RUNTIME_NAME).is_some()
}

/// The table we register, laid out like containerd's own examples (indented keys).
fn build(config_path: &str) -> Table {
    let mut runtime = Table::new();
    runtime
        .decor_mut()
        .set_prefix(format!("\n{HEADER_COMMENT}"));
    insert_indented(&mut runtime, "  ", "runtime_type", value(RUNTIME_TYPE));
    for key in ["pod_annotations", "container_annotations"] {
        let patterns = Array::from_iter([ANNOTATION_PATTERN]);
        insert_indented(&mut runtime, "  ", key, value(patterns));
    }
    let mut options = Table::new();
    options.decor_mut().set_prefix("  ");
    insert_indented(&mut options, "    ", "ConfigPath", value(config_path));
    runtime.insert("options", Item::Table(options));
    runtime
}

fn insert_indented(table: &mut Table, indent: &str, key: &str, item: Item) {
    let key = Key::new(key).with_leaf_decor(Decor::new(indent, " "));
    table.insert_formatted(&key, item);
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG_PATH: &str = "/etc/undertaker/runtime.toml";

    #[test]
    fn adds_a_table_that_matches_and_reads_well() {
        let mut doc: DocumentMut = "version = 2\n".parse().unwrap();
        add(&mut doc, Schema::V2, CONFIG_PATH).unwrap();
        let text = doc.to_string();
        let expected = "version = 2\n\
            \n\
            # Added by `undertaker install`; `undertaker uninstall` removes it.\n\
            [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.undertaker]\n\
            \x20 runtime_type = \"io.containerd.undertaker.v2\"\n\
            \x20 pod_annotations = [\"undertaker.io/*\"]\n\
            \x20 container_annotations = [\"undertaker.io/*\"]\n\
            \x20 [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.undertaker.options]\n\
            \x20   ConfigPath = \"/etc/undertaker/runtime.toml\"\n";
        assert_eq!(text, expected);
        let reparsed: DocumentMut = text.parse().unwrap();
        assert!(matches(find(&reparsed, Schema::V2).unwrap(), CONFIG_PATH));
        assert!(!matches(
            find(&reparsed, Schema::V2).unwrap(),
            "/elsewhere.toml"
        ));
    }

    #[test]
    fn remove_undoes_add() {
        let original =
            "version = 3\n\n[plugins.\"io.containerd.cri.v1.runtime\"]\n  enable_selinux = false\n";
        let mut doc: DocumentMut = original.parse().unwrap();
        add(&mut doc, Schema::V3, CONFIG_PATH).unwrap();
        assert!(remove(&mut doc, Schema::V3));
        assert_eq!(doc.to_string(), original);
        assert!(!remove(&mut doc, Schema::V3));
    }

    #[test]
    fn an_inline_runtimes_table_is_refused_with_its_path() {
        let mut doc: DocumentMut = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  runtimes = { runc = { runtime_type = \"io.containerd.runc.v2\" } }\n"
            .parse()
            .unwrap();
        let error = add(&mut doc, Schema::V2, CONFIG_PATH).unwrap_err();
        assert!(
            error.contains("plugins.io.containerd.grpc.v1.cri.containerd.runtimes"),
            "{error}"
        );
    }

    #[test]
    fn extra_operator_keys_still_match() {
        let text = "[plugins.cri.containerd.runtimes.undertaker]\n\
            runtime_type = \"io.containerd.undertaker.v2\"\n\
            pod_annotations = [\"undertaker.io/*\", \"example.com/x\"]\n\
            container_annotations = [\"undertaker.io/*\"]\n\
            privileged_without_host_devices = true\n\
            options = { ConfigPath = \"/etc/undertaker/runtime.toml\" }\n";
        let doc: DocumentMut = text.parse().unwrap();
        assert!(matches(find(&doc, Schema::V1).unwrap(), CONFIG_PATH));
        let wrong_type: DocumentMut = text.replace("undertaker.v2", "runc.v2").parse().unwrap();
        assert!(!matches(
            find(&wrong_type, Schema::V1).unwrap(),
            CONFIG_PATH
        ));
    }
}
