//! Container metrics for `Stats`, which kubelet's container stats come from.
//!
//! Read straight from the container's cgroup files: containerd-shim's own
//! collector leaves cgroup v1 CPU usage, RSS, page faults and the memory limit
//! at zero (kubelet then reports no CPU and a wrapped-around available memory).
//! A host with v1 memory accounting (v1 or hybrid, where containerd itself
//! expects v1 metrics) gets `io.containerd.cgroups.v1.Metrics`; a pure v2 host
//! gets `io.containerd.cgroups.v2.Metrics`.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use containerd_shim_protos::{
    cgroups::metrics as v1,
    cgroups_v2::metrics as v2,
    protobuf::{well_known_types::any::Any, Message, MessageField},
};

use crate::error::{Result, ShimError};

const METRICS_V1_TYPE: &str = "io.containerd.cgroups.v1.Metrics";
const METRICS_V2_TYPE: &str = "io.containerd.cgroups.v2.Metrics";
/// cpuacct.stat counts in USER_HZ ticks, which Linux fixes at 100 per second.
const NANOS_PER_TICK: u64 = 10_000_000;

/// Where a container's metrics live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsSource {
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

impl MetricsSource {
    pub fn of(cgroup: &undertaker_cgroups::ContainerCgroup) -> Option<Self> {
        let v1_dir = |c: &str| cgroup.v1_dir(c).map(Path::to_path_buf);
        if v1_dir("memory").is_some() || v1_dir("cpuacct").is_some() {
            return Some(MetricsSource::V1 {
                memory: v1_dir("memory"),
                cpu: v1_dir("cpu"),
                cpuacct: v1_dir("cpuacct"),
                pids: v1_dir("pids"),
            });
        }
        cgroup.unified_dir().map(|dir| MetricsSource::V2 {
            dir: dir.to_path_buf(),
        })
    }

