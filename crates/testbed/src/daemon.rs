//! Running containerd: under `tini -s` (a child subreaper, so daemonized shims and the
//! containers they leave are reaped, never zombies of a PID 1 that does not reap), inside a
//! shell loop that restarts containerd whenever it exits until the stop file exists. The
//! subreaper outlives containerd restarts, so shims keep a reaping ancestor across them.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use undertaker_cri::CriClient;

use crate::containerd::Containerd;
use crate::error::{Result, TestbedError};
use crate::layout::Layout;
use crate::procfs;

/// Restarts containerd each time it exits, writing its pid where the testbed reads it; not
/// while the hold file exists.
const SUPERVISOR_LOOP: &str = r#"
while [ ! -e "$TESTBED_STOP_FILE" ]; do
    "$TESTBED_CONTAINERD" --config "$TESTBED_CONFIG" &
    echo $! > "$TESTBED_PID_FILE"
    wait $!
    [ -e "$TESTBED_STOP_FILE" ] || sleep 0.1
    while [ -e "$TESTBED_HOLD_FILE" ] && [ ! -e "$TESTBED_STOP_FILE" ]; do sleep 0.05; done
done
"#;

/// How long a stopping containerd gets before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The supervisor process tree of one testbed's containerd.
pub struct Daemon {
    subreaper: Child,
    layout: Layout,
    /// Which containerd, for errors.
    containerd: String,
}

impl Daemon {
    /// Starts the supervisor; containerd comes up shortly after (see [`Daemon::wait_ready`]).
    /// containerd's PATH starts with `bin_dir` (our shim), then the release's own directory
    /// (so handler `runc` gets that release's `containerd-shim-runc-v2`).
    pub fn spawn(layout: &Layout, bin_dir: &Path, containerd: &Containerd) -> Result<Daemon> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&layout.log)
            .map_err(TestbedError::io("open", &layout.log))?;
        let log_err = log
            .try_clone()
            .map_err(TestbedError::io("duplicate", &layout.log))?;
        let path = match std::env::var_os("PATH") {
            Some(path) => {
                let mut dirs = vec![bin_dir.to_path_buf(), containerd.dir.clone()];
                dirs.extend(std::env::split_paths(&path));
                std::env::join_paths(dirs).unwrap_or(path)
            }
            None => std::env::join_paths([bin_dir, &containerd.dir])
                .unwrap_or_else(|_| bin_dir.as_os_str().to_os_string()),
        };
        let subreaper = Command::new("tini")
            .args(["-s", "--", "sh", "-c", SUPERVISOR_LOOP])
            .env("PATH", path)
            .env("TESTBED_CONTAINERD", containerd.program("containerd"))
            .env("TESTBED_STOP_FILE", &layout.stop_file)
            .env("TESTBED_HOLD_FILE", &layout.hold_file)
            .env("TESTBED_CONFIG", &layout.config)
            .env("TESTBED_PID_FILE", &layout.pid_file)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| TestbedError::Spawn {
                program: "tini".to_string(),
                source,
            })?;
        Ok(Daemon {
            subreaper,
            layout: layout.clone(),
            containerd: containerd.to_string(),
        })
    }

    /// The pid of the containerd currently running (or last started), if any.
    pub fn containerd_pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.layout.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Waits until a containerd other than `previous` answers CRI `Version` and reports the
    /// runtime ready; returns a client connected to it.
    pub async fn wait_ready(
        &mut self,
        previous: Option<i32>,
        timeout: Duration,
    ) -> Result<CriClient> {
        let started = Instant::now();
        let mut reason = "containerd has not started".to_string();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = self.subreaper.try_wait() {
                reason = format!("the supervisor exited ({status})");
                break;
            }
            match self.containerd_pid() {
                Some(pid) if Some(pid) != previous => match probe(&self.layout.socket).await {
                    Ok(client) => return Ok(client),
                    Err(why) => reason = format!("containerd {pid}: {why}"),
                },
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(TestbedError::NotReady {
            socket: self.layout.socket.clone(),
            waited: started.elapsed(),
            reason: format!("{}: {reason}", self.containerd),
            log: self.layout.log.clone(),
            log_tail: log_tail(&self.layout.log, 40),
        })
    }

    /// Waits (bounded) until containerd `pid` has exited; `None` (no containerd was running)
    /// returns at once.
    pub async fn wait_gone(&self, pid: Option<i32>, timeout: Duration) -> Result<()> {
        let Some(pid) = pid else {
            return Ok(());
        };
        let started = Instant::now();
        while procfs::is_running(pid) {
            if started.elapsed() >= timeout {
                return Err(TestbedError::NotReady {
                    socket: self.layout.socket.clone(),
                    waited: started.elapsed(),
                    reason: format!(
                        "{}: containerd {pid} did not exit after SIGTERM",
                        self.containerd
                    ),
                    log: self.layout.log.clone(),
                    log_tail: log_tail(&self.layout.log, 40),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Sends `signal` to containerd; the supervisor loop starts a new one once it exited.
    pub fn signal_containerd(&self, signal: Signal) -> Option<i32> {
        let pid = self.containerd_pid()?;
        kill(Pid::from_raw(pid), signal).ok()?;
        Some(pid)
    }

    /// Stops containerd for good and waits for the supervisor (SIGKILL after a grace period).
    /// Shims should be gone first: they outlive containerd and need the subreaper.
    pub fn stop(&mut self) {
        if let Err(error) = std::fs::write(&self.layout.stop_file, b"") {
            tracing::warn!(file = %self.layout.stop_file.display(), %error, "cannot write stop file");
        }
        let containerd = self.containerd_pid();
        if let Some(pid) = containerd {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match self.subreaper.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    tracing::warn!("containerd did not stop in {STOP_GRACE:?}; killing it");
                    if let Some(pid) = containerd.filter(|pid| procfs::is_running(*pid)) {
                        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                    let _ = self.subreaper.kill();
                    let _ = self.subreaper.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// Connects and asks for the version and the runtime condition.
async fn probe(socket: &Path) -> std::result::Result<CriClient, String> {
    if !socket.exists() {
        return Err("socket not there yet".to_string());
    }
    let client = CriClient::connect(socket)
        .await
        .map_err(|error| error.to_string())?;
    client.version().await.map_err(|error| error.to_string())?;
    let status = client.status().await.map_err(|error| error.to_string())?;
    let runtime_ready = status.status.is_some_and(|status| {
        status
            .conditions
            .iter()
            .any(|condition| condition.r#type == "RuntimeReady" && condition.status)
    });
    if runtime_ready {
        Ok(client)
    } else {
        Err("CRI reports the runtime not ready".to_string())
    }
}

/// The last `lines` lines of the file at `path` (or why it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("(cannot read {}: {error})", path.display()),
    }
}
