use super::*;

#[tokio::test]
async fn output_reaches_a_fifo_and_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("out");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let file = dir.path().join("logs/err.log");
    let spec = StdioSpec {
        stdout: fifo.display().to_string(),
        stderr: format!("file://{}", file.display()),
        ..Default::default()
    };
    let mut reader = pipe::OpenOptions::new().open_receiver(&fifo).unwrap();
    let (mut out, mut err, mut io) = outputs(&spec).await;
    use std::io::Write;
    out.write_all(b"to stdout").unwrap();
    err.write_all(b"to stderr").unwrap();
    drop((out, err));
    let mut got = vec![0u8; 9];
    reader.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"to stdout");
    io.shutdown().await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "to stderr");
}

/// containerd's runc shim closes a shared `file://` log when stdout ends and loses what
/// stderr still had (the e2e `ctr_log_uris_file_and_binary` saw it on 2.1.9): each stream
/// here has its own handle, so stderr written after stdout's end still lands.
#[tokio::test]
async fn one_file_for_both_streams_keeps_stderr_written_after_stdout_ended() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("both.log");
    let uri = format!("file://{}", file.display());
    let spec = StdioSpec {
        stdout: uri.clone(),
        stderr: uri,
        ..Default::default()
    };
    let (mut out, mut err, mut io) = outputs(&spec).await;
    use std::io::Write;
    out.write_all(b"out\n").unwrap();
    drop(out);
    // Until stdout's copy has reached its end (the line is in the file)...
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(&file).unwrap_or_default() != "out\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "stdout never reached the file"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    // ...and only then stderr writes.
    err.write_all(b"err\n").unwrap();
    drop(err);
    io.shutdown().await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "out\nerr\n");
}

/// The process's ends of stdout and stderr, and the io copying them.
async fn outputs(spec: &StdioSpec) -> (std::fs::File, std::fs::File, ProcessIo) {
    let prepared = PreparedIo::new(spec, &root_owner(), &ExitRouter::default())
        .await
        .unwrap();
    let stdio = prepared.runtime_stdio;
    (
        std::fs::File::from(stdio.stdout.unwrap()),
        std::fs::File::from(stdio.stderr.unwrap()),
        prepared.io,
    )
}

fn root_owner() -> IoOwner {
    IoOwner {
        container_id: "c".into(),
        namespace: "ns".into(),
        uid: 0,
        gid: 0,
    }
}

/// Sets up stdin from a fifo whose writer (containerd's) is already open.
async fn stdin_with_writer(dir: &Path) -> (ProcessIo, OwnedFd, pipe::Sender) {
    let fifo = dir.join("in");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    // Read-write only so the open does not need a reader; it acts as the writer.
    let writer = pipe::OpenOptions::new()
        .read_write(true)
        .open_sender(&fifo)
        .unwrap();
    let spec = StdioSpec {
        stdin: fifo.display().to_string(),
        ..Default::default()
    };
    let owner = root_owner();
    let prepared = PreparedIo::new(&spec, &owner, &ExitRouter::default())
        .await
        .unwrap();
    let stdin = prepared.runtime_stdio.stdin.unwrap();
    (prepared.io, stdin, writer)
}

async fn read_to_eof(fd: OwnedFd) -> String {
    let mut text = String::new();
    let mut rd = pipe::Receiver::from_owned_fd(fd).unwrap();
    tokio::time::timeout(Duration::from_secs(5), rd.read_to_string(&mut text))
        .await
        .expect("the process's stdin must reach EOF")
        .unwrap();
    text
}

#[tokio::test]
async fn close_io_delivers_pending_stdin_then_eof() {
    let dir = tempfile::tempdir().unwrap();
    let (io, stdin, mut writer) = stdin_with_writer(dir.path()).await;
    // Written and closed with no await between: the copy has not read it yet, so only
    // the drain on close can deliver it.
    writer.write_all(b"line\n").await.unwrap();
    io.close_stdin();
    assert_eq!(read_to_eof(stdin).await, "line\n");
    drop(writer);
}

#[tokio::test]
async fn the_writer_closing_the_fifo_ends_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let (_io, stdin, mut writer) = stdin_with_writer(dir.path()).await;
    writer.write_all(b"piped\n").await.unwrap();
    drop(writer);
    assert_eq!(read_to_eof(stdin).await, "piped\n");
}