    /// Reads the metrics now, as the `Any` containerd decodes.
    pub fn collect(&self) -> Result<Any> {
        let (type_url, bytes) = match self {
            MetricsSource::V1 {
                memory,
                cpu,
                cpuacct,
                pids,
            } => (
                METRICS_V1_TYPE,
                collect_v1(
                    memory.as_deref(),
                    cpu.as_deref(),
                    cpuacct.as_deref(),
                    pids.as_deref(),
                )
                .write_to_bytes(),
            ),
            MetricsSource::V2 { dir } => (METRICS_V2_TYPE, collect_v2(dir).write_to_bytes()),
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
}

fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `max` (no limit) reads as 0, as containerd's own collectors report it.
fn read_limit(path: &Path) -> u64 {
    read_u64(path)
}

/// A flat-keyed file such as memory.stat or cpu.stat.
fn read_keyed(path: &Path) -> HashMap<String, u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (k, v) = line.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn collect_v1(
    memory: Option<&Path>,
    cpu: Option<&Path>,
    cpuacct: Option<&Path>,
    pids: Option<&Path>,
) -> v1::Metrics {
    let mut m = v1::Metrics::new();
    if let Some(dir) = pids {
        m.pids = MessageField::some(v1::PidsStat {
            current: read_u64(&dir.join("pids.current")),
            limit: read_limit(&dir.join("pids.max")),
            ..Default::default()
        });
    }
    if cpu.is_some() || cpuacct.is_some() {
        let mut stat = v1::CPUStat::new();
        if let Some(dir) = cpuacct {
            let ticks = read_keyed(&dir.join("cpuacct.stat"));
            let per_cpu =
                std::fs::read_to_string(dir.join("cpuacct.usage_percpu")).unwrap_or_default();
            stat.usage = MessageField::some(v1::CPUUsage {
                total: read_u64(&dir.join("cpuacct.usage")),
                user: ticks.get("user").copied().unwrap_or(0) * NANOS_PER_TICK,
                kernel: ticks.get("system").copied().unwrap_or(0) * NANOS_PER_TICK,
                per_cpu: per_cpu
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect(),
                ..Default::default()
            });
        }
        if let Some(dir) = cpu {
            let s = read_keyed(&dir.join("cpu.stat"));
            let get = |k: &str| s.get(k).copied().unwrap_or(0);
            stat.throttling = MessageField::some(v1::Throttle {
                periods: get("nr_periods"),
                throttled_periods: get("nr_throttled"),
                throttled_time: get("throttled_time"),
                ..Default::default()
            });
        }
        m.cpu = MessageField::some(stat);
    }
    if let Some(dir) = memory {
        m.memory = MessageField::some(memory_v1(dir));
        let oom = read_keyed(&dir.join("memory.oom_control"));
        m.memory_oom_control = MessageField::some(v1::MemoryOomControl {
            oom_kill_disable: oom.get("oom_kill_disable").copied().unwrap_or(0),
            under_oom: oom.get("under_oom").copied().unwrap_or(0),
            oom_kill: oom.get("oom_kill").copied().unwrap_or(0),
            ..Default::default()
        });
    }
    m
}

fn memory_entry(dir: &Path, prefix: &str) -> v1::MemoryEntry {
    v1::MemoryEntry {
        usage: read_u64(&dir.join(format!("{prefix}.usage_in_bytes"))),
        limit: read_u64(&dir.join(format!("{prefix}.limit_in_bytes"))),
        max: read_u64(&dir.join(format!("{prefix}.max_usage_in_bytes"))),
        failcnt: read_u64(&dir.join(format!("{prefix}.failcnt"))),
        ..Default::default()
    }
}

fn memory_v1(dir: &Path) -> v1::MemoryStat {
    let s = read_keyed(&dir.join("memory.stat"));
    let get = |k: &str| s.get(k).copied().unwrap_or(0);
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
        usage: MessageField::some(memory_entry(dir, "memory")),
        swap: MessageField::some(memory_entry(dir, "memory.memsw")),
        kernel: MessageField::some(memory_entry(dir, "memory.kmem")),
        kernel_tcp: MessageField::some(memory_entry(dir, "memory.kmem.tcp")),
        ..Default::default()
    }
}

fn collect_v2(dir: &Path) -> v2::Metrics {
    let mut m = v2::Metrics::new();
    m.pids = MessageField::some(v2::PidsStat {
        current: read_u64(&dir.join("pids.current")),
        limit: read_limit(&dir.join("pids.max")),
        ..Default::default()
    });
    let c = read_keyed(&dir.join("cpu.stat"));
    let get = |k: &str| c.get(k).copied().unwrap_or(0);
    m.cpu = MessageField::some(v2::CPUStat {
        usage_usec: get("usage_usec"),
        user_usec: get("user_usec"),
        system_usec: get("system_usec"),
        nr_periods: get("nr_periods"),
        nr_throttled: get("nr_throttled"),
        throttled_usec: get("throttled_usec"),
        ..Default::default()
    });
    let s = read_keyed(&dir.join("memory.stat"));
    let get = |k: &str| s.get(k).copied().unwrap_or(0);
    m.memory = MessageField::some(v2::MemoryStat {
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
        usage: read_u64(&dir.join("memory.current")),
        usage_limit: read_limit(&dir.join("memory.max")),
        swap_usage: read_u64(&dir.join("memory.swap.current")),
        swap_limit: read_limit(&dir.join("memory.swap.max")),
        ..Default::default()
    });
    let e = read_keyed(&dir.join("memory.events"));
    let get = |k: &str| e.get(k).copied().unwrap_or(0);
    m.memory_events = MessageField::some(v2::MemoryEvents {
        low: get("low"),
        high: get("high"),
        max: get("max"),
        oom: get("oom"),
        oom_kill: get("oom_kill"),
        ..Default::default()
    });
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn v1_metrics_carry_cpu_rss_faults_and_the_limit() {
        let root = tempfile::tempdir().unwrap();
        let (mem, cpu, acct, pids) = (
            root.path().join("memory"),
            root.path().join("cpu"),
            root.path().join("cpuacct"),
            root.path().join("pids"),
        );
        for d in [&mem, &cpu, &acct, &pids] {
            std::fs::create_dir(d).unwrap();
        }
        write(&mem, "memory.usage_in_bytes", "1900544\n");
        write(&mem, "memory.limit_in_bytes", "268435456\n");
        write(&mem, "memory.stat", "cache 4096\nrss 1146880\ntotal_rss 1146880\ntotal_pgfault 1012\ntotal_pgmajfault 3\ntotal_inactive_file 8192\n");
        write(
            &mem,
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        );
        write(&acct, "cpuacct.usage", "9408253\n");
        write(&acct, "cpuacct.stat", "user 1\nsystem 2\n");
        write(&acct, "cpuacct.usage_percpu", "9000000 408253 \n");
        write(
            &cpu,
            "cpu.stat",
            "nr_periods 5\nnr_throttled 1\nthrottled_time 77\n",
        );
        write(&pids, "pids.current", "3\n");
        write(&pids, "pids.max", "max\n");

        let source = MetricsSource::V1 {
            memory: Some(mem),
            cpu: Some(cpu),
            cpuacct: Some(acct),
            pids: Some(pids),
        };
        let any = source.collect().unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        let m = v1::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.cpu.usage.total, 9408253);
        assert_eq!(
            (m.cpu.usage.user, m.cpu.usage.kernel),
            (10_000_000, 20_000_000)
        );
        assert_eq!(m.cpu.usage.per_cpu, vec![9000000, 408253]);
        assert_eq!(m.cpu.throttling.throttled_time, 77);
        assert_eq!(m.memory.usage.usage, 1900544);
        assert_eq!(m.memory.usage.limit, 268435456);
        assert_eq!((m.memory.rss, m.memory.total_rss), (1146880, 1146880));
        assert_eq!(
            (m.memory.total_pg_fault, m.memory.total_pg_maj_fault),
            (1012, 3)
        );
        assert_eq!(m.memory.total_inactive_file, 8192);
        assert_eq!(m.memory_oom_control.oom_kill, 2);
        assert_eq!((m.pids.current, m.pids.limit), (3, 0));
    }

    #[test]
    fn v2_metrics_come_from_the_unified_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            d,
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        );
        write(d, "memory.current", "4096000\n");
        write(d, "memory.max", "max\n");
        write(
            d,
            "memory.stat",
            "anon 1000\nfile 2000\ninactive_file 300\npgfault 9\npgmajfault 1\n",
        );
        write(
            d,
            "memory.events",
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        );
        write(d, "pids.current", "2\n");
        write(d, "pids.max", "100\n");
        let any = MetricsSource::V2 {
            dir: d.to_path_buf(),
        }
        .collect()
        .unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
        let m = v2::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(
            (m.cpu.usage_usec, m.cpu.user_usec, m.cpu.system_usec),
            (1500, 1000, 500)
        );
        assert_eq!((m.memory.usage, m.memory.usage_limit), (4096000, 0));
        assert_eq!(
            (m.memory.anon, m.memory.inactive_file, m.memory.pgfault),
            (1000, 300, 9)
        );
        assert_eq!(m.memory_events.oom_kill, 1);
        assert_eq!((m.pids.current, m.pids.limit), (2, 100));
    }
}
