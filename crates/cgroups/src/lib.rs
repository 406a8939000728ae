//! Finds a container's cgroup, kills all of it, waits until it is empty and names what survived.
//!
//! ```no_run
//! use std::time::Duration;
//! use undertaker_cgroups::{ContainerCgroup, Setup};
//!
//! # fn main() -> Result<(), undertaker_cgroups::CgroupError> {
//! let setup = Setup::host()?;
//! let init_pid = 4242;
//! // At start, while the container's init is alive:
//! let cgroup = ContainerCgroup::of_pid(&setup, init_pid)?;
//! // When the container stops:
//! let report = cgroup.kill_all(Duration::from_secs(5))?;
//! for p in &report.unkillable {
//!     eprintln!("pid {} ({}) survived SIGKILL in state {} at {}", p.pid, p.comm, p.state, p.wchan);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Everything is synchronous and may block up to the timeout it is given: call it from
//! `spawn_blocking` in async code.

mod backoff;
mod container;
mod error;
mod freezer;
mod kill;
mod membership;
mod mountinfo;
mod oom;
mod process;
pub mod procfs;
mod setup;
mod spec_path;
mod stats;
mod tree;
mod usage;
mod zombies;

#[cfg(test)]
mod fixture;

pub use container::{ContainerCgroup, Placement};
pub use error::CgroupError;
pub use kill::{KillMethod, KillReport, NAMED_AT_MOST};
pub use mountinfo::{CgroupMount, Hierarchy};
pub use oom::{OomCheck, OomCounter, OomError, OomNotifier, OomWatch};
pub use process::ProcessInfo;
pub use setup::Setup;
pub use spec_path::cgroup_of_spec_path;
pub use stats::{
    FlatKeyed, MemoryCounters, MemoryEvents, OomControl, Stats, StatsError, StatsSource,
    V1CpuUsage, V1Memory, V1Stats, V1Throttling, V2Cpu, V2Memory, V2Stats, V2Throttling,
};
pub use usage::PidsUsage;
pub use zombies::zombies_in;
