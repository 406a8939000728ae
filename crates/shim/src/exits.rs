//! Routes the exit statuses the shim reaps to whoever waits for that pid.
//!
//! The shim is a child subreaper and containerd-shim's SIGCHLD loop reaps every
//! child with `waitpid(-1)`: container processes, execs, runc invocations and
//! loggers alike. A process can exit before its pid is known to us (an exec
//! that exits at once, while `runc exec` is still writing the pid file), so a
//! caller first takes an [`ExitSubscription`], which buffers every exit from
//! then on, starts the process, and then claims the pid's exit from it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use containerd_shim::{
    asynchronous::monitor::monitor_subscribe,
    monitor::{Subject, Topic},
};
use tokio::sync::oneshot;

/// An exit status in containerd's convention: the code, or 128+N for signal N.
pub type ExitCode = i32;

#[derive(Default)]
struct Routes {
    /// Pids someone waits for.
    watchers: HashMap<i32, Vec<oneshot::Sender<ExitCode>>>,
    /// Exits nobody waited for yet, per live subscription.
    buffers: HashMap<u64, HashMap<i32, ExitCode>>,
    next_id: u64,
}

#[derive(Clone, Default)]
pub struct ExitRouter {
    routes: Arc<Mutex<Routes>>,
}

impl ExitRouter {
    /// A router fed by containerd-shim's reaper; call once per shim process.
    pub async fn start() -> std::io::Result<Self> {
        let router = ExitRouter::default();
        let mut sub = monitor_subscribe(Topic::Pid)
            .await
            .map_err(|e| std::io::Error::other(format!("subscribe to exits: {e}")))?;
        let feed = router.clone();
        tokio::spawn(async move {
            while let Some(event) = sub.rx.recv().await {
                if let Subject::Pid(pid) = event.subject {
                    feed.exited(pid, event.exit_code);
                }
            }
        });
        Ok(router)
    }

    /// Records that `pid` exited with `code`.
    pub fn exited(&self, pid: i32, code: ExitCode) {
        let mut routes = self.routes.lock().unwrap();
        if let Some(watchers) = routes.watchers.remove(&pid) {
            for w in watchers {
                let _ = w.send(code);
            }
            return;
        }
        for buffer in routes.buffers.values_mut() {
            buffer.insert(pid, code);
        }
    }

    /// Starts buffering exits until the subscription is dropped.
    pub fn subscribe(&self) -> ExitSubscription {
        let mut routes = self.routes.lock().unwrap();
        let id = routes.next_id;
        routes.next_id += 1;
        routes.buffers.insert(id, HashMap::new());
        ExitSubscription {
            id,
            router: self.clone(),
        }
    }
}

/// Buffers exits from its creation on; see the module docs.
pub struct ExitSubscription {
    id: u64,
    router: ExitRouter,
}

impl ExitSubscription {
    /// The exit of `pid`, whether it already happened or is still to come.
    pub fn claim(&self, pid: i32) -> oneshot::Receiver<ExitCode> {
        let (tx, rx) = oneshot::channel();
        let mut routes = self.router.routes.lock().unwrap();
        let early = routes
            .buffers
            .get_mut(&self.id)
            .and_then(|buffer| buffer.remove(&pid));
        match early {
            Some(code) => {
                let _ = tx.send(code);
            }
            None => routes.watchers.entry(pid).or_default().push(tx),
        }
        rx
    }
}

impl Drop for ExitSubscription {
    fn drop(&mut self) {
        self.router.routes.lock().unwrap().buffers.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_exit_before_the_claim_is_kept_for_the_subscriber() {
        let router = ExitRouter::default();
        let sub = router.subscribe();
        router.exited(42, 3);
        assert_eq!(sub.claim(42).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn an_exit_after_the_claim_is_delivered() {
        let router = ExitRouter::default();
        let sub = router.subscribe();
        let rx = sub.claim(7);
        router.exited(7, 137);
        assert_eq!(rx.await.unwrap(), 137);
    }

    #[tokio::test]
    async fn exits_before_the_subscription_are_not_buffered() {
        let router = ExitRouter::default();
        router.exited(9, 1);
        let sub = router.subscribe();
        let mut rx = sub.claim(9);
        assert!(rx.try_recv().is_err(), "a stale exit must not be claimed");
        router.exited(9, 0);
        assert_eq!(rx.await.unwrap(), 0);
    }

    #[test]
    fn dropped_subscriptions_stop_buffering() {
        let router = ExitRouter::default();
        let sub = router.subscribe();
        drop(sub);
        router.exited(1, 0);
        assert!(router.routes.lock().unwrap().buffers.is_empty());
    }
}
