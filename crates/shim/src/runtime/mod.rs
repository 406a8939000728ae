//! Drives the OCI runtime binary (runc, or any runc-compatible `BinaryName`).
//!
//! Written here rather than with the `runc` crate because the shim needs
//! `--preserve-fds` (the init's report pipe) on create and exec, which that crate
//! cannot pass, and because every child must be waited through the shim's
//! reaper ([`ExitRouter`]) instead of tokio's, which would race it.

use std::{
    ffi::OsString,
    io::{Read, Seek, SeekFrom},
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    process::Stdio,
};

use serde::Deserialize;
use tokio::io::AsyncReadExt;

mod seam;

pub(crate) use seam::RuncFactory;

use crate::{exits::ExitRouter, sys};

#[derive(Debug, thiserror::Error)]
pub(crate) enum RuntimeError {
    #[error("{command}: cannot start {binary}: {source}")]
    Spawn {
        command: String,
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{command}: {message} (exit status {status})")]
    Failed {
        command: String,
        status: i32,
        message: String,
    },
    #[error("{command}: unexpected output: {reason}")]
    Output { command: String, reason: String },
    #[error("{command}: {what}: {source}")]
    Io {
        command: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    /// runc's way of saying the container is gone.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, RuntimeError::Failed { message, .. }
            if message.contains("does not exist") || message.contains("not found"))
    }
}

/// What a runtime invocation gets as stdin/stdout/stderr; for create and exec
/// these become the container process's own stdio.
#[derive(Default)]
pub(crate) struct ProcessStdio {
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
}

/// Options shared by `create` and `exec`.
#[derive(Default)]
pub(crate) struct LaunchOpts {
    pub(crate) pid_file: PathBuf,
    pub(crate) console_socket: Option<PathBuf>,
    pub(crate) stdio: ProcessStdio,
    /// Passed to the process as fds 3, 4, ... (`--preserve-fds`).
    pub(crate) preserve_fds: Vec<OwnedFd>,
    pub(crate) no_pivot: bool,
    pub(crate) no_new_keyring: bool,
}

/// One container's runtime: binary, state root, cgroup driver and log file.
#[derive(Clone)]
pub(crate) struct Runtime {
    binary: PathBuf,
    root: PathBuf,
    systemd_cgroup: bool,
    log: PathBuf,
    exits: ExitRouter,
}

impl Runtime {
    pub(crate) fn new(
        binary: impl Into<PathBuf>,
        root: impl Into<PathBuf>,
        systemd_cgroup: bool,
        bundle: &Path,
        exits: ExitRouter,
    ) -> Self {
        Runtime {
            binary: binary.into(),
            root: root.into(),
            systemd_cgroup,
            log: bundle.join("log.json"),
            exits,
        }
    }

    pub(crate) async fn create(
        &self,
        id: &str,
        bundle: &Path,
        opts: LaunchOpts,
    ) -> Result<i32, RuntimeError> {
        let mut args: Vec<OsString> = vec!["create".into(), "--bundle".into(), bundle.into()];
        args.extend(launch_args(&opts));
        if opts.no_pivot {
            args.push("--no-pivot".into());
        }
        if opts.no_new_keyring {
            args.push("--no-new-keyring".into());
        }
        args.push(id.into());
        let pid_file = opts.pid_file.clone();
        self.launch(&format!("create {id}"), args, opts).await?;
        read_pid_file(&format!("create {id}"), &pid_file).await
    }

