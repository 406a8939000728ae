use super::*;
use crate::fixture::{FakeHost, HYBRID, PID_BASE};
use crate::usage::PidsUsage;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A hybrid host whose container has memory, cpu, cpuacct and pids v1 directories.
struct V1Host {
    host: FakeHost,
    memory: PathBuf,
    cpu: PathBuf,
    pids: PathBuf,
}

const V1_MOUNTS: &[(&str, &str, &str)] = &[
    ("cgroup", "rw,memory", "memory"),
    ("cgroup", "rw,cpu,cpuacct", "cpu,cpuacct"),
    ("cgroup", "rw,pids", "pids"),
    ("cgroup2", "rw,nsdelegate", "unified"),
];

impl V1Host {
    fn new() -> V1Host {
        let host = FakeHost::new(V1_MOUNTS);
        host.process(
            PID_BASE,
            "init",
            'S',
            "9:memory:/ctr\n8:pids:/ctr\n2:cpu,cpuacct:/ctr\n0::/ctr\n",
        );
        let memory = host.cgroup("memory", "/ctr");
        let cpu = host.cgroup("cpu,cpuacct", "/ctr");
        let pids = host.cgroup("pids", "/ctr");
        host.cgroup("unified", "/ctr");
        write(&memory, "memory.usage_in_bytes", "1900544\n");
        write(&memory, "memory.limit_in_bytes", "268435456\n");
        write(&memory, "memory.max_usage_in_bytes", "2000000\n");
        write(&memory, "memory.failcnt", "0\n");
        write(
            &memory,
            "memory.stat",
            "cache 4096\nrss 1146880\ntotal_rss 1146880\ntotal_pgfault 1012\n",
        );
        write(
            &memory,
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 1\noom_kill 2\n",
        );
        write(&cpu, "cpuacct.usage", "9408253\n");
        write(&cpu, "cpuacct.stat", "user 1\nsystem 2\n");
        write(&cpu, "cpuacct.usage_percpu", "9000000 408253 \n");
        write(
            &cpu,
            "cpu.stat",
            "nr_periods 5\nnr_throttled 1\nthrottled_time 77\n",
        );
        write(&pids, "pids.current", "3\n");
        write(&pids, "pids.max", "max\n");
        V1Host {
            host,
            memory,
            cpu,
            pids,
        }
    }

    fn read(&self) -> Result<Stats, StatsError> {
        let cgroup = ContainerCgroup::of_pid(&self.host.setup(), PID_BASE).unwrap();
        cgroup.stats_source().expect("v1 accounting").read()
    }

    fn v1(&self) -> V1Stats {
        match self.read().unwrap() {
            Stats::V1(stats) => stats,
            other => panic!("expected v1 stats: {other:?}"),
        }
    }
}

#[test]
fn v1_stats_carry_cpu_memory_and_pids() {
    let host = V1Host::new();
    let stats = host.v1();
    assert_eq!(
        stats.cpu_usage,
        Some(V1CpuUsage {
            total_ns: 9408253,
            user_ns: 10_000_000,
            kernel_ns: 20_000_000,
            per_cpu_ns: vec![9000000, 408253],
        })
    );
    assert_eq!(stats.cpu_throttling.unwrap().throttled_time_ns, 77);
    let memory = stats.memory.unwrap();
    assert_eq!(memory.usage.usage, 1900544);
    assert_eq!(memory.usage.limit, 268435456);
    assert_eq!(memory.stat["total_pgfault"], 1012);
    assert_eq!(memory.swap, None, "no memsw files: no swap accounting");
    assert_eq!(memory.kernel, None);
    assert_eq!(
        memory.oom_control,
        OomControl {
            oom_kill_disable: false,
            under_oom: true,
            oom_kill: Some(2),
        }
    );
    assert_eq!(
        stats.pids,
        Some(PidsUsage {
            current: 3,
            max: None
        })
    );
}

#[test]
fn v1_swap_counters_are_read_when_the_kernel_has_them() {
    let host = V1Host::new();
    for (name, value) in [
        ("usage_in_bytes", "10"),
        ("limit_in_bytes", "20"),
        ("max_usage_in_bytes", "30"),
        ("failcnt", "1"),
    ] {
        write(&host.memory, &format!("memory.memsw.{name}"), value);
    }
    let swap = host.v1().memory.unwrap().swap.unwrap();
    assert_eq!(
        (swap.usage, swap.limit, swap.max_usage, swap.failcnt),
        (10, 20, 30, 1)
    );
    // Half of the counters is no "not available": it is an error naming the file.
    std::fs::remove_file(host.memory.join("memory.memsw.failcnt")).unwrap();
    let err = host.read().unwrap_err();
    assert!(err.to_string().contains("memory.memsw.failcnt"), "{err}");
}

#[test]
fn a_missing_v1_file_is_an_error_not_a_zero() {
    for (dir, file) in [
        ("memory", "memory.usage_in_bytes"),
        ("memory", "memory.stat"),
        ("memory", "memory.oom_control"),
        ("cpu", "cpuacct.usage"),
        ("cpu", "cpu.stat"),
        ("pids", "pids.current"),
    ] {
        let host = V1Host::new();
        let dir = match dir {
            "memory" => &host.memory,
            "cpu" => &host.cpu,
            _ => &host.pids,
        };
        std::fs::remove_file(dir.join(file)).unwrap();
        let err = host.read().unwrap_err();
        assert!(
            matches!(&err, StatsError::Read { path, .. } if path.ends_with(file)),
            "{file}: {err}"
        );
    }
}

