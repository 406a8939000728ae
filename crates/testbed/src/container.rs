//! Containers of a pod through CRI: create, start, stop, remove, status, exec, stats, update,
//! and their CRI log files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use undertaker_cri::{api, CriClient};

use crate::cri_log::{read_cri_log, LogLine};
use crate::driver::CgroupDriver;
use crate::error::{Result, TestbedError};
use crate::host_processes::HostProcess;
use crate::pod::Pod;

/// How often state is polled while waiting for a container.
const POLL: Duration = Duration::from_millis(50);

/// Describes a container before it is created; made by [`Pod::container`].
#[derive(Clone, Debug)]
pub struct ContainerBuilder<'a> {
    pod: &'a Pod,
    config: api::ContainerConfig,
}

impl<'a> ContainerBuilder<'a> {
    pub(crate) fn new(pod: &'a Pod, name: &str, image: &str) -> Self {
        let config = api::ContainerConfig {
            metadata: Some(api::ContainerMetadata {
                name: name.to_string(),
                attempt: 0,
            }),
            image: Some(api::ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            log_path: format!("{name}.log"),
            linux: Some(api::LinuxContainerConfig {
                resources: None,
                security_context: Some(api::LinuxContainerSecurityContext {
                    // kubelet gives every container its pod's namespace modes.
                    namespace_options: pod.namespace_options(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        ContainerBuilder { pod, config }
    }

    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.config.image = Some(api::ImageSpec {
            image: image.into(),
            ..Default::default()
        });
        self
    }

    /// The entrypoint (replaces the image's).
    pub fn command<S: Into<String>>(mut self, command: impl IntoIterator<Item = S>) -> Self {
        self.config.command = command.into_iter().map(Into::into).collect();
        self
    }

    /// The arguments (replace the image's `Cmd`).
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.config.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Shorthand for `command(["sh", "-c", script])`.
    pub fn shell(self, script: &str) -> Self {
        self.command(["sh", "-c", script])
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.envs.push(api::KeyValue {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    pub fn tty(mut self, tty: bool) -> Self {
        self.config.tty = tty;
        self
    }

    /// Keep stdin open; `once` closes it after the first attach ends (kubectl's `stdinOnce`).
    pub fn stdin(mut self, stdin: bool, once: bool) -> Self {
        self.config.stdin = stdin;
        self.config.stdin_once = once;
        self
    }

    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.annotations.insert(key.into(), value.into());
        self
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.labels.insert(key.into(), value.into());
        self
    }

    /// Bind-mounts the host file or directory `host_path` at `container_path`, as kubelet
    /// mounts volumes and the termination message file.
    pub fn mount(
        mut self,
        container_path: impl Into<String>,
        host_path: impl Into<String>,
    ) -> Self {
        self.config.mounts.push(api::Mount {
            container_path: container_path.into(),
            host_path: host_path.into(),
            ..Default::default()
        });
        self
    }

    /// The log file, relative to the pod's log directory (default `<name>.log`).
    pub fn log_path(mut self, relative: impl Into<String>) -> Self {
        self.config.log_path = relative.into();
        self
    }

    pub fn resources(mut self, resources: api::LinuxContainerResources) -> Self {
        if let Some(linux) = self.config.linux.as_mut() {
            linux.resources = Some(resources);
        }
        self
    }

    /// Runs the container as `uid` (e.g. 65534, nobody).
    pub fn run_as_user(mut self, uid: i64) -> Self {
        if let Some(context) = self.security_context() {
            context.run_as_user = Some(api::Int64Value { value: uid });
        }
        self
    }

    /// Runs the container privileged (all capabilities and devices; its pod must be
    /// privileged too).
    pub fn privileged(mut self, privileged: bool) -> Self {
        if let Some(context) = self.security_context() {
            context.privileged = privileged;
        }
        self
    }

    fn security_context(&mut self) -> Option<&mut api::LinuxContainerSecurityContext> {
        self.config
            .linux
            .as_mut()
            .and_then(|linux| linux.security_context.as_mut())
    }

    /// The CRI container config this builder describes.
    pub fn config(&self) -> &api::ContainerConfig {
        &self.config
    }

    /// Creates the container (not started).
    pub async fn create(self) -> Result<Container> {
        let name = self
            .config
            .metadata
            .as_ref()
            .map(|meta| meta.name.clone())
            .unwrap_or_default();
        let log_path = self.pod.log_dir().join(&self.config.log_path);
        let cri = self.pod.cri.clone();
        let response = cri
            .runtime()
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: self.pod.id().to_string(),
                config: Some(self.config),
                sandbox_config: Some(self.pod.config().clone()),
            })
            .await
            .map_err(|status| cri.error("CreateContainer", status))?;
        Ok(Container {
            cri,
            id: response.into_inner().container_id,
            name,
            log_path,
            cgroup_parent: self.pod.cgroup_parent().to_string(),
            cgroup_driver: self.pod.cgroup_driver(),
        })
    }

    /// Creates and starts the container.
    pub async fn run(self) -> Result<Container> {
        let container = self.create().await?;
        container.start().await?;
        Ok(container)
    }
}

/// What an `ExecSync` returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// A created container. Dropping it does nothing: removing its pod removes it.
#[derive(Clone, Debug)]
pub struct Container {
    cri: CriClient,
    id: String,
    name: String,
    log_path: PathBuf,
    cgroup_parent: String,
    cgroup_driver: CgroupDriver,
}

impl Container {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CRI log file (absolute).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The container's cgroup as a path below a hierarchy's mount point (either driver).
    pub fn cgroup_path(&self) -> String {
        self.cgroup_driver
            .container_cgroup(&self.cgroup_parent, &self.id)
    }

    pub async fn start(&self) -> Result<()> {
        self.cri
            .runtime()
            .start_container(api::StartContainerRequest {
                container_id: self.id.clone(),
            })
            .await
            .map_err(|status| self.cri.error("StartContainer", status))?;
        Ok(())
    }

    /// Stops the container, giving it `grace` after SIGTERM before SIGKILL.
    pub async fn stop(&self, grace: Duration) -> Result<()> {
        self.cri
            .runtime()
            .stop_container(api::StopContainerRequest {
                container_id: self.id.clone(),
                timeout: grace.as_secs() as i64,
            })
            .await
            .map_err(|status| self.cri.error("StopContainer", status))?;
        Ok(())
    }

    pub async fn remove(&self) -> Result<()> {
        self.cri
            .runtime()
            .remove_container(api::RemoveContainerRequest {
                container_id: self.id.clone(),
            })
            .await
            .map_err(|status| self.cri.error("RemoveContainer", status))?;
        Ok(())
    }

    /// The CRI status, with containerd's verbose `info` (pid, runtime, spec) alongside.
    pub async fn status_verbose(&self) -> Result<(api::ContainerStatus, HashMap<String, String>)> {
        let response = self
            .cri
            .runtime()
            .container_status(api::ContainerStatusRequest {
                container_id: self.id.clone(),
                verbose: true,
            })
            .await
            .map_err(|status| self.cri.error("ContainerStatus", status))?
            .into_inner();
        let status = response.status.ok_or_else(|| TestbedError::Unexpected {
            call: "ContainerStatus",
            reason: format!("no status for container {}", self.id),
        })?;
        Ok((status, response.info))
    }

    pub async fn status(&self) -> Result<api::ContainerStatus> {
        Ok(self.status_verbose().await?.0)
    }

    /// The host pid of the container's main process (containerd's verbose info).
    pub async fn pid(&self) -> Result<i32> {
        let (_, info) = self.status_verbose().await?;
        info.get("info")
            .and_then(|info| serde_json::from_str::<serde_json::Value>(info).ok())
            .and_then(|info| info["pid"].as_i64())
            .and_then(|pid| i32::try_from(pid).ok())
            .filter(|pid| *pid > 0)
            .ok_or_else(|| TestbedError::Unexpected {
                call: "ContainerStatus",
                reason: format!("no pid in the verbose info of container {}", self.id),
            })
    }

    /// The container's PID 1 once it runs the container's own program, not the OCI runtime's:
    /// StartContainer returns once the runtime has told its child to exec, which may not have
    /// happened yet (CI runs read `/usr/sbin/runc init` as PID 1, and hashed runc's binary as
    /// its executable, under load). Polls until then or `timeout`.
    pub async fn pid1_after_exec(&self, timeout: Duration) -> Result<HostProcess> {
        let started = Instant::now();
        let mut last = None;
        loop {
            let pid = self.pid().await?;
            match HostProcess::read(pid) {
                Some(process) if !is_runtime_before_exec(&process.cmdline) => return Ok(process),
                process => last = process.or(last),
            }
            if started.elapsed() >= timeout {
                return Err(TestbedError::Timeout {
                    what: format!(
                        "PID 1 of container {} to exec its program (last seen: {last:?})",
                        self.name
                    ),
                    timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The container's exit code if it has exited, else `None`.
    pub async fn exit_code(&self) -> Result<Option<i32>> {
        let status = self.status().await?;
        let exited = status.state == api::ContainerState::ContainerExited as i32;
        Ok(exited.then_some(status.exit_code))
    }

    /// Waits until the container has exited and returns its exit code.
    pub async fn wait_exited(&self, timeout: Duration) -> Result<i32> {
        let started = Instant::now();
        loop {
            if let Some(code) = self.exit_code().await? {
                return Ok(code);
            }
            if started.elapsed() >= timeout {
                return Err(TestbedError::Timeout {
                    what: format!("container {} ({}) to exit", self.name, self.id),
                    timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `cmd` in the container and collects its output (`ExecSync`).
    pub async fn exec_sync(&self, cmd: &[&str], timeout: Duration) -> Result<ExecOutput> {
        let response = self
            .cri
            .runtime()
            .exec_sync(api::ExecSyncRequest {
                container_id: self.id.clone(),
                cmd: cmd.iter().map(|arg| arg.to_string()).collect(),
                timeout: timeout.as_secs().max(1) as i64,
            })
            .await
            .map_err(|status| self.cri.error("ExecSync", status))?
            .into_inner();
        Ok(ExecOutput {
            stdout: String::from_utf8_lossy(&response.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&response.stderr).into_owned(),
            exit_code: response.exit_code,
        })
    }

    /// Asks for a streaming exec session (`Exec`) and returns its URL (see [`crate::stream`]).
    pub async fn exec_url(&self, cmd: &[&str], tty: bool, stdin: bool) -> Result<String> {
        let response = self
            .cri
            .runtime()
            .exec(api::ExecRequest {
                container_id: self.id.clone(),
                cmd: cmd.iter().map(|arg| arg.to_string()).collect(),
                tty,
                stdin,
                stdout: true,
                // With a terminal both streams are the terminal.
                stderr: !tty,
            })
            .await
            .map_err(|status| self.cri.error("Exec", status))?;
        Ok(response.into_inner().url)
    }

    /// The container's CPU and memory usage (`ContainerStats`).
    pub async fn stats(&self) -> Result<api::ContainerStats> {
        let response = self
            .cri
            .runtime()
            .container_stats(api::ContainerStatsRequest {
                container_id: self.id.clone(),
            })
            .await
            .map_err(|status| self.cri.error("ContainerStats", status))?;
        response
            .into_inner()
            .stats
            .ok_or_else(|| TestbedError::Unexpected {
                call: "ContainerStats",
                reason: format!("no stats for container {}", self.id),
            })
    }

    /// Changes the container's resources (`UpdateContainerResources`).
    pub async fn update_resources(&self, resources: api::LinuxContainerResources) -> Result<()> {
        self.cri
            .runtime()
            .update_container_resources(api::UpdateContainerResourcesRequest {
                container_id: self.id.clone(),
                linux: Some(resources),
                ..Default::default()
            })
            .await
            .map_err(|status| self.cri.error("UpdateContainerResources", status))?;
        Ok(())
    }

    /// The container's CRI log as written so far.
    pub fn logs(&self) -> Result<Vec<LogLine>> {
        read_cri_log(&self.log_path)
    }

    /// Waits until the log satisfies `done` (logs are written asynchronously to the process).
    pub async fn wait_for_logs(
        &self,
        timeout: Duration,
        done: impl Fn(&[LogLine]) -> bool,
    ) -> Result<Vec<LogLine>> {
        let started = Instant::now();
        loop {
            let lines = self.logs()?;
            if done(&lines) {
                return Ok(lines);
            }
            if started.elapsed() >= timeout {
                return Err(TestbedError::Timeout {
                    what: format!(
                        "log of container {} to complete; it has {lines:?}",
                        self.name
                    ),
                    timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// `runc init`, or crun's child before it execs (crun's own arguments): the OCI runtime's
/// process that becomes the container's, by whatever path the runtime was run.
fn is_runtime_before_exec(cmdline: &str) -> bool {
    let mut words = cmdline.split_whitespace();
    let program = words.next().unwrap_or("");
    let name = program.rsplit('/').next().unwrap_or(program);
    (name == "runc" && words.next() == Some("init")) || name == "crun"
}

#[cfg(test)]
mod tests {
    use super::is_runtime_before_exec;

    #[test]
    fn the_runtime_before_exec_is_runc_init_or_crun() {
        for before in [
            "runc init",
            "/usr/sbin/runc init",
            "/usr/bin/crun --root /run/crun create --bundle /b id",
        ] {
            assert!(is_runtime_before_exec(before), "{before:?}");
        }
        for after in [
            "/dev/.undertaker/init -- sh -c sleep 1000",
            "sh -c runc init",
            "/usr/sbin/runc",
            "runc-wrapper init",
            "",
        ] {
            assert!(!is_runtime_before_exec(after), "{after:?}");
        }
    }
}
