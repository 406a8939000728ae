//! Terminals: the console socket runc sends a pty master through, and the
//! master itself as an async reader/writer driven by the reactor.

use std::{
    fs::File,
    io::{IoSliceMut, Read, Write},
    os::{
        fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
        unix::net::UnixListener,
    },
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use nix::{
    cmsg_space,
    fcntl::{fcntl, FcntlArg, OFlag},
    sys::socket::{recvmsg, ControlMessageOwned, MsgFlags},
};
use tokio::io::{unix::AsyncFd, AsyncRead, AsyncWrite, ReadBuf};

use crate::{
    error::{Result, ShimError},
    sys,
};

/// A unix socket runc connects to with `--console-socket` to hand over the
/// pty master it created for the process. Removed with its directory on drop.
pub struct ConsoleSocket {
    dir: tempfile::TempDir,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new() -> Result<Self> {
        // Under /tmp: a socket path must stay under 108 bytes, bundle paths may not.
        let dir = tempfile::Builder::new()
            .prefix("undertaker-pty")
            .tempdir()
            .map_err(|e| ShimError::io("create console socket dir", "/tmp", e))?;
        let path = dir.path().join("pty.sock");
        let listener = UnixListener::bind(&path)
            .map_err(|e| ShimError::io("bind console socket", &path, e))?;
        Ok(ConsoleSocket { dir, listener })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("pty.sock")
    }

    /// Receives the master runc sent; call after runc create/exec succeeded,
    /// so the connection is already queued and this does not wait.
    pub async fn receive_master(self) -> Result<Pty> {
        let path = self.path();
        let fd = tokio::task::spawn_blocking(move || receive_fd(&self.listener))
            .await
            .map_err(|e| ShimError::Other(format!("console socket task: {e}")))?
            .map_err(|e| ShimError::io("receive pty master from", path, e))?;
        Pty::new(File::from(fd))
    }
}

fn receive_fd(listener: &UnixListener) -> std::io::Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let (stream, _) = listener.accept()?;
    stream.set_nonblocking(false)?;
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            let mut fds = fds.into_iter().map(sys::adopt_received_fd);
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(std::io::Error::other("runc sent no file descriptor"))
}

/// A pty master, shared by its copies and its resize handle.
#[derive(Clone)]
pub struct Pty(Arc<AsyncFd<sys::Registered<File>>>);

impl Pty {
    pub fn new(master: File) -> Result<Self> {
        let flags = fcntl(&master, FcntlArg::F_GETFL).map_err(|e| ShimError::Os {
            what: "read pty master flags".into(),
            source: e,
        })?;
        fcntl(
            &master,
            FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK),
        )
        .map_err(|e| ShimError::Os {
            what: "make pty master non-blocking".into(),
            source: e,
        })?;
        let fd = sys::register_async(master)
            .map_err(|e| ShimError::io("register pty master", Path::new("(pty)"), e))?;
        Ok(Pty(Arc::new(fd)))
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let clamp = |v: u32| v.min(u16::MAX as u32) as u16;
        sys::set_window_size(&self.0.get_ref().0, clamp(height), clamp(width)).map_err(|e| {
            ShimError::Os {
                what: format!("resize pty to {width}x{height}"),
                source: e,
            }
        })
    }
}

impl AsFd for Pty {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.get_ref().0.as_fd()
    }
}

impl AsyncRead for Pty {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| (&mut &fd.get_ref().0).read(unfilled)) {
                Ok(result) => return Poll::Ready(result.map(|n| buf.advance(n))),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Pty {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| (&mut &fd.get_ref().0).write(data)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use nix::sys::socket::{sendmsg, ControlMessage};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_pty_master_sent_over_the_socket_is_received_and_usable() {
        let socket = ConsoleSocket::new().unwrap();
        let pty = nix::pty::openpty(None, None).unwrap();
        let client = UnixStream::connect(socket.path()).unwrap();
        let name = [std::io::IoSlice::new(b"/dev/ptmx")];
        let fds = [pty.master.as_raw_fd()];
        sendmsg::<()>(
            client.as_raw_fd(),
            &name,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let mut master = socket.receive_master().await.unwrap();

        master.resize(100, 40).unwrap();
        let mut slave = File::from(pty.slave);
        slave.write_all(b"hello\n").unwrap();
        let mut buf = [0u8; 64];
        let n = master.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("hello"));
        master.write_all(b"x").await.unwrap();
    }
}
