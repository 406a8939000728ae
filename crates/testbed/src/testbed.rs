//! One private containerd: its directory, config, images, CRI client and teardown.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::Signal;
use undertaker_cri::{api, CriClient};
use undertaker_options::RuntimeOptions;

use crate::build_dirs::current_profile_dir;
use crate::config::{
    containerd_config, undertaker_runtime_options, undertaker_runtime_options_file, ConfigInputs,
};
use crate::containerd::{Containerd, ContainerdSource, OciRuntime, OCI_RUNTIME_ENV};
use crate::daemon::{log_tail, Daemon};
use crate::driver::CgroupDriver;
use crate::error::{Result, TestbedError};
use crate::images::{test_images_archive, BUSYBOX_IMAGE, PAUSE_IMAGE};
use crate::layout::Layout;
use crate::leftovers::{self, Leftovers};
use crate::network::{CniNetwork, Network, POD_SUBNET};
use crate::pod::{PidMode, PodBuilder};
use crate::{cleanup, host};

/// Counts testbeds in this process, for unique cgroup parents.
static TESTBEDS: AtomicUsize = AtomicUsize::new(0);

/// How a testbed is set up.
#[derive(Clone, Debug)]
pub struct TestbedOptions {
    /// Prepended to containerd's PATH: where `containerd-shim-undertaker-v2` and
    /// `undertaker-init` are. Default: [`default_bin_dir`].
    pub bin_dir: PathBuf,
    /// containerd snapshotter for CRI and imports (default: [`default_snapshotter`]).
    pub snapshotter: String,
    /// containerd's log level (the shims' logs are forwarded at their own level).
    pub log_level: String,
    /// containerd namespaces the test images are imported into (`k8s.io` is CRI's).
    pub image_namespaces: Vec<String>,
    /// How long containerd may take to come up.
    pub ready_timeout: Duration,
    /// Which containerd runs (default: `$UNDERTAKER_CONTAINERD`, else the host's).
    pub containerd: ContainerdSource,
    /// The OCI runtime of both handlers, `BinaryName` in their options: `runc`, `crun` or a
    /// path (default: `$UNDERTAKER_OCI_RUNTIME`, else `runc`).
    pub oci_runtime: String,
    /// The pods' network (default: `$UNDERTAKER_NETWORK`, else the node's).
    pub network: Network,
    /// The cgroup driver of both handlers (default: `$UNDERTAKER_CGROUP_DRIVER`, else
    /// cgroupfs).
    pub cgroup_driver: CgroupDriver,
}

impl Default for TestbedOptions {
    fn default() -> Self {
        TestbedOptions {
            bin_dir: default_bin_dir(),
            snapshotter: default_snapshotter().to_string(),
            log_level: "debug".to_string(),
            image_namespaces: vec![CRI_NAMESPACE.to_string()],
            ready_timeout: Duration::from_secs(30),
            containerd: ContainerdSource::from_env(),
            oci_runtime: std::env::var(OCI_RUNTIME_ENV)
                .ok()
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "runc".to_string()),
            network: Network::from_env(),
            cgroup_driver: CgroupDriver::from_env(),
        }
    }
}

/// `overlayfs` where the kernel has overlay, else `native` (plain copies, slow but works
/// anywhere).
pub fn default_snapshotter() -> &'static str {
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if filesystems
        .lines()
        .any(|line| line.split_whitespace().last() == Some("overlay"))
    {
        "overlayfs"
    } else {
        "native"
    }
}

/// The containerd namespace CRI keeps its images and containers in.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// `$UNDERTAKER_BIN_DIR`, else the cargo profile directory of the running binary (where
/// `cargo build` put the shim and `scripts/build-init.sh` the init), else
/// `<workspace>/target/debug`.
pub fn default_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("UNDERTAKER_BIN_DIR") {
        return PathBuf::from(dir);
    }
    current_profile_dir()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug"))
}

/// What a `ctr` run printed and how it ended.
#[derive(Clone, Debug)]
pub struct CtrOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A private containerd with CRI, runtimes `runc` and `undertaker`, and the test images.
/// Dropping it (also while panicking) removes every pod, stops containerd and removes every
/// trace of it from the host.
pub struct Testbed {
    layout: Layout,
    options: TestbedOptions,
    containerd: Containerd,
    oci_runtime: OciRuntime,
    cgroup_parent: String,
    daemon: Mutex<Option<Daemon>>,
    cri: Mutex<Option<CriClient>>,
    pods_started: AtomicUsize,
    /// The pods' CNI network, when [`Network::Cni`].
    cni: Option<CniNetwork>,
}

