//! The real host under the lifecycle core: cgroups through `undertaker_cgroups`,
//! processes through `/proc`.

use std::{sync::Arc, time::Duration};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use undertaker_cgroups::{ContainerCgroup, KillReport, ProcessInfo, Setup};

use crate::{
    error::{Result, ShimError},
    lifecycle::{
        seams::{Cgroup, Host},
        Events,
    },
};

pub(crate) struct ProcHost;

impl Host for ProcHost {
    fn cgroup_of(&self, container_id: &str, pid: i32) -> Option<Arc<dyn Cgroup>> {
        // Unknown, the container still runs: it costs stats and the whole-cgroup kill.
        match Setup::host().and_then(|setup| ContainerCgroup::of_pid(&setup, pid)) {
            Ok(cgroup) => Some(Arc::new(HostCgroup(cgroup))),
            Err(e) => {
                tracing::warn!(container = %container_id, pid, "cannot find the container's cgroup: {e}");
                None
            }
        }
    }

    fn kill_tree(&self, root: i32) -> Vec<ProcessInfo> {
        crate::tree::kill_tree(root)
    }

    fn is_exiting(&self, pid: i32) -> bool {
        crate::tree::is_exiting(pid)
    }

    fn exists(&self, pid: i32) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    fn host_pid_of_child(&self, parent: i32, ns_pid: i32) -> Option<i32> {
        crate::report_channel::host_pid_of_child(parent, ns_pid)
    }
}

struct HostCgroup(ContainerCgroup);

impl Cgroup for HostCgroup {
    fn kill_all(&self, timeout: Duration) -> std::result::Result<KillReport, String> {
        self.0.kill_all(timeout).map_err(|e| e.to_string())
    }

    fn metrics(&self) -> Result<Any> {
        crate::stats::MetricsSource::of(&self.0)
            .ok_or_else(|| ShimError::wrong_state("stats", "the cgroup has no metrics"))?
            .collect()
    }

    fn watch_oom(&self, container_id: &str, events: Events) -> Option<tokio::task::JoinHandle<()>> {
        crate::oom::watch(container_id, &self.0, events)
    }
}
