//! Reaping 20,000 orphans released at once: wall time until the last is reaped, the init's CPU
//! time meanwhile, and the most zombies outstanding at once.
//!
//! Everything runs in a pids cgroup of our own, whose `pids.current` counts processes until they
//! are reaped: the run ends when it is back where it was before the release. Zombies are counted
//! by sampling: every 10 ms the state of 200 of the orphans, picked evenly, is read
//! from /proc, and the share in state Z scales to all of them. (Counting `pids.current` against
//! the live `cgroup.procs` would also count processes still on their way out of the kernel,
//! which have nothing to do with the init.)

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{cpu_ns, status_field, Init};
use crate::sandbox::{children_of, state_of};

const PIDS_ROOT: &str = "/sys/fs/cgroup/pids";
/// How often zombies are counted.
const ZOMBIE_SAMPLE: Duration = Duration::from_millis(10);
/// How many orphans each count looks at: few enough that sampling takes little of the machine
/// (about a tenth of a core), many enough for a count within a few hundred of 20,000.
const SAMPLE_SIZE: usize = 200;

#[derive(Debug, Clone, Serialize)]
pub struct ReapResult {
    pub orphans: usize,
    /// From the release until the last orphan was reaped.
    pub wall_ms: f64,
    /// CPU the init used meanwhile.
    pub init_cpu_ms: f64,
    /// Most zombies outstanding at one sample.
    pub max_zombies: u64,
    /// From the release until every sampled orphan had exited (reaped or not).
    pub exited_ms: f64,
    /// Times the init went to sleep and woke up again meanwhile (voluntary context switches).
    pub init_wakeups: u64,
    /// Over several runs: the most CPU the init used in one.
    pub worst_init_cpu_ms: f64,
}

/// A pids cgroup that is removed on drop.
pub(crate) struct PidsCgroup(pub(crate) PathBuf);

