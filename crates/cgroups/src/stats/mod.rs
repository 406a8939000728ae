//! A container cgroup's resource usage, read from its control files into plain structs (the
//! shim turns them into containerd's metrics). A file that cannot be read or parsed is an
//! error, never a zero; what a kernel or host does not have (a controller that is absent, swap
//! accounting that is off) is `None`.
//!
//! A host with v1 memory or cpuacct accounting (v1, or hybrid, where containerd itself expects
//! v1 metrics) gets [`Stats::V1`]; a pure v2 host gets [`Stats::V2`].

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::container::ContainerCgroup;

mod read;
mod v1;
mod v2;

pub(crate) use v1::oom_control as v1_oom_control;
pub use v1::{MemoryCounters, OomControl, V1CpuUsage, V1Memory, V1Stats, V1Throttling};
pub(crate) use v2::memory_events as v2_memory_events;
pub use v2::{MemoryEvents, V2Cpu, V2Memory, V2Stats, V2Throttling};

/// A flat-keyed file (`memory.stat`, `cpu.stat`) as the kernel wrote it: every `key value`
/// line. Which keys there are depends on the kernel, so they are kept as given.
pub type FlatKeyed = BTreeMap<String, u64>;

/// Why a cgroup's stats (or its OOM state) could not be read. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unexpected content in {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{path} has no {key:?}")]
    MissingKey { path: PathBuf, key: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stats {
    V1(V1Stats),
    V2(V2Stats),
}

/// Where a container's stats live: found once, read on every `Stats` call (from a blocking
/// thread: it is file I/O).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsSource {
    V1 {
        memory: Option<PathBuf>,
        cpu: Option<PathBuf>,
        cpuacct: Option<PathBuf>,
        pids: Option<PathBuf>,
    },
    V2 {
        dir: PathBuf,
    },
}

impl ContainerCgroup {
    /// Where this cgroup's stats are; `None` when it has neither v1 memory/cpuacct
    /// accounting nor a cgroup2 directory.
    pub fn stats_source(&self) -> Option<StatsSource> {
        let v1_dir = |c: &str| self.v1_dir(c).map(Path::to_path_buf);
        if v1_dir("memory").is_some() || v1_dir("cpuacct").is_some() {
            return Some(StatsSource::V1 {
                memory: v1_dir("memory"),
                cpu: v1_dir("cpu"),
                cpuacct: v1_dir("cpuacct"),
                pids: v1_dir("pids"),
            });
        }
        self.unified_dir().map(|dir| StatsSource::V2 {
            dir: dir.to_path_buf(),
        })
    }
}

impl StatsSource {
    /// Reads the stats now.
    pub fn read(&self) -> Result<Stats, StatsError> {
        match self {
            StatsSource::V1 {
                memory,
                cpu,
                cpuacct,
                pids,
            } => Ok(Stats::V1(V1Stats {
                pids: pids.as_deref().map(read::pids).transpose()?,
                cpu_usage: cpuacct.as_deref().map(v1::cpu_usage).transpose()?,
                cpu_throttling: cpu.as_deref().map(v1::throttling).transpose()?,
                memory: memory.as_deref().map(v1::memory).transpose()?,
            })),
            StatsSource::V2 { dir } => v2::read(dir).map(Stats::V2),
        }
    }
}

#[cfg(test)]
mod tests;
