//! A directory tree's paths and bytes, to show that something left a tree exactly as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every path under a root, relative to it, with its bytes (directories as `None`).
pub type TreeSnapshot = BTreeMap<PathBuf, Option<Vec<u8>>>;

/// The snapshot of the tree under `root` (symbolic links followed). Panics on an unreadable
/// entry: it is a test's assertion helper.
pub fn tree_snapshot(root: &Path) -> TreeSnapshot {
    fn walk(dir: &Path, root: &Path, into: &mut TreeSnapshot) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                into.insert(relative, None);
                walk(&path, root, into);
            } else {
                let bytes =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                into.insert(relative, Some(bytes));
            }
        }
    }
    let mut files = TreeSnapshot::new();
    walk(root, root, &mut files);
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_holds_every_path_and_sees_a_changed_byte() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/containerd")).unwrap();
        std::fs::write(root.path().join("etc/containerd/config.toml"), "a").unwrap();
        let before = tree_snapshot(root.path());
        assert_eq!(
            before
                .keys()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>(),
            ["etc", "etc/containerd", "etc/containerd/config.toml"]
        );
        assert_eq!(before[Path::new("etc")], None);
        std::fs::write(root.path().join("etc/containerd/config.toml"), "b").unwrap();
        assert_ne!(tree_snapshot(root.path()), before);
    }
}
