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

use undertaker_events::{KilledBy, LeakReason};
use undertaker_inject::{InitSettings, Injection};

use crate::{
    error::{Result, ShimError},
    events::Publisher,
    exits::{ExitCode, ExitRouter},
    init_binary,
    life::ShimLife,
    options::RuntimeOptions,
    process::{Exit, Process, Status},
    report_channel::{self, REPORT_FD},
    reporting::{from_cgroup, Reporter},
    runtime::{LaunchOpts, Runtime},
    stdio::{IoOwner, PreparedIo, StdioSpec},
};

/// How long the init's exit event waits for the execs it took down to report theirs.
const EXEC_EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long a whole-cgroup kill waits for the cgroup to empty before naming
/// the survivors unkillable and moving on.
pub const CGROUP_KILL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an init that closed its report channel may take to be reaped
/// before the shim looks for what holds it.
const STUCK_EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long a shim waits for an unkillable process to let its container go
/// before it gives up on deleting it from the runtime.
const RELEASE_WAIT: Duration = Duration::from_secs(600);
/// How long an exit waits for the init's report channel to be read to its end.
const REPORT_DRAIN: Duration = Duration::from_secs(3);

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
    pub(crate) reporter: Reporter,
    pub(crate) init_settings: InitSettings,
    /// Where undertaker-init is in the container; `None` when it runs without.
    pub(crate) injection: Option<Injection>,
    oom_watch: Mutex<Option<tokio::task::JoinHandle<()>>>,
    life: ShimLife,
    /// The init was reported exited while an unkillable process held it.
    stuck: std::sync::atomic::AtomicBool,
}