#[test]
fn malformed_v1_content_is_an_error_naming_the_file() {
    let host = V1Host::new();
    write(&host.memory, "memory.usage_in_bytes", "lots\n");
    let err = host.read().unwrap_err();
    assert!(matches!(err, StatsError::Parse { .. }), "{err}");
    assert!(err.to_string().contains("memory.usage_in_bytes"), "{err}");

    let host = V1Host::new();
    write(&host.cpu, "cpu.stat", "nr_periods 5\n");
    let err = host.read().unwrap_err();
    assert!(
        matches!(&err, StatsError::MissingKey { key, .. } if key == "nr_throttled"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn an_unreadable_file_is_an_error() {
    // A directory where a file should be fails every read, even as root.
    let host = V1Host::new();
    std::fs::remove_file(host.pids.join("pids.max")).unwrap();
    std::fs::create_dir(host.pids.join("pids.max")).unwrap();
    let err = host.read().unwrap_err();
    assert!(matches!(err, StatsError::Read { .. }), "{err}");
    assert!(err.to_string().contains("pids.max"), "{err}");
}

#[test]
fn absent_v1_controllers_are_not_available() {
    let host = FakeHost::new(&V1_MOUNTS[..1]);
    host.process(PID_BASE, "init", 'S', "9:memory:/ctr\n");
    let memory = host.cgroup("memory", "/ctr");
    let full = V1Host::new();
    for file in std::fs::read_dir(&full.memory).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), memory.join(file.file_name())).unwrap();
    }
    let cgroup = ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap();
    let Stats::V1(stats) = cgroup.stats_source().unwrap().read().unwrap() else {
        panic!("v1");
    };
    assert_eq!(
        (stats.cpu_usage, stats.cpu_throttling, stats.pids),
        (None, None, None)
    );
    assert!(stats.memory.is_some());
}

fn v2_host(controllers: &str) -> (FakeHost, PathBuf) {
    let host = FakeHost::new(&[("cgroup2", "rw", "")]);
    host.process(PID_BASE, "init", 'S', "0::/pod/ctr\n");
    let dir = host.cgroup("", "/pod/ctr");
    write(&dir, "cgroup.controllers", controllers);
    write(
        &dir,
        "cpu.stat",
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 9\n",
    );
    write(&dir, "memory.current", "4096000\n");
    write(&dir, "memory.max", "max\n");
    write(&dir, "memory.stat", "anon 1000\nfile 2000\npgfault 9\n");
    write(
        &dir,
        "memory.events",
        "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
    );
    write(&dir, "pids.current", "2\n");
    write(&dir, "pids.max", "100\n");
    (host, dir)
}

fn read_v2(host: &FakeHost) -> Result<V2Stats, StatsError> {
    let cgroup = ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap();
    match cgroup.stats_source().expect("a cgroup2 dir").read()? {
        Stats::V2(stats) => Ok(stats),
        other => panic!("expected v2: {other:?}"),
    }
}

#[test]
fn v2_stats_come_from_the_unified_files() {
    let (host, dir) = v2_host("cpuset cpu io memory pids\n");
    let stats = read_v2(&host).unwrap();
    assert_eq!(
        (
            stats.cpu.usage_usec,
            stats.cpu.user_usec,
            stats.cpu.system_usec
        ),
        (1500, 1000, 500)
    );
    assert_eq!(stats.cpu.throttling.unwrap().throttled_usec, 9);
    let memory = stats.memory.unwrap();
    assert_eq!((memory.usage, memory.limit), (4096000, None));
    assert_eq!(memory.stat["anon"], 1000);
    assert_eq!((memory.swap_usage, memory.swap_limit), (None, None));
    assert_eq!(memory.events.oom_kill, 1);
    assert_eq!(
        stats.pids,
        Some(PidsUsage {
            current: 2,
            max: Some(100)
        })
    );
    write(&dir, "memory.swap.current", "7\n");
    write(&dir, "memory.swap.max", "1000\n");
    let memory = read_v2(&host).unwrap().memory.unwrap();
    assert_eq!(
        (memory.swap_usage, memory.swap_limit),
        (Some(7), Some(1000))
    );
}

#[test]
fn v2_controllers_that_are_not_enabled_are_not_available() {
    let (host, _) = v2_host("cpuset io\n");
    let stats = read_v2(&host).unwrap();
    assert_eq!(stats.memory, None);
    assert_eq!(stats.pids, None);
    assert_eq!(stats.cpu.throttling, None);
    assert_eq!(
        stats.cpu.usage_usec, 1500,
        "cpu.stat's usage is always there"
    );
}

#[test]
fn a_missing_v2_file_of_an_enabled_controller_is_an_error() {
    for file in [
        "memory.current",
        "memory.events",
        "pids.max",
        "cpu.stat",
        "cgroup.controllers",
    ] {
        let (host, dir) = v2_host("cpu memory pids\n");
        std::fs::remove_file(dir.join(file)).unwrap();
        let err = read_v2(&host).unwrap_err();
        assert!(
            matches!(&err, StatsError::Read { path, .. } if path.ends_with(file)),
            "{file}: {err}"
        );
    }
    let (host, dir) = v2_host("memory\n");
    write(&dir, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\n");
    let err = read_v2(&host).unwrap_err();
    assert!(
        matches!(&err, StatsError::MissingKey { key, .. } if key == "oom_kill"),
        "{err}"
    );
}

#[test]
fn no_accounting_at_all_is_no_source() {
    let host = FakeHost::new(&HYBRID[..1]);
    host.process(PID_BASE, "init", 'S', "6:freezer:/ctr\n");
    let cgroup = ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap();
    assert_eq!(cgroup.stats_source(), None);
}
