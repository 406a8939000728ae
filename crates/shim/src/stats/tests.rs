use undertaker_cgroups::{
    MemoryEvents, OomControl, V1CpuUsage, V1Memory, V1Throttling, V2Cpu, V2Memory, V2Throttling,
};

use super::*;

fn flat(pairs: &[(&str, u64)]) -> FlatKeyed {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn counters(usage: u64, limit: u64) -> MemoryCounters {
    MemoryCounters {
        usage,
        limit,
        max_usage: usage + 1,
        failcnt: 0,
    }
}

#[test]
fn v1_metrics_carry_cpu_rss_faults_and_the_limit() {
    let stats = Stats::V1(V1Stats {
        pids: Some(PidsUsage {
            current: 3,
            max: None,
        }),
        cpu_usage: Some(V1CpuUsage {
            total_ns: 9408253,
            user_ns: 10_000_000,
            kernel_ns: 20_000_000,
            per_cpu_ns: vec![9000000, 408253],
        }),
        cpu_throttling: Some(V1Throttling {
            periods: 5,
            throttled_periods: 1,
            throttled_time_ns: 77,
        }),
        memory: Some(V1Memory {
            stat: flat(&[
                ("rss", 1146880),
                ("total_rss", 1146880),
                ("total_pgfault", 1012),
                ("total_pgmajfault", 3),
                ("total_inactive_file", 8192),
            ]),
            usage: counters(1900544, 268435456),
            swap: None,
            kernel: Some(counters(10, 20)),
            kernel_tcp: None,
            oom_control: OomControl {
                oom_kill_disable: false,
                under_oom: true,
                oom_kill: Some(2),
            },
        }),
    });
    let any = to_any(&stats).unwrap();
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
    assert_eq!(m.memory.usage.max, 1900545);
    assert_eq!((m.memory.rss, m.memory.total_rss), (1146880, 1146880));
    assert_eq!(
        (m.memory.total_pg_fault, m.memory.total_pg_maj_fault),
        (1012, 3)
    );
    assert_eq!(m.memory.total_inactive_file, 8192);
    assert!(m.memory.swap.is_none(), "no swap accounting: left unset");
    assert_eq!(m.memory.kernel.limit, 20);
    assert_eq!(m.memory_oom_control.oom_kill, 2);
    assert_eq!(m.memory_oom_control.under_oom, 1);
    assert_eq!((m.pids.current, m.pids.limit), (3, 0));
}

#[test]
fn v2_metrics_come_from_the_unified_stats() {
    let stats = Stats::V2(V2Stats {
        pids: Some(PidsUsage {
            current: 2,
            max: Some(100),
        }),
        cpu: V2Cpu {
            usage_usec: 1500,
            user_usec: 1000,
            system_usec: 500,
            throttling: Some(V2Throttling {
                nr_periods: 4,
                nr_throttled: 1,
                throttled_usec: 9,
            }),
        },
        memory: Some(V2Memory {
            stat: flat(&[("anon", 1000), ("inactive_file", 300), ("pgfault", 9)]),
            usage: 4096000,
            limit: None,
            swap_usage: Some(5),
            swap_limit: None,
            events: MemoryEvents {
                low: 0,
                high: 0,
                max: 4,
                oom: 1,
                oom_kill: 1,
            },
        }),
    });
    let any = to_any(&stats).unwrap();
    assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
    let m = v2::Metrics::parse_from_bytes(&any.value).unwrap();
    assert_eq!(
        (m.cpu.usage_usec, m.cpu.user_usec, m.cpu.system_usec),
        (1500, 1000, 500)
    );
    assert_eq!(m.cpu.throttled_usec, 9);
    assert_eq!((m.memory.usage, m.memory.usage_limit), (4096000, 0));
    assert_eq!(m.memory.swap_usage, 5);
    assert_eq!(
        (m.memory.anon, m.memory.inactive_file, m.memory.pgfault),
        (1000, 300, 9)
    );
    assert_eq!(m.memory_events.oom_kill, 1);
    assert_eq!((m.pids.current, m.pids.limit), (2, 100));
}

#[test]
fn a_cgroup_file_that_cannot_be_read_fails_the_stats() {
    let dir = tempfile::tempdir().unwrap();
    // A v2 directory without even cgroup.controllers: the cgroup is gone or broken.
    let source = MetricsSource(StatsSource::V2 {
        dir: dir.path().to_path_buf(),
    });
    let err = source.collect().unwrap_err();
    assert!(err.to_string().contains("cgroup.controllers"), "{err}");
}
