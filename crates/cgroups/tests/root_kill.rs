//! Root tests on this host's real cgroups (hybrid: cgroup2 at the unified mount plus v1
//! controllers). Each test makes its own uniquely named cgroups and removes them on drop.
//! Without root they print why and pass without doing anything.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use undertaker_cgroups::{zombies_in, ContainerCgroup, KillMethod, KillReport, Setup};

use support::{must_return, root_test, wait_for, TestCgroup};

const TIMEOUT: Duration = Duration::from_secs(20);

/// The ways a host can offer to kill: as detected on the full hybrid host, and with the
/// hierarchies that offer better ones hidden. The v2 freezer is only chosen on kernels
/// without `cgroup.kill` (5.2 to 5.13), so here it is forced with `kill_all_with`.
fn setup_for(method: KillMethod) -> Setup {
    let host = Setup::host().unwrap();
    match method {
        KillMethod::CgroupKill => host,
        KillMethod::FreezerV1 => host.without_unified(),
        KillMethod::SignalLoop => host.without_unified().without_v1_controller("freezer"),
        KillMethod::FreezerV2 => host.without_v1_controller("freezer"),
    }
}

fn cmdline(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ")
        .trim_end()
        .to_owned()
}

fn pids_of(report: &KillReport) -> BTreeSet<i32> {
    report.killed.iter().map(|p| p.pid).collect()
}

/// A shell in the top cgroup, sleepers in it and in nested `a/b` and `c`: everything dies,
/// and the report names each process as it was before the kill.
fn kills_a_nested_tree(name: &str, method: KillMethod) {
    let Some((_serial, mounts)) = root_test(name) else {
        return;
    };
    let cg = TestCgroup::new(&mounts);
    cg.sub("a/b");
    cg.sub("c");
    let init = cg.spawn("", "sleep 1000 & exec sleep 1001");
    cg.spawn("a/b", "sleep 1002 & sleep 1003 & wait");
    cg.spawn("c", "exec sleep 1004");
    wait_for("5 sleepers and a shell in the test cgroup", || {
        let pids = cg.pids_now();
        let sleepers = pids
            .iter()
            .filter(|&&p| cmdline(p).starts_with("sleep "))
            .count();
        pids.len() == 6 && sleepers == 5
    });
    let expected = cg.pids_now();

    let container = ContainerCgroup::of_pid(&setup_for(method), init).unwrap();
    if method != KillMethod::FreezerV2 {
        assert_eq!(container.kill_method(), method);
    }
    let before: BTreeSet<i32> = container
        .processes()
        .unwrap()
        .iter()
        .map(|p| p.pid)
        .collect();
    assert_eq!(before, expected, "processes() lists nested sub-cgroups");

    let report = container.kill_all_with(method, TIMEOUT).unwrap();
    assert_eq!(report.method, method);
    assert!(report.unkillable.is_empty(), "{:?}", report.unkillable);
    assert_eq!(pids_of(&report), expected);
    let sleeper = report
        .killed
        .iter()
        .find(|p| p.cmdline == "sleep 1004")
        .unwrap();
    assert_eq!(sleeper.comm, "sleep");
    assert!(container.is_empty().unwrap());
    assert!(cg.pids_now().is_empty());
}

#[test]
fn cgroup_kill_kills_a_nested_tree() {
    kills_a_nested_tree("cgroup_kill_kills_a_nested_tree", KillMethod::CgroupKill);
}

#[test]
fn v1_freezer_kills_a_nested_tree() {
    kills_a_nested_tree("v1_freezer_kills_a_nested_tree", KillMethod::FreezerV1);
}

#[test]
fn v2_freezer_kills_a_nested_tree() {
    kills_a_nested_tree("v2_freezer_kills_a_nested_tree", KillMethod::FreezerV2);
}

#[test]
fn signal_passes_kill_a_nested_tree() {
    kills_a_nested_tree("signal_passes_kill_a_nested_tree", KillMethod::SignalLoop);
}

