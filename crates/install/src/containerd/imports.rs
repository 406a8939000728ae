//! The top-level `imports` list of containerd's config: whether it already pulls in our
//! drop-in, and adding or removing exactly our entry.

use std::path::Path;

use toml_edit::{value, Array, DocumentMut, Item, RawString, Value};

/// Whether an `imports` entry names `drop_in` or matches it as a glob. containerd resolves
/// relative entries against the directory of the config file.
pub fn covers(doc: &DocumentMut, drop_in: &Path, config_dir: &Path) -> bool {
    let Some(entries) = doc.get("imports").and_then(Item::as_array) else {
        return false;
    };
    entries.iter().filter_map(Value::as_str).any(|entry| {
        let absolute = config_dir.join(entry);
        absolute == drop_in
            || glob::Pattern::new(&absolute.to_string_lossy())
                .is_ok_and(|pattern| pattern.matches_path(drop_in))
    })
}

/// Appends `entry` to `imports` (created when absent), keeping the list's layout: in a
/// one-entry-per-line list ours gets its own line with the same indentation, and comments stay
/// on the lines they were on.
pub fn add(doc: &mut DocumentMut, entry: &str) -> Result<(), String> {
    let Some(item) = doc.get_mut("imports") else {
        doc.insert("imports", value(Array::from_iter([entry])));
        return Ok(());
    };
    let entries = item
        .as_array_mut()
        .ok_or("`imports` is not a list of file names")?;
    let mut new_entry = Value::from(entry);
    if let Some(last) = entries.iter().last() {
        // "\n  " for an entry on its own line, else a space.
        let last_prefix = raw(last.decor().prefix());
        let line_start = last_prefix
            .rfind('\n')
            .map_or(" ", |newline| &last_prefix[newline..])
            .to_string();
        if entries.trailing_comma() {
            // `"a", # comment\n]`: what follows the comma up to the line end stays on a's line.
            let trailing = raw(Some(entries.trailing())).to_string();
            let (same_line, rest) =
                trailing.split_at(trailing.find('\n').unwrap_or(trailing.len()));
            new_entry
                .decor_mut()
                .set_prefix(format!("{same_line}{line_start}"));
            entries.set_trailing(rest.to_string());
        } else {
            // `"a"\n]`: the line break before `]` moves behind our entry.
            let last = entries
                .iter_mut()
                .last()
                .expect("the list has a last entry");
            let suffix = raw(last.decor().suffix()).to_string();
            last.decor_mut().set_suffix("");
            new_entry.decor_mut().set_prefix(line_start);
            new_entry.decor_mut().set_suffix(suffix);
        }
    }
    entries.push_formatted(new_entry);
    Ok(())
}

/// Removes every `imports` entry equal to `entry` (undoing [`add`]'s layout changes when it is
/// the last one), and the key when nothing is left in it; returns whether anything was removed.
pub fn remove(doc: &mut DocumentMut, entry: &str) -> bool {
    let Some(entries) = doc.get_mut("imports").and_then(Item::as_array_mut) else {
        return false;
    };
    let mut removed = false;
    loop {
        let position = entries
            .iter()
            .position(|value| value.as_str() == Some(entry));
        let Some(index) = position else { break };
        let gone = entries.remove(index);
        removed = true;
        if index != entries.len() || index == 0 {
            continue;
        }
        if entries.trailing_comma() {
            let gone_prefix = raw(gone.decor().prefix());
            let same_line = &gone_prefix[..gone_prefix.rfind('\n').unwrap_or(0)];
            let trailing = format!("{same_line}{}", raw(Some(entries.trailing())));
            entries.set_trailing(trailing);
        } else if let Some(last) = entries.get_mut(index - 1) {
            last.decor_mut()
                .set_suffix(raw(gone.decor().suffix()).to_string());
        }
    }
    if removed && entries.is_empty() {
        doc.remove("imports");
    }
    removed
}

