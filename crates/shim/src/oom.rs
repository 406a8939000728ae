//! Watching a container's memory cgroup for OOM kills, to publish `/tasks/oom`.
//!
//! `undertaker_cgroups` sets the watch up (v1: an eventfd on `memory.oom_control`; v2: inotify
//! on `memory.events`) and says what a notification meant; this module waits on the
//! descriptor with tokio, runs the check on a blocking thread and publishes. Neither wakes the
//! shim while nothing happens.

use tokio::task::JoinHandle;
use undertaker_cgroups::{ContainerCgroup, OomCheck, OomCounter, OomNotifier, OomWatch};

use crate::{lifecycle::Events, sys};

/// Starts watching; `None` when the container has no memory cgroup we can watch.
pub(crate) fn watch(
    container_id: &str,
    cgroup: &ContainerCgroup,
    events: Events,
) -> Option<JoinHandle<()>> {
    match cgroup.watch_oom() {
        Ok(Some(OomWatch { notifier, counter })) => Some(tokio::spawn(wait(
            container_id.to_string(),
            notifier,
            counter,
            events,
        ))),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(container = %container_id, "cannot watch for OOM: {e}");
            None
        }
    }
}

async fn wait(id: String, notifier: OomNotifier, mut counter: OomCounter, events: Events) {
    let fd = match sys::register_async(notifier) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!(container = %id, "cannot wait for OOM in {}: {e}", counter.dir().display());
            return;
        }
    };
    loop {
        let Ok(mut ready) = fd.readable().await else {
            return;
        };
        match ready.try_io(|fd| fd.get_ref().0.consume()) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(container = %id, "OOM watch in {} failed: {e}", counter.dir().display());
                return;
            }
            // Spurious wake-up: readiness was cleared, wait again.
            Err(_would_block) => continue,
        }
        let (back, check) = match tokio::task::spawn_blocking(move || {
            let check = counter.check();
            (counter, check)
        })
        .await
        {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(container = %id, "OOM check did not finish: {e}");
                return;
            }
        };
        counter = back;
        match check {
            Ok(OomCheck::Oom) => {
                tracing::info!(container = %id, "OOM in the container's memory cgroup");
                events.task_oom(&id);
            }
            Ok(OomCheck::Nothing) => {}
            Ok(OomCheck::Gone) => return,
            Err(e) => {
                tracing::warn!(container = %id, "cannot tell what the OOM notification meant: {e}");
                return;
            }
        }
    }
}