/// A thousand sleepers plus a shell that keeps forking while it is killed: nothing is left.
fn leaves_nothing_of_a_fork_storm(name: &str, method: KillMethod) {
    let Some((_serial, mounts)) = root_test(name) else {
        return;
    };
    let cg = TestCgroup::new(&mounts);
    cg.sub("storm");
    let init = cg.spawn(
        "",
        "i=0; while [ $i -lt 1000 ]; do sleep 1000 & i=$((i+1)); done; exec sleep 1000",
    );
    wait_for("1001 processes", || cg.pids_now().len() >= 1001);
    // Forks without end: each round trip leaves a new sleeper behind.
    cg.spawn("storm", "while :; do sleep 1000 & done");
    wait_for("the forker to get going", || cg.pids_now().len() >= 1050);

    let container = ContainerCgroup::of_pid(&setup_for(method), init).unwrap();
    let report = must_return(name, move || {
        container
            .kill_all_with(method, TIMEOUT)
            .map(|r| (r, container))
    });
    let (report, container) = report.unwrap();
    assert_eq!(report.method, method);
    assert!(report.unkillable.is_empty(), "{:?}", report.unkillable);
    assert!(
        report.killed.len() >= 1050,
        "killed {}",
        report.killed.len()
    );
    assert!(container.is_empty().unwrap());
    assert!(cg.pids_now().is_empty());
    eprintln!(
        "{name}: {} processes killed with {} in {:?}",
        report.killed.len(),
        report.method,
        report.elapsed
    );
}

#[test]
fn cgroup_kill_leaves_nothing_of_a_fork_storm() {
    leaves_nothing_of_a_fork_storm(
        "cgroup_kill_leaves_nothing_of_a_fork_storm",
        KillMethod::CgroupKill,
    );
}

#[test]
fn v1_freezer_leaves_nothing_of_a_fork_storm() {
    leaves_nothing_of_a_fork_storm(
        "v1_freezer_leaves_nothing_of_a_fork_storm",
        KillMethod::FreezerV1,
    );
}

#[test]
fn v2_freezer_leaves_nothing_of_a_fork_storm() {
    leaves_nothing_of_a_fork_storm(
        "v2_freezer_leaves_nothing_of_a_fork_storm",
        KillMethod::FreezerV2,
    );
}

#[test]
fn signal_passes_leave_nothing_of_a_fork_storm() {
    leaves_nothing_of_a_fork_storm(
        "signal_passes_leave_nothing_of_a_fork_storm",
        KillMethod::SignalLoop,
    );
}

/// A process in a v1 freezer sub-cgroup that is frozen on its own survives SIGKILL: it is
/// reported with its state and wchan, the others are killed, and the kill returns.
fn reports_a_self_frozen_process(name: &str, method: KillMethod) {
    let Some((_serial, mounts)) = root_test(name) else {
        return;
    };
    let cg = TestCgroup::new(&mounts);
    cg.sub("stuck");
    let init = cg.spawn("", "exec sleep 1000");
    let stuck = cg.spawn_placed(("stuck", "stuck", ""), "exec sleep 1001");
    wait_for("the process to be sleep", || cmdline(stuck) == "sleep 1001");
    let state = cg.freezer.join("stuck/freezer.state");
    std::fs::write(&state, "FROZEN").unwrap();
    wait_for("the sub-cgroup to freeze", || {
        std::fs::read_to_string(&state).unwrap().trim() == "FROZEN"
    });

    let container = ContainerCgroup::of_pid(&setup_for(method), init).unwrap();
    let timeout = Duration::from_millis(500);
    let report = must_return(name, move || container.kill_all_with(method, timeout)).unwrap();
    assert_eq!(report.method, method);
    assert_eq!(pids_of(&report), BTreeSet::from([init]));
    assert_eq!(report.unkillable.len(), 1, "{:?}", report.unkillable);
    let survivor = &report.unkillable[0];
    assert_eq!(survivor.pid, stuck);
    assert_eq!(survivor.cmdline, "sleep 1001");
    assert_eq!(
        survivor.state, 'D',
        "a v1-frozen task sleeps uninterruptibly: {survivor:?}"
    );
    assert!(!survivor.wchan.is_empty(), "{survivor:?}");
    eprintln!("{name}: survivor {survivor:?} after {:?}", report.elapsed);
}

