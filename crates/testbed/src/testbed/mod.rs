//! One private containerd: its directory, config, images and CRI client; `ctr` and restarts in
//! [`control`], teardown in [`teardown`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use undertaker_cri::{api, CriClient};
use undertaker_options::RuntimeOptions;

use crate::config::{
    containerd_config, undertaker_runtime_options, undertaker_runtime_options_file, ConfigInputs,
};
use crate::containerd::{Containerd, OciRuntime};
use crate::daemon::{log_tail, Daemon};
use crate::driver::CgroupDriver;
use crate::error::{Result, TestbedError};
use crate::host;
use crate::images::{test_images_archive, BUSYBOX_IMAGE, PAUSE_IMAGE};
use crate::layout::Layout;
use crate::leftovers::{self, Leftovers};
use crate::network::{CniNetwork, Network, POD_SUBNET};
use crate::pod::{PidMode, PodBuilder};

mod control;
mod options;
mod teardown;

pub use control::CtrOutput;
pub use options::{default_bin_dir, default_snapshotter, TestbedOptions, CRI_NAMESPACE};

/// Counts testbeds in this process, for unique cgroup parents.
static TESTBEDS: AtomicUsize = AtomicUsize::new(0);

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
        teardown::remove_all_pods(&self.cri()).await
    }
}
