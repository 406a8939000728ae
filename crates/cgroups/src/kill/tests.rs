//! The kill loop against a fake host and a fake kernel: no root, no real signal.

use std::cell::RefCell;
use std::collections::HashMap;

use super::*;
use crate::fixture::{FakeHost, HYBRID, PID_BASE};
use crate::mountinfo::Hierarchy;

const MEMBERSHIP: &str = "6:freezer:/ctr\n8:pids:/ctr\n0::/ctr\n";

/// Plays the kernel: SIGKILL makes a process exit, except the unkillable ones; a
/// forker gets a child into the cgroup just before it dies.
struct FakeKernel<'a> {
    host: &'a FakeHost,
    unkillable: Vec<i32>,
    forks: RefCell<HashMap<i32, (i32, PathBuf)>>,
    /// `(pid, freezer.state at that moment)` for each SIGKILL sent.
    sent: RefCell<Vec<(i32, String)>>,
    freezer_state: PathBuf,
}

impl<'a> FakeKernel<'a> {
    fn new(host: &'a FakeHost) -> Self {
        FakeKernel {
            host,
            unkillable: Vec::new(),
            forks: RefCell::default(),
            sent: RefCell::default(),
            freezer_state: host.cgroup("freezer", "/ctr").join("freezer.state"),
        }
    }

    fn signalled(&self) -> BTreeSet<i32> {
        self.sent.borrow().iter().map(|(pid, _)| *pid).collect()
    }
}

impl Signaller for FakeKernel<'_> {
    fn sigkill(&self, pid: i32) -> Result<(), Errno> {
        let state = std::fs::read_to_string(&self.freezer_state).unwrap_or_default();
        self.sent.borrow_mut().push((pid, state.trim().to_owned()));
        if let Some((child, dir)) = self.forks.borrow_mut().remove(&pid) {
            self.host.process(child, "forked", 'R', MEMBERSHIP);
            self.host.enter(&dir, child);
        }
        if !self.unkillable.contains(&pid) {
            self.host.exit(pid);
        }
        Ok(())
    }
}

/// A container with its init at the top and workers in a nested sub-cgroup, in the
/// unified, freezer and pids hierarchies.
fn container(host: &FakeHost, workers: i32) -> ContainerCgroup {
    host.process(PID_BASE, "init", 'S', MEMBERSHIP);
    for under in ["unified", "freezer", "pids"] {
        host.enter(&host.cgroup(under, "/ctr"), PID_BASE);
    }
    for n in 1..=workers {
        host.process(PID_BASE + n, &format!("worker {n}"), 'S', MEMBERSHIP);
        for under in ["unified", "freezer", "pids"] {
            host.enter(&host.cgroup(under, "/ctr/jobs/a"), PID_BASE + n);
        }
    }
    std::fs::write(
        host.cgroup("freezer", "/ctr").join("freezer.state"),
        "THAWED\n",
    )
    .unwrap();
    ContainerCgroup::of_pid(&host.setup(), PID_BASE).unwrap()
}

fn pids(processes: &[ProcessInfo]) -> Vec<i32> {
    processes.iter().map(|p| p.pid).collect()
}

#[test]
fn detects_the_best_method_the_cgroup_offers() {
    let host = FakeHost::new(HYBRID);
    let cgroup = container(&host, 0);
    assert_eq!(cgroup.kill_method(), KillMethod::FreezerV1);
    std::fs::write(host.cgroup("unified", "/ctr").join("cgroup.freeze"), "0").unwrap();
    assert_eq!(
        cgroup.kill_method(),
        KillMethod::FreezerV1,
        "v1 freezer before v2"
    );
    std::fs::write(host.cgroup("unified", "/ctr").join("cgroup.kill"), "").unwrap();
    assert_eq!(cgroup.kill_method(), KillMethod::CgroupKill);

    let v1_hidden =
        ContainerCgroup::of_pid(&host.setup().without_v1_controller("freezer"), PID_BASE).unwrap();
    assert_eq!(v1_hidden.kill_method(), KillMethod::CgroupKill);
    std::fs::remove_file(host.cgroup("unified", "/ctr").join("cgroup.kill")).unwrap();
    assert_eq!(v1_hidden.kill_method(), KillMethod::FreezerV2);
    let v1_only = ContainerCgroup::of_pid(&host.setup().without_unified(), PID_BASE).unwrap();
    assert_eq!(v1_only.kill_method(), KillMethod::FreezerV1);
    let pids_only = ContainerCgroup::of_pid(
        &host
            .setup()
            .without_unified()
            .without_v1_controller("freezer"),
        PID_BASE,
    )
    .unwrap();
    assert_eq!(pids_only.kill_method(), KillMethod::SignalLoop);
    assert_eq!(pids_only.primary().hierarchy, Hierarchy::v1("pids"));
}

