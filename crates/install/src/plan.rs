//! A plan: the whole-file changes a command makes, in the order it makes them. It prints as a
//! unified diff for `--dry-run`, applies atomically file by file, and rolls back.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use similar::TextDiff;

use crate::fsio::{self, FsError};
use crate::HostRoot;

/// Permission bits for installed binaries.
pub const BINARY_MODE: u32 = 0o755;
/// Permission bits for new config files (existing ones keep theirs).
pub const CONFIG_MODE: u32 = 0o644;

/// Whether a file is shown as a text diff or as a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Text,
    Binary,
}

/// One file's change. `before`/`after` of `None` mean the file does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The host path.
    pub path: PathBuf,
    /// Where this process reaches it (under `--host-root`).
    pub local: PathBuf,
    pub before: Option<Vec<u8>>,
    pub before_mode: Option<u32>,
    pub after: Option<Vec<u8>>,
    pub mode: u32,
    pub content: Content,
}

/// The changes, in application order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    changes: Vec<FileChange>,
}

/// What [`Plan::apply`] did, so it can be undone.
#[derive(Debug)]
#[must_use = "an applied plan is either kept or rolled back"]
pub struct Applied {
    changes: Vec<FileChange>,
    created_dirs: Vec<PathBuf>,
}

impl Plan {
    /// Plans host file `path` to hold `after` (`None`: not to exist). Nothing is planned when it
    /// already does. Existing files keep their permission bits unless `mode` is `Some`.
    pub fn set(
        &mut self,
        host: &HostRoot,
        path: &Path,
        after: Option<Vec<u8>>,
        mode: Option<u32>,
        content: Content,
    ) -> Result<(), FsError> {
        let local = host.path(path);
        let before = fsio::read_if_exists(&local)?;
        let before_mode = fsio::mode_if_exists(&local)?;
        let mode = mode.or(before_mode).unwrap_or(CONFIG_MODE);
        let mode_changes = after.is_some() && before.is_some() && before_mode != Some(mode);
        if before == after && !mode_changes {
            return Ok(());
        }
        self.changes.retain(|change| change.path != path);
        self.changes.push(FileChange {
            path: path.to_path_buf(),
            local,
            before,
            before_mode,
            after,
            mode,
            content,
        });
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn changes(&self) -> &[FileChange] {
        &self.changes
    }

    /// Whether the plan changes host file `path`.
    pub fn touches(&self, path: &Path) -> bool {
        self.changes.iter().any(|change| change.path == path)
    }

    /// The plan as a unified diff (text files) and one line per binary.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for change in &self.changes {
            let name = change.path.display().to_string();
            let (old_name, new_name) = match (&change.before, &change.after) {
                (None, _) => ("/dev/null".to_string(), name),
                (_, None) => (name, "/dev/null".to_string()),
                _ => (name.clone(), name),
            };
            if change.content == Content::Binary {
                let size = |bytes: &Option<Vec<u8>>| bytes.as_ref().map_or(0, Vec::len);
                let verb = match (&change.before, &change.after) {
                    (None, _) => "install",
                    (_, None) => "remove",
                    _ => "replace",
                };
                let _ = writeln!(
                    out,
                    "binary {}: {verb} ({} -> {} bytes)",
                    change.path.display(),
                    size(&change.before),
                    size(&change.after)
                );
                continue;
            }
            let old = String::from_utf8_lossy(change.before.as_deref().unwrap_or_default());
            let new = String::from_utf8_lossy(change.after.as_deref().unwrap_or_default());
            let diff = TextDiff::from_lines(old.as_ref(), new.as_ref());
            let _ = write!(out, "{}", diff.unified_diff().header(&old_name, &new_name));
            if change.before.is_some() && change.before == change.after {
                let _ = writeln!(out, "mode {}: {:o}", change.path.display(), change.mode);
            }
        }
        out
    }

    /// Makes every change, in order. When one fails, the ones made so far are rolled back.
    pub fn apply(&self) -> Result<Applied, FsError> {
        let mut applied = Applied {
            changes: Vec::new(),
            created_dirs: Vec::new(),
        };
        for change in &self.changes {
            if let Err(error) = apply_one(change, &mut applied.created_dirs) {
                if let Err(rollback) = applied.rollback() {
                    tracing::error!(%rollback, "rolling back after a failed change also failed");
                }
                return Err(error);
            }
            applied.changes.push(change.clone());
        }
        Ok(applied)
    }
}

