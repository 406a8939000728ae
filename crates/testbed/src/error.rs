use std::path::PathBuf;
use std::time::Duration;

/// What went wrong setting up, driving or tearing down a testbed.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// A file or directory could not be read, written or created.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Host tools are missing and could not be installed (not root, or apt-get failed).
    #[error("missing host tools {missing:?} (apt packages {packages:?}): {reason}")]
    MissingTools {
        missing: Vec<String>,
        packages: Vec<String>,
        reason: String,
    },
    /// A program could not be started at all.
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// A helper command ran but failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// containerd did not come up (or back) within the allowed time.
    /// `reason` starts with which containerd it was (version, directory).
    #[error("containerd at {socket} not ready after {waited:?}: {reason}\n--- tail of {log} ---\n{log_tail}")]
    NotReady {
        socket: PathBuf,
        waited: Duration,
        reason: String,
        log: PathBuf,
        log_tail: String,
    },
    /// A CRI call failed.
    #[error(transparent)]
    Cri(#[from] undertaker_cri::CriError),
    /// Something did not happen within the allowed time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },
    /// An image could not be built.
    #[error("building image {image}: {reason}")]
    Image { image: String, reason: String },
    /// A streaming (exec/attach) session failed.
    #[error("streaming session {url}: {reason}")]
    Stream { url: String, reason: String },
    /// containerd's event service failed us.
    #[error("containerd events: {what}: {reason}")]
    Events { what: &'static str, reason: String },
    /// A CRI answer lacked something we rely on.
    #[error("unexpected CRI answer from {call}: {reason}")]
    Unexpected { call: &'static str, reason: String },
}

impl TestbedError {
    /// An [`TestbedError::Io`] for `path`, as a closure for `map_err`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| TestbedError::Io {
            action,
            path,
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = TestbedError> = std::result::Result<T, E>;
