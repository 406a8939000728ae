//! Running `ctr` against the testbed's containerd, and restarting that containerd while shims
//! keep running.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use undertaker_cri::CriClient;

use super::Testbed;
use crate::daemon::Daemon;
use crate::error::{Result, TestbedError};

/// What a `ctr` run printed and how it ended.
#[derive(Clone, Debug)]
pub struct CtrOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Testbed {
    /// Runs `ctr -a <socket> <args>` and returns what it printed, whatever its exit status.
    pub async fn ctr(&self, args: &[&str]) -> Result<CtrOutput> {
        let timeout = Duration::from_secs(60);
        let mut command = tokio::process::Command::new(self.containerd.program("ctr"));
        command
            .arg("-a")
            .arg(&self.layout.socket)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(timeout, command.output())
            .await
            .map_err(|_| TestbedError::Timeout {
                what: format!("ctr {}", args.join(" ")),
                timeout,
            })?
            .map_err(|source| TestbedError::Spawn {
                program: self.containerd.program("ctr").display().to_string(),
                source,
            })?;
        Ok(CtrOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Like [`Testbed::ctr`], but a non-zero exit is an error; returns stdout.
    pub async fn ctr_ok(&self, args: &[&str]) -> Result<String> {
        let output = self.ctr(args).await?;
        if output.code == Some(0) {
            Ok(output.stdout)
        } else {
            Err(TestbedError::Command {
                command: format!(
                    "{} -a {} {}",
                    self.containerd.program("ctr").display(),
                    self.layout.socket.display(),
                    args.join(" ")
                ),
                status: format!("exit code {:?}", output.code),
                stderr: output.stderr,
            })
        }
    }

    /// Restarts containerd (SIGTERM, the supervisor starts it again) while shims keep running,
    /// and waits until the new one serves CRI.
    pub async fn restart_containerd(&self) -> Result<()> {
        self.restart_containerd_around(std::future::ready(())).await
    }

    /// Restarts containerd as [`Testbed::restart_containerd`] does, but runs `between` once
    /// the old containerd has exited and before a new one starts (the supervisor loop holds
    /// the restart until then): what happens in `between` happens while no containerd runs.
    pub async fn restart_containerd_around<T>(
        &self,
        between: impl std::future::Future<Output = T>,
    ) -> Result<T> {
        let mut daemon = self
            .daemon
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("a started testbed has a daemon");
        let restarted = self.restart_held(&mut daemon, between).await;
        *self.daemon.lock().unwrap_or_else(|e| e.into_inner()) = Some(daemon);
        let (value, cri) = restarted?;
        *self.cri.lock().unwrap_or_else(|e| e.into_inner()) = Some(cri);
        Ok(value)
    }

    /// Stops containerd with the hold file in place, runs `between`, removes the hold file
    /// (also when the stop failed) and waits for the new containerd.
    async fn restart_held<T>(
        &self,
        daemon: &mut Daemon,
        between: impl std::future::Future<Output = T>,
    ) -> Result<(T, CriClient)> {
        let (hold, timeout) = (&self.layout.hold_file, self.options.ready_timeout);
        std::fs::write(hold, b"").map_err(TestbedError::io("create", hold))?;
        let previous = daemon.signal_containerd(Signal::SIGTERM);
        let value = match daemon.wait_gone(previous, timeout).await {
            Ok(()) => Ok(between.await),
            Err(e) => Err(e),
        };
        let released = std::fs::remove_file(hold).map_err(TestbedError::io("remove", hold));
        let value = value?;
        released?;
        Ok((value, daemon.wait_ready(previous, timeout).await?))
    }
}
