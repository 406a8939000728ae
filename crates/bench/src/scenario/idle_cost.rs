//! What an idle pod's shim costs while nothing happens to its pod: CPU time and wake-ups
//! (context switches of all its threads), counted over a window and scaled to a minute.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;

use crate::handler::{Handler, PerHandler};
use crate::procfs::{thread_switches, wakeups_between, CpuTime};
use crate::report::{Goal, Measurement, Unit};

/// An idle pod's shim at the start of the window.
pub struct IdleShim {
    handler: Handler,
    pid: i32,
    /// Its place among the idle pods of its handler (0 is the first started).
    index: usize,
    cpu: CpuTime,
    switches: HashMap<i32, u64>,
}

impl IdleShim {
    /// Counts the shim `pid` of the `index`th idle pod of `handler` now.
    pub fn read(handler: Handler, index: usize, pid: i32) -> Result<IdleShim> {
        Ok(IdleShim {
            handler,
            pid,
            index,
            cpu: CpuTime::read(pid)?,
            switches: thread_switches(pid)?,
        })
    }
}

/// `count` over `window`, per minute.
pub fn per_minute(count: f64, window: Duration) -> f64 {
    let seconds = window.as_secs_f64();
    if seconds > 0.0 {
        count * 60.0 / seconds
    } else {
        0.0
    }
}

/// The rows for the shims counted in `before`, `window` after it, leaving out each handler's
/// first `busy` pods (the stop row stopped their containers during the window).
pub fn rows(before: &[IdleShim], window: Duration, busy: usize) -> Result<Vec<Measurement>> {
    let mut cpu = PerHandler::default();
    let mut wakeups = PerHandler::default();
    for shim in before.iter().filter(|shim| shim.index >= busy) {
        let now = IdleShim::read(shim.handler, shim.index, shim.pid)?;
        cpu.push(
            shim.handler,
            per_minute(now.cpu.own_ms - shim.cpu.own_ms, window),
        );
        wakeups.push(
            shim.handler,
            per_minute(
                wakeups_between(&shim.switches, &now.switches) as f64,
                window,
            ),
        );
    }
    let seconds = window.as_secs_f64();
    let detail = format!(
        "counted over {seconds:.0} s (the stop row's duration, at least --idle-window), for the \
         pods the stop row did not touch, and scaled to a minute; CPU in clock ticks of 10 ms; \
         a thread that exited in the window counts one wake-up"
    );
    Ok(vec![
        Measurement {
            detail: Some(detail),
            ..Measurement::new(
                "idle_shim_cpu",
                format!(
                    "shim CPU time per idle pod per minute (utime+stime over {seconds:.0} s)"
                ),
                "idle shim CPU per minute".to_string(),
                Unit::Milliseconds,
                Goal::RatioAtMost(1.0),
                cpu,
            )
        },
        Measurement {
            detail: None,
            ..Measurement::new(
                "idle_shim_wakeups",
                format!(
                    "shim wake-ups per idle pod per minute (context switches of all threads over {seconds:.0} s)"
                ),
                "idle shim wake-ups per minute".to_string(),
                Unit::PerMinute,
                Goal::UndertakerZero,
                wakeups,
            )
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_scale_from_the_window_to_a_minute() {
        assert_eq!(per_minute(10.0, Duration::from_secs(20)), 30.0);
        assert_eq!(per_minute(0.0, Duration::from_secs(35)), 0.0);
        assert_eq!(per_minute(5.0, Duration::ZERO), 0.0);
    }
}
