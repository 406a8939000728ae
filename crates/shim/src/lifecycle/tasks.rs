//! The Task verbs that are no lifecycle step of their own: pause and resume, state,
//! wait, pids, update, stats, the terminal and stdin.

use std::collections::HashMap;

use containerd_shim_protos::{api::StateResponse, protobuf::well_known_types::any::Any};

use super::{
    blocking,
    process::{Exit, Status},
    Core,
};
use crate::error::{Result, ShimError};

impl Core {
    pub(crate) async fn pause(&self, id: &str) -> Result<()> {
        self.set_paused(id, true).await
    }

    pub(crate) async fn resume(&self, id: &str) -> Result<()> {
        self.set_paused(id, false).await
    }

    /// Pause (freeze) or resume the container; its status goes back if the runtime fails.
    async fn set_paused(&self, id: &str, pause: bool) -> Result<()> {
        let container = self.container(id)?;
        let (from, to, op) = if pause {
            (Status::Running, Status::Paused, "pause")
        } else {
            (Status::Paused, Status::Running, "resume")
        };
        container.init.transition(&[from], to, op)?;
        let done = if pause {
            container.runtime.pause(id).await
        } else {
            container.runtime.resume(id).await
        };
        if let Err(e) = done {
            let _ = container.init.transition(&[to], from, op);
            return Err(e.into());
        }
        if pause {
            self.events.task_paused(id);
        } else {
            self.events.task_resumed(id);
        }
        Ok(())
    }

    pub(crate) fn state(&self, id: &str, exec_id: &str) -> Result<StateResponse> {
        let container = self.container(id)?;
        let process = container.process(exec_id)?;
        Ok(process.state_response(&container.bundle_str()))
    }

    /// Waits until the process has exited.
    pub(crate) async fn wait(&self, id: &str, exec_id: &str) -> Result<Exit> {
        let process = self.container(id)?.process(exec_id)?;
        Ok(process.wait().await)
    }

    /// The container's pids, each with its exec id when it is an exec's.
    pub(crate) async fn pids(&self, id: &str) -> Result<Vec<(i32, Option<String>)>> {
        let container = self.container(id)?;
        let pids = container.runtime.ps(id).await?;
        let execs: HashMap<i32, String> = container
            .execs
            .lock()
            .unwrap()
            .values()
            .map(|e| (e.pid(), e.exec_id.clone()))
            .collect();
        Ok(pids
            .into_iter()
            .map(|pid| (pid, execs.get(&pid).cloned()))
            .collect())
    }

    /// Applies new resources (OCI `LinuxResources` JSON).
    pub(crate) async fn update(&self, id: &str, resources: Vec<u8>) -> Result<()> {
        let container = self.container(id)?;
        let bundle = container.bundle.clone();
        let file = blocking(format!("container {id}: update"), move || {
            let file = tempfile::Builder::new()
                .prefix(".resources-")
                .suffix(".json")
                .tempfile_in(&bundle)
                .map_err(|e| ShimError::io("write resources in", &bundle, e))?;
            std::fs::write(file.path(), &resources)
                .map_err(|e| ShimError::io("write resources", file.path(), e))?;
            Ok::<_, ShimError>(file)
        })
        .await??;
        container.runtime.update(id, file.path()).await?;
        blocking("remove resources file", move || drop(file)).await?;
        Ok(())
    }

    /// The container's resource usage now, for `Stats`.
    pub(crate) async fn metrics(&self, id: &str) -> Result<Any> {
        let container = self.container(id)?;
        let cgroup = container.cgroup.clone().ok_or_else(|| {
            ShimError::wrong_state(format!("container {id}: stats"), "its cgroup is unknown")
        })?;
        blocking(format!("container {id}: stats"), move || cgroup.metrics()).await?
    }

    pub(crate) async fn resize_pty(
        &self,
        id: &str,
        exec_id: &str,
        width: u32,
        height: u32,
    ) -> Result<()> {
        let process = self.container(id)?.process(exec_id)?;
        let io = process.io.lock().await;
        match io.as_ref() {
            Some(io) => io.resize(width, height),
            None => Err(ShimError::wrong_state(
                format!("{}: resize pty", process.name()),
                "process has no io",
            )),
        }
    }

    /// CloseIO: the process must exist, whether or not stdin is to be closed.
    pub(crate) async fn close_io(&self, id: &str, exec_id: &str, stdin: bool) -> Result<()> {
        let process = self.container(id)?.process(exec_id)?;
        if stdin {
            if let Some(io) = process.io.lock().await.as_ref() {
                io.close_stdin();
            }
        }
        Ok(())
    }

    /// The init's pid, or 0 for an unknown container (`Connect`).
    pub(crate) fn task_pid(&self, id: &str) -> u32 {
        self.container(id).map_or(0, |c| c.init.pid() as u32)
    }
}
