//! Exec processes: added by `Exec`, started by `Start` with an exec id.

use std::sync::Arc;

use std::os::fd::OwnedFd;

use oci_spec::runtime::Process as OciProcess;
use undertaker_events::LeakReason;

use crate::{
    container::Container,
    error::{Result, ShimError},
    process::{Process, Status},
    report_channel::{self, REPORT_FD},
    runtime::LaunchOpts,
    stdio::{PreparedIo, StdioSpec},
};

impl Container {
    /// Registers an exec; it runs when started.
    pub async fn add_exec(&self, exec_id: &str, stdio: StdioSpec, spec: Vec<u8>) -> Result<()> {
        if exec_id.is_empty() {
            return Err(ShimError::invalid(
                format!("container {}: exec", self.id),
                "empty exec id",
            ));
        }
        match self.init.status() {
            Status::Running | Status::Paused => {}
            other => {
                return Err(ShimError::wrong_state(
                    format!("container {}: exec {exec_id}", self.id),
                    format!("container is {other}"),
                ))
            }
        }
        let process = Arc::new(Process::new(&self.id, exec_id, stdio, Some(spec)));
        {
            let mut execs = self.execs.lock().unwrap();
            if execs.contains_key(exec_id) {
                return Err(ShimError::ExecExists {
                    id: self.id.clone(),
                    exec_id: exec_id.to_string(),
                });
            }
            execs.insert(exec_id.to_string(), process.clone());
        }
        self.publisher.exec_added(&process).await;
        Ok(())
    }

    pub async fn start_exec(self: &Arc<Self>, exec_id: &str) -> Result<u32> {
        let p = self.process(exec_id)?;
        if p.status() != Status::Created {
            return Err(ShimError::wrong_state(
                format!("{}: start", p.name()),
                format!("process is {}", p.status()),
            ));
        }
        let spec_file = tempfile::Builder::new()
            .prefix(".exec-")
            .suffix(".json")
            .tempfile_in(&self.bundle)
            .map_err(|e| ShimError::io("write exec process spec in", &self.bundle, e))?;
        let (spec, report) = self.wrap_exec_spec(&p)?;
        std::fs::write(spec_file.path(), spec)
            .map_err(|e| ShimError::io("write exec process spec", spec_file.path(), e))?;
        let (report_read, preserve_fds) = match report {
            Some((read_end, write_end)) => (Some(read_end), vec![write_end]),
            None => (None, vec![]),
        };

        let mut prepared = PreparedIo::new(&p.stdio, &self.io_owner, &self.exits).await?;
        let launch = LaunchOpts {
            pid_file: self.bundle.join(format!(".{exec_id}.pid")),
            console_socket: prepared.console.as_ref().map(|c| c.path()),
            stdio: std::mem::take(&mut prepared.runtime_stdio),
            preserve_fds,
            ..Default::default()
        };
        let pid_file = launch.pid_file.clone();
        let sub = self.exits.subscribe();
        let started = self.runtime.exec(&self.id, spec_file.path(), launch).await;
        let _ = std::fs::remove_file(&pid_file);
        let pid = match started {
            Ok(pid) => pid,
            Err(e) => {
                prepared.abandon().shutdown().await;
                return Err(e.into());
            }
        };
        p.set_pid(pid);
        if let Some(read_end) = report_read {
            let reporter = self.reporter.for_exec(exec_id);
            let task = report_channel::spawn_reader(
                read_end,
                reporter,
                LeakReason::LEAK_REASON_EXEC_EXIT,
                p.init_state.clone(),
            )?;
            *p.report.lock().unwrap() = Some(task);
        }
        let io = prepared.started().await;
        p.transition(&[Status::Created], Status::Running, "start")?;
        self.watch_exit(p.clone(), sub.claim(pid));
        *p.io.lock().await = Some(io?);
        self.publisher.exec_started(&p).await;
        Ok(pid as u32)
    }

    /// The exec's process spec, wrapped with undertaker-init (as a subreaper)
    /// when the container runs under it, and the report channel's ends.
    #[allow(clippy::type_complexity)]
    fn wrap_exec_spec(&self, p: &Process) -> Result<(Vec<u8>, Option<(OwnedFd, OwnedFd)>)> {
        let raw = p.spec.clone().unwrap_or_default();
        let Some(injection) = &self.injection else {
            return Ok((raw, None));
        };
        let what = || format!("{}: process spec", p.name());
        let mut process: OciProcess =
            serde_json::from_slice(&raw).map_err(|e| ShimError::Json {
                what: what(),
                source: e,
            })?;
        undertaker_inject::wrap_exec(
            &mut process,
            injection,
            &self.init_settings,
            Some(REPORT_FD),
        )
        .map_err(|e| ShimError::invalid(what(), e.to_string()))?;
        let spec = serde_json::to_vec(&process).map_err(|e| ShimError::Json {
            what: what(),
            source: e,
        })?;
        Ok((spec, Some(report_channel::pipe()?)))
    }
}
