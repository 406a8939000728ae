//! The Kubernetes client: in-cluster (the pod's service account) or from a kubeconfig.

use std::path::PathBuf;

use kube::config::{InferConfigError, KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

/// Where the API server and credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KubeConfigSource {
    /// `$KUBECONFIG` or `~/.kube/config` if there is one, else the in-cluster service account.
    Infer,
    /// This kubeconfig file (its current context).
    File(PathBuf),
}

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum KubeSetupError {
    #[error("cannot use kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: KubeconfigError,
    },
    #[error("no Kubernetes configuration (not in a cluster, no kubeconfig): {0}")]
    Infer(#[source] InferConfigError),
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// A client for `source`. Makes no API call: an unreachable API server shows later, as
/// write errors.
pub async fn kube_client(source: &KubeConfigSource) -> Result<Client, KubeSetupError> {
    let config = match source {
        KubeConfigSource::Infer => Config::infer().await.map_err(KubeSetupError::Infer)?,
        KubeConfigSource::File(path) => {
            let kubeconfig = |source| KubeSetupError::Kubeconfig {
                path: path.clone(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(kubeconfig)?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(kubeconfig)?
        }
    };
    Client::try_from(config).map_err(KubeSetupError::Client)
}
