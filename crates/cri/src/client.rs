use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::api;
use crate::{CriError, ImageClient, RuntimeClient};

/// How long [`CriClient::connect`] waits for the socket to accept and the HTTP/2 handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One channel to a CRI endpoint, with the runtime and image clients built on it.
#[derive(Clone, Debug)]
pub struct CriClient {
    socket: PathBuf,
    channel: Channel,
}

impl CriClient {
    /// Connects to the CRI endpoint listening on the unix socket `socket`.
    pub async fn connect(socket: impl AsRef<Path>) -> Result<Self, CriError> {
        let socket = socket.as_ref().to_path_buf();
        // The URI is required by tonic but never resolved: the connector dials the socket.
        let endpoint = Endpoint::from_static("http://[::]:50051");
        let path = socket.clone();
        let connecting = endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }));
        let channel = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| CriError::ConnectTimeout {
                socket: socket.clone(),
                timeout: CONNECT_TIMEOUT,
            })?
            .map_err(|source| CriError::Connect {
                socket: socket.clone(),
                source,
            })?;
        Ok(CriClient { socket, channel })
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A runtime service client (pods, containers, exec, stats) sharing this channel.
    pub fn runtime(&self) -> RuntimeClient {
        RuntimeClient::new(self.channel.clone())
    }

    /// An image service client sharing this channel.
    pub fn images(&self) -> ImageClient {
        ImageClient::new(self.channel.clone())
    }

    /// Maps a failed call on this client's socket into a [`CriError`].
    pub fn error(&self, call: &'static str, status: tonic::Status) -> CriError {
        CriError::call(&self.socket, call, status)
    }

    /// The runtime's name and versions (`Version` call); also a cheap readiness probe.
    pub async fn version(&self) -> Result<api::VersionResponse, CriError> {
        let request = api::VersionRequest {
            version: "v1".to_string(),
        };
        self.runtime()
            .version(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| self.error("Version", status))
    }

    /// The runtime's status conditions (`Status` call with verbose info off).
    pub async fn status(&self) -> Result<api::StatusResponse, CriError> {
        self.runtime()
            .status(api::StatusRequest { verbose: false })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| self.error("Status", status))
    }
}
