//! Kill: a signal for the init or an exec. SIGKILL for the init never kills only the
//! main pid: the whole cgroup goes at once, and what it held is reported.

use std::{sync::Arc, time::Duration};

use undertaker_events::{KilledBy, LeakReason};

use super::{
    blocking,
    container::Container,
    process::{Process, Status},
    reports::from_cgroup,
    Core,
};
use crate::error::{Result, ShimError};

/// How long a whole-cgroup kill waits for the cgroup to empty before naming the
/// survivors unkillable and moving on.
pub(crate) const CGROUP_KILL_TIMEOUT: Duration = Duration::from_secs(3);

impl Core {
    pub(crate) async fn kill(
        self: &Arc<Self>,
        id: &str,
        exec_id: &str,
        signal: u32,
        all: bool,
    ) -> Result<()> {
        let container = self.container(id)?;
        let _in_flight = container.kills_in_flight.read().await;
        let p = container.process(exec_id)?;
        match p.status() {
            Status::Stopped | Status::Deleted => {
                return Err(ShimError::ProcessFinished { what: p.name() })
            }
            Status::Created if !p.is_init() => {
                return Err(ShimError::wrong_state(
                    format!("{}: kill", p.name()),
                    "exec is not started",
                ))
            }
            _ => {}
        }
        let sigkill = signal == libc::SIGKILL as u32;
        if p.is_init() {
            if sigkill && container.cgroup.is_some() {
                let expected = self.expected_deaths(&container).await;
                if self
                    .kill_cgroup(&container, LeakReason::LEAK_REASON_STOP, &expected)
                    .await
                    > 0
                {
                    self.exit_if_stuck(&container, 128 + libc::SIGKILL).await;
                }
                return Ok(());
            }
            return Ok(container.runtime.kill(id, signal, all).await?);
        }
        if sigkill {
            self.kill_exec_tree(&container, &p).await;
            return Ok(());
        }
        let sig = nix::sys::signal::Signal::try_from(signal as i32).map_err(|_| {
            ShimError::invalid(
                format!("{}: kill", p.name()),
                format!("unknown signal {signal}"),
            )
        })?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid()), sig).map_err(|e| {
            ShimError::Os {
                what: format!("{}: kill pid {} with {sig}", p.name(), p.pid()),
                source: e,
            }
        })
    }

    /// Host pids whose death a stop is meant to cause: the init and, under
    /// undertaker-init, the main process. Everything else killed is a leak.
    async fn expected_deaths(&self, container: &Container) -> Vec<i32> {
        let init = container.init.pid();
        let main_ns = container
            .init
            .init_state
            .main_ns_pid
            .load(std::sync::atomic::Ordering::Relaxed);
        let host = self.seams.host.clone();
        let main = blocking("find the main process", move || {
            (main_ns > 0).then(|| host.host_pid_of_child(init, main_ns))
        })
        .await
        .ok()
        .flatten()
        .flatten();
        [init].into_iter().chain(main).collect()
    }

    /// Kills the container's whole cgroup and waits (bounded) until it is empty;
    /// publishes what it killed (but `expected`) as leaked and what survived as
    /// unkillable. Returns how many survived.
    pub(super) async fn kill_cgroup(
        &self,
        container: &Container,
        reason: LeakReason,
        expected: &[i32],
    ) -> usize {
        let Some(cgroup) = container.cgroup.clone() else {
            return 0;
        };
        let _one_at_a_time = container.kill_lock.lock().await;
        let killed = blocking(
            format!("container {}: kill cgroup", container.id),
            move || cgroup.kill_all(CGROUP_KILL_TIMEOUT),
        )
        .await;
        let report = match killed {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => {
                tracing::warn!(container = %container.id, "whole-cgroup kill failed: {e}");
                return 0;
            }
            Err(e) => {
                tracing::warn!(container = %container.id, "{e}");
                return 0;
            }
        };
        tracing::debug!(container = %container.id, method = %report.method, killed = report.killed.len(), unkillable = report.unkillable.len(), elapsed = ?report.elapsed, "cgroup killed");
        container.reporter.kill_report(&report, reason, expected)
    }

    /// SIGKILL for an exec: the exec and everything it started, reported as leaked.
    async fn kill_exec_tree(&self, container: &Container, exec: &Process) {
        let (root, host) = (exec.pid(), self.seams.host.clone());
        let tree = blocking(format!("{}: kill", exec.name()), move || {
            host.kill_tree(root)
        })
        .await
        .unwrap_or_default();
        let leaked = tree
            .iter()
            .filter(|p| p.pid != root)
            .map(|p| from_cgroup(p, KilledBy::KILLED_BY_KILL))
            .collect();
        container
            .reporter
            .for_exec(&exec.exec_id, exec.spec.as_deref())
            .leaked(leaked, LeakReason::LEAK_REASON_STOP);
    }
}
