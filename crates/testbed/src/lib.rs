//! A private containerd for tests, demos and benchmarks.
//!
//! [`Testbed::start`] runs containerd with all its state in a temp directory (never
//! `/run/containerd` or `/var/lib/containerd`); CRI configured with runtime handlers `runc`
//! and `undertaker` (`io.containerd.undertaker.v2`, found on a PATH prefixed with
//! [`default_bin_dir`]); the busybox and pause test images built from the host's static
//! busybox and imported; and a CRI client. Pods built with [`Testbed::pod`] live below a
//! per-testbed cgroup parent so [`Testbed::leftovers`] can prove nothing stayed behind.
//! Dropping the testbed removes every pod, stops containerd, kills what is left of ours,
//! unmounts, removes our cgroups and the directory.
//!
//! Environment: `UNDERTAKER_CONTAINERD` (a directory with another containerd release's
//! `containerd`, `ctr` and `containerd-shim-runc-v2`; its version decides the config schema),
//! `UNDERTAKER_OCI_RUNTIME` (`runc`, `crun` or a path: `BinaryName` of both handlers),
//! `UNDERTAKER_CGROUP_DRIVER` (`cgroupfs`, the default, or `systemd`: `SystemdCgroup` for
//! both handlers, pods below a slice of the testbed's own), `UNDERTAKER_NETWORK` (`host`, the default, or `cni`: a network namespace per pod through
//! the CNI bridge plugin),
//! `UNDERTAKER_BIN_DIR` (shim and init directory), `UNDERTAKER_IMAGE_CACHE`
//! (where the image tarball is cached), `UNDERTAKER_KEEP_TESTBED` (keep the directory, with
//! containerd's config and log, after teardown).

mod build_dirs;
mod cleanup;
mod config;
mod container;
mod containerd;
mod cri_log;
mod daemon;
mod driver;
mod error;
mod events;
mod freezer;
mod host;
mod host_processes;
mod image_layout;
mod images;
mod installer_image;
mod layout;
mod leftovers;
mod network;
mod pod;
mod procfs;
pub mod stream;
mod testbed;
mod tree_snapshot;

pub use config::{RUNC_RUNTIME_TYPE, UNDERTAKER_RUNTIME_TYPE};
pub use container::{Container, ContainerBuilder, ExecOutput};
pub use containerd::{
    Containerd, ContainerdSource, ContainerdVersion, OciRuntime, CONTAINERD_ENV, OCI_RUNTIME_ENV,
};
pub use cri_log::{parse_cri_log, read_cri_log, stream_lines, LogLine, LogStream};
pub use driver::{CgroupDriver, CGROUP_DRIVER_ENV};
pub use error::{Result, TestbedError};
pub use events::{about as records_about, lines as event_lines, EventCollector, PROBE_PREFIX};
pub use freezer::{cgroup_dirs, remove_cgroup_tree, FrozenProcess};
pub use host::{ensure_host_packages, find_program, is_root};
pub use host_processes::{processes_in_cgroup, processes_matching, HostProcess};
pub use images::{test_images_archive, BUSYBOX_IMAGE, PAUSE_IMAGE};
pub use installer_image::{
    installer_image_archive, InstallerFiles, CA_BUNDLE, INSTALLER_BINARIES, INSTALLER_BIN_DIR,
    INSTALLER_IMAGE,
};
pub use leftovers::{Leftovers, ProcessInfo};
pub use network::{Network, NETWORK_ENV, POD_SUBNET};
pub use pod::{PidMode, Pod, PodBuilder};
pub use procfs::{cgroup_hierarchies, cmdline, mounts_of, parse_mountinfo, MountEntry};
pub use testbed::{
    default_bin_dir, default_snapshotter, CtrOutput, Testbed, TestbedOptions, CRI_NAMESPACE,
};
pub use tree_snapshot::{tree_snapshot, TreeSnapshot};
pub use undertaker_cri::{api, CriClient};
pub use undertaker_events::{EventRecord, ProcessRecord};
pub use undertaker_options::RuntimeOptions;
