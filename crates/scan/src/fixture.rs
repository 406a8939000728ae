//! Reports made by hand for the unit tests of the pure parts (thresholds, table, JSON, NPD).

use std::collections::BTreeMap;

use undertaker_cgroups::{PidsUsage, ProcessInfo};

use crate::identity::ContainerIdentity;
use crate::report::{
    BlockedProcess, ContainerReport, LeftProcess, NodeReport, SkipReason, Skipped, ZombieParent,
};

/// Container `name` in pod `default/pod-<name>`, with a 64-character id starting with `name`.
pub fn identity(name: &str) -> ContainerIdentity {
    ContainerIdentity {
        pod_namespace: "default".into(),
        pod_name: format!("pod-{name}"),
        container: name.into(),
        pod_uid: format!("uid-{name}"),
        id: format!("{name:0<64}"),
        runtime_handler: Some("runc".into()),
    }
}

pub fn process(pid: i32, ppid: i32, comm: &str, state: char) -> ProcessInfo {
    ProcessInfo {
        pid,
        ppid,
        comm: comm.into(),
        cmdline: if state == 'Z' {
            String::new()
        } else {
            format!("/bin/{comm}")
        },
        state,
        wchan: String::new(),
    }
}

/// A container with `zombies` zombies of its main process and `blocked` processes stuck in
/// `D` (persisting).
pub fn container(name: &str, zombies: usize, blocked: usize) -> ContainerReport {
    let pid = 1000;
    ContainerReport {
        identity: identity(name),
        pid: Some(pid),
        processes: 1 + blocked,
        zombies,
        zombie_parents: if zombies == 0 {
            Vec::new()
        } else {
            vec![ZombieParent {
                pid,
                comm: Some("sleep".into()),
                zombies,
                zombie_comms: BTreeMap::from([("sh".to_string(), zombies)]),
            }]
        },
        blocked: (0..blocked)
            .map(|n| BlockedProcess {
                pid: pid + 1 + n as i32,
                comm: "cat".into(),
                cmdline: "cat /mnt/fuse/file".into(),
                wchan: "fuse_wait_answer".into(),
                persisting: true,
            })
            .collect(),
        left: Vec::new(),
        pids: None,
    }
}

/// An exited container `name` whose cgroup still holds `sleep` frozen in `D` (persisting)
/// and a `worker` that was dying at the first look.
pub fn exited_container(name: &str) -> ContainerReport {
    let left = |pid, comm: &str, state, wchan: &str, persisting| LeftProcess {
        pid,
        comm: comm.into(),
        cmdline: format!("/bin/{comm}"),
        state,
        wchan: wchan.into(),
        persisting,
    };
    ContainerReport {
        identity: identity(name),
        pid: None,
        processes: 2,
        zombies: 0,
        zombie_parents: Vec::new(),
        blocked: Vec::new(),
        left: vec![
            left(7001, "sleep", 'D', "do_freezer_trap", true),
            left(7002, "worker", 'S', "", false),
        ],
        pids: None,
    }
}

/// Three containers (one with a few zombies, one in trouble on every count, one clean)
/// and one that exited before it could be read.
pub fn sample_node() -> NodeReport {
    let web = ContainerReport {
        identity: ContainerIdentity {
            pod_namespace: "shop".into(),
            pod_name: "web-1".into(),
            container: "app".into(),
            pod_uid: "uid-web".into(),
            id: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
            runtime_handler: Some("runc".into()),
        },
        pid: Some(4100),
        processes: 3,
        zombies: 5,
        zombie_parents: vec![ZombieParent {
            pid: 4100,
            comm: Some("sleep".into()),
            zombies: 5,
            zombie_comms: BTreeMap::from([("sh".to_string(), 5)]),
        }],
        blocked: Vec::new(),
        left: Vec::new(),
        pids: Some(PidsUsage {
            current: 8,
            max: None,
        }),
    };
    let worker = ContainerReport {
        identity: ContainerIdentity {
            pod_namespace: "shop".into(),
            pod_name: "worker-1".into(),
            container: "queue".into(),
            pod_uid: "uid-worker".into(),
            id: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into(),
            runtime_handler: Some("undertaker".into()),
        },
        pid: Some(5200),
        processes: 10,
        zombies: 40,
        zombie_parents: vec![
            ZombieParent {
                pid: 5201,
                comm: Some("python3".into()),
                zombies: 38,
                zombie_comms: BTreeMap::from([("convert".to_string(), 38)]),
            },
            ZombieParent {
                pid: 5300,
                comm: None,
                zombies: 2,
                zombie_comms: BTreeMap::from([("curl".to_string(), 2)]),
            },
        ],
        blocked: vec![
            BlockedProcess {
                pid: 5205,
                comm: "cat".into(),
                cmdline: "cat /mnt/fuse/file".into(),
                wchan: "fuse_wait_answer".into(),
                persisting: true,
            },
            BlockedProcess {
                pid: 5206,
                comm: "dd".into(),
                cmdline: "dd if=/dev/sda".into(),
                wchan: "io_schedule".into(),
                persisting: false,
            },
        ],
        left: Vec::new(),
        pids: Some(PidsUsage {
            current: 80,
            max: Some(100),
        }),
    };
    let dns = ContainerReport {
        identity: ContainerIdentity {
            pod_namespace: "kube-system".into(),
            pod_name: "dns-1".into(),
            container: "coredns".into(),
            pod_uid: "uid-dns".into(),
            id: "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc".into(),
            runtime_handler: None,
        },
        pid: Some(6300),
        processes: 1,
        zombies: 0,
        zombie_parents: Vec::new(),
        blocked: Vec::new(),
        left: Vec::new(),
        pids: None,
    };
    let gone = Skipped {
        identity: ContainerIdentity {
            pod_namespace: "batch".into(),
            pod_name: "job-1".into(),
            container: "run".into(),
            pod_uid: "uid-job".into(),
            id: "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd".into(),
            runtime_handler: Some("runc".into()),
        },
        reason: SkipReason::Exited("its main process 7400 is gone (exited)".into()),
    };
    NodeReport {
        containers: vec![dns, web, worker],
        skipped: vec![gone],
    }
}
