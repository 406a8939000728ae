//! Exits one by one among many live children: the case where an init that walks its whole child
//! list on every SIGCHLD pays exits × children. 2,000 orphans exit 1 ms apart while 20,000 others
//! wait; we take the init's CPU time until the last of the 2,000 is reaped.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;

use super::reap::PidsCgroup;
use super::{cpu_ns, Init};
use crate::sandbox::HANG;

#[derive(Debug, Clone, Serialize)]
pub struct TrickleResult {
    pub live: usize,
    pub exits: usize,
    pub gap_us: u64,
    pub init_cpu_ms: f64,
    pub wall_ms: f64,
}

pub fn measure(init: &Init, live: usize, exits: usize, gap_us: u64) -> Result<TrickleResult> {
    let cgroup = PidsCgroup::new(&format!("{}-trickle", init.name))?;
    let (mut sandbox, init_pid) = init.start(
        &[
            "trickle",
            &live.to_string(),
            &exits.to_string(),
            &gap_us.to_string(),
        ],
        Some(cgroup.0.clone()),
    )?;
    let baseline = cgroup.current()?;
    let cpu_before = cpu_ns(init_pid)?;
    let start = Instant::now();
    sandbox.send_line("go")?;
    sandbox.expect_line(|line| line == "started", "started")?;
    while cgroup.current()? > baseline {
        if start.elapsed() > HANG {
            bail!("{}: exits not reaped", init.name);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let wall = start.elapsed();
    let cpu_after = cpu_ns(init_pid)?;
    sandbox.send_line("release")?;
    sandbox.close_stdin();
    sandbox.wait()?;
    Ok(TrickleResult {
        live,
        exits,
        gap_us,
        init_cpu_ms: (cpu_after - cpu_before) as f64 / 1e6,
        wall_ms: wall.as_secs_f64() * 1000.0,
    })
}
