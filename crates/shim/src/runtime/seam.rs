//! [`Runtime`] as the lifecycle core's OCI runtime seam.

use std::{path::Path, sync::Arc};

use super::{LaunchOpts, Runtime, RuntimeError};
use crate::{
    exits::ExitRouter,
    lifecycle::seams::{OciRuntime, RuntimeFactory},
    options::RuntimeOptions,
};

#[async_trait::async_trait]
impl OciRuntime for Runtime {
    async fn create(&self, id: &str, bundle: &Path, opts: LaunchOpts) -> Result<i32, RuntimeError> {
        Runtime::create(self, id, bundle, opts).await
    }
    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        Runtime::start(self, id).await
    }
    async fn exec(&self, id: &str, process: &Path, opts: LaunchOpts) -> Result<i32, RuntimeError> {
        Runtime::exec(self, id, process, opts).await
    }
    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), RuntimeError> {
        Runtime::kill(self, id, signal, all).await
    }
    async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        Runtime::delete(self, id, force).await
    }
    async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        Runtime::pause(self, id).await
    }
    async fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        Runtime::resume(self, id).await
    }
    async fn update(&self, id: &str, resources: &Path) -> Result<(), RuntimeError> {
        Runtime::update(self, id, resources).await
    }
    async fn ps(&self, id: &str) -> Result<Vec<i32>, RuntimeError> {
        Runtime::ps(self, id).await
    }
}

/// Makes a [`Runtime`] per container from its options, fed by the shim's reaper.
pub(crate) struct RuncFactory {
    pub(crate) exits: ExitRouter,
}

impl RuntimeFactory for RuncFactory {
    fn runtime(
        &self,
        options: &RuntimeOptions,
        namespace: &str,
        bundle: &Path,
    ) -> Arc<dyn OciRuntime> {
        Arc::new(Runtime::new(
            &options.binary_name,
            options.runc_root(namespace),
            options.systemd_cgroup,
            bundle,
            self.exits.clone(),
        ))
    }
}
