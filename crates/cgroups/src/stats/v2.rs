//! cgroup v2: one directory; which controllers it has is in `cgroup.controllers`.

use std::path::Path;

use super::read::{self, key};
use super::{FlatKeyed, StatsError};
use crate::usage::PidsUsage;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Stats {
    /// `None` when the pids controller is not enabled for this cgroup.
    pub pids: Option<PidsUsage>,
    /// `cpu.stat` is always there (usage); throttling only with the cpu controller.
    pub cpu: V2Cpu,
    /// `None` when the memory controller is not enabled for this cgroup.
    pub memory: Option<V2Memory>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2Cpu {
    pub usage_usec: u64,
    pub user_usec: u64,
    pub system_usec: u64,
    pub throttling: Option<V2Throttling>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2Throttling {
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_usec: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEvents {
    pub low: u64,
    pub high: u64,
    pub max: u64,
    pub oom: u64,
    pub oom_kill: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Memory {
    /// `memory.stat` as the kernel wrote it.
    pub stat: FlatKeyed,
    pub usage: u64,
    /// `None` for `max`.
    pub limit: Option<u64>,
    /// `memory.swap.*`; `None` (both) without swap accounting.
    pub swap_usage: Option<u64>,
    pub swap_limit: Option<u64>,
    pub events: MemoryEvents,
}

pub(super) fn read(dir: &Path) -> Result<V2Stats, StatsError> {
    let controllers = read::text(&dir.join("cgroup.controllers"))?;
    let has = |name: &str| controllers.split_whitespace().any(|c| c == name);
    Ok(V2Stats {
        pids: has("pids").then(|| read::pids(dir)).transpose()?,
        cpu: cpu(dir, has("cpu"))?,
        memory: has("memory").then(|| memory(dir)).transpose()?,
    })
}

fn cpu(dir: &Path, throttled: bool) -> Result<V2Cpu, StatsError> {
    let path = dir.join("cpu.stat");
    let stat = read::flat(&path)?;
    let throttling = throttled
        .then(|| {
            Ok::<_, StatsError>(V2Throttling {
                nr_periods: key(&stat, &path, "nr_periods")?,
                nr_throttled: key(&stat, &path, "nr_throttled")?,
                throttled_usec: key(&stat, &path, "throttled_usec")?,
            })
        })
        .transpose()?;
    Ok(V2Cpu {
        usage_usec: key(&stat, &path, "usage_usec")?,
        user_usec: key(&stat, &path, "user_usec")?,
        system_usec: key(&stat, &path, "system_usec")?,
        throttling,
    })
}

fn memory(dir: &Path) -> Result<V2Memory, StatsError> {
    let swap_limit_path = dir.join("memory.swap.max");
    let swap_limit = match read::optional_text(&swap_limit_path)? {
        Some(text) => read::parse_limit(&swap_limit_path, &text)?,
        None => None,
    };
    Ok(V2Memory {
        stat: read::flat(&dir.join("memory.stat"))?,
        usage: read::number(&dir.join("memory.current"))?,
        limit: read::limit(&dir.join("memory.max"))?,
        swap_usage: read::optional_number(&dir.join("memory.swap.current"))?,
        swap_limit,
        events: memory_events(dir)?,
    })
}

pub(crate) fn memory_events(dir: &Path) -> Result<MemoryEvents, StatsError> {
    let path = dir.join("memory.events");
    let events = read::flat(&path)?;
    Ok(MemoryEvents {
        low: key(&events, &path, "low")?,
        high: key(&events, &path, "high")?,
        max: key(&events, &path, "max")?,
        oom: key(&events, &path, "oom")?,
        oom_kill: key(&events, &path, "oom_kill")?,
    })
}