#[test]
fn signal_passes_catch_a_process_forked_during_the_kill() {
    let host = FakeHost::new(HYBRID);
    let cgroup = container(&host, 3);
    let kernel = FakeKernel::new(&host);
    let nested = host.cgroup("unified", "/ctr/jobs/a/deeper");
    kernel
        .forks
        .borrow_mut()
        .insert(PID_BASE + 2, (PID_BASE + 9, nested));
    let report = kill_all(
        &cgroup,
        KillMethod::SignalLoop,
        Duration::from_secs(5),
        &kernel,
    )
    .unwrap();
    let everyone = vec![
        PID_BASE,
        PID_BASE + 1,
        PID_BASE + 2,
        PID_BASE + 3,
        PID_BASE + 9,
    ];
    assert_eq!(pids(&report.killed), everyone);
    assert_eq!(
        report.killed[1].comm, "worker 1",
        "info is the one read before the kill"
    );
    assert_eq!(report.killed[1].cmdline, "worker 1 --flag");
    assert!(report.unkillable.is_empty());
    assert!(cgroup.is_empty().unwrap());
}

#[test]
fn survivors_are_reported_with_their_state_and_wchan() {
    let host = FakeHost::new(HYBRID);
    let cgroup = container(&host, 2);
    let mut kernel = FakeKernel::new(&host);
    kernel.unkillable = vec![PID_BASE + 2];
    host.process(PID_BASE + 2, "worker 2", 'D', MEMBERSHIP);
    let stuck = host.proc_root().join((PID_BASE + 2).to_string());
    std::fs::write(stuck.join("wchan"), "fuse_wait_answer").unwrap();
    let report = kill_all(
        &cgroup,
        KillMethod::SignalLoop,
        Duration::from_millis(30),
        &kernel,
    )
    .unwrap();
    assert_eq!(pids(&report.killed), vec![PID_BASE, PID_BASE + 1]);
    assert_eq!(pids(&report.unkillable), vec![PID_BASE + 2]);
    assert_eq!(report.unkillable[0].state, 'D');
    assert_eq!(report.unkillable[0].wchan, "fuse_wait_answer");
    assert_eq!(report.unkillable[0].comm, "worker 2");
}

#[test]
fn after_cgroup_kill_the_wait_signals_at_doubling_gaps_not_every_look() {
    let host = FakeHost::new(HYBRID);
    let cgroup = container(&host, 1);
    std::fs::write(host.cgroup("unified", "/ctr").join("cgroup.kill"), "").unwrap();
    let mut kernel = FakeKernel::new(&host);
    kernel.unkillable = vec![PID_BASE + 1];
    let report = kill_all(
        &cgroup,
        KillMethod::CgroupKill,
        Duration::from_millis(300),
        &kernel,
    )
    .unwrap();
    assert_eq!(pids(&report.unkillable), vec![PID_BASE + 1]);
    // Looks come every 5 ms at most (about 60 in 300 ms); full passes at 10, 30, 70, 150 and
    // 310 ms, so the stuck process gets at most 4 SIGKILLs here (fewer on a slow machine).
    let to_stuck = kernel
        .sent
        .borrow()
        .iter()
        .filter(|(pid, _)| *pid == PID_BASE + 1)
        .count();
    assert!(
        (1..=4).contains(&to_stuck),
        "{to_stuck} SIGKILLs to the stuck process"
    );
}

#[test]
fn the_v1_freezer_method_signals_while_frozen_then_thaws() {
    let host = FakeHost::new(HYBRID);
    let cgroup = container(&host, 2);
    let kernel = FakeKernel::new(&host);
    let report = kill_all(
        &cgroup,
        KillMethod::FreezerV1,
        Duration::from_secs(5),
        &kernel,
    )
    .unwrap();
    assert_eq!(report.method, KillMethod::FreezerV1);
    assert_eq!(
        pids(&report.killed),
        vec![PID_BASE, PID_BASE + 1, PID_BASE + 2]
    );
    let states: Vec<String> = kernel
        .sent
        .borrow()
        .iter()
        .map(|(_, s)| s.clone())
        .collect();
    assert_eq!(states, vec!["FROZEN"; 3]);
    assert_eq!(
        std::fs::read_to_string(&kernel.freezer_state).unwrap(),
        "THAWED"
    );
}

