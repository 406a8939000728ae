//! When the shim may exit: after containerd asked it to shut down and no
//! clean-up is still pending (a container whose init is held by an
//! unkillable process is cleaned up once that process finally goes).

use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc,
};

use containerd_shim::ExitSignal;

#[derive(Clone)]
pub struct ShimLife {
    pending: Arc<AtomicUsize>,
    shutdown_requested: Arc<AtomicBool>,
    exit: Arc<ExitSignal>,
}

impl ShimLife {
    pub fn new(exit: Arc<ExitSignal>) -> Self {
        ShimLife {
            pending: Arc::default(),
            shutdown_requested: Arc::default(),
            exit,
        }
    }

    /// containerd has no container left here: exit now, or once the pending
    /// clean-ups are done.
    pub fn request_shutdown(&self) {
        self.shutdown_requested.store(true, Ordering::SeqCst);
        if self.pending.load(Ordering::SeqCst) == 0 {
            self.exit.signal();
        }
    }

    /// Keeps the shim alive until the guard is dropped.
    pub fn hold(&self) -> LifeGuard {
        self.pending.fetch_add(1, Ordering::SeqCst);
        LifeGuard { life: self.clone() }
    }

    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

pub struct LifeGuard {
    life: ShimLife,
}

impl Drop for LifeGuard {
    fn drop(&mut self) {
        let left = self.life.pending.fetch_sub(1, Ordering::SeqCst) - 1;
        if left == 0 && self.life.shutdown_requested.load(Ordering::SeqCst) {
            self.life.exit.signal();
        }
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
    async fn shutdown_waits_for_pending_clean_ups() {
        let exit = Arc::new(ExitSignal::default());
        let life = ShimLife::new(exit.clone());
        let guard = life.hold();
        life.request_shutdown();
        assert!(!exits_within(&exit, Duration::from_millis(50)).await);
        drop(guard);
        assert!(exits_within(&exit, Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn without_clean_ups_shutdown_is_immediate_and_a_guard_alone_does_not_exit() {
        let exit = Arc::new(ExitSignal::default());
        let life = ShimLife::new(exit.clone());
        drop(life.hold());
        assert!(!exits_within(&exit, Duration::from_millis(50)).await);
        life.request_shutdown();
        assert!(exits_within(&exit, Duration::from_secs(1)).await);
    }
}
