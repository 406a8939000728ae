use std::path::PathBuf;

/// What went wrong talking CRI, always naming the socket it concerns.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// The socket could not be connected (missing, refused, or the HTTP/2 handshake failed).
    #[error("cannot connect to the CRI endpoint {socket}: {source}")]
    Connect {
        socket: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    /// Connecting did not finish within the allowed time.
    #[error("connecting to the CRI endpoint {socket} timed out after {timeout:?}")]
    ConnectTimeout {
        socket: PathBuf,
        timeout: std::time::Duration,
    },
    /// The endpoint answered a call with an error status.
    #[error("CRI {call} on {socket} failed: {code:?}: {message}")]
    Call {
        socket: PathBuf,
        call: &'static str,
        code: tonic::Code,
        message: String,
    },
}

impl CriError {
    /// Turns a failed call into an error naming the call and the socket.
    pub(crate) fn call(
        socket: &std::path::Path,
        call: &'static str,
        status: tonic::Status,
    ) -> Self {
        CriError::Call {
            socket: socket.to_path_buf(),
            call,
            code: status.code(),
            message: status.message().to_string(),
        }
    }

    /// The gRPC status code of a failed call, if this is one.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            CriError::Call { code, .. } => Some(*code),
            _ => None,
        }
    }
}
