//! A container served by this shim: its bundle, runtime, init and execs, and
//! what happens when its processes exit.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use containerd_shim::util::mount_rootfs;
use containerd_shim_protos::api::{CreateTaskRequest, Mount};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use tokio::sync::oneshot;

use crate::{
    error::{Result, ShimError},
    events::Publisher,
    exits::{ExitCode, ExitRouter},
    options::RuntimeOptions,
    process::{Exit, Process, Status},
    runtime::{LaunchOpts, Runtime},
    stdio::{IoOwner, PreparedIo, StdioSpec},
};

/// How long the init's exit event waits for the execs it took down to report theirs.
const EXEC_EXIT_GRACE: Duration = Duration::from_secs(2);

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub options: RuntimeOptions,
    pub runtime: Runtime,
    pub init: Arc<Process>,
    pub(crate) execs: Mutex<HashMap<String, Arc<Process>>>,
    rootfs: Vec<Mount>,
    /// False for shareProcessNamespace and hostPID containers: their processes
    /// do not die with the init, so the shim must kill them.
    own_pid_namespace: bool,
    pub(crate) exits: ExitRouter,
    pub(crate) publisher: Publisher,
    pub(crate) io_owner: IoOwner,
    /// The container's cgroup, resolved from the init while it was alive.
    pub cgroup: Option<undertaker_cgroups::ContainerCgroup>,
}

impl Container {
    /// Creates the container with the runtime; the init waits to be started.
    pub async fn create(
        req: &CreateTaskRequest,
        exits: &ExitRouter,
        publisher: &Publisher,
    ) -> Result<Arc<Self>> {
        if !req.checkpoint.is_empty() || !req.parent_checkpoint.is_empty() {
            return Err(ShimError::Unsupported {
                what: format!("container {}: restore from checkpoint", req.id),
            });
        }
        let bundle = PathBuf::from(&req.bundle);
        let options = RuntimeOptions::from_any(req.options.as_ref())?;
        let spec = read_spec(&bundle)?;
        options.store(&bundle)?;
        let rootfs_mounted = mount_rootfs_all(&req.rootfs, &bundle).await?;
        let result =
            Self::create_mounted(req, bundle.clone(), options, &spec, exits, publisher).await;
        if result.is_err() && rootfs_mounted {
            unmount_rootfs(&bundle);
        }
        result
    }