/// The text of a piece of decor as parsed (empty when there is none).
fn raw(text: Option<&RawString>) -> &str {
    text.and_then(RawString::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DROP_IN: &str = "/etc/containerd/conf.d/undertaker.toml";

    fn covered(text: &str) -> bool {
        covers(
            &text.parse().unwrap(),
            Path::new(DROP_IN),
            Path::new("/etc/containerd"),
        )
    }

    #[test]
    fn exact_relative_and_glob_entries_cover_the_drop_in() {
        assert!(covered(&format!("imports = [\"{DROP_IN}\"]")));
        assert!(covered("imports = [\"/etc/containerd/conf.d/*.toml\"]"));
        assert!(covered("imports = [\"conf.d/*.toml\"]"));
        assert!(!covered("imports = [\"/etc/containerd/other/*.toml\"]"));
        assert!(!covered("imports = []"));
        assert!(!covered("version = 3"));
    }

    #[test]
    fn appends_once_to_a_one_per_line_list() {
        let text = "version = 3\nimports = [\n    \"/etc/containerd/site.toml\",\n]\n";
        let mut doc: DocumentMut = text.parse().unwrap();
        add(&mut doc, DROP_IN).unwrap();
        let expected = format!(
            "version = 3\nimports = [\n    \"/etc/containerd/site.toml\",\n    \"{DROP_IN}\",\n]\n"
        );
        assert_eq!(doc.to_string(), expected);
        assert!(remove(&mut doc, DROP_IN));
        assert_eq!(doc.to_string(), text);
    }

    #[test]
    fn single_line_lists_and_comments_keep_their_places() {
        let text = "imports = [\"/a.toml\"]\n";
        let mut doc: DocumentMut = text.parse().unwrap();
        add(&mut doc, DROP_IN).unwrap();
        assert_eq!(
            doc.to_string(),
            format!("imports = [\"/a.toml\", \"{DROP_IN}\"]\n")
        );
        assert!(remove(&mut doc, DROP_IN));
        assert_eq!(doc.to_string(), text);

        let text = "imports = [\n  \"/a.toml\", # site\n]\n";
        let mut doc: DocumentMut = text.parse().unwrap();
        add(&mut doc, DROP_IN).unwrap();
        assert_eq!(
            doc.to_string(),
            format!("imports = [\n  \"/a.toml\", # site\n  \"{DROP_IN}\",\n]\n")
        );
        assert!(remove(&mut doc, DROP_IN));
        assert_eq!(doc.to_string(), text);
    }

    #[test]
    fn appends_to_a_list_without_trailing_comma() {
        let text = "imports = [\n        \"/etc/containerd/site.toml\"\n]\n";
        let mut doc: DocumentMut = text.parse().unwrap();
        add(&mut doc, DROP_IN).unwrap();
        assert_eq!(
            doc.to_string(),
            format!(
                "imports = [\n        \"/etc/containerd/site.toml\",\n        \"{DROP_IN}\"\n]\n"
            )
        );
        assert!(remove(&mut doc, DROP_IN));
        assert_eq!(doc.to_string(), text);
    }

    #[test]
    fn creates_the_key_and_removes_it_again() {
        let text = "version = 3\n\n[grpc]\n  address = \"/run/containerd/containerd.sock\"\n";
        let mut doc: DocumentMut = text.parse().unwrap();
        add(&mut doc, DROP_IN).unwrap();
        assert!(
            doc.to_string()
                .starts_with(&format!("version = 3\nimports = [\"{DROP_IN}\"]\n")),
            "{doc}"
        );
        assert!(remove(&mut doc, DROP_IN));
        assert_eq!(doc.to_string(), text);
    }

    #[test]
    fn a_non_list_imports_is_refused() {
        let mut doc: DocumentMut = "imports = \"/etc/x.toml\"\n".parse().unwrap();
        assert!(add(&mut doc, DROP_IN).is_err());
    }
}
