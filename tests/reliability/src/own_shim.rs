//! A shim started by hand, as containerd starts one (`containerd-shim-undertaker-v2 … start`
//! in a bundle directory, `TTRPC_ADDRESS` naming containerd's ttrpc socket), and a ttrpc
//! Task API client connected to it: for the requests CRI never makes (malformed bundles,
//! unknown option types, unknown ids).
//!
//! `start` daemonizes the serving shim, so this process makes itself a child subreaper to
//! become the shim's parent and reap it (the machine's PID 1 never reaps).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use containerd_shim_protos::api;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::shim_async::{Client, TaskClient};
use containerd_shim_protos::ttrpc::{self, Code};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use undertaker_testbed::{processes_in_cgroup, processes_matching, Testbed};

use crate::wait::wait_until;

/// The shim binary, in the testbed's bin directory.
pub const SHIM_BINARY: &str = "containerd-shim-undertaker-v2";
/// The type URL of the options containerd sends a non-runc runtime.
pub const RUNTIME_OPTIONS_TYPE: &str = "types.containerd.io/runtimeoptions.v1.Options";
/// How long one Task API request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A shim this process started, serving the Task API on its own socket. Its log (the `log`
/// FIFO containerd would read) is copied to `shim.log` in its work directory. Dropping it
/// kills the shim and what is left in `cgroup_parent`, and reaps them.
pub struct OwnShim {
    pid: i32,
    socket: PathBuf,
    cgroup_parent: String,
    task: TaskClient,
    log: PathBuf,
    log_copier: tokio::task::JoinHandle<()>,
}

/// How a request failed: its ttrpc code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

impl OwnShim {
    /// Runs `start` for container `id` in containerd namespace `namespace`, with `work_dir`
    /// as the current directory (containerd runs it in the bundle), and connects to the
    /// shim it launched.
    pub async fn start(
        testbed: &Testbed,
        namespace: &str,
        id: &str,
        work_dir: &Path,
    ) -> anyhow::Result<OwnShim> {
        nix::sys::prctl::set_child_subreaper(true)?;
        std::fs::create_dir_all(work_dir)?;
        let log = work_dir.join("shim.log");
        let log_copier = copy_log(&work_dir.join("log"), &log)?;
        let output = Command::new(testbed.bin_dir().join(SHIM_BINARY))
            .args(["-namespace", namespace, "-id", id, "-address"])
            .arg(testbed.socket())
            .args(["-publish-binary", "containerd", "start"])
            .current_dir(work_dir)
            .env("TTRPC_ADDRESS", testbed.ttrpc_socket())
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "shim start: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let address = String::from_utf8(output.stdout)?.trim().to_string();
        anyhow::ensure!(
            address.starts_with("unix://"),
            "shim start printed {address:?}, not an address"
        );
        let serving = wait_until("the shim server to run", Duration::from_secs(10), || {
            let found = processes_matching(&format!("-socket {address}"));
            found.first().map(|process| process.pid)
        })
        .await?;
        let client = Client::connect(&address).await?;
        Ok(OwnShim {
            pid: serving,
            socket: PathBuf::from(address.trim_start_matches("unix://")),
            cgroup_parent: testbed.cgroup_parent().to_string(),
            task: TaskClient::new(client),
            log,
            log_copier,
        })
    }

    /// The last `lines` lines the shim logged.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().filter(|line| !line.is_empty()).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The shim's socket (`/run/containerd/s/…`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn task(&self) -> &TaskClient {
        &self.task
    }

    /// Asks the shim to exit (it does once it serves no container) and reaps it.
    pub async fn shutdown(&self, id: &str) -> anyhow::Result<()> {
        let request = api::ShutdownRequest {
            id: id.to_string(),
            now: true,
            ..Default::default()
        };
        // The shim may exit before it answers.
        let _ = self.task.shutdown(context(), &request).await;
        let pid = self.pid;
        wait_until(
            "the shim to exit",
            Duration::from_secs(10),
            || match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => None,
                _ => Some(()),
            },
        )
        .await
    }
}

impl Drop for OwnShim {
    fn drop(&mut self) {
        self.log_copier.abort();
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(self.pid), None);
        // Containers it served are ours now (we are their subreaper): kill and reap them.
        for process in processes_in_cgroup(&self.cgroup_parent) {
            process.kill();
            if process.ppid == std::process::id() as i32 || process.is_zombie() {
                let _ = waitpid(Pid::from_raw(process.pid), Some(WaitPidFlag::WNOHANG));
            }
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Makes the `log` FIFO a shim opens for writing in its current directory (it exits if
/// there is none) and copies what comes through it to `file`.
fn copy_log(fifo: &Path, file: &Path) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    nix::unistd::mkfifo(fifo, Mode::S_IRUSR | Mode::S_IWUSR)?;
    // Read-write: the FIFO never reports end-of-file between the shim's writers.
    let mut receiver = tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(fifo)?;
    let mut copy = std::fs::File::create(file)?;
    Ok(tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buffer = vec![0u8; 8192];
        while let Ok(read) = receiver.read(&mut buffer).await {
            if read == 0 || std::io::Write::write_all(&mut copy, &buffer[..read]).is_err() {
                return;
            }
        }
    }))
}

/// A request context with the default bound.
pub fn context() -> ttrpc::context::Context {
    ttrpc::context::with_duration(REQUEST_TIMEOUT)
}

/// The refusal in a failed request's result; `None` if it succeeded.
pub fn refusal<T>(result: ttrpc::Result<T>) -> Option<Refusal> {
    match result {
        Ok(_) => None,
        Err(ttrpc::Error::RpcStatus(status)) => Some(Refusal {
            code: status.code(),
            message: status.message().to_string(),
        }),
        Err(other) => Some(Refusal {
            code: Code::UNKNOWN,
            message: format!("not an rpc status: {other}"),
        }),
    }
}

/// `runtimeoptions.v1.Options` (what containerd's CRI sends a non-runc runtime), with
/// `ConfigPath` and `ConfigBody`, encoded by hand: field 2 and field 3, both
/// length-delimited.
pub fn runtime_options(config_path: &str, config_body: &str) -> Any {
    let mut value = Vec::new();
    for (field, bytes) in [(2u8, config_path.as_bytes()), (3, config_body.as_bytes())] {
        if bytes.is_empty() {
            continue;
        }
        value.push(field << 3 | 2);
        let mut length = bytes.len();
        while length >= 0x80 {
            value.push((length as u8 & 0x7f) | 0x80);
            length >>= 7;
        }
        value.push(length as u8);
        value.extend_from_slice(bytes);
    }
    Any {
        type_url: RUNTIME_OPTIONS_TYPE.to_string(),
        value,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_options_encode_path_and_body_as_length_delimited_fields() {
        let any = runtime_options("/p", "");
        assert_eq!(any.value, [0x12, 2, b'/', b'p']);
        let body = "x".repeat(200);
        let any = runtime_options("", &body);
        assert_eq!(&any.value[..3], [0x1a, 200, 1]);
        assert_eq!(any.value.len(), 3 + 200);
        assert_eq!(any.type_url, RUNTIME_OPTIONS_TYPE);
    }
}
