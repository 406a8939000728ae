//! cgroup v1: one directory per controller (memory, cpu, cpuacct, pids).

use std::path::Path;

use super::read::{self, key};
use super::{FlatKeyed, StatsError};
use crate::usage::PidsUsage;

/// cpuacct.stat counts in USER_HZ ticks, which Linux fixes at 100 per second.
const NANOS_PER_TICK: u64 = 10_000_000;

/// Each part is `None` when its controller is not mounted for this cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Stats {
    pub pids: Option<PidsUsage>,
    /// From cpuacct.
    pub cpu_usage: Option<V1CpuUsage>,
    /// From cpu.
    pub cpu_throttling: Option<V1Throttling>,
    pub memory: Option<V1Memory>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1CpuUsage {
    pub total_ns: u64,
    pub user_ns: u64,
    pub kernel_ns: u64,
    pub per_cpu_ns: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V1Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
}

/// `<prefix>.usage_in_bytes`, `.limit_in_bytes`, `.max_usage_in_bytes`, `.failcnt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCounters {
    pub usage: u64,
    pub limit: u64,
    pub max_usage: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OomControl {
    pub oom_kill_disable: bool,
    pub under_oom: bool,
    /// OOM kills so far; `None` on kernels before 4.13, which do not count them.
    pub oom_kill: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Memory {
    /// `memory.stat` as the kernel wrote it.
    pub stat: FlatKeyed,
    pub usage: MemoryCounters,
    /// `memory.memsw.*`; `None` without swap accounting.
    pub swap: Option<MemoryCounters>,
    /// `memory.kmem.*`; `None` on kernels without kernel memory accounting.
    pub kernel: Option<MemoryCounters>,
    pub kernel_tcp: Option<MemoryCounters>,
    pub oom_control: OomControl,
}

pub(super) fn cpu_usage(dir: &Path) -> Result<V1CpuUsage, StatsError> {
    let stat_path = dir.join("cpuacct.stat");
    let ticks = read::flat(&stat_path)?;
    let per_cpu_path = dir.join("cpuacct.usage_percpu");
    let per_cpu_ns = read::text(&per_cpu_path)?
        .split_whitespace()
        .map(|v| read::parse_u64(&per_cpu_path, v))
        .collect::<Result<_, _>>()?;
    Ok(V1CpuUsage {
        total_ns: read::number(&dir.join("cpuacct.usage"))?,
        user_ns: key(&ticks, &stat_path, "user")? * NANOS_PER_TICK,
        kernel_ns: key(&ticks, &stat_path, "system")? * NANOS_PER_TICK,
        per_cpu_ns,
    })
}

pub(super) fn throttling(dir: &Path) -> Result<V1Throttling, StatsError> {
    let path = dir.join("cpu.stat");
    let stat = read::flat(&path)?;
    Ok(V1Throttling {
        periods: key(&stat, &path, "nr_periods")?,
        throttled_periods: key(&stat, &path, "nr_throttled")?,
        throttled_time_ns: key(&stat, &path, "throttled_time")?,
    })
}

pub(super) fn memory(dir: &Path) -> Result<V1Memory, StatsError> {
    Ok(V1Memory {
        stat: read::flat(&dir.join("memory.stat"))?,
        usage: counters(dir, "memory")?,
        swap: optional_counters(dir, "memory.memsw")?,
        kernel: optional_counters(dir, "memory.kmem")?,
        kernel_tcp: optional_counters(dir, "memory.kmem.tcp")?,
        oom_control: oom_control(dir)?,
    })
}

pub(crate) fn oom_control(dir: &Path) -> Result<OomControl, StatsError> {
    let path = dir.join("memory.oom_control");
    let control = read::flat(&path)?;
    Ok(OomControl {
        oom_kill_disable: key(&control, &path, "oom_kill_disable")? != 0,
        under_oom: key(&control, &path, "under_oom")? != 0,
        oom_kill: control.get("oom_kill").copied(),
    })
}

fn counters(dir: &Path, prefix: &str) -> Result<MemoryCounters, StatsError> {
    let file = |name: &str| read::number(&dir.join(format!("{prefix}.{name}")));
    Ok(MemoryCounters {
        usage: file("usage_in_bytes")?,
        limit: file("limit_in_bytes")?,
        max_usage: file("max_usage_in_bytes")?,
        failcnt: file("failcnt")?,
    })
}

/// Counters a kernel may not have at all: absent when their usage file is.
fn optional_counters(dir: &Path, prefix: &str) -> Result<Option<MemoryCounters>, StatsError> {
    if read::optional_number(&dir.join(format!("{prefix}.usage_in_bytes")))?.is_none() {
        return Ok(None);
    }
    counters(dir, prefix).map(Some)
}
