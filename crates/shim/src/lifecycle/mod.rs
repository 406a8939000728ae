//! The shim's lifecycle core: the containers of one pod and their processes, one file
//! per step (create, start, exec, kill, exit, delete, shutdown), over three seams
//! ([`seams`]): the OCI runtime, the host and the event sink. `service.rs` only maps
//! ttrpc requests onto these calls; the core's tests run it on fakes, without root.
//!
//! Nothing here blocks the (single) runtime thread: file, `/proc` and cgroup work go
//! through [`blocking`], runtime invocations are spawned there too (`runtime.rs`).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

mod bundle;
mod container;
mod create;
mod delete;
mod events;
mod exec;
mod exit;
mod kill;
mod life;
mod process;
mod reports;
pub(crate) mod seams;
mod shutdown;
mod start;
mod tasks;
mod termination;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub(crate) use bundle::unmount_rootfs;
pub(crate) use container::Container;
pub(crate) use events::Events;
pub(crate) use kill::CGROUP_KILL_TIMEOUT;
pub(crate) use life::ShimLife;
pub(crate) use process::timestamp;
pub(crate) use reports::{from_report, Reporter, MAX_LISTED};

use crate::{
    error::{Result, ShimError},
    exits::ExitRouter,
};
use seams::Seams;

/// The containers one shim serves, and what they run on.
pub(crate) struct Core {
    seams: Seams,
    events: Events,
    exits: ExitRouter,
    life: ShimLife,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    /// Ids whose create is under way (lock before `containers` when taking both).
    creating: Mutex<HashSet<String>>,
}

impl Core {
    pub(crate) fn new(seams: Seams, namespace: &str, exits: ExitRouter, life: ShimLife) -> Self {
        Core {
            events: Events::new(seams.sink.clone(), namespace),
            seams,
            exits,
            life,
            containers: Mutex::new(HashMap::new()),
            creating: Mutex::new(HashSet::new()),
        }
    }

    pub(crate) fn life(&self) -> &ShimLife {
        &self.life
    }

    pub(crate) fn namespace(&self) -> &str {
        self.events.namespace()
    }

    pub(crate) fn container(&self, id: &str) -> Result<Arc<Container>> {
        self.containers
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| ShimError::ContainerNotFound { id: id.to_string() })
    }

    fn has_containers(&self) -> bool {
        !self.containers.lock().unwrap().is_empty()
    }

    /// Claims `id` for a create, so that two creates of one id never both run.
    fn reserve(&self, id: &str) -> Result<Reservation<'_>> {
        let mut creating = self.creating.lock().unwrap();
        if creating.contains(id) || self.containers.lock().unwrap().contains_key(id) {
            return Err(ShimError::ContainerExists { id: id.to_string() });
        }
        creating.insert(id.to_string());
        Ok(Reservation {
            core: self,
            id: id.to_string(),
        })
    }
}

/// An id claimed by a create under way; released when the create ends, after a
/// successful one registered the container.
struct Reservation<'a> {
    core: &'a Core,
    id: String,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.core.creating.lock().unwrap().remove(&self.id);
    }
}

/// Runs blocking work (files, `/proc`, cgroups, mounts) off the runtime thread.
pub(crate) async fn blocking<T: Send + 'static>(
    what: impl std::fmt::Display,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ShimError::Other(format!("{what}: blocking task failed: {e}")))
}

/// Runs `work` to its end even if containerd gives up on the request (ttrpc drops the
/// handler of a request whose client timed out): a kill or delete cut off half-way, after
/// the cgroup kill and before the exit is reported, would leave the container in between.
/// The shim stays alive until the work is done and its reply written or dropped.
pub(crate) async fn detached<T: Send + 'static>(
    life: &ShimLife,
    work: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let hold = life.hold();
    tokio::spawn(async move {
        let result = work.await;
        drop(hold);
        result
    })
    .await
    .map_err(|e| ShimError::Other(format!("request task failed: {e}")))?
}
