//! Delete: an exec, or the whole container (its cgroup killed once more, the runtime's
//! container and the rootfs removed, every task watching it ended).

use std::{sync::Arc, time::Duration};

use undertaker_events::LeakReason;

use super::{
    blocking, bundle,
    container::Container,
    process::{Exit, Status},
    Core,
};
use crate::error::Result;

/// How long a shim waits for an unkillable process to let its container go before it
/// gives up on deleting it from the runtime.
const RELEASE_WAIT: Duration = Duration::from_secs(600);
/// How often it looks whether the held init is gone.
const RELEASE_POLL: Duration = Duration::from_secs(1);

impl Core {
    /// Deletes the init (the whole container) or an exec; returns its pid and exit.
    pub(crate) async fn delete(self: &Arc<Self>, id: &str, exec_id: &str) -> Result<(u32, Exit)> {
        let container = self.container(id)?;
        // The container's Delete answers only after every Kill in flight has (see
        // `Container::kills_in_flight`); an exec's Delete closes nothing.
        let _no_kill_in_flight = if exec_id.is_empty() {
            Some(container.kills_in_flight.write().await)
        } else {
            None
        };
        let p = container.process(exec_id)?;
        p.transition(
            &[Status::Created, Status::Stopped],
            Status::Deleted,
            "delete",
        )?;
        if let Some(mut io) = p.io.lock().await.take() {
            io.shutdown().await;
        }
        let exit = p.exit().unwrap_or(Exit {
            status: 0,
            at: time::OffsetDateTime::now_utc(),
        });
        if !p.is_init() {
            container.execs.lock().unwrap().remove(exec_id);
            return Ok((p.pid() as u32, exit));
        }
        if container.is_stuck() {
            // runc cannot delete a container whose init has not finished exiting; do it
            // once the unkillable process is gone.
            self.delete_when_released(&container);
        } else {
            self.kill_cgroup(&container, LeakReason::LEAK_REASON_DELETE, &[])
                .await;
            delete_in_runtime(&container).await?;
        }
        if !container.rootfs.is_empty() {
            bundle::unmount_rootfs(container.bundle.clone()).await;
        }
        container.gone.cancel();
        if let Some(report) = p.report.lock().unwrap().take() {
            report.abort();
        }
        self.containers.lock().unwrap().remove(id);
        self.events.task_delete(&p, exit);
        Ok((p.pid() as u32, exit))
    }

    /// Waits (bounded) in the background for the held init to go, then deletes the
    /// container from the runtime; the shim stays until then.
    fn delete_when_released(&self, container: &Arc<Container>) {
        let hold = self.life.hold();
        let (container, host) = (container.clone(), self.seams.host.clone());
        let pid = container.init.pid();
        tracing::warn!(container = %container.id, pid, "runtime state and cgroup stay until the unkillable process goes");
        tokio::spawn(async move {
            let _hold = hold;
            let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
            loop {
                let host = host.clone();
                let exists = blocking("look for the held init", move || host.exists(pid))
                    .await
                    .unwrap_or(false);
                if !exists || tokio::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(RELEASE_POLL).await;
            }
            match container.runtime.delete(&container.id, true).await {
                Err(e) if !e.is_not_found() => {
                    tracing::warn!(container = %container.id, "deleting the released container failed: {e}")
                }
                _ => tracing::info!(container = %container.id, "released container deleted"),
            }
        });
    }
}

async fn delete_in_runtime(container: &Container) -> Result<()> {
    match container.runtime.delete(&container.id, false).await {
        Err(e) if !e.is_not_found() => {
            // A created container's init may still be there; force it.
            container
                .runtime
                .delete(&container.id, true)
                .await
                .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })?;
        }
        _ => {}
    }
    Ok(())
}
