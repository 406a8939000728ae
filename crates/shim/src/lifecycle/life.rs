//! When the shim may exit: containerd asked it to shut down (its last container is
//! deleted), and nothing holds it — no ttrpc request in flight, no detached kill or
//! delete still working towards its reply, no clean-up pending (a container whose init
//! is held by an unkillable process is deleted from the runtime once that process goes).
//!
//! Exiting with a request in flight is what made containerd see `ttrpc: closed` for a
//! Kill whose cgroup sweep outlived the container's delete.

use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc,
};

use containerd_shim::ExitSignal;

#[derive(Clone)]
pub(crate) struct ShimLife {
    inner: Arc<Inner>,
}

struct Inner {
    holds: AtomicUsize,
    shutdown_requested: AtomicBool,
    exit: Arc<ExitSignal>,
}

impl ShimLife {
    pub(crate) fn new(exit: Arc<ExitSignal>) -> Self {
        ShimLife {
            inner: Arc::new(Inner {
                holds: AtomicUsize::new(0),
                shutdown_requested: AtomicBool::new(false),
                exit,
            }),
        }
    }

    /// containerd has no container left here: exit now, or once nothing holds the shim.
    pub(crate) fn request_shutdown(&self) {
        self.inner.shutdown_requested.store(true, Ordering::SeqCst);
        self.exit_if_free();
    }

    /// Keeps the shim alive until the guard is dropped: taken by every request for its
    /// whole handling, and moved into detached work and pending clean-ups.
    pub(crate) fn hold(&self) -> LifeGuard {
        self.inner.holds.fetch_add(1, Ordering::SeqCst);
        LifeGuard { life: self.clone() }
    }

    /// How many requests, detached tasks and clean-ups hold the shim now.
    pub(crate) fn holds(&self) -> usize {
        self.inner.holds.load(Ordering::SeqCst)
    }

    pub(crate) fn shutdown_requested(&self) -> bool {
        self.inner.shutdown_requested.load(Ordering::SeqCst)
    }

    fn exit_if_free(&self) {
        // Both orders of "last hold dropped" and "shutdown requested" end here with both
        // seen: each side stores before it loads the other (SeqCst).
        if self.shutdown_requested() && self.holds() == 0 {
            self.inner.exit.signal();
        }
    }
}

pub(crate) struct LifeGuard {
    life: ShimLife,
}

impl Drop for LifeGuard {
    fn drop(&mut self) {
        self.life.inner.holds.fetch_sub(1, Ordering::SeqCst);
        self.life.exit_if_free();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn exits_within(exit: &ExitSignal, within: Duration) -> bool {
        tokio::time::timeout(within, exit.wait()).await.is_ok()
    }

    #[tokio::test]
    async fn shutdown_waits_for_every_hold() {
        let exit = Arc::new(ExitSignal::default());
        let life = ShimLife::new(exit.clone());
        let request = life.hold();
        let clean_up = life.hold();
        life.request_shutdown();
        drop(request);
        assert_eq!(life.holds(), 1);
        assert!(!exits_within(&exit, Duration::from_millis(20)).await);
        drop(clean_up);
        assert!(exits_within(&exit, Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn without_holds_shutdown_is_immediate_and_a_hold_alone_never_exits() {
        let exit = Arc::new(ExitSignal::default());
        let life = ShimLife::new(exit.clone());
        drop(life.hold());
        assert!(!exits_within(&exit, Duration::from_millis(20)).await);
        life.request_shutdown();
        assert!(exits_within(&exit, Duration::from_secs(5)).await);
    }
}
