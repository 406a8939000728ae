//! Killing a whole cgroup and waiting until it is really empty.
//!
//! The method is chosen from what the cgroup offers (`KillMethod::detect`), best first:
//! `cgroup.kill` (cgroup v2, kernel 5.14+: the kernel kills the whole subtree and blocks
//! forks while it does), the v1 freezer, the v2 freezer (kernels 5.2 to 5.13), and last
//! SIGKILL passes over every pid until no new one appears. Whatever the method, the wait that
//! follows SIGKILLs any pid still listed, so a process that forked or slipped in during the
//! kill is caught too, and the deadline bounds everything: survivors are reported, never
//! waited for.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::container::{live_pids, ContainerCgroup};
use crate::error::CgroupError;
use crate::freezer::{Freezer, V1Freezer, V2Freezer};
use crate::process::ProcessInfo;
use crate::tree::write_control;

/// Most of the time budget a freeze may take before we signal anyway; the rest is left for
/// the processes to die.
const LONGEST_FREEZE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillMethod {
    /// Write `1` to `cgroup.kill` (cgroup v2 or the hybrid unified hierarchy).
    CgroupKill,
    /// Freeze with `freezer.state`, SIGKILL every pid, thaw (cgroup v1).
    FreezerV1,
    /// Freeze with `cgroup.freeze`, SIGKILL every pid, thaw (cgroup v2 without `cgroup.kill`).
    FreezerV2,
    /// SIGKILL every pid, again and again until none is left or new.
    SignalLoop,
}

impl fmt::Display for KillMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KillMethod::CgroupKill => "cgroup.kill",
            KillMethod::FreezerV1 => "v1 freezer",
            KillMethod::FreezerV2 => "v2 freezer",
            KillMethod::SignalLoop => "SIGKILL passes",
        })
    }
}

/// What a whole-cgroup kill did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillReport {
    pub method: KillMethod,
    /// Processes that were in the cgroup and are gone, with their info as read before the
    /// kill (so comm and cmdline are known).
    pub killed: Vec<ProcessInfo>,
    /// Processes still there at the deadline, as they are now (state, wchan): blocked in
    /// uninterruptible sleep, or frozen in a v1 freezer sub-cgroup frozen on its own.
    pub unkillable: Vec<ProcessInfo>,
    pub elapsed: Duration,
}

impl KillMethod {
    /// The best method this cgroup offers (see the module comment for the order).
    pub(crate) fn detect(cgroup: &ContainerCgroup) -> KillMethod {
        let unified = cgroup.unified_dir();
        if unified.is_some_and(|dir| dir.join("cgroup.kill").exists()) {
            KillMethod::CgroupKill
        } else if cgroup.v1_dir("freezer").is_some() {
            KillMethod::FreezerV1
        } else if unified.is_some_and(|dir| dir.join("cgroup.freeze").exists()) {
            KillMethod::FreezerV2
        } else {
            KillMethod::SignalLoop
        }
    }
}

/// How a signal reaches a process: the real `kill(2)`, or a fake in unit tests.
pub(crate) trait Signaller {
    fn sigkill(&self, pid: i32) -> Result<(), Errno>;
}

pub(crate) struct KernelSignals;

impl Signaller for KernelSignals {
    fn sigkill(&self, pid: i32) -> Result<(), Errno> {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
    }
}

impl ContainerCgroup {
    /// The method `kill_all` uses.
    pub fn kill_method(&self) -> KillMethod {
        KillMethod::detect(self)
    }

    /// Kills every process of the cgroup and its sub-cgroups, then waits until none is left
    /// or `timeout` has passed. Never takes (much) longer than `timeout`.
    pub fn kill_all(&self, timeout: Duration) -> Result<KillReport, CgroupError> {
        self.kill_all_with(self.kill_method(), timeout)
    }

    /// `kill_all` with a given method, e.g. to exercise the v1 freezer on a hybrid host.
    pub fn kill_all_with(
        &self,
        method: KillMethod,
        timeout: Duration,
    ) -> Result<KillReport, CgroupError> {
        kill_all(self, method, timeout, &KernelSignals)
    }
}

pub(crate) fn kill_all(
    cgroup: &ContainerCgroup,
    method: KillMethod,
    timeout: Duration,
    signals: &dyn Signaller,
) -> Result<KillReport, CgroupError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut run = KillRun {
        proc_root: cgroup.proc_root(),
        dir: listing_dir(cgroup, method)?,
        seen: BTreeMap::new(),
        signals,
    };
    // Read before any signal, so that the report knows what each killed process was.
    let before = run.look()?;
    run.refuse_to_kill_caller()?;
    debug!(%method, dir = %run.dir.display(), processes = run.seen.len(), "killing cgroup");
    match method {
        KillMethod::CgroupKill => {
            write_control(&run.dir.join("cgroup.kill"), "1")?;
        }
        KillMethod::FreezerV1 => run.freeze_kill_thaw(
            &V1Freezer {
                dir: run.dir.clone(),
            },
            deadline,
        )?,
        KillMethod::FreezerV2 => run.freeze_kill_thaw(
            &V2Freezer {
                dir: run.dir.clone(),
            },
            deadline,
        )?,
        // Further passes are the wait's.
        KillMethod::SignalLoop => run.sigkill(&before)?,
    }
    if method != KillMethod::FreezerV1 {
        thaw_paused(cgroup)?;
    }
    let left = run.wait_until_empty(deadline)?;
    let report = run.report(method, left, started)?;
    if report.unkillable.is_empty() {
        info!(%method, killed = report.killed.len(), elapsed = ?report.elapsed, "cgroup killed");
    } else {
        warn!(%method, killed = report.killed.len(), unkillable = ?report.unkillable, "processes survived SIGKILL");
    }
    Ok(report)
}

