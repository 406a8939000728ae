//! A process's stdio as containerd hands it over: FIFO paths (CRI logs, ctr),
//! `binary://` loggers, `file://` files, or a terminal.
//!
//! The container gets pipes (or a pty); the shim copies between them and the
//! destinations, so containerd can go away and come back without the
//! container ever blocking on or losing its output.

use std::{
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    time::Duration,
};

use nix::unistd::{fchown, Gid, Uid};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::unix::pipe,
    sync::watch,
    task::JoinHandle,
};

mod destination;
mod logger;

pub(crate) use destination::Destination;
use logger::{start_logger, Logger};

use crate::{
    console::{ConsoleSocket, Pty},
    error::{Result, ShimError},
    exits::ExitRouter,
    runtime::ProcessStdio,
};

/// How long deleting a process waits for its output to be copied out.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);
/// How long a `binary://` logger has to exit once its pipes are closed.
const LOGGER_EXIT: Duration = Duration::from_secs(5);

/// The stdio containerd asked for: paths or URIs, empty when not wanted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioSpec {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}
/// Who the process's stdio belongs to, for the pipes' owner and loggers' environment.
#[derive(Debug, Clone)]
pub struct IoOwner {
    pub container_id: String,
    pub namespace: String,
    pub uid: u32,
    pub gid: u32,
}

/// Stdio prepared before the runtime creates the process.
pub struct PreparedIo {
    /// What the runtime passes to the process.
    pub runtime_stdio: ProcessStdio,
    /// Set when the process gets a terminal.
    pub console: Option<ConsoleSocket>,
    io: ProcessIo,
    stdin_fifo: Option<PathBuf>,
    stdout_dest: Destination,
}

/// The shim's side of a running process's stdio.
#[derive(Default)]
pub struct ProcessIo {
    copies: Vec<JoinHandle<()>>,
    stdin_close: Option<watch::Sender<bool>>,
    stdin_task: Option<JoinHandle<()>>,
    pty: Option<Pty>,
    logger: Option<Logger>,
}

impl PreparedIo {
    pub async fn new(spec: &StdioSpec, owner: &IoOwner, exits: &ExitRouter) -> Result<Self> {
        let stdout = Destination::parse(&spec.stdout)?;
        let stderr = Destination::parse(&spec.stderr)?;
        let stdin_fifo = (!spec.stdin.is_empty()).then(|| PathBuf::from(&spec.stdin));
        let mut prepared = PreparedIo {
            runtime_stdio: ProcessStdio::default(),
            console: None,
            io: ProcessIo::default(),
            stdin_fifo,
            stdout_dest: stdout.clone(),
        };
        if spec.terminal {
            prepared.console = Some(ConsoleSocket::new()?);
            return Ok(prepared);
        }
        if let Some(fifo) = prepared.stdin_fifo.clone() {
            let (rd, wr) = owned_pipe(owner)?;
            prepared.runtime_stdio.stdin = Some(rd);
            let writer = pipe::Sender::from_owned_fd(wr)
                .map_err(|e| ShimError::io("set up stdin pipe for", &fifo, e))?;
            prepared.start_stdin(&fifo, writer)?;
        }
        if let (Destination::Binary { path, args }, _) = (&stdout, &stderr) {
            let (out_rd, out_wr) = owned_pipe(owner)?;
            let (err_rd, err_wr) = owned_pipe(owner)?;
            prepared.io.logger =
                Some(start_logger(path, args, owner, [out_rd, err_rd], exits).await?);
            prepared.runtime_stdio.stdout = Some(out_wr);
            prepared.runtime_stdio.stderr = Some(err_wr);
            return Ok(prepared);
        }
        for (dest, is_stdout) in [(&stdout, true), (&stderr, false)] {
            if *dest == Destination::Null {
                continue;
            }
            let (rd, wr) = owned_pipe(owner)?;
            let target = open_destination(dest).await?;
            let from = pipe::Receiver::from_owned_fd(rd)
                .map_err(|e| ShimError::io("set up output pipe", "(pipe)", e))?;
            prepared
                .io
                .copies
                .push(tokio::spawn(copy_output(from, target)));
            if is_stdout {
                prepared.runtime_stdio.stdout = Some(wr);
            } else {
                prepared.runtime_stdio.stderr = Some(wr);
            }
        }
        Ok(prepared)
    }

    fn start_stdin<W: AsyncWrite + Send + Unpin + 'static>(
        &mut self,
        fifo: &Path,
        to: W,
    ) -> Result<()> {
        // Read-only, as containerd's own shims do: containerd opened the writer
        // before asking for the process, and the process sees EOF once that
        // writer is gone (ctr, CRI stdin_once) or when CloseIO asks for it.
        let from = pipe::OpenOptions::new()
            .open_receiver(fifo)
            .map_err(|e| ShimError::io("open stdin fifo", fifo, e))?;
        let (tx, rx) = watch::channel(false);
        self.io.stdin_close = Some(tx);
        self.io.stdin_task = Some(tokio::spawn(copy_stdin(from, to, rx)));
        Ok(())
    }

    /// The copies set up so far, to shut down when the runtime failed.
    pub fn abandon(self) -> ProcessIo {
        self.io
    }

    /// Finishes the set-up once the runtime has created the process: for a
    /// terminal, takes the pty master and starts its copies.
    pub async fn started(mut self) -> Result<ProcessIo> {
        let Some(console) = self.console.take() else {
            return Ok(self.io);
        };
        let pty = console.receive_master().await?;
        if let Some(fifo) = self.stdin_fifo.clone() {
            self.start_stdin(&fifo, pty.clone())?;
        }
        if self.stdout_dest != Destination::Null {
            let target = open_destination(&self.stdout_dest).await?;
            self.io
                .copies
                .push(tokio::spawn(copy_output(pty.clone(), target)));
        }
        self.io.pty = Some(pty);
        Ok(self.io)
    }
}

