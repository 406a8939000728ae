//! Start: the container's init (the workload starts) or one of its execs (`exec.rs`).

use std::sync::Arc;

use super::{process::Status, Core};
use crate::error::Result;

impl Core {
    /// Starts the init (empty `exec_id`) or an exec; returns its pid.
    pub(crate) async fn start(self: &Arc<Self>, id: &str, exec_id: &str) -> Result<u32> {
        let container = self.container(id)?;
        if !exec_id.is_empty() {
            return self.start_exec(&container, exec_id).await;
        }
        let init = &container.init;
        let _starting = init.starting.lock().await;
        init.transition(&[Status::Created], Status::Running, "start")?;
        if let Err(e) = container.runtime.start(id).await {
            // Put it back so containerd may delete it as a created task.
            let _ = init.transition(&[Status::Running], Status::Created, "start");
            return Err(e.into());
        }
        self.events.task_start(init);
        Ok(init.pid() as u32)
    }
}
