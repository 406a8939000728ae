//! `binary://` loggers, started the way containerd starts them.

use std::{os::fd::OwnedFd, path::Path, time::Duration};

use tokio::{io::AsyncReadExt, net::unix::pipe};

use super::IoOwner;
use crate::{
    error::{Result, ShimError},
    exits::ExitRouter,
    sys,
};

pub(super) struct Logger {
    pub(super) pid: i32,
    pub(super) exit: tokio::sync::oneshot::Receiver<i32>,
}

/// Starts a `binary://` logger the way containerd does: the process's stdout and
/// stderr pipes as fds 3 and 4, a pipe it closes when ready as fd 5, and
/// CONTAINER_ID / CONTAINER_NAMESPACE in its environment.
pub(super) async fn start_logger(
    path: &Path,
    args: &[String],
    owner: &IoOwner,
    outputs: [OwnedFd; 2],
    exits: &ExitRouter,
) -> Result<Logger> {
    let (ready_rd, ready_wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ShimError::Os {
            what: "create logger ready pipe".into(),
            source: e,
        })?;
    let mut cmd = std::process::Command::new(path);
    cmd.args(args)
        .env("CONTAINER_ID", &owner.container_id)
        .env("CONTAINER_NAMESPACE", &owner.namespace)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let [out, err] = outputs;
    sys::inherit_fds(&mut cmd, &[out, err, ready_wr]).map_err(|e| ShimError::Os {
        what: format!("pass pipes to logger {}", path.display()),
        source: e,
    })?;
    let sub = exits.subscribe();
    let child = cmd
        .spawn()
        .map_err(|e| ShimError::io("start logger", path, e))?;
    drop(cmd);
    let pid = child.id() as i32;
    let exit = sub.claim(pid);
    let mut ready = pipe::Receiver::from_owned_fd(ready_rd)
        .map_err(|e| ShimError::io("wait for logger", path, e))?;
    let mut byte = [0u8; 1];
    // The logger signals readiness by closing fd 5 (EOF) or writing to it.
    let waited = tokio::time::timeout(Duration::from_secs(10), ready.read(&mut byte)).await;
    if !matches!(waited, Ok(Ok(_))) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        return Err(ShimError::Other(format!(
            "logger {} did not become ready",
            path.display()
        )));
    }
    Ok(Logger { pid, exit })
}
