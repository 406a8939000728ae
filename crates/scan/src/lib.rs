//! `undertaker scan`: for every running container on a node, whatever its runtime, how many
//! processes it has, how many zombies and who fails to reap them, which processes are stuck
//! in uninterruptible sleep (state `D`), and how many pids it uses of its `pids.max`.
//!
//! The containers come from CRI (`ListContainers`, `ListPodSandbox`, and `ContainerStatus`
//! with verbose info for the pid), so each row carries the pod's namespace and name; what
//! runs inside comes from the container's cgroup and `/proc` (through `undertaker-cgroups`).
//!
//! I/O and logic are apart: [`scan_node`] gathers a [`NodeReport`]; everything after that
//! ([`problems`], [`render_table`], [`to_json`], [`npd_verdict`]) is pure and works on any
//! report, so it is tested on fixtures.
//!
//! ```no_run
//! use std::time::Duration;
//! use undertaker_scan::{npd_verdict, problems, scan_node, ScanOptions, Thresholds};
//!
//! # async fn run() -> Result<(), undertaker_scan::ScanError> {
//! let options = ScanOptions {
//!     address: "/run/containerd/containerd.sock".into(),
//!     namespace: None,
//!     timeout: Duration::from_secs(10),
//!     d_state_recheck: Duration::from_secs(2),
//! };
//! let report = scan_node(&options).await?;
//! let found = problems(&report, &Thresholds::default());
//! let verdict = npd_verdict(&report, &found, 80);
//! println!("{}", verdict.message);
//! std::process::exit(verdict.status.exit_code().into());
//! # }
//! ```

mod cri;
mod error;
mod identity;
mod json;
mod npd;
mod observe;
mod report;
mod scan;
mod table;
mod thresholds;

#[cfg(test)]
mod fixture;

pub use cri::{cgroup_from_verbose_info, pid_from_verbose_info, ListedContainer, Target};
pub use error::ScanError;
pub use identity::ContainerIdentity;
pub use json::{to_json, SCHEMA};
pub use npd::{npd_unknown, npd_verdict, NpdStatus, NpdVerdict, NPD_MESSAGE_MAX};
pub use observe::Observation;
pub use report::{
    BlockedProcess, ContainerReport, LeftProcess, NodeReport, SkipReason, Skipped, ZombieParent,
};
pub use scan::{scan_node, ScanOptions};
pub use table::render_table;
pub use thresholds::{problems, Finding, Problem, Thresholds};
pub use undertaker_cgroups::{PidsUsage, ProcessInfo};
