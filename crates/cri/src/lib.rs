//! A small client for the Kubernetes Container Runtime Interface (v1) over a unix socket.
//!
//! [`CriClient::connect`] opens one HTTP/2 channel to a CRI endpoint such as containerd's
//! `containerd.sock` and hands out the generated runtime and image clients (cheap clones of
//! that channel). A few conveniences that several callers need live here too: the runtime
//! version, running a minimal host-network pod sandbox under a given runtime handler, and
//! stopping and removing a sandbox.
//!
//! The generated API is re-exported as [`api`] so callers need not depend on `k8s-cri`.

mod client;
mod error;
mod sandbox;

pub use client::CriClient;
pub use error::CriError;
pub use k8s_cri::v1 as api;
pub use sandbox::host_network_sandbox_config;

/// The runtime service client over our unix-socket channel.
pub type RuntimeClient =
    api::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;
/// The image service client over our unix-socket channel.
pub type ImageClient = api::image_service_client::ImageServiceClient<tonic::transport::Channel>;
