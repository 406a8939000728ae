//! Exec: added by `Exec`, started by `Start` with an exec id. Under undertaker-init the
//! exec's process is wrapped in the init as a subreaper, so what it leaves is killed and
//! reported with its exec id when it exits.

use std::{os::fd::OwnedFd, sync::Arc};

use undertaker_events::LeakReason;

use super::{
    blocking,
    container::Container,
    process::{Process, Status},
    Core,
};
use crate::{
    error::{Result, ShimError},
    report_channel::{self, REPORT_FD},
    runtime::LaunchOpts,
    stdio::{PreparedIo, StdioSpec},
};

impl Core {
    /// Registers an exec; it runs when started.
    pub(crate) fn add_exec(
        &self,
        id: &str,
        exec_id: &str,
        stdio: StdioSpec,
        spec: Vec<u8>,
    ) -> Result<()> {
        let container = self.container(id)?;
        if exec_id.is_empty() {
            return Err(ShimError::invalid(
                format!("container {id}: exec"),
                "empty exec id",
            ));
        }
        match container.init.status() {
            Status::Running | Status::Paused => {}
            other => {
                return Err(ShimError::wrong_state(
                    format!("container {id}: exec {exec_id}"),
                    format!("container is {other}"),
                ))
            }
        }
        let process = Arc::new(Process::new(id, exec_id, stdio, Some(spec)));
        {
            let mut execs = container.execs.lock().unwrap();
            if execs.contains_key(exec_id) {
                return Err(ShimError::ExecExists {
                    id: id.to_string(),
                    exec_id: exec_id.to_string(),
                });
            }
            execs.insert(exec_id.to_string(), process.clone());
        }
        self.events.exec_added(&process);
        Ok(())
    }

    pub(super) async fn start_exec(
        self: &Arc<Self>,
        container: &Arc<Container>,
        exec_id: &str,
    ) -> Result<u32> {
        let p = container.process(exec_id)?;
        let _starting = p.starting.lock().await;
        if p.status() != Status::Created {
            return Err(ShimError::wrong_state(
                format!("{}: start", p.name()),
                format!("process is {}", p.status()),
            ));
        }
        let pid = self.run_exec(container, &p).await?;
        self.events.exec_started(&p);
        Ok(pid)
    }

    async fn run_exec(
        self: &Arc<Self>,
        container: &Arc<Container>,
        p: &Arc<Process>,
    ) -> Result<u32> {
        let (spec, report) = wrap_exec_spec(container, p)?;
        let bundle = container.bundle.clone();
        let spec_file = blocking(format!("{}: write process spec", p.name()), move || {
            let file = tempfile::Builder::new()
                .prefix(".exec-")
                .suffix(".json")
                .tempfile_in(&bundle)
                .map_err(|e| ShimError::io("write exec process spec in", &bundle, e))?;
            std::fs::write(file.path(), spec)
                .map_err(|e| ShimError::io("write exec process spec", file.path(), e))?;
            Ok::<_, ShimError>(file)
        })
        .await??;
        let (report_read, preserve_fds) = match report {
            Some((read_end, write_end)) => (Some(read_end), vec![write_end]),
            None => (None, vec![]),
        };
        let mut prepared = PreparedIo::new(&p.stdio, &container.io_owner, &self.exits).await?;
        let launch = LaunchOpts {
            pid_file: container.bundle.join(format!(".{}.pid", p.exec_id)),
            console_socket: prepared.console.as_ref().map(|c| c.path()),
            stdio: std::mem::take(&mut prepared.runtime_stdio),
            preserve_fds,
            ..Default::default()
        };
        let pid_file = launch.pid_file.clone();
        let sub = self.exits.subscribe();
        let started = container
            .runtime
            .exec(&container.id, spec_file.path(), launch)
            .await;
        let _ = blocking("remove exec files", move || {
            let _ = std::fs::remove_file(&pid_file);
            drop(spec_file);
        })
        .await;
        let pid = match started {
            Ok(pid) => pid,
            Err(e) => {
                prepared.abandon().shutdown().await;
                return Err(e.into());
            }
        };
        p.set_pid(pid);
        // Running (with its pid) only now: a kill of an exec that is still starting must
        // never signal pid 0.
        p.transition(&[Status::Created], Status::Running, "start")?;
        if let Some(read_end) = report_read {
            let reporter = container.reporter.for_exec(&p.exec_id, p.spec.as_deref());
            let task = report_channel::spawn_reader(
                read_end,
                reporter,
                LeakReason::LEAK_REASON_EXEC_EXIT,
                p.init_state.clone(),
            )?;
            *p.report.lock().unwrap() = Some(task);
        }
        // From here on the exec runs: its exit is watched whatever happens to its stdio.
        self.watch_exit(container, p.clone(), sub.claim(pid));
        let io = prepared.started().await?;
        *p.io.lock().await = Some(io);
        Ok(pid as u32)
    }
}

/// The exec's process spec, wrapped with undertaker-init (as a subreaper) when the
/// container runs under it, and the report channel's (read, write) ends.
#[allow(clippy::type_complexity)]
fn wrap_exec_spec(
    container: &Container,
    p: &Process,
) -> Result<(Vec<u8>, Option<(OwnedFd, OwnedFd)>)> {
    let raw = p.spec.clone().unwrap_or_default();
    let Some((injection, settings)) = &container.injection else {
        return Ok((raw, None));
    };
    let what = || format!("{}: process spec", p.name());
    let mut process =
        undertaker_inject::Process::from_slice(&raw).map_err(|e| ShimError::Json {
            what: what(),
            source: e,
        })?;
    undertaker_inject::wrap_exec(&mut process, injection, settings, Some(REPORT_FD))
        .map_err(|e| ShimError::invalid(what(), e.to_string()))?;
    Ok((process.to_vec(), Some(report_channel::pipe()?)))
}