    async fn create_mounted(
        req: &CreateTaskRequest,
        bundle: PathBuf,
        options: RuntimeOptions,
        spec: &Spec,
        exits: &ExitRouter,
        publisher: &Publisher,
    ) -> Result<Arc<Self>> {
        let stdio = StdioSpec {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let io_owner = IoOwner {
            container_id: req.id.clone(),
            namespace: publisher.namespace().to_string(),
            uid: options.io_uid,
            gid: options.io_gid,
        };
        let runtime = Runtime::new(
            &options.binary_name,
            &options.root,
            options.systemd_cgroup,
            &bundle,
            exits.clone(),
        );
        let prepared = PreparedIo::new(&stdio, &io_owner, exits).await?;
        let mut launch = LaunchOpts {
            pid_file: bundle.join("init.pid"),
            console_socket: prepared.console.as_ref().map(|c| c.path()),
            no_pivot: options.no_pivot_root,
            no_new_keyring: options.no_new_keyring,
            ..Default::default()
        };
        let mut prepared = prepared;
        launch.stdio = std::mem::take(&mut prepared.runtime_stdio);

        let sub = exits.subscribe();
        let pid = match runtime.create(&req.id, &bundle, launch).await {
            Ok(pid) => pid,
            Err(e) => {
                prepared.abandon().shutdown().await;
                // runc may have left a half-created container behind.
                let _ = runtime.delete(&req.id, true).await;
                return Err(e.into());
            }
        };
        let io = match prepared.started().await {
            Ok(io) => io,
            Err(e) => {
                let _ = runtime.delete(&req.id, true).await;
                return Err(e);
            }
        };
        let cgroup = find_cgroup(&req.id, pid);
        let init = Arc::new(Process::new(&req.id, "", stdio, None));
        init.set_pid(pid);
        *init.io.lock().await = Some(io);
        let container = Arc::new(Container {
            id: req.id.clone(),
            bundle,
            options,
            runtime,
            init: init.clone(),
            execs: Mutex::new(HashMap::new()),
            rootfs: req.rootfs.clone(),
            own_pid_namespace: has_own_pid_namespace(spec),
            exits: exits.clone(),
            publisher: publisher.clone(),
            io_owner,
            cgroup,
        });
        container.watch_exit(init, sub.claim(pid));
        Ok(container)
    }

    /// The container's resource usage now, for `Stats`.
    pub async fn metrics(
        &self,
    ) -> Result<containerd_shim_protos::protobuf::well_known_types::any::Any> {
        let source = self
            .cgroup
            .as_ref()
            .and_then(crate::stats::MetricsSource::of)
            .ok_or_else(|| {
                ShimError::wrong_state(
                    format!("container {}: stats", self.id),
                    "its cgroup is unknown",
                )
            })?;
        tokio::task::spawn_blocking(move || source.collect())
            .await
            .map_err(|e| ShimError::Other(format!("container {}: stats: {e}", self.id)))?
    }

    pub fn rootfs(&self) -> Vec<Mount> {
        self.rootfs.clone()
    }

    pub fn bundle_str(&self) -> String {
        self.bundle.display().to_string()
    }

    /// The init (empty `exec_id`) or an exec.
    pub fn process(&self, exec_id: &str) -> Result<Arc<Process>> {
        if exec_id.is_empty() {
            return Ok(self.init.clone());
        }
        self.execs
            .lock()
            .unwrap()
            .get(exec_id)
            .cloned()
            .ok_or_else(|| ShimError::ExecNotFound {
                id: self.id.clone(),
                exec_id: exec_id.to_string(),
            })
    }

    pub async fn start_init(&self) -> Result<u32> {
        let init = &self.init;
        init.transition(&[Status::Created], Status::Running, "start")?;
        if let Err(e) = self.runtime.start(&self.id).await {
            // Put it back so containerd may delete it as a created task.
            let _ = init.transition(&[Status::Running], Status::Created, "start");
            return Err(e.into());
        }
        self.publisher.task_start(init).await;
        Ok(init.pid() as u32)
    }

    pub async fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let p = self.process(exec_id)?;
        match p.status() {
            Status::Stopped | Status::Deleted => {
                return Err(ShimError::ProcessFinished { what: p.name() })
            }
            Status::Created if !p.is_init() => {
                return Err(ShimError::wrong_state(
                    format!("{}: kill", p.name()),
                    "exec is not started",
                ))
            }
            _ => {}
        }
        if p.is_init() {
            self.runtime.kill(&self.id, signal, all).await?;
            return Ok(());
        }
        let sig = nix::sys::signal::Signal::try_from(signal as i32).map_err(|_| {
            ShimError::invalid(
                format!("{}: kill", p.name()),
                format!("unknown signal {signal}"),
            )
        })?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid()), sig).map_err(|e| {
            ShimError::Os {
                what: format!("{}: kill pid {} with {sig}", p.name(), p.pid()),
                source: e,
            }
        })
    }

    /// Deletes the init (the whole container) or an exec; returns its pid and exit.
    pub async fn delete(&self, exec_id: &str) -> Result<(u32, Exit)> {
        let p = self.process(exec_id)?;
        p.transition(
            &[Status::Created, Status::Stopped],
            Status::Deleted,
            "delete",
        )?;
        if let Some(mut io) = p.io.lock().await.take() {
            io.shutdown().await;
        }
        let exit = p.exit().unwrap_or(Exit {
            status: 0,
            at: time::OffsetDateTime::now_utc(),
        });
        if p.is_init() {
            match self.runtime.delete(&self.id, false).await {
                Err(e) if !e.is_not_found() => {
                    // A created container's init may still be there; force it.
                    self.runtime.delete(&self.id, true).await.or_else(|e| {
                        if e.is_not_found() {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })?;
                }
                _ => {}
            }
            if !self.rootfs.is_empty() {
                unmount_rootfs(&self.bundle);
            }
            self.publisher.task_delete(&p, exit).await;
        } else {
            self.execs.lock().unwrap().remove(exec_id);
        }
        Ok((p.pid() as u32, exit))
    }

    /// Routes `process`'s exit, when the reaper sees it, to [`Container::on_exit`].
    pub(crate) fn watch_exit(
        self: &Arc<Self>,
        process: Arc<Process>,
        exit: oneshot::Receiver<ExitCode>,
    ) {
        let container = self.clone();
        tokio::spawn(async move {
            if let Ok(code) = exit.await {
                container.on_exit(process, code).await;
            }
        });
    }

    async fn on_exit(&self, p: Arc<Process>, code: ExitCode) {
        tracing::info!(container = %self.id, exec = %p.exec_id, pid = p.pid(), code, "process exited");
        if p.status() == Status::Deleted || !p.set_exited(code as u32) {
            return;
        }
        if p.is_init() {
            self.after_init_exit().await;
        }
        if let Some(exit) = p.exit() {
            self.publisher.task_exit(&p, exit).await;
        }
    }

    /// The init is gone: make sure nothing else of the container runs, and let
    /// the execs it took down report their exits first, as containerd expects.
    async fn after_init_exit(&self) {
        if !self.own_pid_namespace {
            if let Err(e) = self
                .runtime
                .kill(&self.id, libc::SIGKILL as u32, true)
                .await
            {
                tracing::warn!(container = %self.id, "killing the remaining processes failed: {e}");
            }
        }
        let running: Vec<_> = self
            .execs
            .lock()
            .unwrap()
            .values()
            .filter(|e| e.status() == Status::Running)
            .cloned()
            .collect();
        for exec in running {
            if tokio::time::timeout(EXEC_EXIT_GRACE, exec.wait())
                .await
                .is_err()
            {
                tracing::warn!(container = %self.id, exec = %exec.exec_id, "exec still running after its init exited");
            }
        }
    }
}