impl ProcessIo {
    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        match &self.pty {
            Some(pty) => pty.resize(width, height),
            None => Err(ShimError::wrong_state(
                "resize pty",
                "the process has no terminal",
            )),
        }
    }

    /// CloseIO: delivers what containerd already wrote, then closes the process's stdin.
    pub fn close_stdin(&self) {
        if let Some(close) = &self.stdin_close {
            let _ = close.send(true);
        }
    }

    /// Waits (bounded) for the output to be copied out, then stops every copy
    /// and the logger.
    pub async fn shutdown(&mut self) {
        let copies = std::mem::take(&mut self.copies);
        let aborts: Vec<_> = copies.iter().map(|c| c.abort_handle()).collect();
        if tokio::time::timeout(OUTPUT_DRAIN, futures_join_all(copies))
            .await
            .is_err()
        {
            tracing::warn!("output copies did not finish within {OUTPUT_DRAIN:?}; cancelling them");
            aborts.iter().for_each(|a| a.abort());
        }
        self.close_stdin();
        if let Some(task) = self.stdin_task.take() {
            task.abort();
        }
        self.pty = None;
        if let Some(logger) = self.logger.take() {
            if tokio::time::timeout(LOGGER_EXIT, logger.exit)
                .await
                .is_err()
            {
                tracing::warn!(pid = logger.pid, "stdio logger did not exit; killing it");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(logger.pid),
                    nix::sys::signal::SIGKILL,
                );
            }
        }
    }
}

/// An io dropped without [`ProcessIo::shutdown`] (a create or exec that failed half-way)
/// leaves no copy task and no logger behind.
impl Drop for ProcessIo {
    fn drop(&mut self) {
        for copy in &self.copies {
            copy.abort();
        }
        if let Some(task) = &self.stdin_task {
            task.abort();
        }
        if let Some(logger) = &self.logger {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(logger.pid),
                nix::sys::signal::SIGKILL,
            );
        }
    }
}

async fn futures_join_all(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}

/// A pipe whose ends belong to the container's I/O user, so a non-root process
/// can reopen `/proc/self/fd/1`.
fn owned_pipe(owner: &IoOwner) -> Result<(OwnedFd, OwnedFd)> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ShimError::Os {
        what: "create stdio pipe".into(),
        source: e,
    })?;
    if owner.uid != 0 || owner.gid != 0 {
        for fd in [&rd, &wr] {
            fchown(
                fd,
                Some(Uid::from_raw(owner.uid)),
                Some(Gid::from_raw(owner.gid)),
            )
            .map_err(|e| ShimError::Os {
                what: format!("chown stdio pipe to {}:{}", owner.uid, owner.gid),
                source: e,
            })?;
        }
    }
    Ok((rd, wr))
}

type BoxWriter = Box<dyn AsyncWrite + Send + Unpin>;

async fn open_destination(dest: &Destination) -> Result<BoxWriter> {
    match dest {
        // Held read-write: opening never waits for containerd, and a write never
        // fails with EPIPE while containerd restarts.
        Destination::Fifo(path) => Ok(Box::new(
            pipe::OpenOptions::new()
                .read_write(true)
                .open_sender(path)
                .map_err(|e| ShimError::io("open output fifo", path, e))?,
        )),
        Destination::File(path) => {
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| ShimError::io("create log directory", parent, e))?;
            }
            let file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .map_err(|e| ShimError::io("open log file", path, e))?;
            Ok(Box::new(file))
        }
        Destination::Null | Destination::Binary { .. } => Ok(Box::new(tokio::io::sink())),
    }
}

async fn copy_output<R: AsyncRead + Unpin>(mut from: R, mut to: BoxWriter) {
    if let Err(e) = tokio::io::copy(&mut from, &mut to).await {
        // A terminal hanging up reads as EIO: the normal end of a pty copy.
        if e.raw_os_error() != Some(libc::EIO) {
            tracing::warn!("copying process output failed: {e}");
        }
    }
    let _ = to.flush().await;
}

async fn copy_stdin<W: AsyncWrite + Unpin>(
    mut from: pipe::Receiver,
    mut to: W,
    mut close: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // CloseIO first when both are ready: what is pending is then drained below, so
        // the order never depends on which branch select! happens to pick.
        tokio::select! {
            biased;
            _ = closed(&mut close) => {
                // Deliver what is already in the fifo, then end. Read the fd itself
                // (non-blocking): tokio's try_read trusts the readiness it last saw and
                // says nothing is pending when it has not polled since the data came.
                loop {
                    match nix::unistd::read(&from, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => if to.write_all(&buf[..n]).await.is_err() { break },
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(_) => break,
                    }
                }
                break;
            }
            read = from.read(&mut buf) => match read {
                Ok(0) => break,
                Ok(n) => if to.write_all(&buf[..n]).await.is_err() { return },
                Err(e) => { tracing::warn!("reading stdin fifo failed: {e}"); break }
            },
        }
    }
    let _ = to.shutdown().await;
}

/// Resolves once CloseIO was asked for (or the process's io is gone).
async fn closed(close: &mut watch::Receiver<bool>) {
    loop {
        if *close.borrow_and_update() {
            return;
        }
        if close.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
