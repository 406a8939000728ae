//! The shim's lifecycle as containerd-shim drives it: start, serve, delete.

use std::{path::PathBuf, sync::Arc};

use async_trait::async_trait;
use containerd_shim::{
    publisher::RemotePublisher, Config, DeleteResponse, ExitSignal, Flags, Result, Shim, StartOpts,
};

use crate::{
    exits::ExitRouter,
    host::ProcHost,
    lifecycle::{seams::Seams, Core, ShimLife},
    publisher::ContainerdSink,
    runtime::RuncFactory,
    service::TaskService,
    shim_delete, shim_start,
};

pub(crate) struct UndertakerShim {
    id: String,
    namespace: String,
    bundle: PathBuf,
    exit: Arc<ExitSignal>,
}

#[async_trait]
impl Shim for UndertakerShim {
    type T = TaskService;

    async fn new(_runtime_id: &str, flags: &Flags, _config: &mut Config) -> Self {
        let bundle = if flags.bundle.is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            PathBuf::from(&flags.bundle)
        };
        UndertakerShim {
            id: flags.id.clone(),
            namespace: flags.namespace.clone(),
            bundle,
            exit: Arc::new(ExitSignal::default()),
        }
    }

    async fn start_shim(&mut self, opts: StartOpts) -> Result<String> {
        shim_start::start(opts).await
    }

    async fn delete_shim(&mut self) -> Result<DeleteResponse> {
        shim_delete::delete(&self.id, &self.namespace, &self.bundle).await
    }

    async fn wait(&mut self) {
        self.exit.wait().await;
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        let exits = match ExitRouter::start().await {
            Ok(exits) => exits,
            Err(e) => {
                tracing::error!("cannot watch process exits: {e}");
                std::process::exit(1);
            }
        };
        let seams = Seams {
            runtimes: Arc::new(RuncFactory {
                exits: exits.clone(),
            }),
            host: Arc::new(ProcHost),
            sink: Arc::new(ContainerdSink::new(publisher)),
        };
        let life = ShimLife::new(self.exit.clone());
        TaskService::new(Arc::new(Core::new(seams, &self.namespace, exits, life)))
    }
}