    pub(crate) async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(&format!("start {id}"), &["start", id])
            .await
            .map(drop)
    }

    /// Starts an exec process described by the JSON file `process`; returns its pid.
    pub(crate) async fn exec(
        &self,
        id: &str,
        process: &Path,
        opts: LaunchOpts,
    ) -> Result<i32, RuntimeError> {
        let mut args: Vec<OsString> = vec![
            "exec".into(),
            "--process".into(),
            process.into(),
            "--detach".into(),
        ];
        args.extend(launch_args(&opts));
        args.push(id.into());
        let pid_file = opts.pid_file.clone();
        let command = format!("exec {id} ({})", process.display());
        self.launch(&command, args, opts).await?;
        read_pid_file(&command, &pid_file).await
    }

    pub(crate) async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), RuntimeError> {
        let sig = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, sig.as_str()]);
        self.run(&format!("kill {id} {signal}"), &args)
            .await
            .map(drop)
    }

    pub(crate) async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(id);
        self.run(&format!("delete {id}"), &args).await.map(drop)
    }

    pub(crate) async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(&format!("pause {id}"), &["pause", id])
            .await
            .map(drop)
    }

    pub(crate) async fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(&format!("resume {id}"), &["resume", id])
            .await
            .map(drop)
    }

    /// Applies the OCI `LinuxResources` JSON in `resources` (a file).
    pub(crate) async fn update(&self, id: &str, resources: &Path) -> Result<(), RuntimeError> {
        let path = resources.to_string_lossy();
        self.run(
            &format!("update {id}"),
            &["update", "--resources", &path, id],
        )
        .await
        .map(drop)
    }

    pub(crate) async fn ps(&self, id: &str) -> Result<Vec<i32>, RuntimeError> {
        let command = format!("ps {id}");
        let out = self.run(&command, &["ps", "--format", "json", id]).await?;
        // runc prints `null` for an empty list.
        let pids: Option<Vec<i32>> =
            serde_json::from_str(out.trim()).map_err(|e| RuntimeError::Output {
                command: command.clone(),
                reason: format!("{e}: {out:?}"),
            })?;
        Ok(pids.unwrap_or_default())
    }

    fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json");
        if self.systemd_cgroup {
            cmd.arg("--systemd-cgroup");
        }
        // runc treats NOTIFY_SOCKET as a request to relay sd_notify; only systemd sets it.
        cmd.env_remove("NOTIFY_SOCKET");
        cmd
    }

    /// Runs a command that creates a process: its stdio is the process's, so
    /// errors come from runc's log file rather than its stderr.
    async fn launch(
        &self,
        command: &str,
        args: Vec<OsString>,
        opts: LaunchOpts,
    ) -> Result<(), RuntimeError> {
        let mut cmd = self.command();
        cmd.args(&args);
        let LaunchOpts {
            stdio,
            preserve_fds,
            ..
        } = opts;
        cmd.stdin(stdio.stdin.map_or_else(Stdio::null, Stdio::from));
        cmd.stdout(stdio.stdout.map_or_else(Stdio::null, Stdio::from));
        cmd.stderr(stdio.stderr.map_or_else(Stdio::null, Stdio::from));
        if !preserve_fds.is_empty() {
            sys::inherit_fds(&mut cmd, &preserve_fds).map_err(|e| RuntimeError::Io {
                command: command.to_string(),
                what: "pass inherited fds".into(),
                source: e.into(),
            })?;
        }
        let sub = self.exits.subscribe();
        let (child, log_offset) = self.spawn(command, cmd, preserve_fds).await?;
        let status = sub.claim(child.id() as i32).await.unwrap_or(-1);
        if status != 0 {
            let message = self
                .log_error(log_offset)
                .await
                .unwrap_or_else(|| "no error in the runtime log".into());
            return Err(RuntimeError::Failed {
                command: command.to_string(),
                status,
                message,
            });
        }
        Ok(())
    }

    /// Runs a short command and returns its stdout.
    async fn run(&self, command: &str, args: &[&str]) -> Result<String, RuntimeError> {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let sub = self.exits.subscribe();
        let (mut child, log_offset) = self.spawn(command, cmd, Vec::new()).await?;
        let exit = sub.claim(child.id() as i32);
        let io_err = |what: &str, source| RuntimeError::Io {
            command: command.to_string(),
            what: what.to_string(),
            source,
        };
        let stdout = read_all(child.stdout.take().map(OwnedFd::from));
        let stderr = read_all(child.stderr.take().map(OwnedFd::from));
        let (stdout, stderr) = tokio::join!(stdout, stderr);
        let (stdout, stderr) = (
            stdout.map_err(|e| io_err("read stdout", e))?,
            stderr.map_err(|e| io_err("read stderr", e))?,
        );
        let status = exit.await.unwrap_or(-1);
        if status != 0 {
            let message = self
                .log_error(log_offset)
                .await
                .or_else(|| Some(stderr.trim().to_string()).filter(|s| !s.is_empty()))
                .unwrap_or_else(|| "no error message".into());
            return Err(RuntimeError::Failed {
                command: command.to_string(),
                status,
                message,
            });
        }
        Ok(stdout)
    }
}

impl Runtime {
    /// Spawns `cmd` off the runtime thread (fork and exec, and the log's length for
    /// [`Runtime::log_error`]). Our copies of the child's stdio and inherited fds are
    /// closed once it runs.
    async fn spawn(
        &self,
        command: &str,
        mut cmd: std::process::Command,
        inherited: Vec<OwnedFd>,
    ) -> Result<(std::process::Child, u64), RuntimeError> {
        let (binary, log) = (self.binary.clone(), self.log.clone());
        let command = command.to_string();
        let spawned = tokio::task::spawn_blocking(move || {
            let log_offset = file_len(&log);
            let child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
                command: command.clone(),
                binary,
                source,
            });
            drop(cmd);
            drop(inherited);
            child.map(|child| (child, log_offset))
        })
        .await;
        spawned.unwrap_or_else(|e| {
            Err(RuntimeError::Io {
                command: "spawn".into(),
                what: "blocking task".into(),
                source: std::io::Error::other(e.to_string()),
            })
        })
    }

    /// The last error the runtime logged after `offset`.
    async fn log_error(&self, offset: u64) -> Option<String> {
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || last_log_error(&log, offset))
            .await
            .ok()
            .flatten()
    }
}

fn launch_args(opts: &LaunchOpts) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--pid-file".into(), opts.pid_file.clone().into()];
    if let Some(socket) = &opts.console_socket {
        args.push("--console-socket".into());
        args.push(socket.into());
    }
    if !opts.preserve_fds.is_empty() {
        args.push("--preserve-fds".into());
        args.push(opts.preserve_fds.len().to_string().into());
    }
    args
}

async fn read_all(fd: Option<OwnedFd>) -> std::io::Result<String> {
    let Some(fd) = fd else {
        return Ok(String::new());
    };
    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?;
    let mut buf = Vec::new();
    pipe.read_to_end(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

async fn read_pid_file(command: &str, path: &Path) -> Result<i32, RuntimeError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| RuntimeError::Io {
            command: command.to_string(),
            what: format!("read pid file {}", path.display()),
            source,
        })?;
    text.trim().parse().map_err(|_| RuntimeError::Output {
        command: command.to_string(),
        reason: format!("pid file {} holds {text:?}", path.display()),
    })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The last error runc logged after `offset` in its JSON log.
fn last_log_error(path: &Path, offset: u64) -> Option<String> {
    #[derive(Deserialize)]
    struct Line {
        level: String,
        msg: String,
    }
    let mut file = std::fs::File::open(path).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .find(|l| l.level == "error" || l.level == "fatal")
        .map(|l| l.msg)
}

#[cfg(test)]
mod tests;