#[test]
fn cgroup_kill_reports_a_self_frozen_process() {
    reports_a_self_frozen_process(
        "cgroup_kill_reports_a_self_frozen_process",
        KillMethod::CgroupKill,
    );
}

#[test]
fn v1_freezer_reports_a_self_frozen_process() {
    reports_a_self_frozen_process(
        "v1_freezer_reports_a_self_frozen_process",
        KillMethod::FreezerV1,
    );
}

/// A container paused with the v1 freezer (as runc pauses on a hybrid host) dies too: the
/// SIGKILL of `cgroup.kill` stays pending until the freezer is thawed.
#[test]
fn cgroup_kill_kills_a_paused_container() {
    let name = "cgroup_kill_kills_a_paused_container";
    let Some((_serial, mounts)) = root_test(name) else {
        return;
    };
    let cg = TestCgroup::new(&mounts);
    let init = cg.spawn("", "sleep 1000 & exec sleep 1001");
    wait_for("2 processes", || cg.pids_now().len() == 2);
    let container = ContainerCgroup::of_pid(&Setup::host().unwrap(), init).unwrap();
    let state = cg.freezer.join("freezer.state");
    std::fs::write(&state, "FROZEN").unwrap();
    wait_for("the pause", || {
        std::fs::read_to_string(&state).unwrap().trim() == "FROZEN"
    });

    let report = container.kill_all(TIMEOUT).unwrap();
    assert_eq!(report.method, KillMethod::CgroupKill);
    assert!(report.unkillable.is_empty(), "{:?}", report.unkillable);
    assert_eq!(report.killed.len(), 2);
    assert!(container.is_empty().unwrap());
}

/// The real paths of a hybrid host, and pids.current / pids.max of the v1 pids controller.
#[test]
fn finds_real_hybrid_paths_and_pids_usage() {
    let name = "finds_real_hybrid_paths_and_pids_usage";
    let Some((_serial, mounts)) = root_test(name) else {
        return;
    };
    let cg = TestCgroup::new(&mounts);
    let init = cg.spawn("", "sleep 1000 & sleep 1001 & exec sleep 1002");
    wait_for("3 processes", || cg.pids_now().len() == 3);
    let container = ContainerCgroup::of_pid(&Setup::host().unwrap(), init).unwrap();
    assert_eq!(container.unified_dir(), Some(cg.unified.as_path()));
    assert_eq!(container.v1_dir("freezer"), Some(cg.freezer.as_path()));
    assert_eq!(container.v1_dir("pids"), Some(cg.pids.as_path()));
    assert_eq!(container.primary().path, format!("/{}", cg.name));
    let usage = container.pids_usage().unwrap().unwrap();
    assert_eq!(usage.current, 3);
    assert_eq!(usage.max, Some(4000));
}

/// A zombie whose parent never reaps is not in `cgroup.procs` on this kernel, yet it belongs
/// to the cgroup: `zombies_in` finds it by scanning /proc.
#[test]
fn finds_a_zombie_of_the_cgroup() {
    let name = "finds_a_zombie_of_the_cgroup";
    let Some((_serial, mounts)) = root_test(name) else {
        return;
    };
    let cg = TestCgroup::new(&mounts);
    // After the exec, `sleep 1000` is the parent of the short sleep and never reaps it.
    let init = cg.spawn("", "sleep 0.01 & exec sleep 1000");
    let setup = Setup::host().unwrap();
    let container = ContainerCgroup::of_pid(&setup, init).unwrap();
    let mut zombies = Vec::new();
    wait_for("a zombie", || {
        zombies = zombies_in(&setup, &container).unwrap();
        !zombies.is_empty()
    });
    assert_eq!(zombies.len(), 1, "{zombies:?}");
    assert_eq!(zombies[0].ppid, init);
    assert_eq!(zombies[0].state, 'Z');
    let live: Vec<i32> = container
        .processes()
        .unwrap()
        .iter()
        .map(|p| p.pid)
        .collect();
    assert_eq!(live, vec![init], "the zombie is not a live process");
}
