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
use crate::tree::pids_recursive;
use crate::tree::write_control;

/// Most of the time budget a freeze may take before we signal anyway; the rest is left for
/// the processes to die.
const LONGEST_FREEZE: Duration = Duration::from_secs(1);

/// How many processes a report names (stat and command line, read before the kill); the
/// rest are reported by pid alone. Every read before the kill delays it, and an event lists
/// at most 256 processes anyway (`undertaker_events::MAX_LISTED_PROCESSES`): naming the
/// 10,000th process of a fork bomb would only slow its end down.
pub const NAMED_AT_MOST: usize = 300;

/// The longest pause between two looks at a cgroup that is emptying: its end is seen within
/// this, and a look is only a few small reads.
const LONGEST_EMPTY_POLL: Duration = Duration::from_millis(5);

/// After `cgroup.kill` or a freezer kill, when the wait first reads every listed process's
/// stat and SIGKILLs the live ones again (for a process that forked or moved in during the
/// kill); the gap then doubles. The kernel kills the rest on its own, and on a big cgroup such
/// a pass costs more CPU than the dying have: 10,000 stat reads every 5 ms made a 10,000-process
/// kill 1.46x slower than runc's, whose shim only waits.
const FIRST_FULL_PASS: Duration = Duration::from_millis(10);

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
    /// Processes that were in the cgroup and are gone, by pid; the first [`NAMED_AT_MOST`]
    /// (lowest pids) with their info as read before the kill (comm and cmdline; no wchan),
    /// the rest by pid alone (empty comm, state `?`).
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
        named: 0,
        signals,
    };
    // Read before any signal, so that the report knows what the killed processes were.
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
    let left = run.wait_until_empty(method, deadline)?;
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
    /// How many of `seen` are named.
    named: usize,
    signals: &'a dyn Signaller,
}

impl KillRun<'_> {
    /// Lists the pids in the cgroup (the dying too), and reads the names of those not seen
    /// before while fewer than [`NAMED_AT_MOST`] are named.
    fn look(&mut self) -> Result<BTreeSet<i32>, CgroupError> {
        let listed = pids_recursive(&self.dir)?;
        for &pid in &listed {
            if self.seen.contains_key(&pid) {
                continue;
            }
            if self.named >= NAMED_AT_MOST {
                self.seen.insert(pid, ProcessInfo::unnamed(pid));
            } else if let Some(info) = ProcessInfo::read_named(self.proc_root, pid)? {
                self.named += 1;
                self.seen.insert(pid, info);
            }
        }
        Ok(listed)
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

    /// Waits until nothing is listed, or the deadline passes; returns the pids left. Full
    /// passes SIGKILL whatever is still live: every pass for the signal loop (nothing else
    /// kills), at doubling gaps from [`FIRST_FULL_PASS`] after `cgroup.kill` or a freezer.
    fn wait_until_empty(
        &mut self,
        method: KillMethod,
        deadline: Instant,
    ) -> Result<BTreeSet<i32>, CgroupError> {
        let mut backoff = Backoff::capped(deadline, LONGEST_EMPTY_POLL);
        let mut gap = FIRST_FULL_PASS;
        let mut next_full = match method {
            KillMethod::SignalLoop => Instant::now(),
            _ => Instant::now() + gap,
        };
        loop {
            if self.look()?.is_empty() {
                return Ok(BTreeSet::new());
            }
            let now = Instant::now();
            if now >= next_full || now >= deadline {
                // Listed but gone, or a dead zombie still listed (older kernels): not left.
                let live = live_pids(self.proc_root, &self.dir)?;
                if live.is_empty() || now >= deadline {
                    return Ok(live);
                }
                // Dying processes ignore a second SIGKILL; new ones (forked during the kill,
                // or whose SIGKILL is pending behind a thaw) get theirs.
                self.sigkill(&live)?;
                if method != KillMethod::SignalLoop {
                    gap *= 2;
                    next_full = now + gap;
                }
            }
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
mod tests;
