//! Reading and writing a cgroup directory tree: the pids of a cgroup and all its
//! sub-cgroups, and the control files.
//!
//! A cgroup directory can only be removed once it has no process, so a directory that is
//! gone (ENOENT) is an empty cgroup, never an error.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{is_vanished, CgroupError};

/// Pids in `dir/cgroup.procs` and in every sub-cgroup below it.
pub(crate) fn pids_recursive(dir: &Path) -> Result<BTreeSet<i32>, CgroupError> {
    let mut pids = BTreeSet::new();
    for cgroup in cgroup_dirs(dir)? {
        pids.extend(read_pids(&cgroup.join("cgroup.procs"))?);
    }
    Ok(pids)
}

/// `dir` and every directory below it, parents before children.
pub(crate) fn cgroup_dirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        let entries = match std::fs::read_dir(&next) {
            Ok(entries) => entries,
            Err(err) if is_vanished(&err) => continue,
            Err(source) => return Err(CgroupError::ListCgroup { path: next, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| CgroupError::ListCgroup {
                path: next.clone(),
                source,
            })?;
            // Control files are regular files; only sub-cgroups are directories.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
        found.push(next);
    }
    Ok(found)
}

fn read_pids(path: &Path) -> Result<Vec<i32>, CgroupError> {
    let Some(content) = read_control(path)? else {
        return Ok(Vec::new());
    };
    content
        .split_whitespace()
        .map(|pid| {
            pid.parse().map_err(|_| CgroupError::ParseControl {
                path: path.to_owned(),
                reason: format!("{pid:?} is not a pid"),
            })
        })
        .collect()
}

/// A control file's content; `None` when it (or its cgroup) does not exist.
pub(crate) fn read_control(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(content) => Ok(Some(content)),
        Err(err) if is_vanished(&err) => Ok(None),
        Err(source) => Err(CgroupError::ReadControl {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes a control file in one `write(2)`, as cgroupfs expects; never creates it. `Ok(false)`
/// when the cgroup itself is gone.
pub(crate) fn write_control(path: &Path, value: &str) -> Result<bool, CgroupError> {
    let written = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()));
    match written {
        Ok(()) => Ok(true),
        Err(err) if is_vanished(&err) && !path.parent().is_some_and(Path::exists) => Ok(false),
        Err(source) => Err(CgroupError::WriteControl {
            path: path.to_owned(),
            source,
        }),
    }
}

/// `key value` lines as in `cgroup.events` (`populated 0`, `frozen 1`).
pub(crate) fn flat_keyed_value<'a>(content: &'a str, key: &str) -> Option<&'a str> {
    content.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then_some(v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_pids_of_nested_sub_cgroups_once_each() {
        let root = tempfile::tempdir().unwrap();
        let top = root.path().join("ctr");
        std::fs::create_dir_all(top.join("a/b")).unwrap();
        std::fs::create_dir_all(top.join("c")).unwrap();
        std::fs::write(top.join("cgroup.procs"), "10\n11\n").unwrap();
        std::fs::write(top.join("a/cgroup.procs"), "").unwrap();
        std::fs::write(top.join("a/b/cgroup.procs"), "12\n11\n").unwrap();
        std::fs::write(top.join("c/cgroup.procs"), "13\n").unwrap();
        let pids = pids_recursive(&top).unwrap();
        assert_eq!(pids.into_iter().collect::<Vec<_>>(), vec![10, 11, 12, 13]);
    }

    #[test]
    fn a_missing_cgroup_is_empty() {
        let root = tempfile::tempdir().unwrap();
        assert!(pids_recursive(&root.path().join("gone"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn garbage_in_cgroup_procs_is_an_error_naming_the_file() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.procs"), "12\nxyz\n").unwrap();
        let err = pids_recursive(root.path()).unwrap_err();
        assert!(err.to_string().contains("cgroup.procs"), "{err}");
    }

    #[test]
    fn writing_to_a_removed_cgroup_reports_it_gone() {
        let root = tempfile::tempdir().unwrap();
        assert!(!write_control(&root.path().join("gone/cgroup.kill"), "1").unwrap());
        // A missing control file in a live cgroup is an error, and is never created.
        assert!(write_control(&root.path().join("cgroup.kill"), "1").is_err());
        assert!(!root.path().join("cgroup.kill").exists());
        std::fs::write(root.path().join("cgroup.kill"), "").unwrap();
        assert!(write_control(&root.path().join("cgroup.kill"), "1").unwrap());
    }

    #[test]
    fn reads_flat_keyed_files() {
        let events = "populated 1\nfrozen 0\n";
        assert_eq!(flat_keyed_value(events, "populated"), Some("1"));
        assert_eq!(flat_keyed_value(events, "frozen"), Some("0"));
        assert_eq!(flat_keyed_value(events, "other"), None);
    }
}
