//! Why a scan could not run at all. A single container that cannot be read is no error: it
//! is reported as skipped.

use std::path::PathBuf;
use std::time::Duration;

use undertaker_cgroups::CgroupError;
use undertaker_cri::CriError;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// containerd (or another CRI runtime) is unreachable or refused a list call.
    #[error(transparent)]
    Cri(#[from] CriError),

    /// The runtime accepted the connection but did not answer in time (hung, or overloaded).
    #[error("the CRI endpoint {socket} did not answer within {timeout:?}")]
    Timeout { socket: PathBuf, timeout: Duration },

    /// The host's cgroup mounts could not be read.
    #[error("cannot read this host's cgroup setup: {0}")]
    Host(#[source] CgroupError),

    /// The thread reading `/proc` panicked or was cancelled.
    #[error("the /proc scan did not finish: {0}")]
    Task(#[source] tokio::task::JoinError),
}
