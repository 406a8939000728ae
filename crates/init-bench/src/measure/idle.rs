//! The init at rest: its resident memory and how often it wakes up (context switches over a
//! few seconds while its workload sleeps).

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::{own_exe, status_field, Init};
use crate::sandbox::{Options, Sandbox};
use crate::workload::command_line;

#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    pub rss_kb: u64,
    pub seconds: u64,
    pub wakeups: u64,
}

pub fn measure(init: &Init, seconds: u64) -> Result<IdleResult> {
    let workload = command_line(&own_exe()?, &["idle"]);
    let mut sandbox = Sandbox::start(
        &init.command(workload),
        Options {
            pid_namespace: true,
            ..Options::default()
        },
    )?;
    sandbox.expect_line(|line| line == "ready", "ready")?;
    let init_pid = sandbox.command_pid()?;
    // Let start-up settle.
    std::thread::sleep(Duration::from_millis(500));
    let switches = || -> Result<u64> {
        Ok(status_field(init_pid, "voluntary_ctxt_switches")?
            + status_field(init_pid, "nonvoluntary_ctxt_switches")?)
    };
    let before = switches()?;
    std::thread::sleep(Duration::from_secs(seconds));
    let after = switches()?;
    let rss_kb = status_field(init_pid, "VmRSS")?;
    drop(sandbox);
    Ok(IdleResult {
        rss_kb,
        seconds,
        wakeups: after - before,
    })
}
