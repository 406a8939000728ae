//! The ttrpc Task service: containerd's requests, mapped onto the containers.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use containerd_shim::{api, ExitSignal, Task, TtrpcContext, TtrpcResult};
use containerd_shim_protos::{
    protobuf::{well_known_types::any::Any, MessageField},
    shim::oci::ProcessDetails,
    types::task::ProcessInfo,
};
use tracing::instrument;

use crate::{
    container::Container,
    error::{Result, ShimError},
    events::Publisher,
    exits::ExitRouter,
    life::ShimLife,
    process::{timestamp, Status},
    stdio::StdioSpec,
};

pub struct TaskService {
    containers: Mutex<HashMap<String, Arc<Container>>>,
    exits: ExitRouter,
    publisher: Publisher,
    life: ShimLife,
}

impl TaskService {
    pub fn new(exits: ExitRouter, publisher: Publisher, exit_signal: Arc<ExitSignal>) -> Self {
        TaskService {
            containers: Mutex::new(HashMap::new()),
            exits,
            publisher,
            life: ShimLife::new(exit_signal),
        }
    }

    fn container(&self, id: &str) -> Result<Arc<Container>> {
        self.containers
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| ShimError::ContainerNotFound { id: id.to_string() })
    }

    async fn do_create(&self, req: api::CreateTaskRequest) -> Result<api::CreateTaskResponse> {
        if req.id.is_empty() {
            return Err(ShimError::invalid("create", "empty container id"));
        }
        if self.containers.lock().unwrap().contains_key(&req.id) {
            return Err(ShimError::ContainerExists { id: req.id.clone() });
        }
        let container = Container::create(&req, &self.exits, &self.publisher, &self.life).await?;
        let pid = container.init.pid() as u32;
        {
            let mut containers = self.containers.lock().unwrap();
            if containers.contains_key(&req.id) {
                return Err(ShimError::ContainerExists { id: req.id.clone() });
            }
            containers.insert(req.id.clone(), container.clone());
        }
        self.publisher
            .task_create(&container.init, &container.bundle_str(), container.rootfs())
            .await;
        Ok(api::CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    async fn do_delete(&self, req: api::DeleteRequest) -> Result<api::DeleteResponse> {
        let container = self.container(&req.id)?;
        let exec_id = req.exec_id.clone();
        let (pid, exit) = detached(async move { container.delete(&exec_id).await }).await?;
        if req.exec_id.is_empty() {
            self.containers.lock().unwrap().remove(&req.id);
        }
        Ok(api::DeleteResponse {
            pid,
            exit_status: exit.status,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..Default::default()
        })
    }

    async fn do_pids(&self, req: api::PidsRequest) -> Result<api::PidsResponse> {
        let container = self.container(&req.id)?;
        let pids = container.runtime.ps(&req.id).await?;
        let execs: HashMap<i32, String> = container
            .execs
            .lock()
            .unwrap()
            .values()
            .map(|e| (e.pid(), e.exec_id.clone()))
            .collect();
        let mut processes = Vec::with_capacity(pids.len());
        for pid in pids {
            let mut info = ProcessInfo {
                pid: pid as u32,
                ..Default::default()
            };
            if let Some(exec_id) = execs.get(&pid) {
                let details = ProcessDetails {
                    exec_id: exec_id.clone(),
                    ..Default::default()
                };
                let any = Any::pack(&details).map_err(|e| ShimError::Protobuf {
                    what: "encode process details".into(),
                    source: e,
                })?;
                info.info = MessageField::some(any);
            }
            processes.push(info);
        }
        Ok(api::PidsResponse {
            processes,
            ..Default::default()
        })
    }

    async fn do_update(&self, req: api::UpdateTaskRequest) -> Result<()> {
        let container = self.container(&req.id)?;
        let resources = req.resources.as_ref().ok_or_else(|| {
            ShimError::invalid(format!("container {}: update", req.id), "no resources")
        })?;
        let file = tempfile::Builder::new()
            .prefix(".resources-")
            .suffix(".json")
            .tempfile_in(&container.bundle)
            .map_err(|e| ShimError::io("write resources in", &container.bundle, e))?;
        std::fs::write(file.path(), &resources.value)
            .map_err(|e| ShimError::io("write resources", file.path(), e))?;
        container.runtime.update(&req.id, file.path()).await?;
        Ok(())
    }

    async fn do_pause(&self, id: &str) -> Result<()> {
        let container = self.container(id)?;
        container
            .init
            .transition(&[Status::Running], Status::Paused, "pause")?;
        if let Err(e) = container.runtime.pause(id).await {
            let _ = container
                .init
                .transition(&[Status::Paused], Status::Running, "pause");
            return Err(e.into());
        }
        self.publisher.task_paused(id).await;
        Ok(())
    }

    async fn do_resume(&self, id: &str) -> Result<()> {
        let container = self.container(id)?;
        container
            .init
            .transition(&[Status::Paused], Status::Running, "resume")?;
        if let Err(e) = container.runtime.resume(id).await {
            let _ = container
                .init
                .transition(&[Status::Running], Status::Paused, "resume");
            return Err(e.into());
        }
        self.publisher.task_resumed(id).await;
        Ok(())
    }
}

/// Runs `work` to its end even if containerd gives up on the request: ttrpc
/// drops a handler whose client timed out, and a kill or delete cut off
/// half-way (after the cgroup kill, before the exit is reported) would leave
/// the container in between.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(work)
        .await
        .map_err(|e| ShimError::Other(format!("request task failed: {e}")))?
}