impl PidsCgroup {
    pub(crate) fn new(name: &str) -> Result<PidsCgroup> {
        let path = PathBuf::from(PIDS_ROOT)
            .join(format!("undertaker-bench-{}-{name}", std::process::id()));
        fs::create_dir(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(PidsCgroup(path))
    }

    /// Processes not reaped yet.
    pub(crate) fn current(&self) -> Result<u64> {
        Ok(fs::read_to_string(self.0.join("pids.current"))?
            .trim()
            .parse()?)
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // Empty by now (the sandbox is gone); retry briefly while the last exits are accounted.
        for _ in 0..100 {
            if fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub fn measure(init: &Init, orphans: usize) -> Result<ReapResult> {
    let cgroup = PidsCgroup::new(&init.name)?;
    let (mut sandbox, init_pid) =
        init.start(&["orphans", &orphans.to_string()], Some(cgroup.0.clone()))?;
    let orphan_pids = children_of(init_pid)?;
    let step = (orphan_pids.len() / SAMPLE_SIZE).max(1);
    let sample: Vec<i32> = orphan_pids
        .iter()
        .step_by(step)
        .map(|pid| pid.as_raw())
        .collect();
    let total_before = cgroup.current()?;
    let Some(baseline) = total_before.checked_sub(orphans as u64) else {
        bail!("{}: only {total_before} processes in the cgroup", init.name);
    };
    let cpu_before = cpu_ns(init_pid)?;
    let switches_before = status_field(init_pid, "voluntary_ctxt_switches")?;
    let start = Instant::now();
    let mut exited_at = None;
    sandbox.send_line("go")?;
    let mut max_zombies = 0u64;
    let mut next_sample = start;
    loop {
        let now = Instant::now();
        if now >= next_sample {
            let (zombies, alive) = count_states(&sample);
            max_zombies = max_zombies.max(zombies * orphans as u64 / sample.len() as u64);
            if alive == 0 && exited_at.is_none() {
                exited_at = Some(start.elapsed());
            }
            next_sample = now + ZOMBIE_SAMPLE;
        }
        if cgroup.current()? <= baseline {
            break;
        }
        if start.elapsed() > crate::sandbox::HANG {
            bail!(
                "{}: {} of {orphans} orphans still not reaped",
                init.name,
                cgroup.current()? - baseline
            );
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let wall = start.elapsed();
    let cpu_after = cpu_ns(init_pid)?;
    let switches_after = status_field(init_pid, "voluntary_ctxt_switches")?;
    sandbox.close_stdin();
    sandbox.wait()?;
    Ok(ReapResult {
        orphans,
        wall_ms: wall.as_secs_f64() * 1000.0,
        init_cpu_ms: (cpu_after - cpu_before) as f64 / 1e6,
        max_zombies,
        exited_ms: exited_at.unwrap_or(wall).as_secs_f64() * 1000.0,
        init_wakeups: switches_after - switches_before,
        worst_init_cpu_ms: (cpu_after - cpu_before) as f64 / 1e6,
    })
}

/// Of `pids`, how many are zombies and how many still run (gone ones are neither).
fn count_states(pids: &[i32]) -> (u64, u64) {
    let (mut zombies, mut alive) = (0, 0);
    for &pid in pids {
        match state_of(pid).ok().flatten() {
            Some('Z') => zombies += 1,
            Some(_) => alive += 1,
            None => {}
        }
    }
    (zombies, alive)
}

/// How many times as long as the physical limit a reaping run took: `run`'s wall time over
/// `limit`'s (the same producer under the [`super::kernel_reaped`] reaper). `None` without a
/// limit to divide by.
pub fn wall_ratio(run: &ReapResult, limit: &ReapResult) -> Option<f64> {
    (limit.wall_ms > 0.0).then(|| run.wall_ms / limit.wall_ms)
}

/// The median of each number over several runs.
pub fn median(runs: &[ReapResult]) -> ReapResult {
    fn mid<T: Copy>(
        runs: &[ReapResult],
        value: impl Fn(&ReapResult) -> T,
        cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
    ) -> T {
        let mut values: Vec<T> = runs.iter().map(value).collect();
        values.sort_by(cmp);
        values[values.len() / 2]
    }
    ReapResult {
        orphans: runs[0].orphans,
        wall_ms: mid(runs, |r| r.wall_ms, f64::total_cmp),
        init_cpu_ms: mid(runs, |r| r.init_cpu_ms, f64::total_cmp),
        max_zombies: mid(runs, |r| r.max_zombies, Ord::cmp),
        exited_ms: mid(runs, |r| r.exited_ms, f64::total_cmp),
        init_wakeups: mid(runs, |r| r.init_wakeups, Ord::cmp),
        worst_init_cpu_ms: runs.iter().map(|r| r.init_cpu_ms).fold(0.0, f64::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(wall_ms: f64, init_cpu_ms: f64) -> ReapResult {
        ReapResult {
            orphans: 100,
            wall_ms,
            init_cpu_ms,
            max_zombies: 0,
            exited_ms: wall_ms,
            init_wakeups: 1,
            worst_init_cpu_ms: init_cpu_ms,
        }
    }

    #[test]
    fn the_wall_ratio_divides_by_the_limit_and_needs_one() {
        assert_eq!(wall_ratio(&run(1050.0, 1.0), &run(1000.0, 0.0)), Some(1.05));
        assert_eq!(wall_ratio(&run(1050.0, 1.0), &run(0.0, 0.0)), None);
    }

    #[test]
    fn the_median_is_taken_per_number_and_the_worst_cpu_over_all_runs() {
        let runs = [run(300.0, 5.0), run(100.0, 9.0), run(200.0, 1.0)];
        let median = median(&runs);
        assert_eq!((median.wall_ms, median.init_cpu_ms), (200.0, 5.0));
        assert_eq!(median.worst_init_cpu_ms, 9.0);
    }
}
