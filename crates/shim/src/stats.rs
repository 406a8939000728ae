//! Container metrics for `Stats`, which kubelet's container stats come from.
//!
//! `undertaker_cgroups` reads the container's cgroup files into plain structs (a file that
//! cannot be read is an error there, never a zero); this module only turns them into
//! containerd's protobuf metrics. containerd-shim's own collector leaves cgroup v1 CPU usage,
//! RSS, page faults and the memory limit at zero (kubelet then reports no CPU and a
//! wrapped-around available memory), hence our own. A host with v1 memory accounting gets
//! `io.containerd.cgroups.v1.Metrics`; a pure v2 host gets `io.containerd.cgroups.v2.Metrics`.
//!
//! Keys a kernel does not write to `memory.stat`/`cpu.stat`, and parts whose controller is
//! absent, stay unset (0) in the protobuf, which has no other way to say so; a limit of `max`
//! is 0 too, as containerd's own collectors report it.

use containerd_shim_protos::{
    cgroups::metrics as v1,
    cgroups_v2::metrics as v2,
    protobuf::{well_known_types::any::Any, Message, MessageField},
};
use undertaker_cgroups::{
    ContainerCgroup, FlatKeyed, MemoryCounters, PidsUsage, Stats, StatsSource, V1Stats, V2Stats,
};

use crate::error::{Result, ShimError};

const METRICS_V1_TYPE: &str = "io.containerd.cgroups.v1.Metrics";
const METRICS_V2_TYPE: &str = "io.containerd.cgroups.v2.Metrics";

/// Where a container's metrics live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetricsSource(StatsSource);

impl MetricsSource {
    pub(crate) fn of(cgroup: &ContainerCgroup) -> Option<Self> {
        cgroup.stats_source().map(MetricsSource)
    }

    /// Reads the metrics now (blocking file I/O), as the `Any` containerd decodes.
    pub(crate) fn collect(&self) -> Result<Any> {
        let stats = self
            .0
            .read()
            .map_err(|e| ShimError::Other(format!("cgroup stats: {e}")))?;
        to_any(&stats)
    }
}

fn to_any(stats: &Stats) -> Result<Any> {
    let (type_url, bytes) = match stats {
        Stats::V1(s) => (METRICS_V1_TYPE, metrics_v1(s).write_to_bytes()),
        Stats::V2(s) => (METRICS_V2_TYPE, metrics_v2(s).write_to_bytes()),
    };
    let value = bytes.map_err(|e| ShimError::Protobuf {
        what: "encode metrics".into(),
        source: e,
    })?;
    Ok(Any {
        type_url: type_url.to_string(),
        value,
        ..Default::default()
    })
}

fn limit(pids: &PidsUsage) -> u64 {
    pids.max.unwrap_or(0)
}

fn metrics_v1(s: &V1Stats) -> v1::Metrics {
    let mut m = v1::Metrics::new();
    if let Some(pids) = &s.pids {
        m.pids = MessageField::some(v1::PidsStat {
            current: pids.current,
            limit: limit(pids),
            ..Default::default()
        });
    }
    if s.cpu_usage.is_some() || s.cpu_throttling.is_some() {
        let mut stat = v1::CPUStat::new();
        if let Some(usage) = &s.cpu_usage {
            stat.usage = MessageField::some(v1::CPUUsage {
                total: usage.total_ns,
                user: usage.user_ns,
                kernel: usage.kernel_ns,
                per_cpu: usage.per_cpu_ns.clone(),
                ..Default::default()
            });
        }
        if let Some(t) = &s.cpu_throttling {
            stat.throttling = MessageField::some(v1::Throttle {
                periods: t.periods,
                throttled_periods: t.throttled_periods,
                throttled_time: t.throttled_time_ns,
                ..Default::default()
            });
        }
        m.cpu = MessageField::some(stat);
    }
    if let Some(memory) = &s.memory {
        let get = |k: &str| memory.stat.get(k).copied().unwrap_or(0);
        m.memory = MessageField::some(v1::MemoryStat {
            usage: MessageField::some(entry(&memory.usage)),
            swap: memory.swap.as_ref().map(entry).into(),
            kernel: memory.kernel.as_ref().map(entry).into(),
            kernel_tcp: memory.kernel_tcp.as_ref().map(entry).into(),
            ..memory_stat_v1(get)
        });
        let oom = &memory.oom_control;
        m.memory_oom_control = MessageField::some(v1::MemoryOomControl {
            oom_kill_disable: oom.oom_kill_disable.into(),
            under_oom: oom.under_oom.into(),
            oom_kill: oom.oom_kill.unwrap_or(0),
            ..Default::default()
        });
    }
    m
}