impl Testbed {
    /// Starts containerd in a new temp directory and imports the test images.
    pub async fn start(options: TestbedOptions) -> Result<Testbed> {
        host::ensure_host_packages()?;
        if !host::is_root() {
            return Err(TestbedError::MissingTools {
                missing: vec!["root".to_string()],
                packages: Vec::new(),
                reason: "a testbed runs containerd, which needs root".to_string(),
            });
        }
        // Found before anything starts: a missing busybox, containerd or OCI runtime should
        // fail before containerd runs.
        test_images_archive()?;
        let containerd = options.containerd.detect()?;
        let oci_runtime = OciRuntime::find(&options.oci_runtime)?;
        let dir = tempfile::Builder::new()
            .prefix("undertaker-tb-")
            .tempdir()
            .map_err(TestbedError::io("create temp dir in", std::env::temp_dir()))?
            .keep();
        let serial = TESTBEDS.fetch_add(1, Ordering::Relaxed);
        let cgroup_parent = options
            .cgroup_driver
            .cgroup_parent(&format!("{}-{serial}", std::process::id()));
        let mut testbed = Testbed {
            layout: Layout::new(&dir),
            options,
            containerd,
            oci_runtime,
            cgroup_parent,
            daemon: Mutex::new(None),
            cri: Mutex::new(None),
            pods_started: AtomicUsize::new(0),
            cni: None,
        };
        // From here on, dropping `testbed` on an error cleans up whatever was started.
        testbed.write_config()?;
        if testbed.options.network == Network::Cni {
            let unique = (std::process::id() << 8) | (serial as u32 & 0xff);
            testbed.cni = Some(CniNetwork::set_up(&testbed.layout, unique)?);
        }
        // Said by every test (shown with its output): which containerd and runtime it ran on.
        eprintln!("testbed {}: {}", dir.display(), testbed.describe());
        let daemon = Daemon::spawn(
            &testbed.layout,
            &testbed.options.bin_dir,
            &testbed.containerd,
        )?;
        let daemon = testbed
            .daemon
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .insert(daemon);
        let client = daemon
            .wait_ready(None, testbed.options.ready_timeout)
            .await?;
        *testbed.cri.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(client);
        for namespace in testbed.options.image_namespaces.clone() {
            testbed.import_test_images(&namespace).await?;
        }
        tracing::info!(dir = %dir.display(), "testbed ready");
        Ok(testbed)
    }

    fn write_config(&self) -> Result<()> {
        for dir in self.layout.directories() {
            std::fs::create_dir_all(dir).map_err(TestbedError::io("create", dir))?;
        }
        let inputs = ConfigInputs {
            sandbox_image: PAUSE_IMAGE,
            snapshotter: &self.options.snapshotter,
            log_level: &self.options.log_level,
            config_version: self.containerd.config_version(),
            runc_binary: &self.oci_runtime.binary,
            systemd_cgroup: self.options.cgroup_driver == CgroupDriver::Systemd,
        };
        let config = containerd_config(&self.layout, &inputs);
        std::fs::write(&self.layout.config, config)
            .map_err(TestbedError::io("write", &self.layout.config))?;
        std::fs::write(
            &self.layout.runtime_options,
            undertaker_runtime_options_file(&self.runtime_options()),
        )
        .map_err(TestbedError::io("write", &self.layout.runtime_options))
    }

    /// Imports the busybox and pause images into containerd namespace `namespace` (e.g. for
    /// `ctr run`); for CRI's namespace, waits until CRI lists them.
    pub async fn import_test_images(&self, namespace: &str) -> Result<()> {
        let archive = test_images_archive()?;
        self.import_images(namespace, &archive, &[BUSYBOX_IMAGE, PAUSE_IMAGE])
            .await
    }

    /// Imports the OCI image-layout tarball `archive` into `namespace` with `ctr`; in CRI's
    /// namespace, returns once CRI lists each of `images`.
    pub async fn import_images(
        &self,
        namespace: &str,
        archive: &Path,
        images: &[&str],
    ) -> Result<()> {
        let archive = archive.to_string_lossy();
        let snapshotter = format!("--snapshotter={}", self.options.snapshotter);
        self.ctr_ok(&["-n", namespace, "images", "import", &snapshotter, &archive])
            .await?;
        if namespace == CRI_NAMESPACE {
            for image in images {
                self.wait_for_cri_image(image).await?;
            }
        }
        Ok(())
    }