/// The directory a method works on (and whose processes it lists).
fn listing_dir(cgroup: &ContainerCgroup, method: KillMethod) -> Result<PathBuf, CgroupError> {
    let dir = match method {
        KillMethod::CgroupKill | KillMethod::FreezerV2 => cgroup.unified_dir(),
        KillMethod::FreezerV1 => cgroup.v1_dir("freezer"),
        KillMethod::SignalLoop => Some(cgroup.primary().dir.as_path()),
    };
    dir.map(Path::to_owned)
        .ok_or(CgroupError::MethodUnavailable { method })
}

/// A v1-frozen (paused) container keeps SIGKILLed processes alive until thawed; thaw it so
/// they die. A sub-cgroup frozen on its own stays frozen: that is reported as unkillable.
fn thaw_paused(cgroup: &ContainerCgroup) -> Result<(), CgroupError> {
    if let Some(placement) = cgroup.v1_placement("freezer") {
        let freezer = V1Freezer {
            dir: placement.dir.clone(),
        };
        if freezer.is_paused()? {
            debug!(dir = %freezer.dir.display(), "thawing paused cgroup so that SIGKILL lands");
            freezer.thaw()?;
        }
    }
    Ok(())
}

struct KillRun<'a> {
    proc_root: &'a Path,
    dir: PathBuf,
    /// Every process seen in the cgroup, with its info as first read.
    seen: BTreeMap<i32, ProcessInfo>,
    signals: &'a dyn Signaller,
}

impl KillRun<'_> {
    /// Lists the live pids, and reads the info of any not seen before.
    fn look(&mut self) -> Result<BTreeSet<i32>, CgroupError> {
        let live = live_pids(self.proc_root, &self.dir)?;
        for &pid in &live {
            if !self.seen.contains_key(&pid) {
                if let Some(info) = ProcessInfo::read(self.proc_root, pid)? {
                    self.seen.insert(pid, info);
                }
            }
        }
        Ok(live)
    }

    fn refuse_to_kill_caller(&self) -> Result<(), CgroupError> {
        let caller = std::process::id() as i32;
        if self.seen.contains_key(&caller) {
            return Err(CgroupError::ContainsCaller {
                path: self.dir.clone(),
                pid: caller,
            });
        }
        Ok(())
    }

    fn sigkill(&self, pids: &BTreeSet<i32>) -> Result<(), CgroupError> {
        for &pid in pids {
            match self.signals.sigkill(pid) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(source) => return Err(CgroupError::Signal { pid, source }),
            }
        }
        Ok(())
    }

    fn freeze_kill_thaw(
        &mut self,
        freezer: &dyn Freezer,
        deadline: Instant,
    ) -> Result<(), CgroupError> {
        let budget = deadline.saturating_duration_since(Instant::now()) / 2;
        freezer.freeze()?;
        if !freezer.wait_frozen(Instant::now() + budget.min(LONGEST_FREEZE))? {
            warn!(dir = %self.dir.display(), "cgroup did not finish freezing; killing anyway");
        }
        // Thaw even if listing or signalling failed: never leave a container frozen.
        let killed = self.look().and_then(|live| self.sigkill(&live));
        freezer.thaw()?;
        killed
    }

    /// SIGKILLs whatever is still listed until nothing is, or the deadline passes. Returns
    /// the pids left.
    fn wait_until_empty(&mut self, deadline: Instant) -> Result<BTreeSet<i32>, CgroupError> {
        let mut backoff = Backoff::until(deadline);
        loop {
            let live = self.look()?;
            if live.is_empty() || Instant::now() >= deadline {
                return Ok(live);
            }
            // Dying processes ignore a second SIGKILL; new ones (forked during the kill,
            // or whose SIGKILL is pending behind a thaw) get theirs.
            self.sigkill(&live)?;
            backoff.pause();
        }
    }

    fn report(
        mut self,
        method: KillMethod,
        left: BTreeSet<i32>,
        started: Instant,
    ) -> Result<KillReport, CgroupError> {
        let mut unkillable = Vec::new();
        for pid in left {
            // Read again: the state and wchan now are what tell why it survived.
            if let Some(now) = ProcessInfo::read(self.proc_root, pid)? {
                self.seen.remove(&pid);
                unkillable.push(now);
            }
        }
        Ok(KillReport {
            method,
            killed: self.seen.into_values().collect(),
            unkillable,
            elapsed: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
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
            ContainerCgroup::of_pid(&host.setup().without_v1_controller("freezer"), PID_BASE)
                .unwrap();
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
}
