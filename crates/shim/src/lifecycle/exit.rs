//! Exit: a process of a container ended (the reaper saw it), or its init is held in its
//! exit by an unkillable process. The order of what is published is fixed here:
//!
//! 1. what undertaker-init reported (reaps, leftovers it killed), read to the end;
//! 2. for the init: the whole-cgroup kill's leaked and unkillable events, then the exits
//!    of the execs it took down;
//! 3. `/tasks/exit`.

use std::{sync::Arc, time::Duration};

use tokio::sync::oneshot;
use undertaker_events::LeakReason;

use super::{
    blocking,
    container::Container,
    process::{Process, Status},
    Core,
};
use crate::exits::ExitCode;

/// How long the init's exit event waits for the execs it took down to report theirs.
const EXEC_EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long an init that closed its report channel may take to be reaped before the
/// shim looks for what holds it.
pub(crate) const STUCK_EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long an exit waits for the init's report channel to be read to its end.
const REPORT_DRAIN: Duration = Duration::from_secs(3);

/// Appends the leak summary to the termination message, before the exit is published (so
/// before kubelet reads the file).
async fn write_termination_message(container: &Container) {
    let Some(file) = container.termination_log.clone() else {
        return;
    };
    let killed = std::mem::take(&mut *container.main_exit_leftovers.lock().unwrap());
    if killed.is_empty() {
        return;
    }
    let what = format!("container {}: termination message", container.id);
    match blocking(what, move || super::termination::append(&file, &killed)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(container = %container.id, "writing the termination message failed: {e}")
        }
        Err(e) => tracing::warn!("{e}"),
    }
}

impl Core {
    /// Routes `process`'s exit, when the reaper sees it, to [`Core::on_exit`]. Ends with
    /// the container.
    pub(super) fn watch_exit(
        self: &Arc<Self>,
        container: &Arc<Container>,
        process: Arc<Process>,
        exit: oneshot::Receiver<ExitCode>,
    ) {
        let (core, container) = (self.clone(), container.clone());
        tokio::spawn(async move {
            let code = tokio::select! {
                code = exit => code,
                _ = container.gone.cancelled() => return,
            };
            if let Ok(code) = code {
                core.on_exit(&container, process, code).await;
            }
        });
    }

    pub(super) async fn on_exit(&self, container: &Container, p: Arc<Process>, code: ExitCode) {
        tracing::info!(container = %container.id, exec = %p.exec_id, pid = p.pid(), code, "process exited");
        if matches!(p.status(), Status::Deleted | Status::Stopped) {
            return;
        }
        p.finish_report(REPORT_DRAIN).await;
        if p.is_init() {
            if self.after_init_exit(container).await {
                // What survived may hold the container's stdout: end the copies (what is
                // already written is drained, bounded), so containerd sees the output end
                // too; containerd 2.x waits for that before it deletes the task.
                if let Some(mut io) = p.io.lock().await.take() {
                    io.shutdown().await;
                }
            }
            write_termination_message(container).await;
        }
        // A process that exits as it starts is reported started first.
        drop(p.starting.lock().await);
        if !p.set_exited(code as u32) {
            return;
        }
        if let Some(exit) = p.exit() {
            self.events.task_exit(&p, exit);
        }
    }

    /// The init is gone: kill whatever is left in the container's cgroup and wait until
    /// it is empty, and let the execs it took down report their exits first, as
    /// containerd expects. Returns whether something unkillable is left.
    async fn after_init_exit(&self, container: &Container) -> bool {
        let mut survivors = 0;
        if container.is_stuck() {
            // Reported by exit_if_stuck right after a cgroup kill found the survivors;
            // killing again would only wait out the same timeout.
            survivors = 1;
        } else if container.cgroup.is_some() {
            survivors = self
                .kill_cgroup(container, LeakReason::LEAK_REASON_MAIN_EXIT, &[])
                .await;
        } else if !container.own_pid_namespace {
            if let Err(e) = container
                .runtime
                .kill(&container.id, libc::SIGKILL as u32, true)
                .await
            {
                tracing::warn!(container = %container.id, "killing the remaining processes failed: {e}");
            }
        }
        let running: Vec<_> = container
            .execs
            .lock()
            .unwrap()
            .values()
            .filter(|e| e.status() == Status::Running)
            .cloned()
            .collect();
        for exec in running {
            if tokio::time::timeout(EXEC_EXIT_GRACE, exec.wait())
                .await
                .is_err()
            {
                tracing::warn!(container = %container.id, exec = %exec.exec_id, "exec still running after its init exited");
            }
        }
        survivors > 0
    }

    /// An init that is PID 1 of its namespace cannot finish exiting while an unkillable
    /// process (state D, frozen cgroup) is left in the namespace: the kernel holds it in
    /// its exit until every other process is gone, so it is never reaped. Report its exit
    /// anyway, so the pod can be stopped and removed; the unkillable event says what
    /// stayed.
    pub(super) async fn exit_if_stuck(&self, container: &Container, code_if_unknown: i32) {
        let init = &container.init;
        if matches!(init.status(), Status::Stopped | Status::Deleted)
            || !self.is_exiting(init.pid()).await
        {
            return;
        }
        let code = init.init_state.announced_exit().unwrap_or(code_if_unknown);
        container
            .stuck
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::warn!(container = %container.id, pid = init.pid(), code, "the init cannot finish exiting (an unkillable process holds its namespace); reporting its exit");
        self.on_exit(container, init.clone(), code).await;
    }

    async fn is_exiting(&self, pid: i32) -> bool {
        let host = self.seams.host.clone();
        blocking("read the init's state", move || host.is_exiting(pid))
            .await
            .unwrap_or(false)
    }

    /// Once the init closed its report channel it is exiting; if it is not reaped
    /// shortly after, something unkillable holds it: kill the cgroup, and report the
    /// exit if that is why. Ends with the container.
    pub(super) fn watch_stuck_exit(self: &Arc<Self>, container: &Arc<Container>) {
        let (core, container) = (self.clone(), container.clone());
        let mut closed = container.init.init_state.closed.subscribe();
        tokio::spawn(async move {
            let gone = container.gone.clone();
            tokio::select! {
                _ = gone.cancelled() => {}
                _ = async {
                    if closed.wait_for(|c| *c).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(STUCK_EXIT_GRACE).await;
                    core.on_stuck_exit(&container).await;
                } => {}
            }
        });
    }

    async fn on_stuck_exit(&self, container: &Container) {
        let init = &container.init;
        if matches!(init.status(), Status::Stopped | Status::Deleted)
            || !self.is_exiting(init.pid()).await
        {
            return;
        }
        tracing::debug!(container = %container.id, "init closed its report channel and is not reaped");
        if self
            .kill_cgroup(container, LeakReason::LEAK_REASON_MAIN_EXIT, &[init.pid()])
            .await
            > 0
        {
            self.exit_if_stuck(container, 128 + libc::SIGKILL).await;
        }
    }
}
