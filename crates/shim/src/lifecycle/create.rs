//! Create: decode the options, inject undertaker-init into the bundle, set up the
//! stdio, have the runtime create the container, and start watching it. A create that
//! fails anywhere leaves nothing behind ([`Rollback`]).

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc, Mutex},
};

use containerd_shim_protos::api::CreateTaskRequest;
use tokio_util::sync::CancellationToken;
use undertaker_events::LeakReason;
use undertaker_inject::InitSettings;

use super::{
    blocking, bundle, container::Container, process::Process, reports::Reporter, seams::OciRuntime,
    Core,
};
use crate::{
    error::{Result, ShimError},
    options::{RuntimeOptions, ShimOptions},
    report_channel,
    runtime::LaunchOpts,
    stdio::{IoOwner, PreparedIo, ProcessIo, StdioSpec},
};

impl Core {
    /// Creates the container with the runtime; its init waits to be started. Returns
    /// the init's pid.
    pub(crate) async fn create(self: &Arc<Self>, req: CreateTaskRequest) -> Result<u32> {
        if req.id.is_empty() {
            return Err(ShimError::invalid("create", "empty container id"));
        }
        let _reserved = self.reserve(&req.id)?;
        if !req.checkpoint.is_empty() || !req.parent_checkpoint.is_empty() {
            return Err(ShimError::Unsupported {
                what: format!("container {}: restore from checkpoint", req.id),
            });
        }
        let bundle = PathBuf::from(&req.bundle);
        let (options, spec) = {
            let (any, bundle) = (req.options.clone().into_option(), bundle.clone());
            blocking(format!("container {}: read bundle", req.id), move || {
                let options = RuntimeOptions::from_any(any.as_ref())?;
                let spec = bundle::read_spec(&bundle)?;
                options.store(&bundle)?;
                Ok::<_, ShimError>((options, spec))
            })
            .await??
        };
        let annotations = spec.annotations();
        let settings = InitSettings::from_annotations(&annotations)
            .map_err(|e| ShimError::invalid(format!("container {}", req.id), e.to_string()))?;
        let termination_log = termination_log(&req.id, &spec, &annotations)?;

        let mut rollback = Rollback::new(&req.id, bundle.clone());
        let created = self
            .create_in_bundle(
                &req,
                bundle,
                options,
                spec,
                annotations,
                settings,
                termination_log,
                &mut rollback,
            )
            .await;
        if created.is_err() {
            // Awaited: the error reaches containerd only once nothing of the create is left.
            rollback.run().await;
        }
        created
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_in_bundle(
        self: &Arc<Self>,
        req: &CreateTaskRequest,
        bundle: PathBuf,
        options: RuntimeOptions,
        spec: undertaker_inject::Spec,
        annotations: HashMap<String, String>,
        settings: InitSettings,
        termination_log: Option<PathBuf>,
        rollback: &mut Rollback,
    ) -> Result<u32> {
        rollback.unmount = bundle::mount_rootfs(&req.rootfs, &bundle).await?;
        let injection = if settings.enabled {
            let (id, bundle, spec, options, settings) = (
                req.id.clone(),
                bundle.clone(),
                spec.clone(),
                options.clone(),
                settings,
            );
            let what = format!("container {id}: inject undertaker-init");
            Some(
                blocking(what, move || {
                    bundle::inject_init(&id, &bundle, &spec, &options, &settings)
                })
                .await??,
            )
        } else {
            None
        };
        let stdio = StdioSpec {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let io_owner = IoOwner {
            container_id: req.id.clone(),
            namespace: self.namespace().to_string(),
            uid: options.io_uid,
            gid: options.io_gid,
        };
        let runtime = self
            .seams
            .runtimes
            .runtime(&options, self.namespace(), &bundle);
        let mut prepared = PreparedIo::new(&stdio, &io_owner, &self.exits).await?;
        let (injection, report_read, preserve_fds) = match injection {
            Some((injection, read_end, write_end)) => {
                (Some((injection, settings)), Some(read_end), vec![write_end])
            }
            None => (None, None, vec![]),
        };
        let launch = LaunchOpts {
            pid_file: bundle.join("init.pid"),
            console_socket: prepared.console.as_ref().map(|c| c.path()),
            no_pivot: options.no_pivot_root,
            no_new_keyring: options.no_new_keyring,
            stdio: std::mem::take(&mut prepared.runtime_stdio),
            preserve_fds,
        };

        let sub = self.exits.subscribe();
        let created = runtime.create(&req.id, &bundle, launch).await;
        // runc may have left a half-created container behind even when it failed.
        rollback.runtime = Some(runtime.clone());
        let pid = match created {
            Ok(pid) => pid,
            Err(e) => {
                rollback.io = Some(prepared.abandon());
                return Err(e.into());
            }
        };
        let io = prepared.started().await?;
        let cgroup = {
            let (host, id) = (self.seams.host.clone(), req.id.clone());
            blocking(format!("container {id}: find cgroup"), move || {
                host.cgroup_of(&id, pid)
            })
            .await?
        };
        let main_exit_leftovers = Arc::default();
        let reporter = Reporter::new(&self.events, &req.id, "", &annotations)
            .tapping_main_exit(Arc::clone(&main_exit_leftovers));
        let init = Arc::new(Process::new(&req.id, "", stdio, None));
        init.set_pid(pid);
        *init.io.lock().await = Some(io);
        let container = Arc::new(Container {
            id: req.id.clone(),
            bundle,
            runtime,
            init: init.clone(),
            execs: Mutex::new(HashMap::new()),
            rootfs: req.rootfs.clone(),
            own_pid_namespace: spec.has_own_pid_namespace(),
            io_owner,
            cgroup,
            kill_lock: tokio::sync::Mutex::new(()),
            kills_in_flight: tokio::sync::RwLock::new(()),
            reporter,
            injection,
            stuck: AtomicBool::new(false),
            gone: CancellationToken::new(),
            termination_log,
            main_exit_leftovers,
        });
        if let Some(read_end) = report_read {
            match report_channel::spawn_reader(
                read_end,
                container.reporter.clone(),
                LeakReason::LEAK_REASON_MAIN_EXIT,
                init.init_state.clone(),
            ) {
                Ok(task) => *init.report.lock().unwrap() = Some(task),
                Err(e) => {
                    rollback.io = init.io.lock().await.take();
                    return Err(e);
                }
            }
        }
        self.containers
            .lock()
            .unwrap()
            .insert(req.id.clone(), container.clone());
        rollback.disarm();
        if let Some(cgroup) = &container.cgroup {
            if let Some(task) = cgroup.watch_oom(&container.id, self.events.clone()) {
                let gone = container.gone.clone();
                tokio::spawn(async move {
                    let abort = task.abort_handle();
                    tokio::select! {
                        _ = task => {}
                        _ = gone.cancelled() => abort.abort(),
                    }
                });
            }
        }
        if container.injection.is_some() {
            self.watch_stuck_exit(&container);
        }
        self.watch_exit(&container, init.clone(), sub.claim(pid));
        self.events
            .task_create(&init, &container.bundle_str(), container.rootfs.clone());
        Ok(pid as u32)
    }
}

/// The host file for the leak summary, when asked for and mounted (kubelet mounts the
/// termination message file of every container); asked for but not mounted is logged.
fn termination_log(
    id: &str,
    spec: &undertaker_inject::Spec,
    annotations: &HashMap<String, String>,
) -> Result<Option<PathBuf>> {
    let Some(path) = undertaker_inject::termination_message_path(annotations)
        .map_err(|e| ShimError::invalid(format!("container {id}"), e.to_string()))?
    else {
        return Ok(None);
    };
    let host = undertaker_inject::mounted_host_file(spec, &path);
    if host.is_none() {
        tracing::warn!(container = %id, path = %path.display(), "termination message asked for, but no file is mounted there; none is written");
    }
    Ok(host)
}

/// Undoes a create that failed after it changed something: force-deletes the container
/// in the runtime, shuts its stdio down, unmounts the rootfs. Dropped armed (the create
/// was cancelled half-way), it does so in the background.
pub(crate) struct Rollback {
    id: String,
    bundle: PathBuf,
    pub(crate) unmount: bool,
    pub(crate) runtime: Option<Arc<dyn OciRuntime>>,
    pub(crate) io: Option<ProcessIo>,
    armed: bool,
}

impl Rollback {
    fn new(id: &str, bundle: PathBuf) -> Self {
        Rollback {
            id: id.to_string(),
            bundle,
            unmount: false,
            runtime: None,
            io: None,
            armed: true,
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }

    fn take(&mut self) -> Rollback {
        self.armed = false;
        Rollback {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            unmount: self.unmount,
            runtime: self.runtime.take(),
            io: self.io.take(),
            armed: false,
        }
    }

    /// Undoes what was recorded; a second call finds nothing left to undo.
    async fn run(&mut self) {
        self.take().undo().await;
    }

    async fn undo(mut self) {
        tracing::info!(container = %self.id, "create failed; removing what it made");
        if let Some(runtime) = self.runtime.take() {
            match runtime.delete(&self.id, true).await {
                Err(e) if !e.is_not_found() => {
                    tracing::warn!(container = %self.id, "force delete after failed create: {e}")
                }
                _ => {}
            }
        }
        if let Some(mut io) = self.io.take() {
            io.shutdown().await;
        }
        if self.unmount {
            bundle::unmount_rootfs(self.bundle.clone()).await;
        }
    }
}

impl Drop for Rollback {
    fn drop(&mut self) {
        if self.armed && tokio::runtime::Handle::try_current().is_ok() {
            let undo = self.take();
            tokio::spawn(undo.undo());
        }
    }
}