    /// CRI learns about imported images from containerd's events, a moment after the import.
    async fn wait_for_cri_image(&self, image: &str) -> Result<()> {
        let cri = self.cri();
        let timeout = Duration::from_secs(10);
        let started = std::time::Instant::now();
        loop {
            let status = cri
                .images()
                .image_status(api::ImageStatusRequest {
                    image: Some(api::ImageSpec {
                        image: image.to_string(),
                        ..Default::default()
                    }),
                    verbose: false,
                })
                .await
                .map_err(|status| cri.error("ImageStatus", status))?;
            if status.into_inner().image.is_some() {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(TestbedError::Timeout {
                    what: format!("CRI to list the imported image {image}"),
                    timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A CRI client connected to the current containerd.
    pub fn cri(&self) -> CriClient {
        self.cri
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .expect("a started testbed has a CRI client")
    }

    /// containerd's gRPC socket (CRI and containerd API).
    pub fn socket(&self) -> &Path {
        &self.layout.socket
    }

    /// containerd's ttrpc socket.
    pub fn ttrpc_socket(&self) -> &Path {
        &self.layout.ttrpc_socket
    }

    /// containerd's log (with the shims' logs).
    pub fn log_path(&self) -> &Path {
        &self.layout.log
    }

    /// The last `lines` lines of containerd's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.layout.log, lines)
    }

    /// The testbed's private directory.
    pub fn dir(&self) -> &Path {
        &self.layout.dir
    }

    /// containerd's state directory (task bundles: `io.containerd.runtime.v2.task/<ns>/<id>`).
    pub fn state_dir(&self) -> &Path {
        &self.layout.state
    }

    /// runc's state root for runtime `undertaker` (`Root` in the runtime options).
    pub fn undertaker_runc_root(&self) -> &Path {
        &self.layout.undertaker_runc_root
    }

    /// The undertaker runtime's options, as written to [`Testbed::runtime_options_path`].
    pub fn runtime_options(&self) -> RuntimeOptions {
        RuntimeOptions {
            binary_name: self.oci_runtime.binary.to_string_lossy().into_owned(),
            systemd_cgroup: self.options.cgroup_driver == CgroupDriver::Systemd,
            ..undertaker_runtime_options(&self.layout, &self.options.bin_dir)
        }
    }

    /// The undertaker runtime's options file (`ConfigPath`).
    pub fn runtime_options_path(&self) -> &Path {
        &self.layout.runtime_options
    }

    /// The cgroup parent every pod (and any `ctr run --cgroup`) should live below, as CRI takes
    /// it: a cgroup path (cgroupfs driver) or a slice's name (systemd driver); both are also
    /// its directory below a hierarchy's root.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// The containerd this testbed runs (version, where its programs are).
    pub fn containerd(&self) -> &Containerd {
        &self.containerd
    }

    /// The OCI runtime both handlers use.
    pub fn oci_runtime(&self) -> &OciRuntime {
        &self.oci_runtime
    }

    /// Which containerd (version, config version), OCI runtime and pod network this testbed
    /// runs, for messages: `containerd 2.1.9+unknown (<dir>, config version 3), OCI runtime
    /// crun (...), host network` (or `CNI bridge utb...`).
    pub fn describe(&self) -> String {
        let network = match &self.cni {
            Some(cni) => format!("CNI bridge {} ({})", cni.bridge, POD_SUBNET),
            None => "host network".to_string(),
        };
        format!(
            "{}, OCI runtime {}, {} cgroup driver, {network}",
            self.containerd,
            self.oci_runtime,
            self.options.cgroup_driver.name()
        )
    }

    /// The cgroup driver of both handlers.
    pub fn cgroup_driver(&self) -> CgroupDriver {
        self.options.cgroup_driver
    }

    /// The pods' network.
    pub fn network(&self) -> Network {
        self.options.network
    }

    /// The shim and init directory on containerd's PATH.
    pub fn bin_dir(&self) -> &Path {
        &self.options.bin_dir
    }

    pub fn busybox_image(&self) -> &'static str {
        BUSYBOX_IMAGE
    }

    pub fn pause_image(&self) -> &'static str {
        PAUSE_IMAGE
    }

    /// A pod named `name` for runtime handler `handler` (`runc`, `undertaker`): host network,
    /// per-container PID namespaces, cgroups below the testbed's parent.
    pub fn pod(&self, name: &str, handler: &str) -> PodBuilder {
        let serial = self.pods_started.fetch_add(1, Ordering::Relaxed);
        let unique = format!("{name}-{serial}");
        PodBuilder {
            cri: self.cri(),
            name: name.to_string(),
            uid: format!("{unique}-{}", std::process::id()),
            handler: handler.to_string(),
            log_dir: self.layout.pods.join(&unique),
            cgroup_parent: self.cgroup_parent.clone(),
            pid_mode: PidMode::default(),
            privileged: false,
            annotations: HashMap::new(),
            labels: HashMap::new(),
            busybox_image: BUSYBOX_IMAGE.to_string(),
            network: self.options.network,
            cgroup_driver: self.options.cgroup_driver,
        }
    }

    /// Runs `ctr -a <socket> <args>` and returns what it printed, whatever its exit status.
    pub async fn ctr(&self, args: &[&str]) -> Result<CtrOutput> {
        let timeout = Duration::from_secs(60);
        let mut command = tokio::process::Command::new(self.containerd.program("ctr"));
        command
            .arg("-a")
            .arg(&self.layout.socket)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(timeout, command.output())
            .await
            .map_err(|_| TestbedError::Timeout {
                what: format!("ctr {}", args.join(" ")),
                timeout,
            })?
            .map_err(|source| TestbedError::Spawn {
                program: self.containerd.program("ctr").display().to_string(),
                source,
            })?;
        Ok(CtrOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Like [`Testbed::ctr`], but a non-zero exit is an error; returns stdout.
    pub async fn ctr_ok(&self, args: &[&str]) -> Result<String> {
        let output = self.ctr(args).await?;
        if output.code == Some(0) {
            Ok(output.stdout)
        } else {
            Err(TestbedError::Command {
                command: format!(
                    "{} -a {} {}",
                    self.containerd.program("ctr").display(),
                    self.layout.socket.display(),
                    args.join(" ")
                ),
                status: format!("exit code {:?}", output.code),
                stderr: output.stderr,
            })
        }
    }

    /// Restarts containerd (SIGTERM, the supervisor starts it again) while shims keep running,
    /// and waits until the new one serves CRI.
    pub async fn restart_containerd(&self) -> Result<()> {
        self.restart_containerd_around(std::future::ready(())).await
    }

    /// Restarts containerd as [`Testbed::restart_containerd`] does, but runs `between` once
    /// the old containerd has exited and before a new one starts (the supervisor loop holds
    /// the restart until then): what happens in `between` happens while no containerd runs.
    pub async fn restart_containerd_around<T>(
        &self,
        between: impl std::future::Future<Output = T>,
    ) -> Result<T> {
        let mut daemon = self
            .daemon
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("a started testbed has a daemon");
        let restarted = self.restart_held(&mut daemon, between).await;
        *self.daemon.lock().unwrap_or_else(|e| e.into_inner()) = Some(daemon);
        let (value, cri) = restarted?;
        *self.cri.lock().unwrap_or_else(|e| e.into_inner()) = Some(cri);
        Ok(value)
    }

    /// Stops containerd with the hold file in place, runs `between`, removes the hold file
    /// (also when the stop failed) and waits for the new containerd.
    async fn restart_held<T>(
        &self,
        daemon: &mut Daemon,
        between: impl std::future::Future<Output = T>,
    ) -> Result<(T, CriClient)> {
        let (hold, timeout) = (&self.layout.hold_file, self.options.ready_timeout);
        std::fs::write(hold, b"").map_err(TestbedError::io("create", hold))?;
        let previous = daemon.signal_containerd(Signal::SIGTERM);
        let value = match daemon.wait_gone(previous, timeout).await {
            Ok(()) => Ok(between.await),
            Err(e) => Err(e),
        };
        let released = std::fs::remove_file(hold).map_err(TestbedError::io("remove", hold));
        let value = value?;
        released?;
        Ok((value, daemon.wait_ready(previous, timeout).await?))
    }

    /// Everything of this testbed's pods still on the host (see [`Leftovers`]).
    pub fn leftovers(&self) -> Leftovers {
        let mut found = leftovers::scan(&self.layout, &self.cgroup_parent);
        if let Some(network) = &self.cni {
            found.network_ports = network.ports();
        }
        found
    }

    /// Polls [`Testbed::leftovers`] until it is empty or `timeout` passed (shims exit a moment
    /// after their last sandbox is removed); returns the last scan.
    pub async fn wait_for_no_leftovers(&self, timeout: Duration) -> Leftovers {
        let started = std::time::Instant::now();
        loop {
            let leftovers = self.leftovers();
            if leftovers.is_empty() || started.elapsed() >= timeout {
                return leftovers;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops and removes every pod sandbox CRI knows, then removes any container left.
    pub async fn remove_all_pods(&self) -> Result<()> {
        remove_all_pods(&self.cri()).await
    }
}

async fn remove_all_pods(cri: &CriClient) -> Result<()> {
    let mut runtime = cri.runtime();
    let sandboxes = runtime
        .list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
        .await
        .map_err(|status| cri.error("ListPodSandbox", status))?
        .into_inner()
        .items;
    let mut first_error = None;
    for sandbox in sandboxes {
        if let Err(error) = cri.stop_and_remove_pod_sandbox(&sandbox.id).await {
            first_error.get_or_insert(TestbedError::from(error));
        }
    }
    let containers = runtime
        .list_containers(api::ListContainersRequest { filter: None })
        .await
        .map_err(|status| cri.error("ListContainers", status))?
        .into_inner()
        .containers;
    for container in containers {
        let removed = runtime
            .remove_container(api::RemoveContainerRequest {
                container_id: container.id.clone(),
            })
            .await;
        if let Err(status) = removed {
            first_error.get_or_insert(cri.error("RemoveContainer", status).into());
        }
    }
    first_error.map_or(Ok(()), Err)
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- tail of {} ({}) ---\n{}\n--- end of containerd log ---",
                self.layout.log.display(),
                self.describe(),
                self.log_tail(60)
            );
        }
        // CRI first, so containerd and the shims tear pods down the normal way. On a fresh
        // thread with its own runtime: we may be dropped inside (or outside) any runtime.
        if self
            .daemon
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            let socket = self.layout.socket.clone();
            let removed = std::thread::spawn(move || remove_pods_bounded(&socket)).join();
            if let Ok(Err(error)) = removed {
                eprintln!("testbed teardown: removing pods through CRI: {error}");
            }
        }
        let survivors = cleanup::kill_our_processes(&self.layout, &self.cgroup_parent);
        if !survivors.is_empty() {
            eprintln!("testbed teardown: processes survived SIGKILL: {survivors:?}");
        }
        if let Some(mut daemon) = self
            .daemon
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            daemon.stop();
        }
        let mounted = cleanup::unmount_under(&self.layout.dir);
        if !mounted.is_empty() {
            eprintln!("testbed teardown: still mounted: {mounted:?}");
        }
        if let Some(network) = &self.cni {
            for problem in network.tear_down() {
                eprintln!("testbed teardown: network: {problem}");
            }
        }
        if self.options.cgroup_driver == CgroupDriver::Systemd {
            // systemd owns the slice: stop it (and whatever scope is left in it) first.
            let _ = std::process::Command::new("systemctl")
                .args(["stop", &self.cgroup_parent])
                .output();
        }
        let kept = cleanup::remove_cgroups(&self.cgroup_parent);
        if !kept.is_empty() {
            eprintln!("testbed teardown: cgroups not removed: {kept:?}");
        }
        if std::env::var_os("UNDERTAKER_KEEP_TESTBED").is_some() {
            eprintln!("testbed teardown: keeping {}", self.layout.dir.display());
        } else if let Err(error) = cleanup::remove_directory(&self.layout) {
            eprintln!("testbed teardown: {error}");
        }
    }
}

/// Connects afresh and removes every pod, giving up after a bound.
fn remove_pods_bounded(socket: &Path) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| TestbedError::Spawn {
            program: "tokio runtime".to_string(),
            source,
        })?;
    let timeout = Duration::from_secs(60);
    runtime.block_on(async {
        let work = async {
            let cri = CriClient::connect(socket).await?;
            remove_all_pods(&cri).await
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| TestbedError::Timeout {
                what: "removing every pod through CRI".to_string(),
                timeout,
            })?
    })
}
