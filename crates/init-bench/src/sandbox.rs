//! Runs an init and its workload, usually as PID 1 of a fresh PID namespace (`unshare --pid
//! --fork --mount-proc --kill-child`, so that killing the `unshare` process tears the whole
//! namespace down), with stdin, stdout and stderr piped and an optional report pipe.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use undertaker_cgroups::procfs;

/// How long any wait on the sandbox may take before it is treated as a hang.
pub const HANG: Duration = Duration::from_secs(120);

#[derive(Default)]
pub struct Options {
    /// Run the command as PID 1 of a new PID namespace with its own /proc.
    pub pid_namespace: bool,
    /// Make a pipe whose write end the command inherits (its fd number is [`Sandbox::report_fd`]).
    pub report_pipe: bool,
    /// Put the command in this cgroup (a directory with `cgroup.procs`) before it starts.
    pub cgroup: Option<PathBuf>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The working directory to start in (this process's by default).
    pub cwd: Option<PathBuf>,
}

pub struct Sandbox {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// Copies stderr into `stderr` until its end.
    stderr_copy: Option<std::thread::JoinHandle<()>>,
    report: Option<File>,
    report_fd: Option<i32>,
    status: Option<ExitStatus>,
}

impl Sandbox {
    /// Starts `command` (program and arguments). With a report pipe, `{report_fd}` in the
    /// arguments is replaced by the pipe's fd number.
    pub fn start(command: &[String], options: Options) -> Result<Sandbox> {
        let (report_read, report_write) = if options.report_pipe {
            let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            // Only the write end goes to the child.
            fcntl(&write, FcntlArg::F_SETFD(FdFlag::empty()))?;
            (Some(read), Some(write))
        } else {
            (None, None)
        };
        let report_fd = report_write.as_ref().map(AsRawFd::as_raw_fd);
        let mut line: Vec<String> = Vec::new();
        if let Some(cgroup) = &options.cgroup {
            let procs = cgroup.join("cgroup.procs");
            line.extend([
                "/bin/sh".into(),
                "-c".into(),
                r#"echo $$ > "$0" && exec "$@""#.into(),
            ]);
            line.push(procs.to_string_lossy().into_owned());
        }
        if options.pid_namespace {
            line.extend(
                [
                    "unshare",
                    "--pid",
                    "--fork",
                    "--mount-proc",
                    "--kill-child",
                    "--",
                ]
                .map(String::from),
            );
        }
        line.extend(command.iter().map(|arg| match report_fd {
            Some(fd) => arg.replace("{report_fd}", &fd.to_string()),
            None => arg.clone(),
        }));
        let mut command = Command::new(&line[0]);
        command
            .args(&line[1..])
            .envs(options.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &options.cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("spawn {line:?} in {:?}", options.cwd))?;
        drop(report_write);
        let stdout = lines(child.stdout.take().context("stdout")?);
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut stderr_pipe = child.stderr.take().context("stderr")?;
        let collected = Arc::clone(&stderr);
        let stderr_copy = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr_pipe.read(&mut buf) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Ok(Sandbox {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            stderr_copy: Some(stderr_copy),
            report: report_read.map(File::from),
            report_fd,
            status: None,
        })
    }

    /// The pid of the process started (`unshare` in a PID namespace, else the command itself).
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// The pid (in our namespace) of the command itself: in a PID namespace, the child of
    /// `unshare`.
    pub fn command_pid(&self) -> Result<Pid> {
        let deadline = Instant::now() + HANG;
        loop {
            if let Some(pid) = children_of(self.pid())?.into_iter().next() {
                return Ok(pid);
            }
            if Instant::now() > deadline {
                bail!("no child of {}", self.pid());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn report_fd(&self) -> Option<i32> {
        self.report_fd
    }

    /// Takes the read end of the report pipe (to read it, or to close it).
    pub fn take_report(&mut self) -> Option<File> {
        self.report.take()
    }

    /// The next stdout line that `wanted` accepts (earlier lines are skipped).
    pub fn expect_line(&mut self, wanted: impl Fn(&str) -> bool, what: &str) -> Result<String> {
        let deadline = Instant::now() + HANG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if wanted(&line) => return Ok(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    bail!("no line {what} in time; stderr:\n{}", self.stderr())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("stdout closed before {what}; stderr:\n{}", self.stderr())
                }
            }
        }
    }

    /// Every stdout line until stdout closes.
    pub fn remaining_lines(&mut self) -> Vec<String> {
        let mut all = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(HANG) {
            all.push(line);
        }
        all
    }

    pub fn send_line(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the started process to exit.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        let deadline = Instant::now() + HANG;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.status = Some(status);
                self.finish_stderr(deadline)?;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("still running after {HANG:?}; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Sandbox {
    /// Waits until stderr has ended and all of it is in [`Sandbox::stderr`]: the process may have
    /// exited before the copy read its last words.
    fn finish_stderr(&mut self, deadline: Instant) -> Result<()> {
        let Some(copy) = self.stderr_copy.take() else {
            return Ok(());
        };
        while !copy.is_finished() {
            if Instant::now() > deadline {
                bail!("stderr still open after {HANG:?}:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = copy.join();
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.status.is_none() {
            // In a namespace, --kill-child takes the namespace's PID 1 and so everything in it.
            let _ = kill(self.pid(), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

fn lines(stdout: impl Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// The children of `parent`, from the parent links in /proc.
pub fn children_of(parent: Pid) -> Result<Vec<Pid>> {
    let proc_root = Path::new(procfs::HOST_PROC);
    let mut found = Vec::new();
    for pid in procfs::pids(proc_root)? {
        if procfs::stat(proc_root, pid).ok().flatten().map(|s| s.ppid) == Some(parent.as_raw()) {
            found.push(Pid::from_raw(pid));
        }
    }
    Ok(found)
}

/// The state letter of `/proc/<pid>/stat`; `None` when the process is gone.
pub fn state_of(pid: i32) -> Result<Option<char>> {
    Ok(procfs::stat(Path::new(procfs::HOST_PROC), pid)?.map(|stat| stat.state))
}

/// Reads a report pipe to its end.
pub fn read_all(mut report: File) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    report.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Whether `path` exists and is executable by someone.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|meta| meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
