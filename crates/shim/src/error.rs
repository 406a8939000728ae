//! The shim's errors, and the one place where they become ttrpc status codes.

use std::path::PathBuf;

use containerd_shim_protos::ttrpc::{self, Code};

/// Everything a task request can fail with. Each variant names the container,
/// exec or path it concerns, so the message containerd logs says what failed where.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShimError {
    #[error("container {id}: not found in this shim")]
    ContainerNotFound { id: String },

    #[error("container {id}: exec {exec_id}: not found")]
    ExecNotFound { id: String, exec_id: String },

    #[error("{what}: process already finished")]
    ProcessFinished { what: String },

    #[error("container {id}: already exists in this shim")]
    ContainerExists { id: String },

    #[error("container {id}: exec {exec_id}: already exists")]
    ExecExists { id: String, exec_id: String },

    #[error("{what}: {state}")]
    WrongState { what: String, state: String },

    #[error("{what}: invalid argument: {reason}")]
    InvalidArgument { what: String, reason: String },

    #[error("{what}: not supported by undertaker")]
    Unsupported { what: String },

    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{what}: {source}")]
    Os {
        what: String,
        #[source]
        source: nix::Error,
    },

    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),

    #[error(transparent)]
    Options(#[from] crate::options::OptionsError),

    #[error("{what}: {source}")]
    Protobuf {
        what: String,
        #[source]
        source: containerd_shim_protos::protobuf::Error,
    },

    #[error("{what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{0}")]
    Other(String),
}

pub(crate) type Result<T, E = ShimError> = std::result::Result<T, E>;

impl ShimError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ShimError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn wrong_state(what: impl Into<String>, state: impl Into<String>) -> Self {
        ShimError::WrongState {
            what: what.into(),
            state: state.into(),
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        ShimError::InvalidArgument {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// The gRPC code containerd maps back to its errdefs (NotFound, AlreadyExists, ...).
    pub(crate) fn code(&self) -> Code {
        match self {
            ShimError::ContainerNotFound { .. }
            | ShimError::ExecNotFound { .. }
            | ShimError::ProcessFinished { .. } => Code::NOT_FOUND,
            ShimError::ContainerExists { .. } | ShimError::ExecExists { .. } => {
                Code::ALREADY_EXISTS
            }
            ShimError::WrongState { .. } => Code::FAILED_PRECONDITION,
            ShimError::InvalidArgument { .. } | ShimError::Options(_) => Code::INVALID_ARGUMENT,
            ShimError::Unsupported { .. } => Code::UNIMPLEMENTED,
            ShimError::Runtime(e) if e.is_not_found() => Code::NOT_FOUND,
            _ => Code::UNKNOWN,
        }
    }
}

impl From<ShimError> for ttrpc::Error {
    fn from(e: ShimError) -> Self {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(e: ShimError) -> (Code, String) {
        match ttrpc::Error::from(e) {
            ttrpc::Error::RpcStatus(s) => (s.code(), s.message().to_string()),
            other => panic!("expected an rpc status, got {other:?}"),
        }
    }

    #[test]
    fn unknown_ids_are_not_found_and_named() {
        let (code, msg) = status_of(ShimError::ContainerNotFound { id: "c1".into() });
        assert_eq!(code, Code::NOT_FOUND);
        assert!(msg.contains("c1"), "{msg}");
        let (code, msg) = status_of(ShimError::ExecNotFound {
            id: "c1".into(),
            exec_id: "e9".into(),
        });
        assert_eq!(code, Code::NOT_FOUND);
        assert!(msg.contains("c1") && msg.contains("e9"), "{msg}");
    }

    #[test]
    fn state_errors_are_failed_precondition() {
        let (code, msg) = status_of(ShimError::wrong_state(
            "container c1: start",
            "already running",
        ));
        assert_eq!(code, Code::FAILED_PRECONDITION);
        assert_eq!(msg, "container c1: start: already running");
    }

    #[test]
    fn duplicates_bad_input_and_unsupported_map_to_their_codes() {
        assert_eq!(
            status_of(ShimError::ContainerExists { id: "c".into() }).0,
            Code::ALREADY_EXISTS
        );
        assert_eq!(
            status_of(ShimError::invalid("exec e1", "no process spec")).0,
            Code::INVALID_ARGUMENT
        );
        assert_eq!(
            status_of(ShimError::Unsupported {
                what: "checkpoint".into()
            })
            .0,
            Code::UNIMPLEMENTED
        );
        assert_eq!(status_of(ShimError::Other("boom".into())).0, Code::UNKNOWN);
    }
}