fn apply_one(change: &FileChange, created_dirs: &mut Vec<PathBuf>) -> Result<(), FsError> {
    match &change.after {
        Some(bytes) => {
            if let Some(dir) = change.local.parent() {
                created_dirs.extend(fsio::create_dirs(dir)?);
            }
            fsio::write_atomic(&change.local, bytes, change.mode)
        }
        None => fsio::remove_if_exists(&change.local),
    }
}

impl Applied {
    /// Puts every changed file back as it was, newest change first, and removes the
    /// directories the changes created. Keeps going past failures; reports the first.
    pub fn rollback(self) -> Result<(), FsError> {
        let mut first_error = None;
        for change in self.changes.iter().rev() {
            let result = match &change.before {
                Some(bytes) => fsio::write_atomic(
                    &change.local,
                    bytes,
                    change.before_mode.unwrap_or(change.mode),
                ),
                None => fsio::remove_if_exists(&change.local),
            };
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        for dir in self.created_dirs.iter().rev() {
            fsio::remove_dir_if_empty(dir);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Keeps the changes.
    pub fn commit(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_only_real_changes_and_rolls_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostRoot::new(dir.path());
        std::fs::write(dir.path().join("same"), "same\n").unwrap();
        std::fs::write(dir.path().join("old"), "old\n").unwrap();
        let mut plan = Plan::default();
        plan.set(
            &host,
            Path::new("/same"),
            Some(b"same\n".to_vec()),
            None,
            Content::Text,
        )
        .unwrap();
        assert!(plan.is_empty(), "an identical file is not a change");
        plan.set(
            &host,
            Path::new("/old"),
            Some(b"new\n".to_vec()),
            None,
            Content::Text,
        )
        .unwrap();
        plan.set(
            &host,
            Path::new("/a/b/created"),
            Some(b"x".to_vec()),
            Some(0o755),
            Content::Binary,
        )
        .unwrap();
        plan.set(&host, Path::new("/same"), None, None, Content::Text)
            .unwrap();
        assert_eq!(plan.changes().len(), 3);

        let applied = plan.apply().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("old")).unwrap(),
            "new\n"
        );
        assert!(dir.path().join("a/b/created").exists());
        assert!(!dir.path().join("same").exists());

        applied.rollback().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("old")).unwrap(),
            "old\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("same")).unwrap(),
            "same\n"
        );
        assert!(
            !dir.path().join("a").exists(),
            "created directories are removed"
        );
    }

    #[test]
    fn diff_shows_text_changes_and_binary_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostRoot::new(dir.path());
        std::fs::write(dir.path().join("config.toml"), "a = 1\n").unwrap();
        let mut plan = Plan::default();
        plan.set(
            &host,
            Path::new("/config.toml"),
            Some(b"a = 1\nb = 2\n".to_vec()),
            None,
            Content::Text,
        )
        .unwrap();
        plan.set(
            &host,
            Path::new("/bin/shim"),
            Some(vec![0; 10]),
            Some(0o755),
            Content::Binary,
        )
        .unwrap();
        let diff = plan.diff();
        assert!(
            diff.contains("--- /config.toml\n+++ /config.toml\n"),
            "{diff}"
        );
        assert!(diff.contains("\n a = 1\n+b = 2\n"), "{diff}");
        assert!(
            diff.contains("binary /bin/shim: install (0 -> 10 bytes)"),
            "{diff}"
        );
    }

    #[test]
    fn a_failed_change_undoes_the_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostRoot::new(dir.path());
        std::fs::write(dir.path().join("first"), "before").unwrap();
        // A directory where a file should go makes the second write fail.
        std::fs::create_dir_all(dir.path().join("blocked/file")).unwrap();
        std::fs::write(dir.path().join("blocked/file/inside"), "").unwrap();
        let mut plan = Plan::default();
        plan.set(
            &host,
            Path::new("/first"),
            Some(b"after".to_vec()),
            None,
            Content::Text,
        )
        .unwrap();
        plan.changes.push(FileChange {
            path: "/blocked/file".into(),
            local: dir.path().join("blocked/file"),
            before: None,
            before_mode: None,
            after: Some(b"x".to_vec()),
            mode: 0o644,
            content: Content::Text,
        });
        assert!(plan.apply().is_err());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("first")).unwrap(),
            "before"
        );
    }
}
