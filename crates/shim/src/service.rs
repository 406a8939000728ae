//! The ttrpc Task service: each request mapped onto one call of the lifecycle core, and
//! its error onto a ttrpc code (`error.rs`). Every request holds the shim alive while it
//! is handled; kill and delete run detached, to their end.

use std::sync::Arc;

use async_trait::async_trait;
use containerd_shim::{api, Task, TtrpcContext, TtrpcResult};
use containerd_shim_protos::{
    protobuf::{well_known_types::any::Any, MessageField},
    shim::oci::ProcessDetails,
    types::task::ProcessInfo,
};
use tracing::instrument;

use crate::{
    error::ShimError,
    lifecycle::{detached, timestamp, Core},
    stdio::StdioSpec,
};

pub(crate) struct TaskService {
    core: Arc<Core>,
}

impl TaskService {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        TaskService { core }
    }
}

#[async_trait]
impl Task for TaskService {
    #[instrument(level = "debug", skip_all, fields(id = %req.id))]
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        let _request = self.core.life().hold();
        let pid = self.core.create(req).await?;
        Ok(api::CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id))]
    async fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let _request = self.core.life().hold();
        let pid = self.core.start(&req.id, &req.exec_id).await?;
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
        let _request = self.core.life().hold();
        Ok(self.core.state(&req.id, &req.exec_id)?)
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id))]
    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let _request = self.core.life().hold();
        let core = self.core.clone();
        let (id, exec_id) = (req.id.clone(), req.exec_id.clone());
        let (pid, exit) = detached(
            self.core.life(),
            async move { core.delete(&id, &exec_id).await },
        )
        .await?;
        Ok(api::DeleteResponse {
            pid,
            exit_status: exit.status,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..Default::default()
        })
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id))]
    async fn pids(
        &self,
        _ctx: &TtrpcContext,
        req: api::PidsRequest,
    ) -> TtrpcResult<api::PidsResponse> {
        let _request = self.core.life().hold();
        let mut processes = Vec::new();
        for (pid, exec_id) in self.core.pids(&req.id).await? {
            let mut info = ProcessInfo {
                pid: pid as u32,
                ..Default::default()
            };
            if let Some(exec_id) = exec_id {
                let details = ProcessDetails {
                    exec_id,
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

    #[instrument(level = "debug", skip_all, fields(id = %req.id))]
    async fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        let _request = self.core.life().hold();
        self.core.pause(&req.id).await?;
        Ok(api::Empty::new())
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id))]
    async fn resume(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResumeRequest,
    ) -> TtrpcResult<api::Empty> {
        let _request = self.core.life().hold();
        self.core.resume(&req.id).await?;
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
        let _request = self.core.life().hold();
        let core = self.core.clone();
        detached(self.core.life(), async move {
            core.kill(&req.id, &req.exec_id, req.signal, req.all).await
        })
        .await?;
        Ok(api::Empty::new())
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id))]
    async fn exec(
        &self,
        _ctx: &TtrpcContext,
        req: api::ExecProcessRequest,
    ) -> TtrpcResult<api::Empty> {
        let _request = self.core.life().hold();
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
        self.core.add_exec(&req.id, &req.exec_id, stdio, spec)?;
        Ok(api::Empty::new())
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id))]
    async fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<api::Empty> {
        let _request = self.core.life().hold();
        self.core
            .resize_pty(&req.id, &req.exec_id, req.width, req.height)
            .await?;
        Ok(api::Empty::new())
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id))]
    async fn close_io(
        &self,
        _ctx: &TtrpcContext,
        req: api::CloseIORequest,
    ) -> TtrpcResult<api::Empty> {
        let _request = self.core.life().hold();
        self.core.close_io(&req.id, &req.exec_id, req.stdin).await?;
        Ok(api::Empty::new())
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id))]
    async fn update(
        &self,
        _ctx: &TtrpcContext,
        req: api::UpdateTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        let _request = self.core.life().hold();
        let resources = req.resources.as_ref().ok_or_else(|| {
            ShimError::invalid(format!("container {}: update", req.id), "no resources")
        })?;
        self.core.update(&req.id, resources.value.clone()).await?;
        Ok(api::Empty::new())
    }

    #[instrument(level = "debug", skip_all, fields(id = %req.id, exec = %req.exec_id))]
    async fn wait(
        &self,
        _ctx: &TtrpcContext,
        req: api::WaitRequest,
    ) -> TtrpcResult<api::WaitResponse> {
        // No hold: a Wait lasts as long as the process, and containerd cancels it when it
        // asks the shim to go.
        let exit = self.core.wait(&req.id, &req.exec_id).await?;
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
        let _request = self.core.life().hold();
        let stats = self.core.metrics(&req.id).await?;
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
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: self.core.task_pid(&req.id),
            version: crate::VERSION.to_string(),
            ..Default::default()
        })
    }

    #[instrument(level = "debug", skip_all, fields(id = %_req.id))]
    async fn shutdown(
        &self,
        _ctx: &TtrpcContext,
        _req: api::ShutdownRequest,
    ) -> TtrpcResult<api::Empty> {
        let _request = self.core.life().hold();
        self.core.shutdown();
        Ok(api::Empty::new())
    }
}