impl Container {
    /// Creates the container with the runtime; the init waits to be started.
    pub async fn create(
        req: &CreateTaskRequest,
        exits: &ExitRouter,
        publisher: &Publisher,
        life: &ShimLife,
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
            Self::create_mounted(req, bundle.clone(), options, &spec, exits, publisher, life).await;
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
        life: &ShimLife,
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
        let annotations = spec.annotations().clone().unwrap_or_default();
        let init_settings = InitSettings::from_annotations(&annotations)
            .map_err(|e| ShimError::invalid(format!("container {}", req.id), e.to_string()))?;
        let (injection, report) = if init_settings.enabled {
            let (injection, read_end, write_end) =
                inject_init(&req.id, &bundle, spec, &options, &init_settings)?;
            (Some(injection), Some((read_end, write_end)))
        } else {
            (None, None)
        };
        let runtime = Runtime::new(
            &options.binary_name,
            options.runc_root(publisher.namespace()),
            options.systemd_cgroup,
            &bundle,
            exits.clone(),
        );
        let mut prepared = PreparedIo::new(&stdio, &io_owner, exits).await?;
        let (report_read, preserve_fds) = match report {
            Some((read_end, write_end)) => (Some(read_end), vec![write_end]),
            None => (None, vec![]),
        };
        let launch = LaunchOpts {
            pid_file: bundle.join("init.pid"),
            console_socket: prepared.console.as_ref().map(|c| c.path()),
            no_pivot: options.no_pivot_root,
            no_new_keyring: options.no_new_keyring,
            stdio: std::mem::take(&mut prepared.runtime_stdio),
            preserve_fds,
        };

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
        let reporter = Reporter::new(publisher, &req.id, "", &annotations);
        let init = Arc::new(Process::new(&req.id, "", stdio, None));
        init.set_pid(pid);
        *init.io.lock().await = Some(io);
        if let Some(read_end) = report_read {
            let task = report_channel::spawn_reader(
                read_end,
                reporter.clone(),
                LeakReason::LEAK_REASON_MAIN_EXIT,
                init.init_state.clone(),
            )?;
            *init.report.lock().unwrap() = Some(task);
        }
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
            reporter,
            init_settings,
            injection,
            oom_watch: Mutex::new(None),
            life: life.clone(),
            stuck: std::sync::atomic::AtomicBool::new(false),
        });
        if let Some(cgroup) = &container.cgroup {
            if let Some(task) = crate::oom::watch(&container.id, cgroup, publisher) {
                *container.oom_watch.lock().unwrap() = Some(task);
            }
        }
        if container.injection.is_some() {
            container.watch_stuck_exit();
        }
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
            if signal == libc::SIGKILL as u32 && self.cgroup.is_some() {
                // Never only the main pid: everything in the container goes at once.
                let expected = self.expected_deaths();
                if self
                    .kill_cgroup(LeakReason::LEAK_REASON_STOP, &expected)
                    .await
                    > 0
                {
                    self.exit_if_stuck(128 + libc::SIGKILL).await;
                }
                return Ok(());
            }
            self.runtime.kill(&self.id, signal, all).await?;
            return Ok(());
        }
        if signal == libc::SIGKILL as u32 {
            self.kill_exec_tree(&p).await;
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
            if self.stuck.load(std::sync::atomic::Ordering::SeqCst) {
                // runc cannot delete a container whose init has not finished
                // exiting; do it once the unkillable process is gone.
                self.delete_when_released();
            } else {
                self.kill_cgroup(LeakReason::LEAK_REASON_DELETE, &[]).await;
                self.delete_in_runtime().await?;
            }
            if !self.rootfs.is_empty() {
                unmount_rootfs(&self.bundle);
            }
            if let Some(watch) = self.oom_watch.lock().unwrap().take() {
                watch.abort();
            }
            self.publisher.task_delete(&p, exit).await;
        } else {
            self.execs.lock().unwrap().remove(exec_id);
        }
        Ok((p.pid() as u32, exit))
    }

    async fn delete_in_runtime(&self) -> Result<()> {
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
        Ok(())
    }

    /// Waits (bounded) in the background for the held init to go, then deletes
    /// the container from the runtime; the shim stays until then.
    fn delete_when_released(&self) {
        let guard = self.life.hold();
        let (runtime, id, pid) = (self.runtime.clone(), self.id.clone(), self.init.pid());
        tracing::warn!(container = %id, pid, "runtime state and cgroup stay until the unkillable process goes");
        tokio::spawn(async move {
            let _guard = guard;
            let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
            while std::path::Path::new(&format!("/proc/{pid}")).exists()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            match runtime.delete(&id, true).await {
                Err(e) if !e.is_not_found() => {
                    tracing::warn!(container = %id, "deleting the released container failed: {e}")
                }
                _ => tracing::info!(container = %id, "released container deleted"),
            }
        });
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
        if matches!(p.status(), Status::Deleted | Status::Stopped) {
            return;
        }
        // What the init reported (leftovers it killed) goes out before the exit.
        p.finish_report(REPORT_DRAIN).await;
        if p.is_init() {
            self.after_init_exit().await;
        }
        if !p.set_exited(code as u32) {
            return;
        }
        if let Some(exit) = p.exit() {
            self.publisher.task_exit(&p, exit).await;
        }
    }

    /// The init is gone: kill whatever is left in the container's cgroup and
    /// wait until it is empty, and let the execs it took down report their
    /// exits first, as containerd expects.
    async fn after_init_exit(&self) {
        if self.stuck.load(std::sync::atomic::Ordering::SeqCst) {
            // Reported by exit_if_stuck right after a cgroup kill found the
            // survivors; killing again would only wait out the same timeout.
        } else if self.cgroup.is_some() {
            self.kill_cgroup(LeakReason::LEAK_REASON_MAIN_EXIT, &[])
                .await;
        } else if !self.own_pid_namespace {
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

    /// Host pids whose death a stop is meant to cause: the init and, under
    /// undertaker-init, the main process. Everything else killed is a leak.
    fn expected_deaths(&self) -> Vec<i32> {
        let init = self.init.pid();
        let mut pids = vec![init];
        let main_ns = self
            .init
            .init_state
            .main_ns_pid
            .load(std::sync::atomic::Ordering::Relaxed);
        if let Some(main) = report_channel::host_pid_of_child(init, main_ns) {
            pids.push(main);
        }
        pids
    }

    /// Kills the container's whole cgroup and waits (bounded) until it is
    /// empty; publishes what it killed (but `expected`) as leaked and what
    /// survived as unkillable. Returns how many survived.
    pub(crate) async fn kill_cgroup(&self, reason: LeakReason, expected: &[i32]) -> usize {
        let Some(cgroup) = self.cgroup.clone() else {
            return 0;
        };
        let killed =
            tokio::task::spawn_blocking(move || cgroup.kill_all(CGROUP_KILL_TIMEOUT)).await;
        let report = match killed {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => {
                tracing::warn!(container = %self.id, "whole-cgroup kill failed: {e}");
                return 0;
            }
            Err(e) => {
                tracing::warn!(container = %self.id, "whole-cgroup kill task failed: {e}");
                return 0;
            }
        };
        tracing::debug!(container = %self.id, method = %report.method, killed = report.killed.len(), unkillable = report.unkillable.len(), elapsed = ?report.elapsed, "cgroup killed");
        let leaked = report
            .killed
            .iter()
            .filter(|p| !expected.contains(&p.pid) && p.state != 'Z' && p.state != 'X')
            .map(|p| from_cgroup(p, KilledBy::KILLED_BY_CGROUP))
            .collect();
        self.reporter.leaked(leaked, reason).await;
        let unkillable: Vec<_> = report
            .unkillable
            .iter()
            .map(|p| from_cgroup(p, KilledBy::KILLED_BY_UNSPECIFIED))
            .collect();
        let survivors = unkillable.len();
        self.reporter.unkillable(unkillable).await;
        survivors
    }

    /// An init that is PID 1 of its namespace cannot finish exiting while an
    /// unkillable process (state D, frozen cgroup) is left in the namespace: the
    /// kernel holds it in its exit until every other process is gone, so it is
    /// never reaped. Report its exit anyway, so the pod can be stopped and
    /// removed; the unkillable event says what stayed.
    async fn exit_if_stuck(&self, code_if_unknown: i32) {
        let init = &self.init;
        if matches!(init.status(), Status::Stopped | Status::Deleted)
            || !crate::tree::is_exiting(init.pid())
        {
            return;
        }
        let code = init.init_state.announced_exit().unwrap_or(code_if_unknown);
        self.stuck.store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::warn!(container = %self.id, pid = init.pid(), code, "the init cannot finish exiting (an unkillable process holds its namespace); reporting its exit");
        self.on_exit(init.clone(), code).await;
    }

    /// Once the init closed its report channel it is exiting; if it is not
    /// reaped shortly after, something unkillable holds it: kill the cgroup,
    /// and report the exit if that is why.
    fn watch_stuck_exit(self: &Arc<Self>) {
        let container = self.clone();
        let mut closed = self.init.init_state.closed.subscribe();
        tokio::spawn(async move {
            if closed.wait_for(|c| *c).await.is_err() {
                return;
            }
            tokio::time::sleep(STUCK_EXIT_GRACE).await;
            let init = &container.init;
            tracing::debug!(container = %container.id, status = %init.status(), exiting = crate::tree::is_exiting(init.pid()), "init closed its report channel");
            if matches!(init.status(), Status::Stopped | Status::Deleted)
                || !crate::tree::is_exiting(init.pid())
            {
                return;
            }
            if container
                .kill_cgroup(LeakReason::LEAK_REASON_MAIN_EXIT, &[init.pid()])
                .await
                > 0
            {
                container.exit_if_stuck(128 + libc::SIGKILL).await;
            }
        });
    }

    /// SIGKILL for an exec: the exec and everything it started, reported as leaked.
    async fn kill_exec_tree(&self, exec: &Process) {
        let root = exec.pid();
        let tree = tokio::task::spawn_blocking(move || crate::tree::kill_tree(root))
            .await
            .unwrap_or_default();
        let leaked = tree
            .iter()
            .filter(|p| p.pid != root)
            .map(|p| from_cgroup(p, KilledBy::KILLED_BY_KILL))
            .collect();
        self.reporter
            .for_exec(&exec.exec_id)
            .leaked(leaked, LeakReason::LEAK_REASON_STOP)
            .await;
    }
}

/// Rewrites the bundle's spec so undertaker-init runs first; returns the
/// injection and the report channel's (read, write) ends.
fn inject_init(
    id: &str,
    bundle: &Path,
    spec: &Spec,
    options: &RuntimeOptions,
    settings: &InitSettings,
) -> Result<(Injection, std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    let init = init_binary::locate(&options.init_path)?;
    let copy = init_binary::copy_into_bundle(&init, bundle)?;
    let mut spec = spec.clone();
    let injection = undertaker_inject::inject(&mut spec, &copy, settings, Some(REPORT_FD))
        .map_err(|e| {
            ShimError::invalid(
                format!("container {id}: inject undertaker-init"),
                e.to_string(),
            )
        })?;
    write_spec(bundle, &spec)?;
    let (read_end, write_end) = report_channel::pipe()?;
    Ok((injection, read_end, write_end))
}

fn write_spec(bundle: &Path, spec: &Spec) -> Result<()> {
    let path = bundle.join("config.json");
    let json = serde_json::to_vec(spec).map_err(|e| ShimError::Json {
        what: format!("encode OCI spec {}", path.display()),
        source: e,
    })?;
    std::fs::write(&path, json).map_err(|e| ShimError::io("write OCI spec", &path, e))
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

/// The bundle's OCI spec; a missing or malformed one is bad input from the caller.
fn read_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let what = || format!("OCI spec {}", path.display());
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ShimError::invalid(what(), format!("cannot read it: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| ShimError::invalid(what(), format!("cannot parse it: {e}")))
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
        let invalid = containerd_shim_protos::ttrpc::Code::INVALID_ARGUMENT;
        let err = read_spec(dir.path()).unwrap_err();
        assert_eq!(err.code(), invalid);
        assert!(err.to_string().contains("config.json"), "{err}");
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let err = read_spec(dir.path()).unwrap_err();
        assert_eq!(err.code(), invalid);
        assert!(err.to_string().contains("config.json"), "{err}");
    }
}
