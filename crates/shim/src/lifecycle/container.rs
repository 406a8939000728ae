//! A container served by this shim: what it was created with and the state its steps
//! share. The steps themselves are in `create.rs`, `start.rs`, `exec.rs`, `kill.rs`,
//! `exit.rs` and `delete.rs`.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc, Mutex},
};

use containerd_shim_protos::api::Mount;
use tokio_util::sync::CancellationToken;
use undertaker_inject::{InitSettings, Injection};

use super::{
    process::Process,
    reports::Reporter,
    seams::{Cgroup, OciRuntime},
};
use crate::{
    error::{Result, ShimError},
    stdio::IoOwner,
};

pub(crate) struct Container {
    pub(crate) id: String,
    pub(crate) bundle: PathBuf,
    pub(crate) runtime: Arc<dyn OciRuntime>,
    pub(crate) init: Arc<Process>,
    pub(crate) execs: Mutex<HashMap<String, Arc<Process>>>,
    /// The rootfs mounts containerd asked for (mounted by the shim when not empty).
    pub(crate) rootfs: Vec<Mount>,
    /// False for shareProcessNamespace and hostPID containers: their processes do not
    /// die with the init, so the shim must kill them.
    pub(crate) own_pid_namespace: bool,
    pub(crate) io_owner: IoOwner,
    /// The container's cgroup, found from the init while it was alive.
    pub(crate) cgroup: Option<Arc<dyn Cgroup>>,
    /// One whole-cgroup kill at a time: a second one (a delete racing a kill) finds the
    /// cgroup empty instead of reporting the same processes again.
    pub(crate) kill_lock: tokio::sync::Mutex<()>,
    /// Held shared by every Kill while it runs, and exclusively by the container's Delete
    /// before it does anything: a Kill in flight always answers before the Delete does.
    /// containerd 1.6 closes a container's connection to the shim right after its Delete
    /// and Shutdown, so a Kill still running then (a `runc kill` of the TERM whose exit
    /// outran it) failed the stop with `ttrpc: closed`.
    pub(crate) kills_in_flight: tokio::sync::RwLock<()>,
    pub(crate) reporter: Reporter,
    /// Where undertaker-init is in the container and how it runs; `None` without it.
    pub(crate) injection: Option<(Injection, InitSettings)>,
    /// The init was reported exited while an unkillable process held it.
    pub(crate) stuck: AtomicBool,
    /// Cancelled when the container is deleted: ends every task watching it.
    pub(crate) gone: CancellationToken,
    /// The host file mounted as the termination message, when the leak summary is asked
    /// for (`undertaker.io/termination-message`), and what the main exit left to put in it.
    pub(crate) termination_log: Option<PathBuf>,
    pub(crate) main_exit_leftovers: Arc<Mutex<Vec<undertaker_events::Process>>>,
}

impl Container {
    pub(crate) fn bundle_str(&self) -> String {
        self.bundle.display().to_string()
    }

    /// The init (empty `exec_id`) or an exec.
    pub(crate) fn process(&self, exec_id: &str) -> Result<Arc<Process>> {
        if exec_id.is_empty() {
            return Ok(self.init.clone());
        }
        self.execs
            .lock()
            .unwrap()
            .get(exec_id)
            .cloned()
            .ok_or_else(|| ShimError::ExecNotFound {
                id: self.id.clone(),
                exec_id: exec_id.to_string(),
            })
    }

    pub(crate) fn is_stuck(&self) -> bool {
        self.stuck.load(std::sync::atomic::Ordering::SeqCst)
    }
}