#[test]
fn cgroup_kill_is_written_and_a_paused_container_is_thawed() {
    let host = FakeHost::new(HYBRID);
    let cgroup = container(&host, 1);
    let kill_file = host.cgroup("unified", "/ctr").join("cgroup.kill");
    std::fs::write(&kill_file, "").unwrap();
    std::fs::write(
        host.cgroup("freezer", "/ctr").join("freezer.state"),
        "FROZEN\n",
    )
    .unwrap();
    let kernel = FakeKernel::new(&host);
    // A fixture's cgroup.kill kills nothing; the SIGKILLs of the wait then do the work.
    let report = kill_all(
        &cgroup,
        cgroup.kill_method(),
        Duration::from_secs(5),
        &kernel,
    )
    .unwrap();
    assert_eq!(report.method, KillMethod::CgroupKill);
    assert_eq!(std::fs::read_to_string(&kill_file).unwrap(), "1");
    assert_eq!(
        std::fs::read_to_string(&kernel.freezer_state).unwrap(),
        "THAWED"
    );
    assert_eq!(pids(&report.killed), vec![PID_BASE, PID_BASE + 1]);
}

#[test]
fn refuses_a_cgroup_that_holds_the_caller() {
    let host = FakeHost::new(HYBRID);
    let cgroup = container(&host, 1);
    let me = std::process::id() as i32;
    host.process(me, "undertaker", 'R', MEMBERSHIP);
    host.enter(&host.cgroup("unified", "/ctr/jobs"), me);
    let kernel = FakeKernel::new(&host);
    let err = kill_all(
        &cgroup,
        KillMethod::SignalLoop,
        Duration::from_secs(1),
        &kernel,
    )
    .unwrap_err();
    assert!(
        matches!(err, CgroupError::ContainsCaller { pid, .. } if pid == me),
        "{err}"
    );
    assert!(kernel.signalled().is_empty());
}

#[test]
fn a_method_the_cgroup_lacks_is_an_error() {
    let host = FakeHost::new(HYBRID);
    container(&host, 0);
    let v1_only = ContainerCgroup::of_pid(&host.setup().without_unified(), PID_BASE).unwrap();
    let err = v1_only
        .kill_all_with(KillMethod::CgroupKill, Duration::from_secs(1))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::MethodUnavailable {
                method: KillMethod::CgroupKill
            }
        ),
        "{err}"
    );
}

#[test]
fn an_already_empty_or_removed_cgroup_kills_nothing() {
    let host = FakeHost::new(HYBRID);
    let cgroup = container(&host, 1);
    let kernel = FakeKernel::new(&host);
    host.exit(PID_BASE);
    host.exit(PID_BASE + 1);
    std::fs::remove_dir_all(host.cgroup("freezer", "/ctr")).unwrap();
    let report = kill_all(
        &cgroup,
        KillMethod::FreezerV1,
        Duration::from_secs(1),
        &kernel,
    )
    .unwrap();
    assert!(report.killed.is_empty() && report.unkillable.is_empty());
    assert!(kernel.signalled().is_empty());
}

#[test]
fn a_big_cgroup_is_killed_with_the_first_processes_named_and_all_counted() {
    let host = FakeHost::new(HYBRID);
    let workers = NAMED_AT_MOST as i32 + 50;
    let cgroup = container(&host, workers);
    let kernel = FakeKernel::new(&host);
    let report = kill_all(
        &cgroup,
        KillMethod::SignalLoop,
        Duration::from_secs(5),
        &kernel,
    )
    .unwrap();
    assert_eq!(
        report.killed.len(),
        workers as usize + 1,
        "every process counted"
    );
    assert!(report.unkillable.is_empty());
    let (named, unnamed): (Vec<_>, Vec<_>) = report.killed.iter().partition(|p| !p.comm.is_empty());
    assert_eq!(named.len(), NAMED_AT_MOST);
    assert_eq!(named[0].comm, "init", "the lowest pids are the named ones");
    assert!(named.iter().all(|p| p.pid < unnamed[0].pid));
    assert!(unnamed
        .iter()
        .all(|p| p.state == '?' && p.cmdline.is_empty()));
    assert_eq!(
        kernel.signalled().len(),
        workers as usize + 1,
        "and all killed"
    );
}
