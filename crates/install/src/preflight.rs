//! What `install` and `uninstall` check before they change anything, as one list. The dry run
//! reports the list the real run stops on, worded the same and with the same exit code, so
//! `--dry-run` never shows a clean diff for a run that would refuse.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::{access, AccessFlags};

use crate::runtime_config::OptionsError;
use crate::{ConfigError, FsError, Plan, RestartError, StateError, RUNTIME_NAME};

/// A reason a command stops before changing anything on the node.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot read {path} to install it ({source}); build the binaries first (install/install.sh does) or pass --from DIR")]
    MissingBinary {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Files(#[from] FsError),
    /// The runtime config already on the node is one the shim would refuse.
    #[error("{0}; fix or remove it, then install again")]
    RuntimeConfig(#[from] OptionsError),
    #[error(transparent)]
    Restart(#[from] RestartError),
    /// A directory the command writes in (the files are host paths), or an existing file it
    /// replaces (then `dir` is that file: immutable, say).
    #[error("cannot write {}: {} is not writable ({source})", list(files), dir.display())]
    NotWritable {
        dir: PathBuf,
        files: Vec<PathBuf>,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} pod sandbox(es) still run with runtime handler `{RUNTIME_NAME}` ({}); delete those pods (or drain the \
         node) first, or pass --force",
        ids.len(),
        ids.join(", ")
    )]
    InUse { ids: Vec<String> },
}

fn list(files: &[PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    names.join(", ")
}

/// Every problem found, in the order the checks ran. One problem reads as its own message;
/// several are numbered.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    pub fn push(&mut self, problem: impl Into<Problem>) {
        self.0.push(problem.into());
    }

    /// The value of a check that passed; a failed one is recorded and gives `None`.
    pub fn take<T, E: Into<Problem>>(&mut self, result: Result<T, E>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("no problems"),
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems (nothing was changed):", many.len())?;
                for (number, problem) in many.iter().enumerate() {
                    write!(f, "\n  {}. {problem}", number + 1)?;
                }
                Ok(())
            }
        }
    }
}

/// Problems are equal when they say the same (their sources are `io::Error`s).
impl PartialEq for Problems {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}
impl Eq for Problems {}

/// What stops `plan` from being applied by this process: each directory it writes or removes
/// files in must be writable (files are replaced by a rename from a temp file beside them; a
/// missing directory is created in its nearest existing parent), and no existing file may be
/// immutable. Read-only file systems (a read-only `/usr`, a read-only host mount) and
/// `chattr +i` show here; so do permission bits when not running as root.
pub fn unwritable(plan: &Plan) -> Vec<Problem> {
    let mut by_dir: BTreeMap<PathBuf, (Vec<PathBuf>, Errno)> = BTreeMap::new();
    let mut problems = Vec::new();
    for change in plan.changes() {
        let dir = nearest_existing(change.local.parent().unwrap_or(Path::new("/")));
        if let Err(errno) = access(&dir, AccessFlags::W_OK | AccessFlags::X_OK) {
            let entry = by_dir.entry(dir).or_insert_with(|| (Vec::new(), errno));
            entry.0.push(change.path.clone());
            continue;
        }
        // Root passes every permission check but this one (EROFS shows on the directory).
        if change.before.is_some() {
            if let Err(Errno::EPERM) = access(&change.local, AccessFlags::W_OK) {
                problems.push(Problem::NotWritable {
                    dir: change.local.clone(),
                    files: vec![change.path.clone()],
                    source: io::Error::from(Errno::EPERM),
                });
            }
        }
    }
    let mut all: Vec<Problem> = by_dir
        .into_iter()
        .map(|(dir, (files, errno))| Problem::NotWritable {
            dir,
            files,
            source: io::Error::from(errno),
        })
        .collect();
    all.extend(problems);
    all
}

/// `dir` or its nearest ancestor that exists.
fn nearest_existing(dir: &Path) -> PathBuf {
    let mut current = dir;
    while !current.exists() {
        match current.parent() {
            Some(parent) => current = parent,
            None => break,
        }
    }
    current.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Content;
    use crate::HostRoot;

    #[test]
    fn several_problems_are_numbered_and_one_reads_as_itself() {
        let mut problems = Problems::default();
        problems.push(Problem::InUse {
            ids: vec!["abc".into()],
        });
        let one = problems.to_string();
        assert!(one.starts_with("1 pod sandbox(es) still run"), "{one}");
        assert_eq!(
            problems.take::<(), _>(Err(Problem::InUse { ids: vec![] })),
            None
        );
        let two = problems.to_string();
        assert!(
            two.starts_with("2 problems (nothing was changed):\n  1. 1 pod sandbox"),
            "{two}"
        );
        assert!(two.contains("\n  2. 0 pod sandbox"), "{two}");
    }

    #[test]
    fn a_writable_temp_dir_has_no_problem_and_missing_dirs_are_checked_at_their_parent() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostRoot::new(dir.path());
        let mut plan = Plan::default();
        plan.set(
            &host,
            Path::new("/a/b/c/file"),
            Some(b"x".to_vec()),
            None,
            Content::Text,
        )
        .unwrap();
        assert!(unwritable(&plan).is_empty());
        assert_eq!(nearest_existing(&dir.path().join("a/b/c")), dir.path());
    }
}
