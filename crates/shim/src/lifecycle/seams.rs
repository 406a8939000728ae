//! The three things the lifecycle core drives and never touches directly: the OCI
//! runtime, the host (cgroups and `/proc`), and the event sink. Real implementations
//! live in `runtime.rs`, `host.rs` and `publisher.rs`; the core's tests use fakes.

use std::{path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;
use containerd_shim_protos::protobuf::{well_known_types::any::Any, MessageDyn};
use undertaker_cgroups::{KillReport, ProcessInfo};

use crate::{
    error::Result,
    options::RuntimeOptions,
    runtime::{LaunchOpts, RuntimeError},
};

/// One container's OCI runtime (runc or a runc-compatible binary).
#[async_trait]
pub(crate) trait OciRuntime: Send + Sync {
    /// Creates the container; returns its init's pid.
    async fn create(&self, id: &str, bundle: &Path, opts: LaunchOpts) -> Result<i32, RuntimeError>;
    async fn start(&self, id: &str) -> Result<(), RuntimeError>;
    /// Starts the exec process described by the JSON file `process`; returns its pid.
    async fn exec(&self, id: &str, process: &Path, opts: LaunchOpts) -> Result<i32, RuntimeError>;
    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), RuntimeError>;
    async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError>;
    async fn pause(&self, id: &str) -> Result<(), RuntimeError>;
    async fn resume(&self, id: &str) -> Result<(), RuntimeError>;
    /// Applies the OCI `LinuxResources` JSON in the file `resources`.
    async fn update(&self, id: &str, resources: &Path) -> Result<(), RuntimeError>;
    async fn ps(&self, id: &str) -> Result<Vec<i32>, RuntimeError>;
}

/// Makes the runtime of a container from its options.
pub(crate) trait RuntimeFactory: Send + Sync {
    fn runtime(
        &self,
        options: &RuntimeOptions,
        namespace: &str,
        bundle: &Path,
    ) -> Arc<dyn OciRuntime>;
}

/// A container's cgroup, found from its init while it was alive.
pub(crate) trait Cgroup: Send + Sync {
    /// Kills every process in it and waits (bounded) until it is empty. Blocking.
    fn kill_all(&self, timeout: Duration) -> Result<KillReport, String>;
    /// Its resource usage now, as the `Any` containerd decodes. Blocking.
    fn metrics(&self) -> Result<Any>;
    /// Starts publishing `/tasks/oom` for OOM kills in it; `None` when it cannot be watched.
    fn watch_oom(
        &self,
        container_id: &str,
        events: super::events::Events,
    ) -> Option<tokio::task::JoinHandle<()>>;
}

/// What the core asks of the machine: all of it blocking, called off the runtime thread.
pub(crate) trait Host: Send + Sync {
    /// The cgroup the runtime put `pid` (the container's init) in.
    fn cgroup_of(&self, container_id: &str, pid: i32) -> Option<Arc<dyn Cgroup>>;
    /// SIGKILLs `root` and its descendants; returns every process it signalled.
    fn kill_tree(&self, root: i32) -> Vec<ProcessInfo>;
    /// Whether `pid` is in the middle of exiting (held there by what is left in its
    /// PID namespace).
    fn is_exiting(&self, pid: i32) -> bool;
    /// Whether `pid` still exists (even as a zombie).
    fn exists(&self, pid: i32) -> bool;
    /// The host pid of `parent`'s child whose pid in its own namespace is `ns_pid`.
    fn host_pid_of_child(&self, parent: i32, ns_pid: i32) -> Option<i32>;
}

/// containerd's event bus: events are queued in the order they are given.
pub(crate) trait EventSink: Send + Sync {
    fn publish(&self, topic: &str, namespace: &str, event: Box<dyn MessageDyn>);
}

/// The seams a core runs on.
#[derive(Clone)]
pub(crate) struct Seams {
    pub runtimes: Arc<dyn RuntimeFactory>,
    pub host: Arc<dyn Host>,
    pub sink: Arc<dyn EventSink>,
}
