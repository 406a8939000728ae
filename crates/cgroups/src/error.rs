//! The one error type of this crate. Every variant names the file or pid it concerns, so a
//! log line alone tells an operator where to look.

use std::io;
use std::path::PathBuf;

use crate::KillMethod;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read the mount table {path}: {source}")]
    ReadMountinfo { path: PathBuf, source: io::Error },

    #[error("cannot read the cgroup membership of pid {pid} ({path}): {source}")]
    ReadProcCgroup {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },

    /// The pid is only in root cgroups, or in hierarchies that are not mounted in this mount
    /// namespace: there is no container cgroup to act on.
    #[error("pid {pid} is in no container cgroup of any hierarchy mounted here")]
    NoHierarchy { pid: i32 },

    #[error("cannot read {path}: {source}")]
    ReadControl { path: PathBuf, source: io::Error },

    #[error("cannot write {path}: {source}")]
    WriteControl { path: PathBuf, source: io::Error },

    #[error("unexpected content in {path}: {reason}")]
    ParseControl { path: PathBuf, reason: String },

    #[error("cannot list the sub-cgroups of {path}: {source}")]
    ListCgroup { path: PathBuf, source: io::Error },

    #[error("cannot read {path} of pid {pid}: {source}")]
    ReadProcess {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },

    #[error("cannot list the processes in {path}: {source}")]
    ScanProc { path: PathBuf, source: io::Error },

    #[error("cannot send SIGKILL to pid {pid}: {source}")]
    Signal { pid: i32, source: nix::Error },

    /// Refused: killing this cgroup would kill the caller (the shim) itself.
    #[error("the cgroup {path} contains the calling process (pid {pid}); refusing to kill it")]
    ContainsCaller { path: PathBuf, pid: i32 },

    #[error("kill method {method} is not available for this cgroup")]
    MethodUnavailable { method: KillMethod },
}

/// ENOENT and ESRCH: the process or cgroup went away while we looked at it, which is normal
/// for a cgroup that is being killed.
pub(crate) fn is_vanished(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound
        || err.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32)
}