fn entry(c: &MemoryCounters) -> v1::MemoryEntry {
    v1::MemoryEntry {
        usage: c.usage,
        limit: c.limit,
        max: c.max_usage,
        failcnt: c.failcnt,
        ..Default::default()
    }
}

fn memory_stat_v1(get: impl Fn(&str) -> u64) -> v1::MemoryStat {
    v1::MemoryStat {
        cache: get("cache"),
        rss: get("rss"),
        rss_huge: get("rss_huge"),
        mapped_file: get("mapped_file"),
        dirty: get("dirty"),
        writeback: get("writeback"),
        pg_pg_in: get("pgpgin"),
        pg_pg_out: get("pgpgout"),
        pg_fault: get("pgfault"),
        pg_maj_fault: get("pgmajfault"),
        inactive_anon: get("inactive_anon"),
        active_anon: get("active_anon"),
        inactive_file: get("inactive_file"),
        active_file: get("active_file"),
        unevictable: get("unevictable"),
        hierarchical_memory_limit: get("hierarchical_memory_limit"),
        hierarchical_swap_limit: get("hierarchical_memsw_limit"),
        total_cache: get("total_cache"),
        total_rss: get("total_rss"),
        total_rss_huge: get("total_rss_huge"),
        total_mapped_file: get("total_mapped_file"),
        total_dirty: get("total_dirty"),
        total_writeback: get("total_writeback"),
        total_pg_pg_in: get("total_pgpgin"),
        total_pg_pg_out: get("total_pgpgout"),
        total_pg_fault: get("total_pgfault"),
        total_pg_maj_fault: get("total_pgmajfault"),
        total_inactive_anon: get("total_inactive_anon"),
        total_active_anon: get("total_active_anon"),
        total_inactive_file: get("total_inactive_file"),
        total_active_file: get("total_active_file"),
        total_unevictable: get("total_unevictable"),
        ..Default::default()
    }
}

fn metrics_v2(s: &V2Stats) -> v2::Metrics {
    let mut m = v2::Metrics::new();
    if let Some(pids) = &s.pids {
        m.pids = MessageField::some(v2::PidsStat {
            current: pids.current,
            limit: limit(pids),
            ..Default::default()
        });
    }
    let throttling = s
        .cpu
        .throttling
        .unwrap_or(undertaker_cgroups::V2Throttling {
            nr_periods: 0,
            nr_throttled: 0,
            throttled_usec: 0,
        });
    m.cpu = MessageField::some(v2::CPUStat {
        usage_usec: s.cpu.usage_usec,
        user_usec: s.cpu.user_usec,
        system_usec: s.cpu.system_usec,
        nr_periods: throttling.nr_periods,
        nr_throttled: throttling.nr_throttled,
        throttled_usec: throttling.throttled_usec,
        ..Default::default()
    });
    if let Some(memory) = &s.memory {
        m.memory = MessageField::some(v2::MemoryStat {
            usage: memory.usage,
            usage_limit: memory.limit.unwrap_or(0),
            swap_usage: memory.swap_usage.unwrap_or(0),
            swap_limit: memory.swap_limit.unwrap_or(0),
            ..memory_stat_v2(&memory.stat)
        });
        let e = &memory.events;
        m.memory_events = MessageField::some(v2::MemoryEvents {
            low: e.low,
            high: e.high,
            max: e.max,
            oom: e.oom,
            oom_kill: e.oom_kill,
            ..Default::default()
        });
    }
    m
}

fn memory_stat_v2(stat: &FlatKeyed) -> v2::MemoryStat {
    let get = |k: &str| stat.get(k).copied().unwrap_or(0);
    v2::MemoryStat {
        anon: get("anon"),
        file: get("file"),
        kernel_stack: get("kernel_stack"),
        slab: get("slab"),
        sock: get("sock"),
        shmem: get("shmem"),
        file_mapped: get("file_mapped"),
        file_dirty: get("file_dirty"),
        file_writeback: get("file_writeback"),
        anon_thp: get("anon_thp"),
        inactive_anon: get("inactive_anon"),
        active_anon: get("active_anon"),
        inactive_file: get("inactive_file"),
        active_file: get("active_file"),
        unevictable: get("unevictable"),
        slab_reclaimable: get("slab_reclaimable"),
        slab_unreclaimable: get("slab_unreclaimable"),
        pgfault: get("pgfault"),
        pgmajfault: get("pgmajfault"),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
