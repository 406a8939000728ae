//! The init at rest: its resident memory and how often it wakes up (context switches over a
//! few seconds while its workload sleeps).

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::{status_field, Init};

#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    pub rss_kb: u64,
    pub seconds: u64,
    pub wakeups: u64,
}

pub fn measure(init: &Init, seconds: u64) -> Result<IdleResult> {
    let (sandbox, init_pid) = init.start(&["idle"], None)?;
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
