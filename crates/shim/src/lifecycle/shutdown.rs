//! Shutdown: containerd's request to end the shim once its containers are gone. One shim
//! serves a whole pod, so it only goes once its last container is deleted, and then only
//! once nothing holds it ([`ShimLife`](super::ShimLife)).

use super::Core;

impl Core {
    /// Returns whether the shim will exit (now, or once nothing holds it).
    pub(crate) fn shutdown(&self) -> bool {
        if self.has_containers() || !self.creating.lock().unwrap().is_empty() {
            return false;
        }
        // The Shutdown request itself is one of the holds: the shim exits after its reply.
        tracing::info!(
            holds = self.life.holds(),
            "last container deleted; the shim exits once no request or clean-up holds it"
        );
        self.life.request_shutdown();
        true
    }
}
