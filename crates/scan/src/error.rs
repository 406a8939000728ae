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

impl ScanError {
    /// A short form for NPD's one-line message (80 bytes by default): the socket or file and
    /// the innermost cause (`Connection refused`), without the layers in between. The full
    /// error goes to stderr, which NPD logs.
    pub fn brief(&self) -> String {
        match self {
            ScanError::Cri(CriError::Connect { socket, source }) => {
                format!("{}: {}", socket.display(), root_cause(source))
            }
            ScanError::Cri(CriError::ConnectTimeout { socket, timeout }) => {
                format!("{}: no connection in {timeout:?}", socket.display())
            }
            ScanError::Cri(CriError::Call {
                call,
                code,
                message,
                ..
            }) => format!("CRI {call}: {code:?}: {message}"),
            ScanError::Timeout { socket, timeout } => {
                format!("{}: no answer in {timeout:?}", socket.display())
            }
            ScanError::Host(error) => format!("cgroup setup: {}", root_cause(error)),
            ScanError::Task(_) => "the /proc scan did not finish".to_string(),
        }
    }
}

/// The innermost error's text, without the `(os error N)` that follows an io error's text.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut root = error;
    while let Some(source) = root.source() {
        root = source;
    }
    let text = root.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_socket_is_named_with_the_root_cause_in_a_few_words() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("containerd.sock");
        let error = ScanError::from(
            undertaker_cri::CriClient::connect(&socket)
                .await
                .expect_err("nothing listens there"),
        );
        assert_eq!(
            error.brief(),
            format!("{}: No such file or directory", socket.display())
        );
        let timeout = ScanError::Timeout {
            socket: "/run/containerd/containerd.sock".into(),
            timeout: Duration::from_secs(10),
        };
        assert_eq!(
            timeout.brief(),
            "/run/containerd/containerd.sock: no answer in 10s"
        );
    }
}