#[async_trait]
impl Task for TaskService {
    #[instrument(level = "debug", skip_all, fields(id = %req.id))]
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        Ok(self.do_create(req).await?)
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id))]
    async fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let container = self.container(&req.id)?;
        let pid = if req.exec_id.is_empty() {
            container.start_init().await?
        } else {
            container.start_exec(&req.exec_id).await?
        };
        Ok(api::StartResponse {
            pid,
            ..Default::default()
        })
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id))]
    async fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let container = self.container(&req.id)?;
        let process = container.process(&req.exec_id)?;
        Ok(process.state_response(&container.bundle_str()))
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id))]
    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        Ok(self.do_delete(req).await?)
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id))]
    async fn pids(
        &self,
        _ctx: &TtrpcContext,
        req: api::PidsRequest,
    ) -> TtrpcResult<api::PidsResponse> {
        Ok(self.do_pids(req).await?)
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id))]
    async fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        self.do_pause(&req.id).await?;
        Ok(api::Empty::new())
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id))]
    async fn resume(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResumeRequest,
    ) -> TtrpcResult<api::Empty> {
        self.do_resume(&req.id).await?;
        Ok(api::Empty::new())
    }

    async fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        req: api::CheckpointTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        Err(ShimError::Unsupported {
            what: format!("container {}: checkpoint", req.id),
        }
        .into())
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id, signal = req.signal, all = req.all))]
    async fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let container = self.container(&req.id)?;
        let (exec_id, signal, all) = (req.exec_id.clone(), req.signal, req.all);
        detached(async move { container.kill(&exec_id, signal, all).await }).await?;
        Ok(api::Empty::new())
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id))]
    async fn exec(
        &self,
        _ctx: &TtrpcContext,
        req: api::ExecProcessRequest,
    ) -> TtrpcResult<api::Empty> {
        let container = self.container(&req.id)?;
        let spec = req
            .spec
            .as_ref()
            .map(|any| any.value.clone())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ShimError::invalid(
                    format!("container {}: exec {}", req.id, req.exec_id),
                    "no process spec",
                )
            })?;
        let stdio = StdioSpec {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        container.add_exec(&req.exec_id, stdio, spec).await?;
        Ok(api::Empty::new())
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id))]
    async fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<api::Empty> {
        let container = self.container(&req.id)?;
        let process = container.process(&req.exec_id)?;
        let io = process.io.lock().await;
        match io.as_ref() {
            Some(io) => io.resize(req.width, req.height)?,
            None => {
                return Err(ShimError::wrong_state(
                    format!("{}: resize pty", process.name()),
                    "process has no io",
                )
                .into())
            }
        }
        Ok(api::Empty::new())
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id))]
    async fn close_io(
        &self,
        _ctx: &TtrpcContext,
        req: api::CloseIORequest,
    ) -> TtrpcResult<api::Empty> {
        let container = self.container(&req.id)?;
        let process = container.process(&req.exec_id)?;
        if req.stdin {
            if let Some(io) = process.io.lock().await.as_ref() {
                io.close_stdin();
            }
        }
        Ok(api::Empty::new())
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id))]
    async fn update(
        &self,
        _ctx: &TtrpcContext,
        req: api::UpdateTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        self.do_update(req).await?;
        Ok(api::Empty::new())
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id))]
    async fn wait(
        &self,
        _ctx: &TtrpcContext,
        req: api::WaitRequest,
    ) -> TtrpcResult<api::WaitResponse> {
        let container = self.container(&req.id)?;
        let process = container.process(&req.exec_id)?;
        let exit = process.wait().await;
        Ok(api::WaitResponse {
            exit_status: exit.status,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..Default::default()
        })
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id))]
    async fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let container = self.container(&req.id)?;
        let stats = container.metrics().await?;
        Ok(api::StatsResponse {
            stats: MessageField::some(stats),
            ..Default::default()
        })
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self
            .container(&req.id)
            .map(|c| c.init.pid() as u32)
            .unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: crate::VERSION.to_string(),
            ..Default::default()
        })
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id))]
    async fn shutdown(
        &self,
        _ctx: &TtrpcContext,
        req: api::ShutdownRequest,
    ) -> TtrpcResult<api::Empty> {
        // One shim serves a whole pod: it only goes once its last container is deleted.
        if !self.containers.lock().unwrap().is_empty() {
            return Ok(api::Empty::new());
        }
        let pending = self.life.pending();
        tracing::info!(id = %req.id, pending, "last container deleted, shim exits once no clean-up is pending");
        self.life.request_shutdown();
        Ok(api::Empty::new())
    }
}