/// The cgroup runc put `pid` in; `None` (logged) if it cannot be read, which
/// costs stats and the whole-cgroup kill but must not fail the container.
fn find_cgroup(id: &str, pid: i32) -> Option<undertaker_cgroups::ContainerCgroup> {
    let found = undertaker_cgroups::Setup::host()
        .and_then(|setup| undertaker_cgroups::ContainerCgroup::of_pid(&setup, pid));
    match found {
        Ok(cgroup) => Some(cgroup),
        Err(e) => {
            tracing::warn!(container = %id, pid, "cannot find the container's cgroup: {e}");
            None
        }
    }
}

fn read_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text =
        std::fs::read_to_string(&path).map_err(|e| ShimError::io("read OCI spec", &path, e))?;
    serde_json::from_str(&text).map_err(|e| ShimError::Json {
        what: format!("parse OCI spec {}", path.display()),
        source: e,
    })
}

fn has_own_pid_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| {
            nss.iter()
                .any(|ns| ns.typ() == LinuxNamespaceType::Pid && ns.path().is_none())
        })
}

async fn mount_rootfs_all(mounts: &[Mount], bundle: &Path) -> Result<bool> {
    if mounts.is_empty() {
        return Ok(false);
    }
    let rootfs = bundle.join("rootfs");
    tokio::fs::create_dir_all(&rootfs)
        .await
        .map_err(|e| ShimError::io("create rootfs dir", &rootfs, e))?;
    for m in mounts {
        if let Err(e) = mount_rootfs(m, &rootfs).await {
            unmount_rootfs(bundle);
            return Err(ShimError::Other(format!(
                "mount {} ({}) on {}: {e}",
                m.source,
                m.type_,
                rootfs.display()
            )));
        }
    }
    Ok(true)
}

fn unmount_rootfs(bundle: &Path) {
    let rootfs = bundle.join("rootfs");
    if let Err(e) = containerd_shim::mount::umount_recursive(rootfs.to_str(), libc::MNT_DETACH) {
        tracing::warn!("unmounting {} failed: {e}", rootfs.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(namespaces: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},"linux":{{"namespaces":[{namespaces}]}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn own_pid_namespace_means_a_new_one() {
        assert!(has_own_pid_namespace(&spec_with(
            r#"{"type":"pid"},{"type":"mount"}"#
        )));
        // shareProcessNamespace: the sandbox's namespace by path.
        assert!(!has_own_pid_namespace(&spec_with(
            r#"{"type":"pid","path":"/proc/42/ns/pid"}"#
        )));
        // hostPID: no pid namespace at all.
        assert!(!has_own_pid_namespace(&spec_with(r#"{"type":"mount"}"#)));
    }

    #[test]
    fn a_missing_or_bad_spec_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_spec(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let err = read_spec(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
    }
}
